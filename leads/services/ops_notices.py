"""Operational notices: tell the operator once when something needs a person, and again when it clears.

Conditions (one state row each, leads/storage/notice_table.py): `blocked:<destination>` (a configuration error:
the lead is blocked and the destination's circuit breaker opens, one notice for both), `failed:<destination>`
(a lead failed for good) and `silence` (no lead for LEADS_SILENCE_ALERT_DAYS). Each state is written
ETag-conditionally and a notice is sent only by the writer whose write won, so two instances never send the
same one. At most one notice per condition per LEADS_NOTICE_INTERVAL_SECONDS: events in between are counted
into the next ("3 more leads ..."), which the hourly review sends if no event does. A notice carries
destination names, counts, lead ids and the sentence that says what to do; never a lead's field: the
sentence is scrubbed of the lead's values before it is kept (a vendor's refusal may quote them).

Plain Python: the store and the senders are the small interfaces below."""

from __future__ import annotations

import contextlib
import logging
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from leads.core.errors import ConcurrentUpdateError, DestinationError, StorageUnavailableError
from leads.core.model import Lead, utcnow

log = logging.getLogger("leads.ops_notices")
SILENCE = "silence"
BLOCKED_PREFIX = "blocked:"
FAILED_PREFIX = "failed:"
LEAD_IDS_KEPT = 5  # lead ids named in one notice (the count says how many there were)
SENTENCE_KEPT = 600
_CONFLICT_TRIES = 5
_OPEN_CACHE = timedelta(minutes=5)  # how long a worker trusts its list of open conditions (recoveries)


@dataclass(frozen=True)
class ConditionState:
    condition: str
    open_since: datetime | None = None  # None: the condition is clear
    last_sent_at: datetime | None = None  # the last notice about it (any kind)
    announced: bool = False  # the notice that it opened went out (so its recovery is worth a notice)
    unsent: int = 0  # events not yet in a notice
    total: int = 0  # events since it opened
    lead_ids: tuple[str, ...] = ()  # the latest unsent ones
    sentence: str = ""  # the latest explanation (no lead data)

    @property
    def is_open(self) -> bool:
        return self.open_since is not None


@dataclass(frozen=True)
class Event:
    condition: str
    sentence: str
    lead_id: str = ""


@dataclass(frozen=True)
class Notice:
    condition: str
    kind: str  # opened | more | recovered
    subject: str
    text: str


class NoticeStore(Protocol):
    """Condition states with ETags. `save` with etag None creates; raises ConcurrentUpdateError when the row
    changed (or exists) meanwhile, StorageUnavailableError when storage does not answer."""

    def load(self, condition: str) -> tuple[ConditionState, str] | None: ...
    def save(self, state: ConditionState, etag: str | None) -> str: ...
    def all(self) -> list[tuple[ConditionState, str]]: ...
    def newest_arrival(self) -> datetime | None: ...


class NoticeSender(Protocol):
    """Where notices go (the ops e-mail; a chat sender can be added). Raises DestinationError on failure."""

    name: str

    def send(self, notice: Notice) -> None: ...


# --- decisions (pure) ----------------------------------------------------------------------------------------

def on_event(state: ConditionState | None, event: Event, now: datetime, interval: timedelta) \
        -> tuple[ConditionState, bool]:
    """The state after `event`, and whether a notice is due now (the caller builds it from the state)."""
    current = state or ConditionState(event.condition)
    if not current.is_open:
        current = replace(current, open_since=now, announced=False, unsent=0, total=0, lead_ids=())
    lead_ids = (*current.lead_ids, event.lead_id)[-LEAD_IDS_KEPT:] if event.lead_id else current.lead_ids
    counted = replace(current, unsent=current.unsent + 1, total=current.total + 1, lead_ids=lead_ids,
                      sentence=event.sentence[:SENTENCE_KEPT] or current.sentence)
    return counted, is_due(counted, now, interval)


def is_due(state: ConditionState, now: datetime, interval: timedelta) -> bool:
    return state.is_open and state.unsent > 0 and (state.last_sent_at is None or
                                                   now - state.last_sent_at >= interval)


def sent(state: ConditionState, now: datetime) -> ConditionState:
    return replace(state, last_sent_at=now, announced=True, unsent=0, lead_ids=())


def on_clear(state: ConditionState, now: datetime) -> tuple[ConditionState, bool]:
    """The condition cleared: closed, and a recovery notice is due if its opening was announced."""
    return replace(state, open_since=None, unsent=0, lead_ids=(), announced=False,
                   last_sent_at=now if state.announced else state.last_sent_at), state.announced


# --- what a notice says ---------------------------------------------------------------------------------------

def build_notice(state: ConditionState, kind: str, now: datetime, console_url: str = "",
                 days: int = 0, interval: timedelta = timedelta(hours=1)) -> Notice:
    kind_of, _, destination = state.condition.partition(":")
    ids = ", ".join(state.lead_ids)
    link = _console(console_url, state.lead_ids[-1] if state.lead_ids else "")
    since = _moment(state.open_since) if state.open_since else "earlier"
    if kind == "recovered":
        subject, lines = _recovered(kind_of, destination, state, since, now)
    elif kind_of == "blocked":
        subject = f"Marketplace leads: {destination} is blocked"
        lines = [f"{destination} cannot be used with the app's current settings, so leads are not reaching it "
                 f"({_count(state)}"
                 f"{' since ' + since if kind == 'more' else ''}): {state.sentence}",
                 f"Calls to {destination} are paused a few minutes at a time (its circuit breaker) and blocked "
                 "leads are tried again hourly: nothing is lost. Fix the setting named above (app settings, then "
                 "restart), check it with `python -m leads doctor`, and send the waiting leads at once with "
                 "`python -m leads replay --failed`. You get one more e-mail when it works again."]
    elif kind_of == "failed":
        subject = f"Marketplace leads: {_count(state)} failed for good at {destination}"
        lines = [f"{_count(state).capitalize()} could not be delivered to {destination} and will not be retried"
                 f"{' (since ' + since + ')' if kind == 'more' else ''}. The latest reason: {state.sentence}",
                 "Each lead is kept in the app's table. Fix the cause, then replay them with "
                 "`python -m leads replay --failed` (or `python -m leads replay <lead id>`)."]
    else:
        subject = f"Marketplace leads: no lead for {days} days"
        lines = [f"No lead, test or real, has arrived for {days} days: {state.sentence}",
                 "If leads are expected: in Partner Center, open the offer's Customer leads page and press "
                 "Validate (it sends a test lead); check that the HTTPS endpoint there still ends in "
                 "/api/leads?code=<function key> and that /api/health answers 200. Set "
                 "LEADS_SILENCE_ALERT_DAYS=0 to turn this notice off."]
    if ids and kind != "recovered":
        lines.append(f"Lead ids: {ids}" + (" (the latest)" if state.unsent > len(state.lead_ids) else ""))
    if link:
        lines.append(f"Console: {link}")
    lines.append(f"This notice carries no lead data. At most one per condition every {_span(interval)} "
                 "(LEADS_NOTICE_INTERVAL_SECONDS), to LEADS_OPS_EMAIL_TO.")
    return Notice(state.condition, kind, subject, "\n\n".join(lines) + "\n")


def _recovered(kind_of: str, destination: str, state: ConditionState, since: str, now: datetime) \
        -> tuple[str, list[str]]:
    if kind_of == SILENCE:
        return ("Marketplace leads: leads arrive again",
                [f"A lead arrived again (the silence was noticed {since})."])
    what = "was blocked" if kind_of == "blocked" else "had leads that failed for good"
    return (f"Marketplace leads: {destination} works again",
            [f"{destination} accepted a lead at {_moment(now)}. It {what} since {since} "
             f"({state.total} lead{'s' if state.total != 1 else ''} affected). Leads still marked failed or "
             "blocked go out with `python -m leads replay --failed`."])


def _count(state: ConditionState) -> str:
    number = state.unsent or state.total
    more = " more" if state.announced else ""
    return f"{number}{more} lead{'s' if number != 1 else ''}"


def _span(interval: timedelta) -> str:
    seconds = int(interval.total_seconds())
    if seconds % 3600 == 0:
        return "hour" if seconds == 3600 else f"{seconds // 3600} hours"
    return f"{seconds // 60} minutes" if seconds % 60 == 0 else f"{seconds} seconds"


def _moment(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _console(console_url: str, lead_id: str) -> str:
    if not console_url:
        return ""
    base = console_url.rstrip("/")
    return f"{base}#/leads/{urllib.parse.quote(lead_id, safe='')}" if lead_id else base


def scrub(sentence: str, lead: Lead | None) -> str:
    """The sentence without any value of the lead (a vendor's refusal can quote a name or an address)."""
    if lead is None:
        return sentence
    customer = lead.customer
    values = [customer.first_name, customer.last_name, customer.full_name, customer.email, customer.phone,
              customer.company, customer.title, lead.description]
    for value in sorted({v.strip() for v in values if v and len(v.strip()) >= 3}, key=len, reverse=True):
        sentence = _replace_folded(sentence, value, "[lead field]")
    return sentence


def _replace_folded(text: str, value: str, by: str) -> str:
    lowered, needle, out, start = text.lower(), value.lower(), [], 0
    while (index := lowered.find(needle, start)) >= 0:
        out += [text[start:index], by]
        start = index + len(needle)
    return "".join(out) + text[start:]


# --- the service --------------------------------------------------------------------------------------------

@dataclass
class OpsNotices:
    store: NoticeStore
    senders: Sequence[NoticeSender]
    interval: timedelta = timedelta(hours=1)
    silence_days: int = 7
    console_url: str = ""
    clock: Callable[[], datetime] = utcnow
    _open_cache: tuple[datetime, frozenset[str]] | None = field(default=None, repr=False)
    _next_review: datetime | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # events from delivery
    def blocked(self, destination: str, lead_id: str, sentence: str) -> None:
        self.raise_(Event(BLOCKED_PREFIX + destination, sentence, lead_id))

    def failed(self, destination: str, lead_id: str, sentence: str) -> None:
        self.raise_(Event(FAILED_PREFIX + destination, sentence, lead_id))

    def delivered(self, destination: str) -> None:
        """A destination accepted a lead: its blocked/failed conditions clear. Costs a storage call only when
        this worker's list of open conditions is older than a few minutes."""
        for condition in (BLOCKED_PREFIX + destination, FAILED_PREFIX + destination):
            if condition in self._open_conditions():
                self.clear(condition)

    def raise_(self, event: Event) -> None:
        """Count the event; send a notice if one is due and this writer won the write."""
        def change(state: ConditionState | None, now: datetime) -> tuple[ConditionState, str | None]:
            counted, due = on_event(state, event, now, self.interval)
            kind = ("more" if counted.announced else "opened") if due else None
            return counted, kind

        self._update(event.condition, change)
        self._remember_open(event.condition)

    def clear(self, condition: str) -> None:
        def change(state: ConditionState | None, now: datetime) -> tuple[ConditionState, str | None] | None:
            if state is None or not state.is_open:
                return None
            closed, due = on_clear(state, now)
            return closed, "recovered" if due else None

        self._update(condition, change)
        self._forget_open(condition)

    def review(self) -> None:
        """From the sweeper, at most once per interval per process: counted events not yet sent, and the
        silence. About two storage calls when nothing happens."""
        now = self.clock()
        with self._lock:
            if self._next_review is not None and now < self._next_review:
                return
            self._next_review = now + self.interval
        try:
            states = self.store.all()
            self._open_cache = (now, frozenset(s.condition for s, _ in states if s.is_open))
            for state, _ in states:
                if is_due(state, now, self.interval):
                    self._update(state.condition, self._flush)
            self._check_silence(now, next((s for s, _ in states if s.condition == SILENCE), None))
        except StorageUnavailableError as error:
            log.warning("operational notices not reviewed: %s", error.explanation)

    def _flush(self, state: ConditionState | None, now: datetime) -> tuple[ConditionState, str | None] | None:
        if state is None or not is_due(state, now, self.interval):
            return None
        return state, "more" if state.announced else "opened"

    def _check_silence(self, now: datetime, state: ConditionState | None) -> None:
        if self.silence_days <= 0:
            return
        newest = self.store.newest_arrival()
        if newest is None:
            return  # no lead yet: the silence is counted from the first one
        if now - newest >= timedelta(days=self.silence_days):
            if state is None or not state.is_open:
                self.raise_(Event(SILENCE, f"the newest lead arrived {_moment(newest)}."))
        elif state is not None and state.is_open:
            self.clear(SILENCE)

    # storage and sending
    def _update(self, condition: str, change: Callable[[ConditionState | None, datetime],
                                                       tuple[ConditionState, str | None] | None]) -> None:
        for _ in range(_CONFLICT_TRIES):
            loaded = self.store.load(condition)
            before, etag = loaded if loaded else (None, None)
            now = self.clock()
            result = change(before, now)
            if result is None:
                return
            after, kind = result
            written = sent(after, now) if kind and kind != "recovered" else after
            try:
                new_etag = self.store.save(written, etag)
            except ConcurrentUpdateError:
                continue  # another instance wrote first: decide again on what it wrote
            if kind:
                notice = build_notice(after, kind, now, self.console_url, self.silence_days, self.interval)
                self._deliver(notice, after, new_etag)
            return
        log.warning("operational notice state %s kept changing; this event is not counted", condition)

    def _deliver(self, notice: Notice, unsent: ConditionState, etag: str) -> None:
        failures = []
        for sender in self.senders:
            try:
                sender.send(notice)
            except DestinationError as error:
                failures.append(f"{sender.name}: {error.explanation}")
        log.warning("operational notice %s (%s): %s", notice.condition, notice.kind, notice.subject)
        if failures and len(failures) == len(self.senders):
            log.error("operational notice %s not sent (%s); the next review tries again", notice.condition,
                      "; ".join(failures))
            if notice.kind != "recovered":  # keep it due (the counts stay) for the next event or review
                with contextlib.suppress(ConcurrentUpdateError, StorageUnavailableError):
                    self.store.save(replace(unsent, last_sent_at=None), etag)

    # the worker's list of open conditions (for recoveries)
    def _open_conditions(self) -> frozenset[str]:
        now = self.clock()
        cached = self._open_cache
        if cached is None or now - cached[0] > _OPEN_CACHE:
            states = self.store.all()
            cached = (now, frozenset(s.condition for s, _ in states if s.is_open))
            self._open_cache = cached
        return cached[1]

    def _remember_open(self, condition: str) -> None:
        if self._open_cache is not None:
            self._open_cache = (self._open_cache[0], self._open_cache[1] | {condition})

    def _forget_open(self, condition: str) -> None:
        if self._open_cache is not None:
            self._open_cache = (self._open_cache[0], self._open_cache[1] - {condition})


def notify_safely(action: Callable[[], None], what: str) -> None:
    """A notice must never break delivery or the sweep: storage trouble or a bug here is only logged."""
    try:
        action()
    except StorageUnavailableError as error:
        log.warning("operational notice (%s) skipped: %s", what, error.explanation)
    except Exception as error:  # noqa: BLE001 - the notice is secondary to the lead
        log.error("operational notice (%s) failed (%s)", what, type(error).__name__)
