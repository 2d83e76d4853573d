"""The small interfaces between the plain-Python core and the storage adapters at the edge."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from leads.core.messages import DeliveryMessage
from leads.core.model import StoredLead


@dataclass(frozen=True)
class Versioned:
    """A stored lead and the ETag it was read with (for conditional writes)."""

    stored: StoredLead
    etag: str


@dataclass(frozen=True)
class Added:
    lead_id: str
    duplicate: bool
    etag: str = ""


@dataclass(frozen=True)
class RejectedRequest:
    received_at: datetime
    reason: str
    status: int
    message: str
    method: str
    content_type: str
    body: bytes


class LeadStore(Protocol):
    def add(self, stored: StoredLead, fingerprint: str | None, window: timedelta, outbox_due: datetime,
            body: bytes = b"", source: SourceRow | None = None) -> Added: ...
    def quarantine(self, rejected: RejectedRequest) -> None: ...
    def load(self, lead_id: str) -> Versioned | None: ...
    def save(self, stored: StoredLead, etag: str, outbox_due: datetime | None,
             previous: StoredLead | None = None) -> str: ...
    def drop_orphan_outbox(self, lead_id: str) -> bool: ...  # the outbox row of a lead that no longer exists
    def outbox_due(self, lead_id: str) -> datetime | None: ...  # when the outbox row wakes the lead (None: no row)


class Tombstones(Protocol):
    """Forgotten people (leads/storage/subject_index.py): every path that stores a lead asks after its write, and
    erases the lead it just stored when the answer is yes (so a forget racing the write cannot miss it)."""

    def forgotten(self, email: str) -> bool: ...
    def erase(self, lead_id: str) -> None: ...


class WorkQueue(Protocol):
    def send(self, message: DeliveryMessage, delay_seconds: int = 0) -> None: ...


@dataclass(frozen=True)
class HeldLead:
    """A lead answered 202 while the main table was down, kept in the fallback table until it is moved."""

    lead_id: str
    key: str  # its row key: the lead's fingerprint, or its id when the lead names no customer
    received_at: datetime
    body: bytes


class HeldLeads(Protocol):
    """The fallback table (LEADS_FALLBACK_STORAGE): one row per lead, keyed by its fingerprint (so a repeat
    gets the same id), or by its id when it has none (a lead that names no customer is never merged)."""

    def hold(self, lead_id: str, fingerprint: str | None, received_at: datetime, body: bytes) -> Added: ...
    def held(self, limit: int = 100) -> list[HeldLead]: ...
    def release(self, key: str) -> None: ...


# Columns of Partner Center's rows that say when and where a row was written, not who the customer is: kept on
# the import marker, left out of the lead so that its fingerprint is the one the same lead POSTed would have.
ROW_BOOKKEEPING = {"createdtime": "CreatedTime", "productid": "ProductId",
                   "publisherdisplayname": "PublisherDisplayName"}


@dataclass(frozen=True)
class SourceRow:
    """A row of Partner Center's Azure Table destination (docs/marketplace-leads.md §3), as read: its keys,
    the Timestamp the service gave it, and its other columns as JSON-ready values."""

    table: str
    partition_key: str
    row_key: str
    timestamp: datetime
    columns: dict[str, object]

    @property
    def key(self) -> str:
        """Stable per source row: the RowKey of its import marker (`source:<key>`)."""
        text = "\n".join((self.table, self.partition_key, self.row_key))
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    @property
    def where(self) -> str:
        """Names the row without personal data (its keys are a date and an id)."""
        return f"row {self.partition_key!r}/{self.row_key!r} of table {self.table}"


class ImportedRows(Protocol):
    """The per-source-row marker in the app's own table: a row imported once is never a second lead."""

    def import_marker(self, row: SourceRow) -> dict[str, object] | None: ...
    def mark_imported(self, row: SourceRow, lead_id: str, outcome: str) -> None: ...


@dataclass(frozen=True)
class Watermark:
    """How far the importer has read: the newest source Timestamp seen, and the rows seen within the overlap
    window below it (re-read each run, skipped without a storage call)."""

    at: datetime
    recent: dict[str, datetime]
    start: datetime  # where the import was told to begin (first run, backfill): never read before it
    etag: str = ""  # the stored row's, for a conditional write; "" when it was never written


class Watermarks(Protocol):
    def read(self) -> Watermark | None: ...
    def write(self, watermark: Watermark, previous: Watermark | None) -> bool: ...


class SourceRows(Protocol):
    def rows_since(self, since: datetime) -> Iterator[SourceRow]: ...
