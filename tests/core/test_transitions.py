"""The state machine of a destination (leads/core/transitions.py), tried with generated event sequences: every
event the table allows is applied, every other one must be refused, and the invariants hold after each step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leads.core import transitions as sm
from leads.core.model import (
    BLOCKED,
    DELIVERED,
    DELIVERY_STATES,
    FAILED,
    PARKED,
    PENDING,
    RETRYING,
    SENDING,
    SKIPPED,
    TERMINAL_STATES,
    DeliveryState,
    parse_iso,
)
from leads.core.transitions import Event, IllegalTransition, Schedule

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
KINDS = (sm.CLAIM, *sm.ANSWERS, sm.LEASE_EXPIRED, sm.PARK, sm.RESUME, sm.EXCLUDE, sm.REPLAY)

events = st.builds(
    Event,
    kind=st.sampled_from(KINDS),
    reason=st.sampled_from(["", "Not sent: the rule leaves it out.", "down; will retry."]),
    record_id=st.sampled_from(["", "crm-1"]),
    retry_after=st.one_of(st.none(), st.floats(min_value=0, max_value=7200)),
    destination=st.just("hubspot"),
)
schedules = st.builds(Schedule, delays=st.lists(st.integers(1, 3600), min_size=1, max_size=6).map(tuple),
                      lease=st.just(timedelta(minutes=10)))


def test_the_table_names_every_state_and_only_known_events() -> None:
    assert set(sm.TRANSITIONS) == set(DELIVERY_STATES)
    for state, moves in sm.TRANSITIONS.items():
        assert set(moves) <= set(KINDS), state
        assert all(targets <= set(DELIVERY_STATES) for targets in moves.values()), state
    assert sm.TRANSITIONS[DELIVERED] == {}  # nothing changes a delivered destination
    assert all(sm.PARK not in sm.TRANSITIONS[s] for s in TERMINAL_STATES)  # settings never touch a finished one


@settings(max_examples=100, deadline=None, derandomize=True)
@given(schedule=schedules, data=st.data())
def test_generated_event_sequences_keep_the_invariants(schedule: Schedule, data: st.DataObject) -> None:
    """Each step draws an event the table allows in the current state (so that sequences go deep: blocked
    for long, retried, crashed, parked, replayed), and one it may not allow, which must be refused."""
    state, now = DeliveryState(), START
    for _ in range(data.draw(st.integers(0, 40), label="steps")):
        now += timedelta(seconds=data.draw(st.integers(0, 7200), label="wait"))
        stray = data.draw(events, label="any event")
        if not sm.allowed(state.state, stray.kind):
            with pytest.raises(IllegalTransition):
                sm.transition(state, stray, now, schedule)
        moves = sorted(sm.TRANSITIONS[state.state])
        if not moves:
            break  # delivered: nothing moves it
        kind = data.draw(st.sampled_from(moves), label="event")
        drawn = data.draw(events, label="its details")
        event = Event(kind, drawn.reason, drawn.record_id, drawn.retry_after, drawn.destination)
        after = sm.transition(state, event, now, schedule)
        check(state, event, after, schedule)
        state = after


def check(before: DeliveryState, event: Event, after: DeliveryState, schedule: Schedule) -> None:
    assert after.state in sm.allowed(before.state, event.kind)
    # counters: attempts and blocked re-checks never go down; each has its own event
    assert after.attempts >= before.attempts and after.blocked_checks >= before.blocked_checks
    assert after.attempts == before.attempts + (event.kind == sm.CLAIM)
    assert after.blocked_checks == before.blocked_checks + (event.kind == sm.CONFIGURATION_ANSWER)
    # a delivered destination never changes (the table has no way out of it)
    assert before.state != DELIVERED
    # failed only after the transient schedule ran out, the crash limit passed, or a refusal for good
    if after.state == FAILED and before.state != FAILED:
        assert (event.kind == sm.REFUSED_ANSWER
                or (event.kind == sm.TRANSIENT_ANSWER and after.retries > len(schedule.delays))
                or (event.kind == sm.LEASE_EXPIRED and after.expired_claims > schedule.crashes_allowed))
    # blocked re-checks never use up the transient schedule, and the fix starts it afresh
    if after.state == BLOCKED:
        assert after.retries == 0 and parse_iso(after.next_attempt_at) is not None
    if after.state == RETRYING:
        assert 0 < after.retries <= len(schedule.delays) or event.kind == sm.LEASE_EXPIRED
        assert parse_iso(after.next_attempt_at) is not None
    # parked is never final, always comes back to be re-checked, and only the settings or a replay move it
    if after.state == PARKED:
        assert not after.is_terminal and parse_iso(after.next_attempt_at) is not None
    if before.state == PARKED and after.state != PARKED:
        assert event.kind in (sm.RESUME, sm.REPLAY)
    # a claim holds a lease; nothing else does
    assert bool(after.lease_until) == (after.state == SENDING)
    # only an answer or a crash is an attempt in the history
    grew = len(after.history) != len(before.history) or after.history != before.history
    assert grew == (event.kind in (*sm.ANSWERS, sm.LEASE_EXPIRED))
    if after.state == DELIVERED:
        assert after.delivered_at and after.record_id == event.record_id


@pytest.mark.parametrize("state", [PENDING, RETRYING, BLOCKED, PARKED, SKIPPED, FAILED])
def test_a_replay_restarts_the_schedule_and_keeps_the_counters(state: str) -> None:
    worn = DeliveryState(state=state, attempts=7, retries=3, blocked_checks=4, expired_claims=2,
                         history=({"at": "x", "outcome": "retrying", "sentence": "s", "record_id": ""},))
    replayed = sm.transition(worn, Event(sm.REPLAY), START, Schedule((30,)))
    assert (replayed.state, replayed.retries, replayed.expired_claims) == (PENDING, 0, 0)
    assert (replayed.attempts, replayed.blocked_checks, replayed.history) == (7, 4, worn.history)


def test_a_live_claim_cannot_be_parked_or_replayed_by_the_table() -> None:
    claimed = sm.transition(DeliveryState(), Event(sm.CLAIM), START, Schedule((30,)))
    for kind in (sm.PARK, sm.REPLAY, sm.EXCLUDE, sm.CLAIM):
        with pytest.raises(IllegalTransition):
            sm.transition(claimed, Event(kind), START, Schedule((30,)))
