"""Delivery decisions, as plain functions over the stored lead: which destinations a lead goes to, which
are due now, and what a destination's answer does to its state. No I/O here."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from leads.core import transitions as sm
from leads.core.destination import Delivered, Skipped
from leads.core.errors import ConfigurationError, DestinationError, LeadRejectedError, TransientDestinationError
from leads.core.model import (
    BLOCKED,
    DELIVERED,
    FAILED,
    PARKED,
    PENDING,
    RETRYING,
    SENDING,
    SKIPPED,
    DeliveryState,
    Lead,
    StoredLead,
    parse_iso,
)
from leads.core.routing import TEST_LEAD_SKIP, Routing
from leads.core.transitions import (  # re-exported: their home is the state machine now
    BLOCKED_RECHECK_SECONDS,
    CRASHED,
    HISTORY_LIMIT,
    SENTENCE_LIMIT,
    Event,
    Schedule,
    blocked_delay,
    retry_delay,
    with_attempt,
)
from leads.core.urls import hide_urls

__all__ = ["BLOCKED_RECHECK_SECONDS", "CRASHED", "HISTORY_LIMIT", "SENTENCE_LIMIT", "TEST_LEAD_SKIP", "blocked_delay",
           "retry_delay", "with_attempt"]
Outcome = Delivered | Skipped | DestinationError

PARKED_REASON = ("Waiting: this destination is not in LEADS_DESTINATIONS now. The lead resumes when it is named "
                 "there again (re-checked hourly, or at once with `python -m leads replay --failed`).")
REMOVED_SKIP = PARKED_REASON  # the name older callers use
_NO_LIMIT = 2**31  # a crash that a later step (settle_crashes, a replay) handles: never failed here


def schedule(delays: Sequence[int], lease: timedelta | None = None) -> Schedule:
    return Schedule(tuple(delays), lease) if lease is not None else Schedule(tuple(delays))


def initial_state(lead: Lead, routing: Routing, name: str) -> DeliveryState:
    """Pending, or skipped with the sentence saying why `name` does not take this lead (routing.py)."""
    reason = routing.skip_reason(lead, name)
    return DeliveryState(state=SKIPPED, last_error=reason) if reason else DeliveryState()


def initial_deliveries(lead: Lead, routing: Routing) -> dict[str, DeliveryState]:
    """A state per configured destination (its name is the key: `email`, `webhook:partners`)."""
    return {name: initial_state(lead, routing, name) for name in routing.destinations}


def _with(stored: StoredLead, deliveries: dict[str, DeliveryState]) -> StoredLead:
    if deliveries == stored.deliveries:
        return stored
    return StoredLead(stored.id, stored.received_at, stored.lead, deliveries, stored.duplicates,
                      stored.last_duplicate_at)


def reconcile(stored: StoredLead, routing: Routing, now: datetime,
              delays: Sequence[int] = ()) -> StoredLead:
    """Bring the lead's destinations in line with the current configuration, through the state machine:
    a destination added since it arrived gets its first state; one not configured now is parked (never
    final: it resumes when it is named again); a parked one named again resumes; one not sent yet that the
    current rules leave out is skipped, saying why (a fixed rule decides too). A live claim is left to its
    worker (parked after its lease runs out). A lead stored before destinations had names keeps its keys."""
    plan = schedule(delays or (1,))
    deliveries = dict(stored.deliveries)
    for name in routing.destinations:
        state = deliveries.get(name)
        if state is None:
            deliveries[name] = initial_state(stored.lead, routing, name)
            continue
        if state.state == PARKED:
            state = sm.transition(state, Event(sm.RESUME, destination=name), now, plan)
        if state.state in (PENDING, RETRYING, BLOCKED):  # not sent yet: today's rules decide (a fixed rule too)
            reason = routing.skip_reason(stored.lead, name)
            if reason:
                state = sm.transition(state, Event(sm.EXCLUDE, reason, destination=name), now, plan)
        deliveries[name] = state
    for name, left_out in stored.deliveries.items():
        if name in routing.destinations or left_out.is_terminal:
            continue
        state = left_out
        if state.state == SENDING:
            if not sm.lease_ran_out(state, now):
                continue  # its worker is sending: its answer is recorded, then it is parked if still left out
            state = sm.transition(state, Event(sm.LEASE_EXPIRED, destination=name), now,
                                  Schedule(plan.delays, crash_limit=_NO_LIMIT))  # (never failed: parked below)
        elif state.state == PARKED and (parse_iso(state.next_attempt_at) or now) > now:
            continue  # parked, and not yet time to re-check
        deliveries[name] = sm.transition(state, Event(sm.PARK, PARKED_REASON, destination=name), now, plan)
    return _with(stored, deliveries)


def _due(state: DeliveryState, now: datetime) -> bool:
    if state.state == PENDING:
        return True
    if state.state in (RETRYING, BLOCKED):
        moment = parse_iso(state.next_attempt_at)
        return moment is None or moment <= now
    if state.state == SENDING:  # a worker claimed it and never came back: its lease ran out
        return sm.lease_ran_out(state, now)
    return False


def due_destinations(stored: StoredLead, now: datetime) -> list[str]:
    return [name for name, state in stored.deliveries.items() if _due(state, now)]


def claim(stored: StoredLead, names: Sequence[str], now: datetime, lease: timedelta,
          delays: Sequence[int] = ()) -> StoredLead:
    """Mark `names` as being sent by this worker until the lease ends (saved with an ETag condition, so
    two workers cannot both claim the same destination). Taking over a claim whose lease ran out counts
    as a crash of the worker that held it (settle_crashes, with `delays`, fails a crash loop first)."""
    plan = Schedule(tuple(delays) or (1,), lease, crash_limit=None if delays else _NO_LIMIT)
    deliveries = dict(stored.deliveries)
    for name in names:
        state = deliveries[name]
        if sm.lease_ran_out(state, now):
            state = sm.transition(state, Event(sm.LEASE_EXPIRED, destination=name), now, plan)
        deliveries[name] = sm.transition(state, Event(sm.CLAIM, destination=name), now, plan)
    return _with(stored, deliveries)


def settle_crashes(stored: StoredLead, now: datetime, delays: Sequence[int]) -> StoredLead:
    """A destination whose workers kept dying before recording an answer (more expired claims than the
    retry schedule has steps) fails instead of being claimed again: a crash loop ends, with a sentence."""
    plan = schedule(delays)
    deliveries = dict(stored.deliveries)
    for name, state in stored.deliveries.items():
        if sm.lease_ran_out(state, now) and state.expired_claims + 1 > len(delays):
            failed = sm.transition(state, Event(sm.LEASE_EXPIRED, destination=name), now, plan)
            deliveries[name] = failed.with_(last_error=failed.last_error.replace("{id}", stored.id))
    return _with(stored, deliveries)


def event_of(outcome: Outcome) -> Event:
    """A destination's answer as an event of the state machine. A URL inside its sentence keeps only scheme,
    host and port (core/urls.py): the sentence becomes the last error and an attempt of the history."""
    if isinstance(outcome, Delivered):
        return Event(sm.DELIVERED_ANSWER, record_id=outcome.record_id)
    if isinstance(outcome, Skipped):
        return Event(sm.SKIPPED_ANSWER, hide_urls(outcome.reason))
    if isinstance(outcome, ConfigurationError):
        return Event(sm.CONFIGURATION_ANSWER, hide_urls(outcome.explanation))
    if isinstance(outcome, TransientDestinationError):
        return Event(sm.TRANSIENT_ANSWER, hide_urls(outcome.explanation), retry_after=outcome.retry_after)
    assert isinstance(outcome, (LeadRejectedError, DestinationError))  # any other refusal is for good
    return Event(sm.REFUSED_ANSWER, hide_urls(outcome.explanation))


def apply_outcome(state: DeliveryState, outcome: Outcome, now: datetime, delays: Sequence[int]) -> DeliveryState:
    """The state after `outcome`, with the attempt appended to its history."""
    return sm.transition(state, event_of(outcome), now, schedule(delays))


def record(stored: StoredLead, outcomes: Mapping[str, Outcome], now: datetime, delays: Sequence[int]) -> StoredLead:
    deliveries = dict(stored.deliveries)
    for name, outcome in outcomes.items():
        state = apply_outcome(deliveries[name], outcome, now, delays)
        last = {**state.history[-1], "sentence": state.history[-1]["sentence"].replace("{id}", stored.id)}
        deliveries[name] = state.with_(last_error=state.last_error.replace("{id}", stored.id),
                                       history=(*state.history[:-1], last))
    return StoredLead(stored.id, stored.received_at, stored.lead, deliveries, stored.duplicates,
                      stored.last_duplicate_at)


ATTENTION_STATES = frozenset({FAILED, BLOCKED, PARKED})


def needs_attention(stored: StoredLead) -> bool:
    """Failed, blocked or parked somewhere: listed by `replay --failed` and status (through an index row)."""
    return any(state.state in ATTENTION_STATES for state in stored.deliveries.values())


def replay(stored: StoredLead, now: datetime, routing: Routing, only_failed: bool = True,
           wanted: Callable[[str, DeliveryState], bool] | None = None) -> StoredLead:
    """Put failed, blocked and parked destinations (with only_failed=False: every one not delivered; with
    `wanted`: those it picks) back to their first state. Never a live claim (a worker is sending), never a
    delivered one; the current rules apply: a test lead still skips CRMs unless LEADS_FORWARD_TEST_LEADS is
    on, a do-not-contact lead still skips them unless LEADS_ROUTES says so. Counters stay (a replay restarts
    the transient schedule only); the attempt history stays with the destination."""
    plan = schedule((1,))
    deliveries = dict(stored.deliveries)
    for name, state in stored.deliveries.items():
        if state.state == DELIVERED or (state.state == SENDING and not sm.lease_ran_out(state, now)):
            continue
        chosen = wanted(name, state) if wanted is not None else (state.state in ATTENTION_STATES or not only_failed)
        if not chosen:
            continue
        settled = state
        if state.state == SENDING:  # its worker died: a crash, then the replay
            settled = sm.transition(state, Event(sm.LEASE_EXPIRED, destination=name), now,
                                    Schedule((1,), crash_limit=_NO_LIMIT))
        reason = routing.skip_reason(stored.lead, name) if name in routing.destinations else ""
        deliveries[name] = sm.transition(settled, Event(sm.REPLAY, reason, destination=name), now, plan)
    return _with(stored, deliveries)


def next_due(stored: StoredLead) -> datetime | None:
    """When this lead next needs a worker (earliest retry, re-check or lease end), None if it is finished."""
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
