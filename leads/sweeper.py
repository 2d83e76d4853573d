"""The outbox sweeper (a timer): nothing stays undelivered because a message was lost.

It moves leads held while storage was down (the fallback table, this instance's disk spool: recovery.py)
into the main table, and enqueues every lead whose outbox row is due:
stored but never enqueued, a retry whose message was lost, a worker that died holding a lease."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from leads.errors import StorageUnavailableError
from leads.ingest import IngestService
from leads.messages import DeliveryMessage
from leads.model import utcnow
from leads.ports import WorkQueue
from leads.recovery import Recovery
from leads.spool import Spool

log = logging.getLogger("leads.sweeper")
REQUEUE_AGAIN_AFTER = timedelta(minutes=5)  # the default of LEADS_REQUEUE_AGAIN_SECONDS


class DueItem(Protocol):
    @property
    def lead_id(self) -> str: ...


class Outbox(Protocol):
    def due_work(self, now: datetime, limit: int = 100) -> Sequence[DueItem]: ...
    def postpone(self, item: Any, due: datetime) -> bool: ...


@dataclass
class SweepReport:
    respooled: int = 0
    requeued: int = 0


class Sweeper:
    def __init__(self, outbox: Outbox, queue: WorkQueue, ingest: IngestService, spool: Spool,
                 clock: Callable[[], datetime] = utcnow, recovery: Recovery | None = None,
                 requeue_again: timedelta = REQUEUE_AGAIN_AFTER, review: Callable[[], None] | None = None) -> None:
        self.review = review  # the operational notices' review (it rate-limits itself to once an interval)
        self.outbox = outbox
        self.requeue_again = requeue_again
        self.queue = queue
        self.ingest = ingest
        self.spool = spool
        self.clock = clock
        self.recovery = recovery or Recovery(ingest, spool, ingest.fallback)

    def sweep(self) -> SweepReport:
        report = SweepReport()
        report.respooled = self.recover_held_leads()
        now = self.clock()
        try:
            for item in self.outbox.due_work(now):
                # Postponed first, on the ETag it was read with: a row a worker finished (deleted) or moved
                # meanwhile is skipped, never re-created, and two sweepers never both enqueue it.
                if not self.outbox.postpone(item, now + self.requeue_again):
                    continue
                self.queue.send(DeliveryMessage(item.lead_id))
                report.requeued += 1
        except StorageUnavailableError as error:
            log.warning("sweep stopped: %s", error.explanation)
        if report.respooled or report.requeued:
            log.info("sweep: %d re-ingested from disk, %d re-enqueued", report.respooled, report.requeued)
        if self.review is not None:
            self.review()
        return report

    def recover_held_leads(self) -> int:
        """Leads held in the fallback table, then this instance's spool, into the main table."""
        return self.recovery.move_held() + self.recovery.drain_spool()
