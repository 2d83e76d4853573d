"""The one state machine of a lead's destinations: every change of a destination's delivery state is
`transition(state, event, now, schedule)`, checked against TRANSITIONS (drawn in docs/operations.md,
"Delivery states"). Pure: no I/O, no clock, no settings read here (the schedule is derived from them by the
caller).

Counters: `attempts` (claims) and `blocked_checks` (configuration-error answers) never decrease; `retries`
(transient failures in the current schedule) restarts at a configuration-error answer (a fix starts the
transient schedule afresh) and at a replay; `expired_claims` counts crashes in a row (an answer clears it).
Configuration never rewrites a state for good: a destination missing from LEADS_DESTINATIONS is `parked`
(not final) and resumes when it is named again."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

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
    iso,
    parse_iso,
)

# Events
CLAIM = "claim"  # a worker takes a due destination until now + lease
DELIVERED_ANSWER = "delivered"  # the destination took the lead
SKIPPED_ANSWER = "skipped"  # the destination chose not to take it (missing data, a policy), with a reason
TRANSIENT_ANSWER = "transient"  # worth another try (timeout, 429, 5xx)
CONFIGURATION_ANSWER = "configuration"  # the app's settings for it are wrong: blocked until a person fixes them
REFUSED_ANSWER = "refused"  # refused for good (the lead itself): retrying would fail the same way
LEASE_EXPIRED = "lease_expired"  # the claim's lease ran out with no answer recorded (the worker died)
PARK = "park"  # the destination is not in LEADS_DESTINATIONS now (or still not, at a re-check)
RESUME = "resume"  # it is named again
EXCLUDE = "exclude"  # the routing rules (LEADS_ROUTES, test/do-not-contact rules) leave this lead out
REPLAY = "replay"  # an operator's replay (CLI, API or console: leads/services/replay.py)

ANSWERS = (DELIVERED_ANSWER, SKIPPED_ANSWER, TRANSIENT_ANSWER, CONFIGURATION_ANSWER, REFUSED_ANSWER)
_WAITING = {CLAIM: frozenset({SENDING}), PARK: frozenset({PARKED}), EXCLUDE: frozenset({SKIPPED}),
            REPLAY: frozenset({PENDING, SKIPPED})}
_FINISHED = {REPLAY: frozenset({PENDING, SKIPPED})}

# state -> event -> the states it may lead to. An event not listed for a state is refused (IllegalTransition).
TRANSITIONS: dict[str, dict[str, frozenset[str]]] = {
    PENDING: dict(_WAITING),
    RETRYING: dict(_WAITING),
    BLOCKED: dict(_WAITING),
    SENDING: {
        DELIVERED_ANSWER: frozenset({DELIVERED}),
        SKIPPED_ANSWER: frozenset({SKIPPED}),
        TRANSIENT_ANSWER: frozenset({RETRYING, FAILED}),  # failed only once the schedule ran out
        CONFIGURATION_ANSWER: frozenset({BLOCKED}),
        REFUSED_ANSWER: frozenset({FAILED}),
        LEASE_EXPIRED: frozenset({RETRYING, FAILED}),  # failed only when crashes outnumber the schedule's steps
    },
    PARKED: {RESUME: frozenset({PENDING}), PARK: frozenset({PARKED}), REPLAY: frozenset({PENDING, SKIPPED})},
    FAILED: dict(_FINISHED),
    SKIPPED: dict(_FINISHED),
    DELIVERED: {},  # final: nothing changes it (a replay leaves it alone)
}

HISTORY_LIMIT = 20  # attempts kept per destination (oldest dropped): the lead's row stays within Azure's limits
SENTENCE_LIMIT = 300  # characters of each attempt's sentence (the full last one is `last_error`)
CRASHED = "crashed"
BLOCKED_RECHECK_SECONDS = 3600
PARKED_RECHECK_SECONDS = 3600
_RETRY_PROMISE = re.compile(r";\s*will retry(?: later)?(?=[.\s]|$)")


class IllegalTransition(ValueError):
    """An event the transition table does not allow in that state: a bug in the caller, never data."""


@dataclass(frozen=True)
class Event:
    kind: str
    reason: str = ""  # the sentence: an answer's explanation, why it is parked or left out
    record_id: str = ""  # a delivered answer's record id
    retry_after: float | None = None  # a transient answer's Retry-After, in seconds
    destination: str = ""  # named in the sentences this module writes (a crash, a park)


@dataclass(frozen=True)
class Schedule:
    """What the settings say about timing: LEADS_RETRY_DELAYS and LEADS_DELIVERY_LEASE_SECONDS."""

    delays: tuple[int, ...]
    lease: timedelta = timedelta(minutes=10)
    blocked_recheck: int = BLOCKED_RECHECK_SECONDS
    parked_recheck: int = PARKED_RECHECK_SECONDS
    crash_limit: int | None = None  # crashes in a row before failing; None: the schedule's steps

    @property
    def crashes_allowed(self) -> int:
        return len(self.delays) if self.crash_limit is None else self.crash_limit


def allowed(state: str, event: str) -> frozenset[str]:
    """The states `event` may lead to from `state` (empty: not allowed)."""
    return TRANSITIONS.get(state, {}).get(event, frozenset())


def transition(state: DeliveryState, event: Event, now: datetime, schedule: Schedule) -> DeliveryState:
    """The state after `event`. Raises IllegalTransition for an event the table does not allow."""
    targets = allowed(state.state, event.kind)
    if not targets:
        raise IllegalTransition(f"{event.kind} is not allowed in state {state.state}")
    after = _next(state, event, now, schedule)
    if after.state not in targets:  # the table is the contract: a rule below that strays from it is a bug
        raise IllegalTransition(f"{event.kind} led {state.state} to {after.state}, not to {sorted(targets)}")
    return after


def lease_ran_out(state: DeliveryState, now: datetime) -> bool:
    lease = parse_iso(state.lease_until)
    return state.state == SENDING and (lease is None or lease <= now)


def with_attempt(state: DeliveryState, at: datetime, outcome: str, sentence: str, record_id: str = "") -> DeliveryState:
    """`state` with one more attempt in its history (the last HISTORY_LIMIT kept)."""
    entry = {"at": iso(at), "outcome": outcome, "sentence": sentence[:SENTENCE_LIMIT], "record_id": record_id[:200]}
    return state.with_(history=(*state.history, entry)[-HISTORY_LIMIT:])


def retry_delay(retries: int, delays: tuple[int, ...], retry_after: float | None) -> timedelta | None:
    """Delay before the next try after `retries` transient failures, or None when the schedule is spent."""
    if retries > len(delays):
        return None
    seconds = max(float(delays[retries - 1]), retry_after or 0.0)
    return timedelta(seconds=seconds)


def blocked_delay(checks: int, schedule: Schedule) -> timedelta:
    """A configuration error waits for a person, however long: re-checked on the schedule, at most hourly,
    never given up (the last step repeats)."""
    delays = schedule.delays
    step = delays[min(checks, len(delays)) - 1] if delays and checks > 0 else schedule.blocked_recheck
    return timedelta(seconds=min(step, schedule.blocked_recheck))


def _next(state: DeliveryState, event: Event, now: datetime, schedule: Schedule) -> DeliveryState:
    kind = event.kind
    if kind == CLAIM:
        return state.with_(state=SENDING, attempts=state.attempts + 1, lease_until=iso(now + schedule.lease),
                           next_attempt_at="")
    if kind in ANSWERS:
        after = _answered(state, event, now, schedule)
        sentence = "Delivered." if after.state == DELIVERED else after.last_error
        return with_attempt(after, now, after.state, sentence, after.record_id if after.state == DELIVERED else "")
    if kind == LEASE_EXPIRED:
        crashes = state.expired_claims + 1
        crashed = with_attempt(state, now, CRASHED, _crash_sentence(event.destination)).with_(
            expired_claims=crashes, lease_until="")
        if crashes > schedule.crashes_allowed:
            return crashed.with_(state=FAILED, next_attempt_at="", last_error=(
                f"Delivery kept crashing: {crashes} times the worker sending to {event.destination} stopped "
                f"(crash, timeout or storage loss) before it could record the answer, so {event.destination} may "
                f"have the lead already. See the app's logs for the cause, then replay it with `python -m leads "
                f"replay {{id}}`."))
        return crashed.with_(state=RETRYING, next_attempt_at=iso(now))  # due at once: claimed again
    if kind == PARK:
        return state.with_(state=PARKED, lease_until="", last_error=event.reason,
                           next_attempt_at=iso(now + timedelta(seconds=schedule.parked_recheck)))
    if kind == RESUME:
        return state.with_(state=PENDING, next_attempt_at="", last_error="")
    if kind == EXCLUDE:
        return state.with_(state=SKIPPED, last_error=event.reason, next_attempt_at="", lease_until="")
    if kind == REPLAY:  # back to the first state the current rules give (event.reason: why it is left out)
        return state.with_(state=SKIPPED if event.reason else PENDING, last_error=event.reason, lease_until="",
                           next_attempt_at="", retries=0, expired_claims=0, delivered_at="", record_id="")
    raise IllegalTransition(f"unknown event {kind}")


def _answered(state: DeliveryState, event: Event, now: datetime, schedule: Schedule) -> DeliveryState:
    done = state.with_(lease_until="", next_attempt_at="", expired_claims=0)  # an answer, recorded: no crash
    kind = event.kind
    if kind == DELIVERED_ANSWER:
        return done.with_(state=DELIVERED, delivered_at=iso(now), record_id=event.record_id, last_error="",
                          retries=0)
    if kind == SKIPPED_ANSWER:
        return done.with_(state=SKIPPED, last_error=event.reason)
    if kind == CONFIGURATION_ANSWER:  # a person must act; the transient schedule starts afresh once they did
        checks = state.blocked_checks + 1
        return done.with_(state=BLOCKED, last_error=event.reason, blocked_checks=checks, retries=0,
                          next_attempt_at=iso(now + blocked_delay(checks, schedule)))
    if kind == TRANSIENT_ANSWER:
        retries = state.retries + 1
        delay = retry_delay(retries, schedule.delays, event.retry_after)
        if delay is None:
            spent = timedelta(seconds=sum(schedule.delays))
            return done.with_(state=FAILED, retries=retries, last_error=(
                f"Gave up after {retries} attempts over {_duration(spent)}: "
                f"{_RETRY_PROMISE.sub('', event.reason)} "
                f"Replay it with `python -m leads replay {{id}}` once fixed."))
        return done.with_(state=RETRYING, retries=retries, last_error=event.reason, next_attempt_at=iso(now + delay))
    return done.with_(state=FAILED, last_error=event.reason)  # refused for good


def _crash_sentence(name: str) -> str:
    return (f"The worker sending to {name} stopped before recording an answer (its lease ran out: crash, timeout "
            f"or storage loss); {name} may have the lead already. See the app's logs for the cause.")


def _duration(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:.0f} hours" if hours >= 2 else f"{span.total_seconds() / 60:.0f} minutes"
