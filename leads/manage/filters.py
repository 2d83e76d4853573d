"""The lead list's filters, read from query parameters (`?status=failed&q=contoso`), each checked with a
sentence that names the parameter."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from leads.core.errors import BadRequestError
from leads.core.model import BLOCKED, DELIVERED, DELIVERY_STATES, FAILED, PARKED, PENDING, RETRYING, SKIPPED

# A lead's status (model.StoredLead.status) plus `skipped`: every destination skipped, none sent.
LEAD_STATUSES = (PENDING, RETRYING, BLOCKED, PARKED, FAILED, DELIVERED, SKIPPED)
DESTINATION_STATES = DELIVERY_STATES
MAX_LIMIT = 100
DEFAULT_LIMIT = 50
_TEXT_LIMIT = 200
_KNOWN = frozenset({"test", "status", "destination", "destination_state", "offer", "action", "from", "to", "q",
                    "limit", "continuation"})


@dataclass(frozen=True)
class LeadFilter:
    test: bool | None = None
    status: str | None = None
    destination: str | None = None
    destination_state: str | None = None
    offer: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> LeadFilter:
        """Raises BadRequestError naming the parameter that is wrong."""
        unknown = sorted(set(params) - _KNOWN)
        if unknown:
            raise BadRequestError(f"Unknown parameter {unknown[0]!r}; the list takes {', '.join(sorted(_KNOWN))}.",
                                  parameter=unknown[0])
        destination = _text(params, "destination")
        destination_state = _choice(params, "destination_state", DESTINATION_STATES)
        since, until = parse_moment(params.get("from"), "from"), parse_moment(params.get("to"), "to")
        return cls(test=_boolean(params, "test"), status=_choice(params, "status", LEAD_STATUSES),
                   destination=destination.lower() if destination else None, destination_state=destination_state,
                   offer=_text(params, "offer"), action=_text(params, "action"), since=since, until=until,
                   text=_text(params, "q"))

    @property
    def needs_python(self) -> bool:
        """Whether a filter is applied after reading (no column holds it): a scan, not an index lookup."""
        return bool(self.destination or self.destination_state or self.offer or self.text
                    or self.status in (DELIVERED, SKIPPED))


def parse_limit(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_LIMIT
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise BadRequestError(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {value[:20]!r}.",
                              parameter="limit")
    return int(value)


def parse_moment(value: str | None, name: str) -> datetime | None:
    """An ISO-8601 date or date-time (UTC when it names no zone)."""
    if value is None or value.strip() == "":
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestError(f"{name} must be an ISO-8601 date or time such as 2026-11-30 or "
                              f"2026-11-30T12:00:00Z, not {value[:40]!r}.", parameter=name) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def encode_token(row_key: str) -> str:
    return base64.urlsafe_b64encode(row_key.encode("utf-8")).decode("ascii")


def decode_token(token: str | None, prefix: str, name: str = "continuation") -> str | None:
    """The RowKey a continuation token resumes after; a token this app did not give is refused."""
    if not token:
        return None
    try:
        row_key = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        row_key = ""
    if not row_key.startswith(prefix):
        raise BadRequestError(f"{name} is not a token this list gave; start again without it.", parameter=name)
    return row_key


def _text(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    if value is None or value.strip() == "":
        return None
    if len(value) > _TEXT_LIMIT:
        raise BadRequestError(f"{name} is longer than {_TEXT_LIMIT} characters.", parameter=name)
    return value.strip()


def _choice(params: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = _text(params, name)
    if value is None:
        return None
    if value.lower() not in allowed:
        raise BadRequestError(f"{name} must be one of {', '.join(allowed)}, not {value[:40]!r}.", parameter=name)
    return value.lower()


def _boolean(params: Mapping[str, str], name: str) -> bool | None:
    value = _text(params, name)
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        raise BadRequestError(f"{name} must be true or false, not {value[:40]!r}.", parameter=name)
    return value.lower() == "true"
