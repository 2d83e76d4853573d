"""Delivery: claim the due destinations of a lead, send to them, record what happened, schedule retries.

Exactly once per destination: a destination is claimed (state `sending`, with a lease) by an
ETag-conditional write before it is called, and its result recorded by another. A queue message
delivered twice finds the destination claimed or delivered and sends nothing. A worker that dies after
claiming leaves a lease that runs out; the outbox row brings the lead back then."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from leads import policy
from leads.breaker import CircuitBreakers
from leads.destinations.base import Destination
from leads.errors import (
    ConcurrentUpdateError,
    ConfigurationError,
    DestinationError,
    StorageUnavailableError,
    TransientDestinationError,
)
from leads.messages import DeliveryMessage, seconds_until
from leads.model import SENDING, StoredLead, utcnow
from leads.ports import LeadStore, Versioned, WorkQueue
from leads.settings import Settings

log = logging.getLogger("leads.delivery")
LEASE = timedelta(minutes=10)  # longer than the slowest round of sends (timeouts included)
GRACE = timedelta(minutes=2)  # how late a retry message may be before the sweeper re-sends it
_MAX_CONFLICTS = 5


@dataclass
class DeliveryReport:
    lead_id: str
    sent: dict[str, str] = field(default_factory=dict)  # destination -> resulting state
    note: str = ""


class DeliveryService:
    def __init__(self, store: LeadStore, queue: WorkQueue, destinations: Mapping[str, Destination], settings: Settings,
                 breakers: CircuitBreakers, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.queue = queue
        self.destinations = destinations
        self.settings = settings
        self.breakers = breakers
        self.clock = clock

    def handle(self, message: DeliveryMessage) -> DeliveryReport:
        """Deliver what is due. Raises StorageUnavailableError (the host retries the message)."""
        current: Versioned | None = (Versioned(message.snapshot, message.etag) if message.snapshot
                                     else self.store.load(message.lead_id))
        for _ in range(_MAX_CONFLICTS):
            if current is None:
                log.warning("lead %s: not found; nothing to deliver", message.lead_id)
                return DeliveryReport(message.lead_id, note="not found")
            stored = policy.reconcile(current.stored, self.settings.crm_flags, self.settings.forward_test_leads)
            now = self.clock()
            due = policy.due_destinations(stored, now)
            if not due:
                if stored is not current.stored:  # the configuration changed what this lead needs
                    self._save(stored, current.etag)
                return DeliveryReport(message.lead_id, note="nothing due")
            claimed = policy.claim(stored, due, now, LEASE)
            try:
                etag = self.store.save(claimed, current.etag, outbox_due=now + LEASE + GRACE)
                break
            except ConcurrentUpdateError:
                current = self.store.load(message.lead_id)
        else:
            raise ConcurrentUpdateError(f"Lead {message.lead_id} kept changing; the message will be retried.")

        outcomes = self._send_all(claimed, due)
        finished = self._record(claimed, etag, outcomes)
        report = DeliveryReport(message.lead_id, {name: finished.deliveries[name].state for name in due})
        log.info("lead %s: %s", finished.id, ", ".join(f"{k}={v}" for k, v in report.sent.items()))
        self._schedule_retry(finished)
        return report

    def _send_all(self, stored: StoredLead, names: list[str]) -> dict[str, policy.Outcome]:
        # In parallel: a slow CRM must not hold up the e-mail.
        with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="deliver") as pool:
            futures = {name: pool.submit(self._send_one, name, stored) for name in names}
            return {name: future.result() for name, future in futures.items()}

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

    def _record(self, claimed: StoredLead, etag: str, outcomes: Mapping[str, policy.Outcome]) -> StoredLead:
        result = policy.record(claimed, outcomes, self.clock(), self.settings.retry_delays)
        for _ in range(_MAX_CONFLICTS):
            try:
                self._save(result, etag)
                return result
            except ConcurrentUpdateError:
                # Someone (a replay, a reconfiguration) changed the lead meanwhile: re-apply our results
                # to the destinations we still hold.
                latest = self.store.load(claimed.id)
                if latest is None:
                    return result
                mine = {name: result.deliveries[name] for name in outcomes
                        if latest.stored.deliveries.get(name) == claimed.deliveries[name]}
                merged = {**latest.stored.deliveries, **mine}
                result, etag = StoredLead(claimed.id, claimed.received_at, claimed.lead, merged), latest.etag
        raise ConcurrentUpdateError(f"Lead {claimed.id} kept changing; its delivery record will be retried.")

    def _save(self, stored: StoredLead, etag: str) -> str:
        due = policy.next_due(stored)
        return self.store.save(stored, etag, outbox_due=None if due is None else max(due, self.clock()) + GRACE)

    def _schedule_retry(self, stored: StoredLead) -> None:
        due = policy.next_due(stored)
        if due is None or any(s.state == SENDING for s in stored.deliveries.values()):
            return
        try:
            self.queue.send(DeliveryMessage(stored.id), delay_seconds=seconds_until(due, self.clock()))
        except StorageUnavailableError:
            # The outbox row (due at the same time) brings the lead back through the sweeper.
            log.warning("lead %s: retry not enqueued; the sweeper will pick it up", stored.id)

    def give_up(self, message: DeliveryMessage, reason: str) -> None:
        """A poison message: every unfinished destination of the lead fails with `reason`."""
        for _ in range(_MAX_CONFLICTS):
            current = self.store.load(message.lead_id)
            if current is None:
                return
            try:
                self.store.save(policy.give_up(current.stored, reason), current.etag, outbox_due=None)
                log.error("lead %s: marked failed after a poison message", message.lead_id)
                return
            except ConcurrentUpdateError:
                continue
