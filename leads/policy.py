"""Delivery decisions, as plain functions over the stored lead: which destinations a lead goes to, which
are due now, and what a destination's answer does to its state. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from leads.destinations.base import Delivered, Skipped
from leads.errors import ConfigurationError, DestinationError, TransientDestinationError
from leads.model import (
    BLOCKED,
    DELIVERED,
    FAILED,
    PENDING,
    RETRYING,
    SENDING,
    SKIPPED,
    DeliveryState,
    Lead,
    StoredLead,
    iso,
    parse_iso,
)

Outcome = Delivered | Skipped | DestinationError

TEST_LEAD_SKIP = (
    "Partner Center test lead (MSFT_TEST): not forwarded to CRMs. Set LEADS_FORWARD_TEST_LEADS=true to "
    "forward test leads too."
)
REMOVED_SKIP = "Not sent: this destination was removed from LEADS_DESTINATIONS."


def initial_state(lead: Lead, is_crm: bool, forward_test_leads: bool) -> DeliveryState:
    if lead.is_test and is_crm and not forward_test_leads:
        return DeliveryState(state=SKIPPED, last_error=TEST_LEAD_SKIP)
    return DeliveryState()


def initial_deliveries(lead: Lead, crm_flags: Mapping[str, bool], forward_test_leads: bool) -> dict[str, DeliveryState]:
    """`crm_flags` maps each configured destination to whether it is a CRM."""
    return {name: initial_state(lead, is_crm, forward_test_leads) for name, is_crm in crm_flags.items()}


def reconcile(stored: StoredLead, crm_flags: Mapping[str, bool], forward_test_leads: bool) -> StoredLead:
    """Bring the lead's destinations in line with the current configuration: a destination added since
    it arrived gets a state; one removed is skipped (else the lead would never finish)."""
    deliveries = dict(stored.deliveries)
    for name, is_crm in crm_flags.items():
        deliveries.setdefault(name, initial_state(stored.lead, is_crm, forward_test_leads))
    for name, state in stored.deliveries.items():
        if name not in crm_flags and not state.is_terminal:
            deliveries[name] = state.with_(state=SKIPPED, last_error=REMOVED_SKIP, lease_until="")
    if deliveries == stored.deliveries:
        return stored
    return StoredLead(stored.id, stored.received_at, stored.lead, deliveries)


def _due(state: DeliveryState, now: datetime) -> bool:
    if state.state == PENDING:
        return True
    if state.state in (RETRYING, BLOCKED):
        moment = parse_iso(state.next_attempt_at)
        return moment is None or moment <= now
    if state.state == SENDING:  # a worker claimed it and never came back: its lease ran out
        lease = parse_iso(state.lease_until)
        return lease is None or lease <= now
    return False


def due_destinations(stored: StoredLead, now: datetime) -> list[str]:
    return [name for name, state in stored.deliveries.items() if _due(state, now)]


def claim(stored: StoredLead, names: Sequence[str], now: datetime, lease: timedelta) -> StoredLead:
    """Mark `names` as being sent by this worker until the lease ends (saved with an ETag condition, so
    two workers cannot both claim the same destination)."""
    deliveries = dict(stored.deliveries)
    for name in names:
        state = deliveries[name]
        deliveries[name] = state.with_(state=SENDING, attempts=state.attempts + 1, lease_until=iso(now + lease))
    return StoredLead(stored.id, stored.received_at, stored.lead, deliveries)


def retry_delay(attempts: int, delays: Sequence[int], retry_after: float | None) -> timedelta | None:
    """Delay before the next try after `attempts` tries, or None when the schedule is spent."""
    if attempts > len(delays):
        return None
    seconds = max(float(delays[attempts - 1]), retry_after or 0.0)
    return timedelta(seconds=seconds)


def apply_outcome(state: DeliveryState, outcome: Outcome, now: datetime, delays: Sequence[int]) -> DeliveryState:
    done = state.with_(lease_until="", next_attempt_at="")
    if isinstance(outcome, Delivered):
        return done.with_(state=DELIVERED, delivered_at=iso(now), record_id=outcome.record_id, last_error="")
    if isinstance(outcome, Skipped):
        return done.with_(state=SKIPPED, last_error=outcome.reason)
    if isinstance(outcome, TransientDestinationError | ConfigurationError):
        retry_after = outcome.retry_after if isinstance(outcome, TransientDestinationError) else None
        delay = retry_delay(state.attempts, delays, retry_after)
        if delay is None:
            spent = timedelta(seconds=sum(delays))
            return done.with_(state=FAILED, last_error=(
                f"Gave up after {state.attempts} attempts over {_duration(spent)}: {outcome.explanation} "
                f"Replay it with `python -m leads replay {{id}}` once fixed."))
        waiting = BLOCKED if isinstance(outcome, ConfigurationError) else RETRYING
        return done.with_(state=waiting, last_error=outcome.explanation, next_attempt_at=iso(now + delay))
    # LeadRejectedError or any other permanent refusal: retrying would fail the same way.
    return done.with_(state=FAILED, last_error=outcome.explanation)


def record(stored: StoredLead, outcomes: Mapping[str, Outcome], now: datetime, delays: Sequence[int]) -> StoredLead:
    deliveries = dict(stored.deliveries)
    for name, outcome in outcomes.items():
        state = apply_outcome(deliveries[name], outcome, now, delays)
        deliveries[name] = state.with_(last_error=state.last_error.replace("{id}", stored.id))
    return StoredLead(stored.id, stored.received_at, stored.lead, deliveries)


def give_up(stored: StoredLead, reason: str) -> StoredLead:
    """Every unfinished destination fails with `reason` (a poison message): stays replayable."""
    deliveries = {
        name: state if state.is_terminal else state.with_(state=FAILED, last_error=reason, lease_until="",
                                                          next_attempt_at="")
        for name, state in stored.deliveries.items()
    }
    return StoredLead(stored.id, stored.received_at, stored.lead, deliveries)


def replay(stored: StoredLead, only_failed: bool = True) -> StoredLead:
    """Put failed (or, with only_failed=False, all but delivered) destinations back to pending."""
    def reset(state: DeliveryState) -> DeliveryState:
        wanted = state.state == FAILED if only_failed else state.state != DELIVERED
        return DeliveryState(attempts=0) if wanted else state

    return StoredLead(stored.id, stored.received_at, stored.lead,
                      {name: reset(state) for name, state in stored.deliveries.items()})


def next_due(stored: StoredLead) -> datetime | None:
    """When this lead next needs a worker (earliest retry or lease end), None if it is finished."""
    moments = []
    for state in stored.deliveries.values():
        if state.is_terminal:
            continue
        moment = parse_iso(state.next_attempt_at or state.lease_until)
        if moment is not None:
            moments.append(moment)
        elif state.state == PENDING:
            return datetime.min.replace(tzinfo=stored.received_at.tzinfo)
    return min(moments) if moments else None


def _duration(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:.0f} hours" if hours >= 2 else f"{span.total_seconds() / 60:.0f} minutes"
