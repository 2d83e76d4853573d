"""The importer (leads/services/importer.py) on Azurite, with rows in the shape Partner Center's Azure Table destination
writes: each row becomes one lead, however often it is read, whoever reads it, whenever it was committed."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from azure.data.tables import TableClient

from leads.core.errors import StorageUnavailableError
from leads.core.ports import SourceRow
from leads.services.importer import Importer, source_time
from leads.storage.azure_clients import table_service
from leads.storage.source_table import SourceTable, WatermarkTable
from tests.support.azurite import PROJECT_ROOT
from tests.support.partner_center_table import partner_center_row, source_table, write_rows
from tests.support.pipeline import Pipeline, RecordingDestination, build_pipeline

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(120)]


@pytest.fixture
def pipeline(azurite: Any, tmp_path: Path) -> Pipeline:
    return build_pipeline(azurite.connection_string, str(tmp_path), {"email": RecordingDestination("email")})


@pytest.fixture
def source(azurite: Any) -> TableClient:
    return source_table(azurite.connection_string)


def importer(pipeline: Pipeline, source: TableClient, **options: Any) -> Importer:
    """As the runtime builds it, its source client counted with the pipeline's storage calls."""
    counted = table_service(pipeline.settings.storage, transport=pipeline.transport, retry_total=0)
    return Importer(SourceTable(counted.get_table_client(source.table_name)),
                    WatermarkTable(pipeline.table.leads, source.table_name), pipeline.ingest, pipeline.table,
                    clock=pipeline.clock, **options)


def import_marker(pipeline: Pipeline, source: TableClient, row: dict[str, Any]) -> dict[str, Any]:
    key = SourceRow(source.table_name, row["PartitionKey"], row["RowKey"], datetime.now(UTC), {}).key
    return dict(pipeline.table.leads.get_entity("leads", f"source:{key}"))


def emails_of(pipeline: Pipeline) -> list[str]:
    return sorted(stored.lead.customer.email for stored in pipeline.table.recent(limit=1000))


def test_a_first_run_imports_every_row_and_a_second_imports_nothing(pipeline: Pipeline, source: TableClient) -> None:
    emails = [f"buyer{n}@contoso.example" for n in range(5)]
    write_rows(source, emails)
    first = importer(pipeline, source).run()
    assert (first.read, first.imported, first.duplicates, first.quarantined) == (5, 5, 0, 0)
    assert emails_of(pipeline) == emails
    assert len(pipeline.queued()) == 5  # each is on its way to the destinations
    stored = pipeline.table.recent()[0]
    assert stored.lead.offer_title == "Widget SaaS" and stored.lead.customer.company == "Contoso"
    assert stored.lead.lead_source.offer == "contoso.widget-saas" and stored.lead.action == "INS"

    pipeline.transport.reset()
    second = importer(pipeline, source).run()
    assert pipeline.transport.total == 2  # the watermark and one query: nothing written, nothing else read
    assert (second.read, second.imported, second.skipped) == (5, 0, 5)  # the overlap, skipped from the watermark
    assert emails_of(pipeline) == emails and pipeline.queued() == []


def test_rows_read_again_without_the_watermark_make_no_second_lead_nor_duplicate_count(
        pipeline: Pipeline, source: TableClient) -> None:
    write_rows(source, ["a@contoso.example", "b@contoso.example"])
    importer(pipeline, source).run()
    pipeline.queued()
    # A backfill over the same rows: they are not on the watermark's list, so the import markers decide.
    again = importer(pipeline, source).run(since=pipeline.clock().replace(year=2000))
    assert (again.imported, again.duplicates, again.skipped) == (0, 0, 2)
    pipeline.table.leads.delete_entity("importer", source.table_name)  # the watermark lost
    lost = importer(pipeline, source).run()
    assert (lost.imported, lost.duplicates) == (0, 2)
    assert len(emails_of(pipeline)) == 2 and pipeline.queued() == []
    assert all(stored.duplicates == 0 for stored in pipeline.table.recent())  # re-reading is not a new arrival


def test_rows_committed_while_two_importers_run_are_each_imported_exactly_once(
        pipeline: Pipeline, source: TableClient) -> None:
    """Two runs at once (Flex Consumption may briefly run two timer instances) while Partner Center writes.
    The rows name no customer (as a .edu lead: Microsoft withholds its data), so no fingerprint can merge
    copies: only the per-row import marker keeps each row to one lead."""
    texts = [f"row {n:02}" for n in range(40)]

    def write() -> None:
        for text in texts:
            source.create_entity(partner_center_row("", customer_info="", Description=text))
            time.sleep(0.01)

    writing = threading.Thread(target=write)
    failures: list[BaseException] = []

    def keep_importing() -> None:
        try:
            while writing.is_alive():
                importer(pipeline, source).run()
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            failures.append(error)

    runners = [threading.Thread(target=keep_importing) for _ in range(2)]
    writing.start()
    for runner in runners:
        runner.start()
    for thread in (writing, *runners):
        thread.join(60)
    assert failures == []
    importer(pipeline, source).run()  # the timer's next minute
    assert sorted(stored.lead.description for stored in pipeline.table.recent(limit=1000)) == texts
    queued = [message for batch in iter(pipeline.queued, []) for message in batch]  # 32 at a time
    assert sorted(m.snapshot.lead.description if m.snapshot else "" for m in queued) == texts


def test_a_malformed_row_is_quarantined_with_its_place_once_and_the_others_go_on(
        pipeline: Pipeline, source: TableClient) -> None:
    write_rows(source, ["first@contoso.example"])
    broken = partner_center_row("x@contoso.example", customer_info='{"FirstName": "Jo", "Email": ')
    source.create_entity(broken)
    write_rows(source, ["last@contoso.example"])
    report = importer(pipeline, source).run()
    assert (report.imported, report.quarantined) == (2, 1)
    assert emails_of(pipeline) == ["first@contoso.example", "last@contoso.example"]
    [rejected] = pipeline.table.rejected()
    assert rejected["Method"] == "IMPORT" and rejected["Reason"] == "wrong_type"
    assert rejected["Message"] == (f"Imported row {broken['PartitionKey']!r}/{broken['RowKey']!r} of table "
                                   f"{source.table_name}: Field 'CustomerInfo' must hold a JSON object (as text); "
                                   "it does not parse.")
    assert json.loads(rejected["Body0"])["CustomerInfo"] == broken["CustomerInfo"]  # the row's content, findable
    pipeline.table.leads.delete_entity("importer", source.table_name)
    assert importer(pipeline, source).run().quarantined == 0  # read again, not kept again
    assert len(pipeline.table.rejected()) == 1


def test_the_same_lead_posted_and_imported_is_one_lead(pipeline: Pipeline, source: TableClient) -> None:
    """The row's bookkeeping columns (CreatedTime, ProductId, PublisherDisplayName) are not the lead's content:
    the lead POSTed with the row's values has the row's fingerprint, so the existing de-dup merges them."""
    [row] = write_rows(source, ["jo.kim@contoso.example"])
    posted = json.dumps({"UserDetails": json.loads(row["CustomerInfo"]), "LeadSource": row["LeadSource"],
                         "ActionCode": row["ActionCode"], "OfferTitle": row["OfferDisplayName"],
                         "Description": row["Description"]}).encode()
    answer = pipeline.ingest.receive("POST", posted)
    assert answer.status == 202
    report = importer(pipeline, source).run()
    assert (report.imported, report.duplicates) == (0, 1)
    [stored] = pipeline.table.recent()
    assert stored.id == answer.body["id"] and stored.duplicates == 1
    marker = import_marker(pipeline, source, row)
    assert (marker["LeadId"], marker["Outcome"], marker["SourceRowKey"]) == (stored.id, "duplicate", row["RowKey"])
    assert marker["SourceProductId"] == "widget-saas"  # kept beside the lead, not in it
    pipeline.table.leads.delete_entity("importer", source.table_name)
    importer(pipeline, source).run()
    assert pipeline.table.recent()[0].duplicates == 1  # the same row read again is not another arrival


def test_an_empty_table_costs_two_reads_and_no_write(pipeline: Pipeline, source: TableClient) -> None:
    first = importer(pipeline, source).run()  # the first run anchors where it starts: an hour back
    assert first.read == 0 and first.watermark is not None
    assert timedelta(hours=1) <= pipeline.clock() - first.watermark < timedelta(hours=1, minutes=1)
    assert pipeline.transport.total == 4  # the watermark read, the anchor written and read back, one query
    pipeline.transport.reset()
    again = importer(pipeline, source).run()
    assert (again.read, again.watermark) == (0, first.watermark)
    assert pipeline.transport.total == 2  # every later idle minute: the watermark and one query, no write


def test_a_first_run_that_fails_still_anchors_where_the_import_begins(pipeline: Pipeline, source: TableClient) -> None:
    """Storage (or the source) failing for hours after the deployment: the first run that works reads from an hour
    before the first attempt, not an hour before its own time (the rows in between were left to a backfill)."""
    write_rows(source, ["early@contoso.example"])
    failing = importer(pipeline, source)

    def refused(since: datetime) -> Any:
        raise StorageUnavailableError("Partner Center's table did not answer (test).")

    failing.source = SimpleNamespace(rows_since=refused)
    with pytest.raises(StorageUnavailableError):
        failing.run()
    pipeline.clock.offset = timedelta(hours=3).total_seconds()

    report = importer(pipeline, source).run()

    assert (report.read, report.imported) == (1, 1)
    assert emails_of(pipeline) == ["early@contoso.example"]


def test_the_importer_core_imports_no_azure_module() -> None:
    code = "import leads.services.importer, sys; print(sorted(m for m in sys.modules if m.startswith('azure')))"
    printed = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             check=True).stdout
    assert printed.strip() == "[]"


def test_a_forgotten_person_is_not_imported_again_by_a_backfill(pipeline: Pipeline, source: TableClient) -> None:
    from leads.services.privacy import Privacy

    write_rows(source, ["gone@contoso.example", "kept@contoso.example"])
    importer(pipeline, source).run()
    pipeline.queued()
    counts = Privacy(pipeline.runtime).forget("gone@contoso.example")
    assert counts["leads"] == 1
    assert emails_of(pipeline) == ["kept@contoso.example"]
    # A backfill over the same rows of Partner Center's table (which the app never writes to): the import
    # markers, which hold no customer value and which forget keeps, stop the person coming back.
    again = importer(pipeline, source).run(since=pipeline.clock().replace(year=2000))
    assert (again.read, again.imported) == (2, 0)
    assert emails_of(pipeline) == ["kept@contoso.example"]
    assert pipeline.queued() == []


def test_defect_5_a_lead_imported_after_an_outage_is_compared_at_partner_centers_time(
        pipeline: Pipeline, source: TableClient) -> None:
    """Defect 5: compared at the import's time, a lead POSTed three days ago and imported now (an importer outage,
    a backfill: longer than LEADS_DEDUPE_HOURS) was a second lead, sent to every destination again."""
    received = datetime.now(UTC) - timedelta(days=3)
    pipeline.clock.offset = -timedelta(days=3).total_seconds()
    [row] = [partner_center_row("late@contoso.example", CreatedTime=received.strftime("%Y-%m-%dT%H:%M:%SZ"))]
    source.create_entity(row)
    posted = json.dumps({"UserDetails": json.loads(row["CustomerInfo"]), "LeadSource": row["LeadSource"],
                         "ActionCode": row["ActionCode"], "OfferTitle": row["OfferDisplayName"],
                         "Description": row["Description"]}).encode()
    answer = pipeline.ingest.receive("POST", posted)
    pipeline.queued()
    pipeline.clock.offset = 0

    report = importer(pipeline, source).run(since=received - timedelta(hours=1))

    assert (report.imported, report.duplicates) == (0, 1)
    [stored] = pipeline.table.recent()
    assert stored.id == answer.body["id"] and stored.duplicates == 1 and pipeline.queued() == []


def test_an_imported_lead_carries_the_time_partner_center_stored_it(pipeline: Pipeline, source: TableClient) -> None:
    created = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    source.create_entity(partner_center_row("old@contoso.example", CreatedTime=created.strftime("%Y-%m-%dT%H:%M:%SZ")))
    source.create_entity(partner_center_row("odd@contoso.example", CreatedTime="not a time"))
    source.create_entity(partner_center_row("later@contoso.example", CreatedTime="2999-01-01T00:00:00Z"))
    importer(pipeline, source).run(since=created - timedelta(hours=1))
    by_email = {stored.lead.customer.email: stored.received_at for stored in pipeline.table.recent()}
    assert by_email["old@contoso.example"] == created  # its CreatedTime
    for email in ("odd@contoso.example", "later@contoso.example"):  # not believed: the row's Timestamp
        assert datetime.now(UTC) - by_email[email] < timedelta(minutes=5)


def test_source_time_never_believes_a_created_time_after_the_write() -> None:
    written = datetime(2026, 1, 2, tzinfo=UTC)
    row = SourceRow("T", "1:2F1:2F2026", "r", written, {"CreatedTime": "2026-01-01T10:00:00Z"})
    assert source_time(row) == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert source_time(SourceRow("T", "p", "r", written, {"createdtime": written + timedelta(seconds=1)})) == written
    assert source_time(SourceRow("T", "p", "r", written, {"CreatedTime": "2026-01-01"})) == written  # no zone
    assert source_time(SourceRow("T", "p", "r", written, {})) == written
