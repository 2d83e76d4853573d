"""The one small interface every destination implements, and what it answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from leads.core.model import StoredLead


@dataclass(frozen=True)
class Delivered:
    """The destination has the lead. `record_id` is its own id for it (CRM record, message id)."""

    record_id: str = ""


@dataclass(frozen=True)
class Skipped:
    """Deliberately not sent (e.g. a .edu lead without the data a CRM requires). Not an error."""

    reason: str


@dataclass(frozen=True)
class Check:
    """One line of `python -m leads doctor`: OK, or the cause and the fix. Never holds a secret."""

    destination: str
    name: str
    ok: bool
    message: str


class Destination(Protocol):
    name: str
    # CRMs do not get Partner Center's MSFT_TEST leads unless LEADS_FORWARD_TEST_LEADS=true;
    # notification destinations (e-mail, webhook) always do.
    is_crm: bool

    def deliver(self, stored: StoredLead) -> Delivered | Skipped:
        """Send one lead. Raises a `leads.core.errors.DestinationError` subclass on failure."""
        ...

    def check(self) -> list[Check]:
        """Check the configuration live, without creating anything where the API allows it."""
        ...
