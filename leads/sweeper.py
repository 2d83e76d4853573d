"""The outbox sweeper (a timer): nothing stays undelivered because a message was lost.

It moves leads held while storage was down (the fallback table, this instance's disk spool: recovery.py)
into the main table, and enqueues every lead whose outbox row is due:
stored but never enqueued, a retry whose message was lost, a worker that died holding a lease."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from leads.errors import StorageUnavailableError
from leads.ingest import IngestService
from leads.messages import DeliveryMessage
from leads.model import utcnow
from leads.ports import WorkQueue
from leads.recovery import Recovery
from leads.spool import Spool

log = logging.getLogger("leads.sweeper")
REQUEUE_AGAIN_AFTER = timedelta(minutes=5)


class Outbox(Protocol):
    def due_work(self, now: datetime, limit: int = 100) -> list[str]: ...
    def postpone(self, lead_id: str, due: datetime) -> None: ...


@dataclass
class SweepReport:
    respooled: int = 0
    requeued: int = 0


class Sweeper:
    def __init__(self, outbox: Outbox, queue: WorkQueue, ingest: IngestService, spool: Spool,
                 clock: Callable[[], datetime] = utcnow, recovery: Recovery | None = None) -> None:
        self.outbox = outbox
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
            for lead_id in self.outbox.due_work(now):
                self.queue.send(DeliveryMessage(lead_id))
                self.outbox.postpone(lead_id, now + REQUEUE_AGAIN_AFTER)
                report.requeued += 1
        except StorageUnavailableError as error:
            log.warning("sweep stopped: %s", error.explanation)
        if report.respooled or report.requeued:
            log.info("sweep: %d re-ingested from disk, %d re-enqueued", report.respooled, report.requeued)
        return report

    def recover_held_leads(self) -> int:
        """Leads held in the fallback table, then this instance's spool, into the main table."""
        return self.recovery.move_held() + self.recovery.drain_spool()
