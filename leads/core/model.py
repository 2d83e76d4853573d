"""The lead, as this app understands it: plain Python, no Azure imports."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

# Partner Center's action codes (docs/marketplace-leads.md §2). The list is not confirmed complete:
# unknown codes are kept with a neutral meaning, never rejected.
ACTION_MEANINGS: dict[str, str] = {
    "INS": "Install: the customer acquired the offer on Azure Marketplace or AppSource",
    "PLT": "Partner-led trial: the customer asked to be contacted (AppSource 'Contact me')",
    "DNC": "Do not contact: a cross-listed partner's notice; no follow-up",
    "CREATE": "Create: the customer purchased the offer in the Azure portal",
    "STARTTESTDRIVE": "Test drive started",
}
TEST_MARKER = "MSFT_TEST"


def action_meaning(code: str) -> str:
    if not code:
        return "No action code (older leads carried the action in LeadSource)"
    return ACTION_MEANINGS.get(code.upper(), f"Unknown action code {code!r} (kept as sent)")


@dataclass(frozen=True)
class Customer:
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""
    country: str = ""
    company: str = ""
    title: str = ""

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    @property
    def has_personal_data(self) -> bool:
        return any((self.first_name, self.last_name, self.email, self.phone))


@dataclass(frozen=True)
class LeadSource:
    """`LeadSource` as documented (`Source-Action|publisher.offer`) or as sent (`AzureMarketplace`)."""

    raw: str = ""
    source: str = ""
    action: str = ""
    offer: str = ""  # publisherid.offerid when present

    @property
    def publisher_id(self) -> str:
        return self.offer.split(".", 1)[0] if "." in self.offer else ""

    @property
    def offer_id(self) -> str:
        return self.offer.split(".", 1)[1] if "." in self.offer else self.offer


@dataclass(frozen=True)
class Lead:
    customer: Customer = Customer()
    lead_source: LeadSource = LeadSource()
    action_code: str = ""
    offer_title: str = ""
    description: str = ""
    campaign: dict[str, str] = field(default_factory=dict)
    is_test: bool = False
    is_edu: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # fields Partner Center sent that we do not model

    @property
    def action(self) -> str:
        """The action code, falling back on the one inside LeadSource (older leads)."""
        return self.action_code or self.lead_source.action

    @property
    def action_meaning(self) -> str:
        return action_meaning(self.action)

    @property
    def offer_name(self) -> str:
        return self.offer_title or self.lead_source.offer_id or "(offer not named)"

    @property
    def partner_center_source(self) -> str:
        """`<source>-<action>|<offer>`, the LeadSource Partner Center's own CRM connectors write (the JSON
        it POSTs often carries only `AzureMarketplace`, with the action in ActionCode)."""
        text = self.lead_source.source or self.lead_source.raw.split("|", 1)[0].split("-", 1)[0]
        if self.action:
            text = f"{text}-{self.action}" if text else self.action
        offer = self.lead_source.offer or self.offer_title
        return f"{text}|{offer}" if offer else text

    @property
    def summary(self) -> str:
        """A few lines for a CRM's free-text field: what happened, on which offer, and the lead's own text."""
        lines = [f"Microsoft commercial marketplace lead: {self.action_meaning}.", f"Offer: {self.offer_name}."]
        if self.lead_source.raw:
            lines.append(f"Lead source: {self.lead_source.raw}.")
        if self.description.strip():
            lines.append(self.description.strip())
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lead:
        return cls(
            customer=Customer(**data.get("customer", {})),
            lead_source=LeadSource(**data.get("lead_source", {})),
            action_code=data.get("action_code", ""),
            offer_title=data.get("offer_title", ""),
            description=data.get("description", ""),
            campaign=dict(data.get("campaign", {})),
            is_test=bool(data.get("is_test", False)),
            is_edu=bool(data.get("is_edu", False)),
            extra=dict(data.get("extra", {})),
        )

    @property
    def identifies_customer(self) -> bool:
        """Whether the lead names someone: an e-mail, a name or a company. A `.edu` lead (Microsoft withholds
        its personal data) or an empty test lead does not, and two of them are not the same lead."""
        c = self.customer
        return any((c.email, c.first_name, c.last_name, c.company))

    def fingerprint(self) -> str | None:
        """Same content, same fingerprint, whatever the key casing or spacing it arrived with (unknown
        fields' keys included); None for a lead that identifies no customer: it is never a duplicate."""
        if not self.identifies_customer:
            return None
        content = self.to_dict()
        if self.extra:  # (a lead without unknown fields keeps the fingerprint it had before this folding)
            content["extra"] = _case_folded(self.extra)
        canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _case_folded(value: Any) -> Any:
    """Keys lower-cased at every level; pairs sorted, so `{"A": 1, "a": 2}` has one stable form."""
    if isinstance(value, dict):
        pairs = [[str(k).lower(), _case_folded(v)] for k, v in value.items()]
        return sorted(pairs, key=lambda pair: json.dumps(pair, sort_keys=True))
    if isinstance(value, list):
        return [_case_folded(v) for v in value]
    return value


# Per-destination delivery states.
PENDING = "pending"  # not tried yet
SENDING = "sending"  # claimed by a worker until lease_until
RETRYING = "retrying"  # failed transiently; next try at next_attempt_at
BLOCKED = "blocked"  # the destination's configuration is wrong; retried slowly until fixed
DELIVERED = "delivered"
SKIPPED = "skipped"  # deliberately not sent (policy or missing data), with the reason
FAILED = "failed"  # given up; replayable
PARKED = "parked"  # its destination is not in LEADS_DESTINATIONS now: waits, resumes when it is named again
TERMINAL_STATES = frozenset({DELIVERED, SKIPPED, FAILED})
DELIVERY_STATES = (PENDING, SENDING, RETRYING, BLOCKED, PARKED, DELIVERED, SKIPPED, FAILED)
# What a destination removed from LEADS_DESTINATIONS was marked before `parked` existed (kept as it was).
OLD_REMOVED_SKIP = "Not sent: this destination was removed from LEADS_DESTINATIONS."


@dataclass(frozen=True)
class DeliveryState:
    state: str = PENDING
    attempts: int = 0  # claims (tries of any kind): never decreases
    delivered_at: str = ""
    last_error: str = ""
    record_id: str = ""  # the destination's id for what it created (CRM record, message id)
    lease_until: str = ""
    next_attempt_at: str = ""
    expired_claims: int = 0  # claims in a row whose lease ran out with no answer recorded (the worker died)
    retries: int = 0  # transient failures in the current retry schedule (a blocked answer or a replay restarts it)
    blocked_checks: int = 0  # configuration-error answers (blocked re-checks): never decreases
    # The last attempts, oldest first: {"at", "outcome", "sentence", "record_id"} (policy.HISTORY_LIMIT).
    history: tuple[dict[str, str], ...] = ()

    def __post_init__(self) -> None:  # read back from JSON as a list: the same value either way
        object.__setattr__(self, "history", tuple(dict(entry) for entry in self.history))

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeliveryState:
        """Read a stored state, migrating (lazily, on read) what the previous version wrote: it counted every
        claim in `attempts` and had no `retries` (the transient schedule was its attempts; blocked re-checks
        used it up) nor `blocked_checks`. (It marked a destination dropped from the settings `skipped` for good;
        that lead is finished, has no outbox row to wake it, and stays as it was: `python -m leads replay --all
        <id>` sends it.) Unknown keys (a newer version's) are left out."""
        known = {name: value for name, value in data.items() if name in _STATE_FIELDS}
        if "retries" not in data:
            attempts, state = int(known.get("attempts", 0)), known.get("state", PENDING)
            known["retries"] = attempts if state == RETRYING else max(attempts - 1, 0) if state == SENDING else 0
            known["blocked_checks"] = attempts if state == BLOCKED else 0
        return cls(**known)

    def with_(self, **changes: Any) -> DeliveryState:
        return replace(self, **changes)


_STATE_FIELDS = frozenset(DeliveryState.__dataclass_fields__)


@dataclass(frozen=True)
class StoredLead:
    """A lead as stored: its id, when it arrived and where it has been delivered."""

    id: str
    received_at: datetime
    lead: Lead
    deliveries: dict[str, DeliveryState] = field(default_factory=dict)
    duplicates: int = 0  # later arrivals of the same lead (within the de-duplication window)
    last_duplicate_at: datetime | None = None

    @property
    def status(self) -> str:
        states = {d.state for d in self.deliveries.values()}
        if not states:
            return PENDING
        if states <= {DELIVERED, SKIPPED}:
            return DELIVERED
        if states <= TERMINAL_STATES:
            return FAILED
        if FAILED in states or BLOCKED in states:
            return BLOCKED if BLOCKED in states else RETRYING
        if PARKED in states:
            return PARKED
        return RETRYING if RETRYING in states else PENDING

    @property
    def finished(self) -> bool:
        return all(d.is_terminal for d in self.deliveries.values())


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
