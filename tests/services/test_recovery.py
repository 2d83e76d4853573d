"""Leads kept while storage was down reach the main table once, without copies and without one file
blocking the others (leads/services/recovery.py), on a real Azurite."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from leads.core.errors import StorageRefusedError, StorageUnavailableError
from leads.core.model import StoredLead, utcnow
from leads.core.parsing import parse_lead
from leads.core.ports import Added, SourceRow
from leads.core.settings import load_settings
from leads.services.recovery import Backoff, Recovery
from leads.services.sweeper import Sweeper
from leads.storage.azure_clients import table_service
from leads.storage.fallback_table import FallbackTable
from leads.storage.spool import Spool
from leads.storage.table_store import LeadTable, raw_body_of
from tests.services.test_pipeline import body, dead_connection_string
from tests.support.pipeline import Pipeline, RecordingDestination, build_pipeline

pytestmark = pytest.mark.azurite


def spool_files(folder: Path) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    for path in sorted(folder.glob("*")):
        found.setdefault(path.suffix, []).append(path.read_bytes())
    return found


def test_a_sweep_while_storage_is_still_down_keeps_each_spooled_body_exactly_once(azurite, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    down = build_pipeline(azurite.connection_string, str(spool), {"email": RecordingDestination("email")},
                          table_connection=dead_connection_string(azurite.connection_string))
    bodies = [body(OfferTitle=f"Offer {n}") for n in range(3)]
    assert [down.ingest.receive("POST", b).status for b in bodies] == [503] * 3
    sweeper = Sweeper(down.table, down.runtime.queue, down.ingest, down.runtime.spool)
    for _ in range(3):
        assert sweeper.sweep().respooled == 0
    assert spool_files(spool) == {".json": sorted(bodies)}  # no copy per sweep, nothing lost

    up = build_pipeline(azurite.connection_string, str(spool), {"email": RecordingDestination("email")})
    assert Sweeper(up.table, up.runtime.queue, up.ingest, up.runtime.spool).sweep().respooled == 3
    assert spool_files(spool) == {}
    assert sorted(lead.lead.offer_title for lead in up.table.recent()) == ["Offer 0", "Offer 1", "Offer 2"]


class RefusingStore(LeadTable):
    """The real table, except that it refuses one lead the way Azure refuses an entity it cannot take
    (Table service error code PropertyValueTooLarge, 400; Azurite --loose does not enforce the limit)."""

    refused_offer = "Refused"

    def add(self, stored: StoredLead, fingerprint: str | None, window: timedelta, outbox_due: datetime,
            body: bytes = b"", source: SourceRow | None = None) -> Added:
        if stored.lead.offer_title == self.refused_offer:
            raise StorageRefusedError("Table storage refused the lead (PropertyValueTooLarge).")
        return super().add(stored, fingerprint, window, outbox_due, body, source)


def test_a_body_storage_refuses_is_set_aside_and_quarantined_and_later_files_go_on(pipeline_up: Pipeline,
                                                                                    tmp_path: Path) -> None:
    table = pipeline_up.table
    refusing = RefusingStore(table._service, table.leads.table_name, table.quarantine_table.table_name)
    pipeline_up.ingest.store = refusing
    spool = Spool(str(tmp_path / "disk"))
    start = utcnow()
    for n, offer in enumerate(["First", RefusingStore.refused_offer, "Third"]):
        spool.keep(body(OfferTitle=offer), start + timedelta(seconds=n))
    recovery = Recovery(pipeline_up.ingest, spool, None, table.ping)

    assert recovery.drain_spool() == 2
    assert spool_files(spool.folder) == {".failed": [body(OfferTitle="Refused")]}
    assert sorted(lead.lead.offer_title for lead in table.recent()) == ["First", "Third"]
    [rejected] = table.rejected()
    assert rejected["Reason"] == "spool_refused" and "PropertyValueTooLarge" in rejected["Message"]
    assert recovery.drain_spool() == 0  # the set-aside file is not tried again


def test_a_held_lead_moved_but_not_released_before_a_crash_is_not_stored_twice(pipeline_up: Pipeline,
                                                                                azurite) -> None:
    settings = load_settings({"AzureWebJobsStorage": "x", "LEADS_FALLBACK_STORAGE": azurite.connection_string})
    assert settings.fallback_storage is not None
    fallback = FallbackTable(table_service(settings.fallback_storage), f"held{pipeline_up.settings.table}")
    raw = body(OfferTitle="Held")
    received = utcnow()
    held = fallback.hold("20260101T000000000Z-0badc0de", parse_lead(raw).fingerprint(), received, raw)
    assert held == Added("20260101T000000000Z-0badc0de", duplicate=False)
    pipeline_up.ingest.store_body(raw, received, held.lead_id)  # the move, then a crash before release
    assert len(pipeline_up.queued()) == 1

    recovery = Recovery(pipeline_up.ingest, Spool(""), fallback, pipeline_up.table.ping)
    assert recovery.move_held() == 1  # found already stored: released, nothing written again
    assert [lead.id for lead in pipeline_up.table.recent()] == [held.lead_id]
    assert pipeline_up.queued() == []
    assert fallback.held() == []


def test_the_same_lead_held_twice_gets_the_same_id(azurite) -> None:
    settings = load_settings({"AzureWebJobsStorage": "x", "LEADS_FALLBACK_STORAGE": azurite.connection_string})
    assert settings.fallback_storage is not None
    fallback = FallbackTable(table_service(settings.fallback_storage), "heldtwice")
    raw = body()
    fingerprint = parse_lead(raw).fingerprint()
    first = fallback.hold("20260101T000000000Z-00000001", fingerprint, utcnow(), raw)
    second = fallback.hold("20260101T000001000Z-00000002", fingerprint, utcnow(), raw)
    assert (second.lead_id, second.duplicate) == (first.lead_id, True)
    [row] = fallback.held()
    assert (row.lead_id, row.body) == (first.lead_id, raw)


def test_two_leads_that_name_no_customer_are_held_as_two(azurite) -> None:
    """The .edu shape (Microsoft withholds the personal data): no fingerprint, so never merged, even here."""
    settings = load_settings({"AzureWebJobsStorage": "x", "LEADS_FALLBACK_STORAGE": azurite.connection_string})
    assert settings.fallback_storage is not None
    fallback = FallbackTable(table_service(settings.fallback_storage), "heldnoone")
    raw = json.dumps({"OfferTitle": "Contoso Analytics", "UserDetails": {}}).encode()
    assert parse_lead(raw).fingerprint() is None
    first = fallback.hold("20260101T000000000Z-00000001", None, utcnow(), raw)
    second = fallback.hold("20260101T000001000Z-00000002", None, utcnow(), raw)
    assert not first.duplicate and not second.duplicate
    assert sorted(row.lead_id for row in fallback.held()) == [first.lead_id, second.lead_id]


@pytest.fixture
def pipeline_up(azurite, tmp_path: Path) -> Pipeline:
    return build_pipeline(azurite.connection_string, str(tmp_path / "spool"), {"email": RecordingDestination("email")})


class FlakyStore(LeadTable):
    """The real table, except that its next `failures` adds fail the way a storage account coming back does:
    a server error (503 ServerBusy, leads/storage/table_store.py `_storage_errors`) while reads answer."""

    failures = 0

    def add(self, stored: StoredLead, fingerprint: str | None, window: timedelta, outbox_due: datetime,
            body: bytes = b"", source: SourceRow | None = None) -> Added:
        if self.failures:
            self.failures -= 1
            raise StorageUnavailableError("Table storage refused to store the lead (503).")
        return super().add(stored, fingerprint, window, outbox_due, body, source)


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_defect_2_a_transient_error_while_a_spooled_lead_is_stored_never_sets_it_aside(pipeline_up: Pipeline,
                                                                                        tmp_path: Path) -> None:
    table = pipeline_up.table
    flaky = FlakyStore(table._service, table.leads.table_name, table.quarantine_table.table_name)
    flaky.failures = 2
    pipeline_up.ingest.store = flaky
    spool = Spool(str(tmp_path / "disk"))
    spool.keep(body(OfferTitle="Spooled"), utcnow())
    recovery = Recovery(pipeline_up.ingest, spool, None, table.ping)  # the table answers: storage is coming back
    ticks = Ticks()
    recovery.spool_backoff = Backoff(clock=ticks)

    assert recovery.drain_spool() == 0
    assert spool_files(spool.folder) == {".json": [body(OfferTitle="Spooled")]}  # not `.failed`: kept to retry
    assert table.rejected() == []
    assert recovery.drain_spool() == 0 and flaky.failures == 0  # tried again at once: failed again
    assert recovery.drain_spool() == 0  # now backing off: not tried again at once
    ticks.now += 5
    assert recovery.drain_spool() == 1
    assert spool_files(spool.folder) == {}
    assert [lead.lead.offer_title for lead in table.recent()] == ["Spooled"]


def test_a_transient_error_while_a_held_lead_is_moved_keeps_it_held(pipeline_up: Pipeline, azurite) -> None:
    settings = load_settings({"AzureWebJobsStorage": "x", "LEADS_FALLBACK_STORAGE": azurite.connection_string})
    assert settings.fallback_storage is not None
    fallback = FallbackTable(table_service(settings.fallback_storage), f"flaky{pipeline_up.settings.table}")
    table = pipeline_up.table
    flaky = FlakyStore(table._service, table.leads.table_name, table.quarantine_table.table_name)
    flaky.failures = 2
    pipeline_up.ingest.store = flaky
    raw = body(OfferTitle="Held")
    held = fallback.hold("20260101T000000000Z-0f1a4e00", parse_lead(raw).fingerprint(), utcnow(), raw)
    ticks = Ticks()
    recovery = Recovery(pipeline_up.ingest, Spool(""), fallback, table.ping)
    recovery.held_backoff = Backoff(clock=ticks)

    assert recovery.move_held() == 0 and recovery.move_held() == 0  # two 503s in a row: kept, then backing off
    assert [row.lead_id for row in fallback.held()] == [held.lead_id] and table.rejected() == []
    assert recovery.move_held() == 0 and flaky.failures == 0  # not tried before the wait
    ticks.now += 5
    assert recovery.move_held() == 1
    assert fallback.held() == [] and [lead.id for lead in table.recent()] == [held.lead_id]


def test_a_held_lead_storage_refuses_for_good_is_quarantined_released_and_notified(pipeline_up: Pipeline,
                                                                                   azurite) -> None:
    settings = load_settings({"AzureWebJobsStorage": "x", "LEADS_FALLBACK_STORAGE": azurite.connection_string})
    assert settings.fallback_storage is not None
    fallback = FallbackTable(table_service(settings.fallback_storage), f"refused{pipeline_up.settings.table}")
    table = pipeline_up.table
    pipeline_up.ingest.store = RefusingStore(table._service, table.leads.table_name,
                                             table.quarantine_table.table_name)
    raw = body(OfferTitle=RefusingStore.refused_offer)
    held = fallback.hold("20260101T000000000Z-0badbeef", parse_lead(raw).fingerprint(), utcnow(), raw)
    told: list[tuple[str, str]] = []
    recovery = Recovery(pipeline_up.ingest, Spool(""), fallback, table.ping, notify=lambda i, s: told.append((i, s)))

    assert recovery.move_held() == 0
    assert fallback.held() == []
    [rejected] = table.rejected()
    assert rejected["Reason"] == "held_refused" and "PropertyValueTooLarge" in rejected["Message"]
    assert [lead_id for lead_id, _ in told] == [held.lead_id]
    assert "Ana" not in told[0][1] and "PropertyValueTooLarge" in told[0][1]


def test_defect_10_a_lead_that_waited_in_the_spool_or_the_fallback_table_keeps_its_raw_body(
        pipeline_up: Pipeline, azurite, tmp_path: Path) -> None:
    table = pipeline_up.table
    spooled, held_raw = body(OfferTitle="From disk"), body(OfferTitle="From fallback")
    spool = Spool(str(tmp_path / "disk"))
    spool.keep(spooled, utcnow())
    settings = load_settings({"AzureWebJobsStorage": "x", "LEADS_FALLBACK_STORAGE": azurite.connection_string})
    assert settings.fallback_storage is not None
    fallback = FallbackTable(table_service(settings.fallback_storage), f"raw{pipeline_up.settings.table}")
    fallback.hold("20260101T000000000Z-00ab0d1e", parse_lead(held_raw).fingerprint(), utcnow(), held_raw)
    recovery = Recovery(pipeline_up.ingest, spool, fallback, table.ping)

    assert recovery.drain_spool() == 1 and recovery.move_held() == 1
    direct = pipeline_up.ingest.receive("POST", body(OfferTitle="Direct"), "application/json")
    raw = {}
    for lead in table.recent():
        entity = table.lead_entity_of(lead.id)
        assert entity is not None
        raw[lead.lead.offer_title] = raw_body_of(entity)
    assert raw == {"From disk": spooled, "From fallback": held_raw, "Direct": body(OfferTitle="Direct")}
    assert direct.status == 202
