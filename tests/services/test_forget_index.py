"""Forget cannot resurrect (the tombstone), and a person is found through the keyed-hash index (not a read of every
lead) once its one-time backfill has run; before it, by reading every lead. On a real Azurite."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leads.core import keys
from leads.core.messages import DeliveryMessage
from leads.core.model import utcnow
from leads.core.ports import HeldLead
from leads.services.privacy import Privacy
from leads.services.recovery import Recovery
from leads.storage.azure_clients import table_service
from leads.storage.fallback_table import FallbackTable
from leads.storage.subject_index import SubjectIndex
from tests.services.test_privacy import body, rows
from tests.support.pipeline import Pipeline, RecordingDestination, build_pipeline
from tests.support.seeding import seed, varied_lead

pytestmark = pytest.mark.azurite


@pytest.fixture
def pipeline(azurite: Any, tmp_path: Path) -> Pipeline:
    built = build_pipeline(azurite.connection_string, str(tmp_path / "spool"), {"email": RecordingDestination("email")})
    built.ingest.fallback = FallbackTable(table_service(built.settings.storage), f"held{uuid.uuid4().hex[:10]}")
    return built


def person_rows(pipeline: Pipeline, lead_ids: list[str]) -> list[str]:
    return [key for key in rows(pipeline) if any(lead_id in key for lead_id in lead_ids)]


def deliver_everything(pipeline: Pipeline) -> None:
    for message in pipeline.queued():
        pipeline.delivery.handle(message)


def test_defect_11_forget_racing_the_fallback_drain_does_not_deliver_the_erased_person(pipeline: Pipeline) -> None:
    """Defect 11: the drain read the held lead, forget ran (nothing in the main table yet, the held row released),
    then the drain stored the lead and it was delivered."""
    fallback = pipeline.ingest.fallback
    assert isinstance(fallback, FallbackTable)
    fallback.hold("20261201T000000000Z-0000abcd", "e" * 64, utcnow(), body("race@example.com"))
    read = fallback.held

    def read_then_forget(limit: int = 100) -> list[HeldLead]:
        held = read(limit)  # the drain has the body in hand ...
        fallback.held = read  # type: ignore[method-assign]
        Privacy(pipeline.runtime).forget("race@example.com")  # ... when forget runs (and releases the row)
        return held

    fallback.held = read_then_forget  # type: ignore[method-assign]
    Recovery(pipeline.ingest, pipeline.runtime.spool, fallback, pipeline.table.ping).move_held()
    deliver_everything(pipeline)

    assert pipeline.destinations["email"].received == []
    assert person_rows(pipeline, ["20261201T000000000Z-0000abcd"]) == []
    assert [key for key in rows(pipeline) if not key.startswith(keys.TOMBSTONE_PREFIX)] == []


def test_forget_racing_a_post_is_seen_by_one_of_them(pipeline: Pipeline) -> None:
    """Forget's search runs between the POST's write and its check: the check sees the tombstone and erases."""
    store = pipeline.table
    add = store.add

    def add_then_forget(*args: Any, **kwargs: Any) -> Any:
        added = add(*args, **kwargs)
        Privacy(pipeline.runtime).forget("post-race@example.com")  # finds it (index) and erases it first
        return added

    store.add = add_then_forget  # type: ignore[method-assign]
    answer = pipeline.ingest.receive("POST", body("post-race@example.com"))
    store.add = add  # type: ignore[method-assign]

    assert answer.status == 202 and answer.outcome == "forgotten" and answer.body["id"] == ""
    assert pipeline.queued() == [] and [k for k in rows(pipeline) if not k.startswith(keys.TOMBSTONE_PREFIX)] == []


def test_a_forgotten_person_is_not_stored_again_by_a_repeat_a_spool_drain_or_a_late_held_copy(
        pipeline: Pipeline) -> None:
    raw = body("gone@example.com")
    first = str(pipeline.ingest.receive("POST", raw).body["id"])
    pipeline.runtime.spool.keep(body("gone@example.com", offer="Spooled"), utcnow())
    Privacy(pipeline.runtime).forget("GONE@example.com")
    pipeline.runtime.spool.keep(body("gone@example.com", offer="Spooled later"), utcnow())  # written meanwhile

    repeat = pipeline.ingest.receive("POST", raw)  # Partner Center sends it again
    drained = Recovery(pipeline.ingest, pipeline.runtime.spool).drain_spool()
    late = pipeline.ingest.store_body(body("gone@example.com", offer="Held"), utcnow(), "20261201T000000000Z-00000001")
    deliver_everything(pipeline)

    assert repeat.outcome == "forgotten" and late is None and drained == 1
    assert pipeline.destinations["email"].received == [first][:0]  # nothing delivered after the forget
    assert [k for k in rows(pipeline) if not k.startswith(keys.TOMBSTONE_PREFIX)] == []
    other = pipeline.ingest.receive("POST", body("someone.else@example.com"))
    assert other.outcome == "accepted"  # only that person


def test_forget_and_export_read_the_index_not_every_lead(pipeline: Pipeline) -> None:
    lead_id = str(pipeline.ingest.receive("POST", body("indexed@example.com")).body["id"])
    # The Email column no longer says it: a read of every lead would not find the lead; the index does.
    pipeline.table.leads.update_entity({"PartitionKey": keys.LEADS_PARTITION, "RowKey": keys.lead_row_key(lead_id),
                                        "Email": "changed"})
    assert [lead["id"] for lead in Privacy(pipeline.runtime).export("indexed@example.com")["leads"]] == [lead_id]
    assert Privacy(pipeline.runtime).forget("indexed@example.com")["leads"] == 1
    assert person_rows(pipeline, [lead_id]) == []


@pytest.fixture
def upgraded(pipeline: Pipeline) -> Iterator[tuple[Pipeline, list[str]]]:
    """Leads stored by a version without the index (seeded rows only), and no index progress row yet."""
    pipeline.table.leads.delete_entity(keys.INDEX_PARTITION, "subjects")
    now = utcnow()
    leads = [varied_lead(n, now) for n in range(1, 251)]
    seed(pipeline.table, leads, indexed=False)
    yield pipeline, [lead.id for lead in leads]


def test_before_the_backfill_forget_reads_every_lead_and_the_backfill_resumes(
        upgraded: tuple[Pipeline, list[str]]) -> None:
    pipeline, ids = upgraded
    index = SubjectIndex(pipeline.table)
    index.start()
    assert not index.ready()  # leads without index rows: the backfill must run first
    export = Privacy(pipeline.runtime).export("person7@example7.com")  # the old way: every lead read
    assert [lead["id"] for lead in export["leads"]] == [ids[6]]

    assert Privacy(pipeline.runtime).reindex(most=120) == {"leads_indexed": 120}  # cut short: resumes
    assert not SubjectIndex(pipeline.table).ready()
    assert Privacy(pipeline.runtime).reindex() == {"leads_indexed": 130}
    assert SubjectIndex(pipeline.table).ready() and Privacy(pipeline.runtime).reindex() == {}
    assert SubjectIndex(pipeline.table).lead_ids("PERSON7@example7.com") == [ids[6]]
    assert SubjectIndex(pipeline.table).lead_ids("person249@example49.com") == [ids[248]]
    assert SubjectIndex(pipeline.table).last_test_lead()[1]["Id"] == ids[9]  # type: ignore[index]
    assert Privacy(pipeline.runtime).forget("person7@example7.com")["leads"] == 1


def test_a_message_of_a_forgotten_lead_finds_nothing(pipeline: Pipeline) -> None:
    lead_id = str(pipeline.ingest.receive("POST", body("msg@example.com")).body["id"])
    (message,) = pipeline.queued()
    Privacy(pipeline.runtime).forget("msg@example.com")
    assert pipeline.delivery.handle(DeliveryMessage(lead_id)).note == "not found"
    assert pipeline.delivery.handle(message).note == "not found"


def test_a_tombstone_that_cannot_be_read_fails_closed_and_loses_nothing(pipeline: Pipeline) -> None:
    """The lead is stored when the check fails: it is not enqueued, the POST is answered 503, Partner Center's
    retry is recognised as a repeat, and the outbox row still brings the lead to delivery."""
    from datetime import timedelta

    from leads.core.errors import StorageUnavailableError

    index = pipeline.ingest.tombstones
    assert index is not None
    check = index.forgotten
    failures = iter([StorageUnavailableError("Table storage did not answer (injected).")])

    def flaky(email: str) -> bool:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return check(email)

    index.forgotten = flaky  # type: ignore[method-assign]
    first = pipeline.ingest.receive("POST", body("flaky@example.com"))
    assert first.status == 503 and first.headers["Retry-After"] == "30" and pipeline.queued() == []
    again = pipeline.ingest.receive("POST", body("flaky@example.com"))
    assert again.status == 202 and again.body["duplicate"] is True
    [due] = pipeline.table.due_work(pipeline.clock() + timedelta(minutes=3))
    assert pipeline.table.load(due.lead_id) is not None and due.lead_id == again.body["id"]
