"""Delivery decisions, as plain functions over the stored lead: which destinations a lead goes to, which
are due now, and what a destination's answer does to its state. No I/O here."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from leads.core.destination import Delivered, Skipped
from leads.core.errors import ConfigurationError, DestinationError, TransientDestinationError
from leads.core.model import (
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
from leads.core.routing import TEST_LEAD_SKIP, Routing
from leads.core.urls import hide_urls

__all__ = ["TEST_LEAD_SKIP"]  # re-exported: the sentence lives with the routing rules now

# "…; will retry." in a transient error's sentence is untrue once the schedule is spent.
_RETRY_PROMISE = re.compile(r";\s*will retry(?: later)?(?=[.\s]|$)")
Outcome = Delivered | Skipped | DestinationError

REMOVED_SKIP = "Not sent: this destination was removed from LEADS_DESTINATIONS."
BLOCKED_RECHECK_SECONDS = 3600
HISTORY_LIMIT = 20  # attempts kept per destination (oldest dropped): the lead's row stays within Azure's limits
SENTENCE_LIMIT = 300  # characters of each attempt's sentence (the full last one is `last_error`)
CRASHED = "crashed"


def with_attempt(state: DeliveryState, at: datetime, outcome: str, sentence: str, record_id: str = "") -> DeliveryState:
    """`state` with one more attempt in its history (the last HISTORY_LIMIT kept)."""
    entry = {"at": iso(at), "outcome": outcome, "sentence": sentence[:SENTENCE_LIMIT], "record_id": record_id[:200]}
    return state.with_(history=(*state.history, entry)[-HISTORY_LIMIT:])


def initial_state(lead: Lead, routing: Routing, name: str) -> DeliveryState:
    """Pending, or skipped with the sentence saying why `name` does not take this lead (routing.py)."""
    reason = routing.skip_reason(lead, name)
    return DeliveryState(state=SKIPPED, last_error=reason) if reason else DeliveryState()


def initial_deliveries(lead: Lead, routing: Routing) -> dict[str, DeliveryState]:
    """A state per configured destination (its name is the key: `email`, `webhook:partners`)."""
    return {name: initial_state(lead, routing, name) for name in routing.destinations}


def reconcile(stored: StoredLead, routing: Routing) -> StoredLead:
    """Bring the lead's destinations in line with the current configuration: a destination added since
    it arrived gets a state; one not sent yet that the current rules leave out is skipped, saying why; one
    removed is skipped (else the lead would never finish).
    A lead stored before destinations had names keeps its keys: a plain name is its type, as then."""
    deliveries = dict(stored.deliveries)
    for name in routing.destinations:
        state = deliveries.get(name)
        if state is None:
            deliveries[name] = initial_state(stored.lead, routing, name)
        elif state.state in (PENDING, RETRYING, BLOCKED):  # not sent yet: today's rules decide (a fixed rule too)
            reason = routing.skip_reason(stored.lead, name)
            if reason:
                deliveries[name] = state.with_(state=SKIPPED, last_error=reason, next_attempt_at="")
    for name, state in stored.deliveries.items():
        if name not in routing.destinations and not state.is_terminal:
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


def _lease_ran_out(state: DeliveryState, now: datetime) -> bool:
    lease = parse_iso(state.lease_until)
    return state.state == SENDING and (lease is None or lease <= now)


def claim(stored: StoredLead, names: Sequence[str], now: datetime, lease: timedelta) -> StoredLead:
    """Mark `names` as being sent by this worker until the lease ends (saved with an ETag condition, so
    two workers cannot both claim the same destination). Taking over a claim whose lease ran out counts
    as a crash of the worker that held it."""
    deliveries = dict(stored.deliveries)
    for name in names:
        state = deliveries[name]
        crashed = int(_lease_ran_out(state, now))
        if crashed:
            state = with_attempt(state, now, CRASHED, _crash_sentence(name, state))
        deliveries[name] = state.with_(state=SENDING, attempts=state.attempts + 1, lease_until=iso(now + lease),
                                       expired_claims=state.expired_claims + crashed)
    return StoredLead(stored.id, stored.received_at, stored.lead, deliveries)


def settle_crashes(stored: StoredLead, now: datetime, delays: Sequence[int]) -> StoredLead:
    """A destination whose workers kept dying before recording an answer (more expired claims than the
    retry schedule has steps) fails instead of being claimed again: a crash loop ends, with a sentence."""
    deliveries = dict(stored.deliveries)
    for name, state in stored.deliveries.items():
        if _lease_ran_out(state, now) and state.expired_claims + 1 > len(delays):
            crashed = with_attempt(state, now, CRASHED, _crash_sentence(name, state))
            deliveries[name] = crashed.with_(state=FAILED, lease_until="", next_attempt_at="", last_error=(
                f"Delivery kept crashing: {state.expired_claims + 1} times the worker sending to {name} stopped "
                f"(crash, timeout or storage loss) before it could record the answer, so {name} may have the lead "
                f"already. See the app's logs for the cause, then replay it with `python -m leads replay "
                f"{stored.id}`."))
    if deliveries == stored.deliveries:
        return stored
    return StoredLead(stored.id, stored.received_at, stored.lead, deliveries)


def _crash_sentence(name: str, state: DeliveryState) -> str:
    return (f"The worker sending to {name} stopped before recording an answer (its lease ran out: crash, timeout "
            f"or storage loss); {name} may have the lead already. See the app's logs for the cause.")


def retry_delay(attempts: int, delays: Sequence[int], retry_after: float | None) -> timedelta | None:
    """Delay before the next try after `attempts` tries, or None when the schedule is spent."""
    if attempts > len(delays):
        return None
    seconds = max(float(delays[attempts - 1]), retry_after or 0.0)
    return timedelta(seconds=seconds)


def blocked_delay(attempts: int, delays: Sequence[int]) -> timedelta:
    """A configuration error waits for a person, however long: re-checked on the schedule, at most hourly,
    never given up (the last step repeats)."""
    step = delays[min(attempts, len(delays)) - 1] if delays and attempts > 0 else BLOCKED_RECHECK_SECONDS
    return timedelta(seconds=min(step, BLOCKED_RECHECK_SECONDS))


def apply_outcome(state: DeliveryState, outcome: Outcome, now: datetime, delays: Sequence[int]) -> DeliveryState:
    """The state after `outcome`, with the attempt appended to its history."""
    after = _after(state, outcome, now, delays)
    if after.last_error:  # a URL inside a destination's sentence keeps only scheme, host and port (core/urls.py)
        after = after.with_(last_error=hide_urls(after.last_error))
    sentence = "Delivered." if after.state == DELIVERED else after.last_error
    return with_attempt(after, now, after.state, sentence, after.record_id if after.state == DELIVERED else "")


def _after(state: DeliveryState, outcome: Outcome, now: datetime, delays: Sequence[int]) -> DeliveryState:
    done = state.with_(lease_until="", next_attempt_at="", expired_claims=0)  # an answer, recorded: no crash
    if isinstance(outcome, Delivered):
        return done.with_(state=DELIVERED, delivered_at=iso(now), record_id=outcome.record_id, last_error="")
    if isinstance(outcome, Skipped):
        return done.with_(state=SKIPPED, last_error=outcome.reason)
    if isinstance(outcome, ConfigurationError):
        return done.with_(state=BLOCKED, last_error=outcome.explanation,
                          next_attempt_at=iso(now + blocked_delay(state.attempts, delays)))
    if isinstance(outcome, TransientDestinationError):
        delay = retry_delay(state.attempts, delays, outcome.retry_after)
        if delay is None:
            spent = timedelta(seconds=sum(delays))
            return done.with_(state=FAILED, last_error=(
                f"Gave up after {state.attempts} attempts over {_duration(spent)}: "
                f"{_RETRY_PROMISE.sub('', outcome.explanation)} "
                f"Replay it with `python -m leads replay {{id}}` once fixed."))
        return done.with_(state=RETRYING, last_error=outcome.explanation, next_attempt_at=iso(now + delay))
    # LeadRejectedError or any other permanent refusal: retrying would fail the same way.
    return done.with_(state=FAILED, last_error=outcome.explanation)


def record(stored: StoredLead, outcomes: Mapping[str, Outcome], now: datetime, delays: Sequence[int]) -> StoredLead:
    deliveries = dict(stored.deliveries)
    for name, outcome in outcomes.items():
        state = apply_outcome(deliveries[name], outcome, now, delays)
        last = {**state.history[-1], "sentence": state.history[-1]["sentence"].replace("{id}", stored.id)}
        deliveries[name] = state.with_(last_error=state.last_error.replace("{id}", stored.id),
                                       history=(*state.history[:-1], last))
    return StoredLead(stored.id, stored.received_at, stored.lead, deliveries)


def needs_attention(stored: StoredLead) -> bool:
    """Failed or blocked somewhere: listed by `replay --failed` and status (through an index row)."""
    return any(state.state in (FAILED, BLOCKED) for state in stored.deliveries.values())


def replay(stored: StoredLead, now: datetime, routing: Routing, only_failed: bool = True) -> StoredLead:
    """Put failed and blocked destinations (with only_failed=False: every one not delivered) back to
    their first state. Never a live claim (a worker is sending), never a delivered one; a reset goes
    through initial_state, so the current rules apply: a test lead still skips CRMs unless
    LEADS_FORWARD_TEST_LEADS is on, a do-not-contact lead still skips them unless LEADS_ROUTES says so."""
    def wanted(state: DeliveryState) -> bool:
        if state.state == DELIVERED or (state.state == SENDING and not _lease_ran_out(state, now)):
            return False
        return state.state in (FAILED, BLOCKED) or not only_failed

    deliveries = {  # the attempt history stays with the destination
        name: initial_state(stored.lead, routing, name).with_(history=state.history)
        if wanted(state) else state
        for name, state in stored.deliveries.items()
    }
    return StoredLead(stored.id, stored.received_at, stored.lead, deliveries)


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
