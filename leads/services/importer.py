"""Import leads from Partner Center's "Azure Table" destination (docs/marketplace-leads.md §3): plain Python.

Each run reads the rows whose Timestamp is at or after the watermark minus an overlap, and feeds each row
into the ingest pipeline (stored, de-duplicated, notified, forwarded). Why the overlap: the service gives a
row its Timestamp when the write commits, so a row committed while a query runs can carry a Timestamp just
under the newest one that query returned. Re-reading the overlap never makes a second lead: each row's
import marker is written in the lead's own transaction, and the rows seen within the overlap are listed on
the watermark, so they are skipped without a storage call.

The watermark is written only if nobody wrote it since it was read (ETag): two runs at once (Flex Consumption
may briefly run two timer instances) read the same rows, make one lead each, and one of them moves it."""

from __future__ import annotations

import json
import logging
from base64 import b64encode
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from leads.core.errors import LeadValidationError, StorageUnavailableError
from leads.core.model import iso, parse_iso, utcnow
from leads.core.parsing import parse_lead
from leads.core.ports import (
    ROW_BOOKKEEPING,
    ImportedRows,
    LeadStore,
    RejectedRequest,
    SourceRow,
    SourceRows,
    Watermark,
    Watermarks,
)
from leads.services.ingest import IngestService

log = logging.getLogger("leads.importer")
OVERLAP = timedelta(minutes=5)  # far above the time a commit can take; rows in it are re-read, never re-imported
FIRST_RUN_LOOKBACK = timedelta(hours=1)  # no watermark yet: the last hour (older rows: `import --since DATE`)
WORKERS = 8  # rows imported at once: each is a round trip or two to storage (the SDK's pool holds 10 connections)
BATCH = 100  # rows read before they are imported (a query page holds up to 1,000)
RECENT_LIMIT = 1_000  # rows listed on the watermark (about 100 characters each: ~100 KB, 4 string columns)


class ImportStopped(StorageUnavailableError):
    """A run stopped part-way: what it stored stays stored; the watermark did not move, so the next run
    reads those rows again (and skips the ones already imported)."""


@dataclass
class ImportReport:
    read: int = 0  # rows the query returned
    imported: int = 0  # new leads
    duplicates: int = 0  # rows already imported, or the same lead within the de-dup window
    quarantined: int = 0  # rows that are not a lead: kept in the quarantine table with the reason
    skipped: int = 0  # rows seen within the overlap by an earlier run (no storage call)
    forgotten: int = 0  # rows of a person who asked to be forgotten: not kept
    past_retention: int = 0  # rows Partner Center stored before Settings.import_horizon: not imported
    watermark: datetime | None = None
    watermark_moved: bool = False

    def sentence(self) -> str:
        return (f"{self.read} row(s) read: {self.imported} new lead(s), {self.duplicates} already imported, "
                f"{self.quarantined} quarantined, {self.forgotten} of forgotten people, "
                f"{self.skipped} skipped (seen by an earlier run); watermark "
                f"{iso(self.watermark) if self.watermark else 'not set'}."
                + (f" {self.past_retention} row(s) older than LEADS_RETENTION_DAYS less LEADS_DEDUPE_HOURS were not "
                   "imported: a copy received back then may be purged already and would be sent again as a new "
                   "lead. To import them anyway, raise LEADS_RETENTION_DAYS (or set 0) for the backfill."
                   if self.past_retention else ""))


def lead_body(row: SourceRow) -> bytes:
    """The row as the lead's JSON body: every column but the table's own keys and the bookkeeping columns
    (CreatedTime, ProductId, PublisherDisplayName; kept on the import marker), so that the same lead POSTed
    and imported has the same fingerprint. CustomerInfo stays a JSON string: parse_lead reads it."""
    document = {name: _json_ready(value) for name, value in row.columns.items()
                if name.lower() not in ROW_BOOKKEEPING}
    return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")


def source_time(row: SourceRow) -> datetime:
    """When Partner Center stored the row: its `CreatedTime` column (docs/marketplace-leads.md §3; an ISO 8601
    string, or a DateTime property, samples/azure-table-destination-row.json), else the Timestamp the service
    gave the row when it was written (always present: https://learn.microsoft.com/rest/api/storageservices/
    understanding-the-table-service-data-model#timestamp-property). A CreatedTime later than the Timestamp is
    not believed (a row cannot be created after it was written)."""
    created: Any = next((value for name, value in row.columns.items() if name.lower() == "createdtime"), None)
    if isinstance(created, str):
        try:
            created = parse_iso(created.strip())
        except ValueError:
            created = None
    if isinstance(created, datetime) and created.tzinfo is not None and created <= row.timestamp:
        return created
    return row.timestamp


def _json_ready(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, bytes):
        return b64encode(value).decode("ascii")
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return str(value)  # a GUID, an Int64 wrapper: as text


def _batches(rows: Iterator[SourceRow], size: int) -> Iterator[list[SourceRow]]:
    batch: list[SourceRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Importer:
    def __init__(self, source: SourceRows, watermarks: Watermarks, ingest: IngestService, marks: ImportedRows,
                 clock: Callable[[], datetime] = utcnow, overlap: timedelta = OVERLAP,
                 lookback: timedelta = FIRST_RUN_LOOKBACK, workers: int = WORKERS) -> None:
        self.source = source
        self.watermarks = watermarks
        self.ingest = ingest
        self.marks = marks
        self.clock = clock
        self.overlap = overlap
        self.lookback = lookback
        self.workers = workers

    def run(self, since: datetime | None = None, advance: Callable[[int], None] = lambda n: None) -> ImportReport:
        """Import the new rows (from `since` for a backfill). Raises ImportStopped when storage failed
        part-way, StorageUnavailableError when the source could not be read at all."""
        previous = self.watermarks.read()
        if previous is None and since is None:
            previous = self._anchor()
        if since is not None:
            start = min(since, previous.start) if previous else since
        elif previous is not None:
            since, start = max(previous.at - self.overlap, previous.start), previous.start
        else:
            since = start = self.clock() - self.lookback
        recent = dict(previous.recent) if previous else {}
        report = ImportReport(watermark=previous.at if previous else None)
        seen: dict[str, datetime] = {}
        try:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="import") as pool:
                for batch in _batches(self.source.rows_since(since), BATCH):
                    fresh = [row for row in batch if row.key not in recent]
                    for outcome in pool.map(self._import, fresh):
                        setattr(report, outcome, getattr(report, outcome) + 1)
                    report.read += len(batch)
                    report.skipped += len(batch) - len(fresh)
                    seen.update((row.key, row.timestamp) for row in batch)
                    advance(len(batch))
        except StorageUnavailableError as error:
            if report.read == 0:
                raise
            raise ImportStopped(f"The import stopped after {report.read} row(s): {error.explanation} The rows "
                                "already imported stay imported; the next run goes on from there.") from None
        self._move_watermark(previous, recent, seen, start, report)
        return report

    def _anchor(self) -> Watermark | None:
        """The first run writes where it starts (an hour back) before it reads: if it fails part-way, or storage
        is down for hours after the deployment, later runs still start there, not an hour before their own time
        (the rows in between would be left to a backfill). Another run that anchored first wins (ETag)."""
        start = self.clock() - self.lookback
        self.watermarks.write(Watermark(start, {}, start), None)
        return self.watermarks.read()

    def _import(self, row: SourceRow) -> str:
        """One row into the pipeline; the name of the ImportReport count it adds to."""
        at = source_time(row)
        horizon = self.ingest.settings.import_horizon(self.clock())
        if horizon is not None and at < horizon:
            return "past_retention"  # not marked: a backfill with a longer retention imports it
        body = lead_body(row)
        try:
            lead = parse_lead(body)
        except LeadValidationError as error:
            return self._quarantine(row, body, error)
        added = self.ingest.store_imported(lead, body, row, at)
        if added is None:
            return "forgotten"
        if added.duplicate:
            return "duplicates"
        log.info("lead %s imported from %s", added.lead_id, row.where)
        return "imported"

    def _quarantine(self, row: SourceRow, body: bytes, error: LeadValidationError) -> str:
        """Kept in the quarantine table (with the row's place and what is wrong), marked so it is kept once."""
        if self.marks.import_marker(row) is not None:
            return "duplicates"
        store: LeadStore = self.ingest.store
        store.quarantine(RejectedRequest(self.clock(), error.reason, error.status,
                                         f"Imported {row.where}: {error.explanation}", "IMPORT",
                                         "application/json", body))
        self.marks.mark_imported(row, "", f"quarantined: {error.reason}")
        log.warning("%s is not a lead (%s): kept in the quarantine table", row.where, error.reason)
        return "quarantined"

    def _move_watermark(self, previous: Watermark | None, recent: dict[str, datetime], seen: dict[str, datetime],
                        start: datetime, report: ImportReport) -> None:
        if not seen:
            return
        newest = max(seen.values())
        at = max(newest, previous.at) if previous else newest
        floor = at - self.overlap
        listed = {key: moment for key, moment in {**recent, **seen}.items() if moment >= floor}
        kept = dict(sorted(listed.items(), key=lambda item: item[1])[-RECENT_LIMIT:])
        if (previous is not None and at == previous.at and kept.keys() == previous.recent.keys()
                and start == previous.start):
            return  # nothing new: no write (an idle minute costs one read and one query)
        report.watermark = at
        report.watermark_moved = self.watermarks.write(Watermark(at, kept, start), previous)
        if not report.watermark_moved:
            log.info("watermark not moved: another run moved it meanwhile (its rows are imported once all the same)")
