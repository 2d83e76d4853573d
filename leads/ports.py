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
    def save(self, stored: StoredLead, etag: str, outbox_due: datetime | None) -> str: ...


class WorkQueue(Protocol):
    def send(self, message: DeliveryMessage, delay_seconds: int = 0) -> None: ...
