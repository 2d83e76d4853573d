"""Delivery: claim the due destinations of a lead, send to them, record each answer as it comes, schedule
retries.

At most one send per claim: a destination is claimed (state `sending`, with a lease) by an ETag-conditional
write before it is called, so a queue message delivered twice, or two workers at once, find it claimed or
delivered and send nothing. Each destination's answer is recorded as soon as it comes (its own conditional
write, serialised within the worker), independently of the others. What remains is a window, not a
guarantee: a worker that dies (crash, timeout, storage lost for longer than the lease) between a call and
its record leaves a lease that runs out; the outbox row brings the lead back then and only that
destination is sent again. Whether a second send makes a duplicate depends on the destination (docs/destinations.md,
"What a re-send does")."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from leads.core import policy
from leads.core.breaker import CircuitBreakers
from leads.core.destination import Delivered, Destination
from leads.core.errors import (
    ConcurrentUpdateError,
    ConfigurationError,
    DestinationError,
    StorageUnavailableError,
    TransientDestinationError,
)
from leads.core.messages import DeliveryMessage, seconds_until
from leads.core.model import BLOCKED, DELIVERED, FAILED, SENDING, StoredLead, utcnow
from leads.core.notices import scrub
from leads.core.ports import LeadStore, Tombstones, Versioned, WorkQueue
from leads.core.settings import Settings
from leads.services.ops_notices import OpsNotices, notify_safely
from leads.telemetry import ATTEMPT_DURATION, DELIVERED_LATENCY, DELIVERIES, elapsed_ms, log_delivery, telemetry

log = logging.getLogger("leads.delivery")
_MAX_CONFLICTS = 5
_FIRST_STORAGE_WAIT = 0.5  # seconds; doubled up to _LONGEST_STORAGE_WAIT while storage does not answer
_LONGEST_STORAGE_WAIT = 5.0


@dataclass
class DeliveryReport:
    lead_id: str
    sent: dict[str, str] = field(default_factory=dict)  # destination -> resulting state
    note: str = ""


class DeliveryService:
    def __init__(self, store: LeadStore, queue: WorkQueue, destinations: Mapping[str, Destination], settings: Settings,
                 breakers: CircuitBreakers, clock: Callable[[], datetime] = utcnow,
                 sleep: Callable[[float], None] = time.sleep, notices: OpsNotices | None = None) -> None:
        self.notices = notices  # operational notices (blocked, failed for good, recovered); None: none
        self.store = store
        self.queue = queue
        self.destinations = destinations
        self.settings = settings
        self.breakers = breakers
        self.clock = clock
        self.sleep = sleep
        self.lease = timedelta(seconds=settings.delivery_lease_seconds)  # longer than the slowest send
        self.grace = timedelta(seconds=settings.outbox_grace_seconds)  # how late a retry message may be
        # Forgotten people (runtime.py): a lead stored while its tombstone could not be read after the write
        # (ingest answered 503, or an import failed) is erased here before anything is sent.
        self.tombstones: Tombstones | None = None

    def handle(self, message: DeliveryMessage) -> DeliveryReport:
        """Deliver what is due. Raises StorageUnavailableError (the host retries the message)."""
        # Continues the trace of whoever enqueued the message (ingest, a retry, the sweeper).
        with telemetry().span("lead.deliver", parent=message.traceparent, kind="consumer",
                              lead_id=message.lead_id) as span:
            report = self._handle(message)
            span.set(destinations=len(report.sent), note=report.note)
            return report

    def _handle(self, message: DeliveryMessage) -> DeliveryReport:
        current: Versioned | None = (Versioned(message.snapshot, message.etag) if message.snapshot
                                     else self.store.load(message.lead_id))
        for _ in range(_MAX_CONFLICTS):
            if current is None:
                # Forgotten or purged: its outbox row would bring it back every few minutes, for ever (defect 7).
                dropped = message.snapshot is None and self.store.drop_orphan_outbox(message.lead_id)
                log.warning("lead %s: not found; nothing to deliver%s", message.lead_id,
                            " (its outbox row deleted)" if dropped else "")
                return DeliveryReport(message.lead_id, note="not found")
            if self.tombstones is not None and self.tombstones.forgotten(current.stored.lead.customer.email):
                self.tombstones.erase(current.stored.id)
                log.info("lead %s: its person was forgotten; erased, nothing sent", message.lead_id)
                return DeliveryReport(message.lead_id, note="forgotten")
            now = self.clock()
            stored = policy.reconcile(current.stored, self.settings.routing, now, self.settings.retry_delays)
            stored = policy.settle_crashes(stored, now, self.settings.retry_delays)
            due = policy.due_destinations(stored, now)
            if not due:
                if stored != current.stored:  # the configuration changed what this lead needs, or a crash loop ended
                    self._save(stored, current.etag, current.stored)
                    self._tell_operators(stored, _newly_failed(current.stored, stored))
                elif stored.finished and message.snapshot is None:
                    self._forget_outbox(stored, current.etag)
                elif message.snapshot is None:  # a wake-up early or in vain: the outbox row says when, afresh
                    with contextlib.suppress(ConcurrentUpdateError):
                        self._save(stored, current.etag, current.stored)
                return DeliveryReport(message.lead_id, note="nothing due")
            claimed = policy.claim(stored, due, now, self.lease, self.settings.retry_delays)
            try:
                etag = self.store.save(claimed, current.etag, outbox_due=now + self.lease + self.grace,
                                       previous=current.stored)
                self._tell_operators(claimed, _newly_failed(current.stored, claimed))  # a crash loop ended
                break
            except ConcurrentUpdateError:
                current = self.store.load(message.lead_id)
        else:
            raise ConcurrentUpdateError(f"Lead {message.lead_id} kept changing; the message will be retried.")

        recorder = _Recorder(self, claimed, etag, deadline=now + self.lease * 0.9)
        # In parallel: a slow CRM must not hold up the e-mail. Each answer is recorded as it comes.
        with ThreadPoolExecutor(max_workers=len(due), thread_name_prefix="deliver") as pool:
            # Each in a copy of this context: the telemetry span of this delivery stays the parent.
            futures = [pool.submit(contextvars.copy_context().run, self._send_and_record, recorder, name)
                       for name in due]
        unrecorded = [future.exception() for future in futures if future.exception() is not None]
        finished = recorder.latest
        report = DeliveryReport(message.lead_id, {name: finished.deliveries[name].state for name in due})
        log.info("lead %s: %s", finished.id, ", ".join(f"{k}={v}" for k, v in report.sent.items()))
        self._tell_operators(finished, due)
        if unrecorded:
            # The lease runs out, the outbox row brings the lead back: only these destinations are re-sent.
            raise StorageUnavailableError(
                f"Lead {message.lead_id}: {len(unrecorded)} answer(s) could not be recorded; those destinations are "
                "sent again once their lease ends.")
        self._schedule_retry(finished)
        return report

    def _tell_operators(self, finished: StoredLead, names: list[str]) -> None:
        """A destination newly blocked, a lead failed for good, or a delivery (which clears both)."""
        notices = self.notices
        if notices is None:
            return
        for name in names:
            state = finished.deliveries[name]
            before = state.history[-2]["outcome"] if len(state.history) > 1 else ""
            sentence = scrub(state.last_error, finished.lead)
            if state.state == BLOCKED and before != BLOCKED:  # an hourly re-check of a blocked lead is no news
                notify_safely(functools.partial(notices.blocked, name, finished.id, sentence), "blocked")
            elif state.state == FAILED:
                notify_safely(functools.partial(notices.failed, name, finished.id, sentence), "failed")
            elif state.state == DELIVERED:
                notify_safely(functools.partial(notices.delivered, name), "delivered")

    def _send_and_record(self, recorder: _Recorder, name: str) -> None:
        tel, started = telemetry(), time.monotonic()
        with tel.span(f"lead.send {name}", lead_id=recorder.claimed.id, destination=name) as span:
            outcome = self._send_one(name, recorder.claimed)
            now = self.clock()
            # The state this answer leads to, as recorded just below (the same pure function).
            state = policy.apply_outcome(recorder.claimed.deliveries[name], outcome, now,
                                         self.settings.retry_delays).state
            duration = elapsed_ms(started, time.monotonic())
            span.set(outcome=state, duration_ms=duration)
            tel.count(DELIVERIES, destination=name, outcome=state)
            tel.measure(ATTEMPT_DURATION, duration, destination=name, outcome=state)
            if state == DELIVERED:
                latency = (now - recorder.claimed.received_at).total_seconds()
                tel.measure(DELIVERED_LATENCY, max(0.0, latency), destination=name)
            log_delivery(recorder.claimed.id, name, state, duration)
            recorder.record(name, outcome)

    def _send_one(self, name: str, stored: StoredLead) -> policy.Outcome:
        now = self.clock()
        open_reason = self.breakers.open_reason(name, now)
        if open_reason:
            return ConfigurationError(f"Not attempted (circuit open after a configuration error): {open_reason}")
        try:
            outcome: policy.Outcome = self.destinations[name].deliver(stored)
        except DestinationError as error:
            outcome = error
        except Exception as error:  # noqa: BLE001 - a bug in one destination must not stop the others
            # The frames only: an exception's message can quote lead values (personal data).
            log.error("lead %s: %s failed unexpectedly (%s) at\n%s", stored.id, name, type(error).__name__,
                      "".join(traceback.format_tb(error.__traceback__)))
            outcome = TransientDestinationError(
                f"{name} failed unexpectedly ({type(error).__name__}); will retry. See the app's logs.")
        if isinstance(outcome, ConfigurationError):
            self.breakers.trip(name, outcome.explanation, now)
        elif not isinstance(outcome, DestinationError):
            self.breakers.reset(name)
        return outcome

    def _save(self, stored: StoredLead, etag: str, previous: StoredLead) -> str:
        due = policy.next_due(stored)
        outbox_due = None if due is None else max(due, self.clock()) + self.grace
        return self.store.save(stored, etag, outbox_due=outbox_due, previous=previous)

    def _forget_outbox(self, stored: StoredLead, etag: str) -> None:
        """A finished lead brought back by the sweeper or a stray message: make sure no outbox row is left to
        bring it back again (a row written by an older version), on the lead's ETag so a replay meanwhile
        keeps its row."""
        with contextlib.suppress(ConcurrentUpdateError):
            self.store.save(stored, etag, outbox_due=None, previous=stored)

    def _schedule_retry(self, stored: StoredLead) -> None:
        due = policy.next_due(stored)
        if due is None or any(s.state == SENDING for s in stored.deliveries.values()):
            return
        try:
            self.queue.send(DeliveryMessage(stored.id, traceparent=telemetry().traceparent()),
                            delay_seconds=seconds_until(due, self.clock()))
        except StorageUnavailableError:
            # The outbox row (due at the same time) brings the lead back through the sweeper.
            log.warning("lead %s: retry not enqueued; the sweeper will pick it up", stored.id)


def _newly_failed(before: StoredLead, after: StoredLead) -> list[str]:
    return [name for name, state in after.deliveries.items()
            if state.state == FAILED and (name not in before.deliveries or before.deliveries[name].state != FAILED)]


class _Recorder:
    """Records each destination's answer on its own as it comes, with the latest ETag this worker holds.
    A lock serialises the writes of one worker; another writer (a replay, a second worker after a lease ran
    out) shows up as a conflict: re-read, and keep this answer only for a destination still in this claim
    (or a delivery, which is never thrown away)."""

    def __init__(self, service: DeliveryService, claimed: StoredLead, etag: str, deadline: datetime) -> None:
        self.service = service
        self.claimed = claimed
        self.latest = claimed
        self.etag = etag
        self.deadline = deadline  # storage trouble is waited out until shortly before the lease ends
        self._lock = threading.Lock()

    def record(self, name: str, outcome: policy.Outcome) -> None:
        with self._lock:
            self._record(name, outcome)

    def _record(self, name: str, outcome: policy.Outcome) -> None:
        service, conflicts, wait, stale = self.service, 0, _FIRST_STORAGE_WAIT, False
        while True:
            try:
                if stale:
                    fresh = service.store.load(self.claimed.id)
                    if fresh is None:
                        return
                    self.latest, self.etag, stale = fresh.stored, fresh.etag, False
                result = self._apply(name, outcome)
                if result is None:
                    return
                self.etag = service._save(result, self.etag, previous=self.latest)
                self.latest = result
                return
            except ConcurrentUpdateError:
                conflicts += 1
                if conflicts >= _MAX_CONFLICTS:
                    raise
                stale = True
            except StorageUnavailableError as error:
                remaining = (self.deadline - service.clock()).total_seconds()
                if remaining <= 0:
                    log.error("lead %s: the answer of %s could not be recorded (%s); it will be sent again after "
                              "its lease", self.claimed.id, name, error.explanation)
                    raise
                service.sleep(min(wait, remaining))  # the last try comes at the deadline itself
                wait = min(wait * 2, _LONGEST_STORAGE_WAIT)

    def _apply(self, name: str, outcome: policy.Outcome) -> StoredLead | None:
        """The lead with this answer applied, or None when there is nothing (more) to write."""
        current = self.latest.deliveries.get(name)
        mine = self.claimed.deliveries[name]
        delivered = isinstance(outcome, Delivered)
        if current != mine and current is not None and current.state == DELIVERED and delivered:
            return None  # already written: a write whose answer was lost (storage cut mid-response) went through
        if current != mine and not (delivered and current is not None):
            log.warning("lead %s: %s was taken over meanwhile (a replay, or its lease ran out); this answer "
                        "is not recorded", self.claimed.id, name)
            return None
        service = self.service
        return policy.record(self.latest, {name: outcome}, service.clock(), service.settings.retry_delays)

