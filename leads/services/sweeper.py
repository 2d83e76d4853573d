"""The outbox sweeper (a timer): nothing stays undelivered because a message was lost.

It moves leads held while storage was down (the fallback table, this instance's disk spool: recovery.py)
into the main table, enqueues every lead whose outbox row is due (stored but never enqueued, a retry whose
message was lost, a worker that died holding a lease), and settles poison messages (poison.py).

The one scheduler: the outbox row alone decides when a lead is next worked on (`DueAt`), and whether a
wake-up is already on its way (`EnqueuedUntil`, written ETag-conditionally with the wake-up: two sweepers
never both enqueue it). A queue message is only a wake-up; the sweeper enqueues again only once the last
wake-up ran out, so there is one chain of work per lead whatever fails. `Wakeups` counts the sweeper's
wake-ups since the lead last changed: a delivery that keeps failing before it can claim (a row it cannot read,
say) changes nothing, so after STUCK_AFTER of them the row says so (`Stuck`), the operator gets one notice
(`person:outbox`), and the wake-ups slow down (doubling up to STUCK_LONGEST), never stop.
Every LEADS_SWEEP_SCHEDULE (5 minutes): a lost enqueue is retried at most LEADS_OUTBOX_GRACE_SECONDS plus
one period after the lead was stored. With nothing to do a run costs one table query, one queue metadata
read and, with LEADS_FALLBACK_STORAGE, one query there (docs/deploy.md, cost)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from leads.core.errors import StorageUnavailableError
from leads.core.messages import DeliveryMessage
from leads.core.model import utcnow
from leads.core.ports import WorkQueue
from leads.services.ingest import IngestService
from leads.services.poison import PoisonRequeue
from leads.services.recovery import Recovery
from leads.storage.spool import Spool
from leads.telemetry import elapsed_ms, log_sweep, telemetry

log = logging.getLogger("leads.sweeper")
REQUEUE_AGAIN_AFTER = timedelta(minutes=5)  # the default of LEADS_REQUEUE_AGAIN_SECONDS
STUCK_AFTER = 3  # wake-ups in a row that changed nothing: the lead is stuck (state on its row, one notice)
STUCK_LONGEST = timedelta(hours=1)


class DueItem(Protocol):
    @property
    def lead_id(self) -> str: ...
    @property
    def wakeups(self) -> int: ...


class Outbox(Protocol):
    def due_work(self, now: datetime, limit: int = 100) -> Sequence[DueItem]: ...
    def postpone(self, item: Any, due: datetime, stuck: str = "") -> bool: ...


@dataclass
class SweepReport:
    respooled: int = 0
    requeued: int = 0
    poisoned: int = 0
    due: int = 0


class Sweeper:
    def __init__(self, outbox: Outbox, queue: WorkQueue, ingest: IngestService, spool: Spool,
                 clock: Callable[[], datetime] = utcnow, recovery: Recovery | None = None,
                 requeue_again: timedelta = REQUEUE_AGAIN_AFTER, poisoned: PoisonRequeue | None = None,
                 review: Callable[[], None] | None = None,
                 notify: Callable[[str, str], None] | None = None) -> None:
        self.notify = notify  # notify(lead_id, sentence): a stuck lead (OpsNotices.needs_person); None: logged only
        self.review = review  # the operational notices' review (it rate-limits itself to once an interval)
        self.outbox = outbox
        self.poisoned = poisoned
        self.requeue_again = requeue_again
        self.queue = queue
        self.ingest = ingest
        self.spool = spool
        self.clock = clock
        self.recovery = recovery or Recovery(ingest, spool, ingest.fallback)

    def sweep(self) -> SweepReport:
        started, tel = time.monotonic(), telemetry()
        with tel.span("leads.sweep") as span:
            report = self._sweep()
            span.set(due=report.due, requeued=report.requeued, respooled=report.respooled)
        log_sweep(report.due, report.requeued, elapsed_ms(started, time.monotonic()))
        return report

    def _sweep(self) -> SweepReport:
        report = SweepReport()
        report.respooled = self.recover_held_leads()
        now = self.clock()
        try:
            for item in self.outbox.due_work(now):
                report.due += 1
                wakeups = item.wakeups + 1
                stuck = stuck_sentence(item.lead_id, wakeups) if wakeups >= STUCK_AFTER else ""
                # The wake-up noted first, on the ETag it was read with: a row a worker finished (deleted) or
                # moved meanwhile is skipped, never re-created, and two sweepers never both enqueue it.
                if not self.outbox.postpone(item, now + self.wake_up_lease(wakeups), stuck):
                    continue
                self.queue.send(DeliveryMessage(item.lead_id, traceparent=telemetry().traceparent()))
                report.requeued += 1
                if wakeups == STUCK_AFTER:
                    log.error("%s", stuck)
                    if self.notify is not None:
                        self.notify(item.lead_id, stuck)
        except StorageUnavailableError as error:
            log.warning("sweep stopped: %s", error.explanation)
        report.poisoned = self.requeue_poisoned()
        if report.respooled or report.requeued:
            log.info("sweep: %d re-ingested from disk, %d re-enqueued", report.respooled, report.requeued)
        if self.review is not None:
            self.review()
        return report

    def wake_up_lease(self, wakeups: int) -> timedelta:
        """How long a wake-up has before the sweeper may send another: LEADS_REQUEUE_AGAIN_SECONDS, doubling
        once a lead is stuck, up to STUCK_LONGEST."""
        if wakeups < STUCK_AFTER:
            return self.requeue_again
        longer: timedelta = self.requeue_again * 2 ** (wakeups - STUCK_AFTER + 1)
        return min(longer, max(STUCK_LONGEST, self.requeue_again))

    def requeue_poisoned(self) -> int:
        if self.poisoned is None:
            return 0
        try:
            return self.poisoned.requeue()
        except StorageUnavailableError as error:
            log.warning("poison queue not read: %s", error.explanation)
            return 0

    def recover_held_leads(self) -> int:
        """Leads held in the fallback table, then this instance's spool, into the main table."""
        return self.recovery.move_held() + self.recovery.drain_spool()


def stuck_sentence(lead_id: str, wakeups: int) -> str:
    return (f"Lead {lead_id} was woken {wakeups} times and its delivery did not get as far as claiming a destination "
            "(its row could not be read or written: see the app's logs for lead.deliver errors). It is kept and woken "
            "less often until it moves; check it with `python -m leads show " + lead_id + "`.")
