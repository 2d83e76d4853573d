"""The small interfaces between the plain-Python core and the storage adapters at the edge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from leads.messages import DeliveryMessage
from leads.model import StoredLead


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
            body: bytes = b"") -> Added: ...
    def quarantine(self, rejected: RejectedRequest) -> None: ...
    def load(self, lead_id: str) -> Versioned | None: ...
    def save(self, stored: StoredLead, etag: str, outbox_due: datetime | None,
             previous: StoredLead | None = None) -> str: ...


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
