"""The operational notices service: stores each condition's state ETag-conditionally (only the writer whose
write won sends, so two instances never send the same notice) and sends the notices that the decisions in
leads/core/notices.py call for. Plain Python over the NoticeStore and NoticeSender ports."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from leads.core.errors import ConcurrentUpdateError, DestinationError, StorageUnavailableError
from leads.core.model import utcnow
from leads.core.notices import (
    BLOCKED_PREFIX,
    FAILED_PREFIX,
    NEEDS_PERSON_PREFIX,
    SILENCE,
    ConditionState,
    Event,
    Notice,
    NoticeSender,
    NoticeStore,
    build_notice,
    is_due,
    moment_text,
    on_clear,
    on_event,
    sent,
)

log = logging.getLogger("leads.ops_notices")
_CONFLICT_TRIES = 5
_OPEN_CACHE = timedelta(minutes=5)  # how long a worker trusts its list of open conditions (recoveries)


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

    def needs_person(self, what: str, lead_id: str, sentence: str) -> None:
        """Something only a person can settle: a held lead storage refuses (`held`), a lead whose delivery
        keeps failing before it can claim (`outbox`). `sentence` carries no lead data."""
        self.raise_(Event(NEEDS_PERSON_PREFIX + what, sentence, lead_id))

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
                self.raise_(Event(SILENCE, f"the newest lead arrived {moment_text(newest)}."))
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
