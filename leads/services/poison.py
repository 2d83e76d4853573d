"""Messages the host gave up on, read by the sweeper instead of a queue trigger on `<queue>-poison`.

A trigger would poll that queue every maxPollingInterval for as long as an instance is up, for a queue that
is empty almost always; the sweeper asks once per run whether it holds anything (one metadata read) and
reads it only then. A queue message is only a wake-up: the lead's outbox row decides when it is next worked
on (leads/services/sweeper.py). So a poison message is dropped once its outbox row is safe: the lead is gone
or finished (nothing to do), or its outbox row wakes it within LEADS_REQUEUE_AGAIN_SECONDS (the sweeper, one
chain), or, when the row is missing or due later, it is written first, due now (the failed wake-up was for
now). Nothing is marked failed and nothing is enqueued here: another message would be a second chain of work
beside the sweeper's (defect 8: chains multiplied at every sweep).
If the table does not answer, the message stays for a later sweep."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from leads.core.errors import ConcurrentUpdateError, StorageUnavailableError
from leads.core.model import utcnow
from leads.core.ports import LeadStore, WorkQueue
from leads.services.unreadable import Quarantine, decode_or_quarantine

log = logging.getLogger("leads.poison")
BATCH = 32  # the most one receive returns


class PoisonedMessage(Protocol):
    @property
    def body(self) -> bytes: ...


Message = TypeVar("Message", bound=PoisonedMessage)


class PoisonQueue(Protocol[Message]):
    @property
    def name(self) -> str: ...
    def holds_messages(self) -> bool: ...
    def take(self, limit: int) -> Sequence[Message]: ...
    def remove(self, message: Message) -> None: ...


class LeadsTable(Quarantine, LeadStore, Protocol):
    """The leads table as the poison handling uses it (leads/storage/table_store.py LeadTable)."""


class PoisonRequeue:
    def __init__(self, poison: PoisonQueue[Any], queue: WorkQueue, table: LeadsTable, delay_seconds: int,
                 clock: Callable[[], datetime] = utcnow) -> None:
        """`table`: the leads table (an unreadable message is quarantined there; the outbox row is made safe
        there). `delay_seconds` (LEADS_REQUEUE_AGAIN_SECONDS): an outbox row due within it is safe as it is."""
        self.poison = poison
        self.queue = queue  # kept for the callers' sake: nothing is enqueued here any more
        self.quarantine = table
        self.store = table
        self.delay_seconds = delay_seconds
        self.clock = clock

    def requeue(self, limit: int = BATCH) -> int:
        """Enqueue the lead of each poison message again; returns how many messages left the poison queue.
        Raises StorageUnavailableError when the queue (or, for an unreadable message, the table) is down."""
        if not self.poison.holds_messages():
            return 0
        done = 0
        for message in self.poison.take(limit):
            decoded = decode_or_quarantine(message.body, self.quarantine, self.poison.name)
            if decoded is not None:
                log.error("lead %s: its delivery message kept failing (see the errors above) and went to the poison "
                          "queue; dropped once its outbox row is safe (that row wakes it again)", decoded.lead_id)
                self._make_outbox_safe(decoded.lead_id)
            self.poison.remove(message)
            done += 1
        return done

    def _make_outbox_safe(self, lead_id: str) -> None:
        """Raises StorageUnavailableError when the table does not answer (the message stays)."""
        try:
            current = self.store.load(lead_id)
        except ValueError:  # not a lead id: nothing to wake
            return
        except Exception as error:  # a row it cannot read: the outbox row still wakes it (and counts)
            if isinstance(error, StorageUnavailableError):
                raise
            log.error("lead %s: its row cannot be read (%s); its outbox row keeps waking it", lead_id,
                      type(error).__name__)
            return
        if current is None:
            self.store.drop_orphan_outbox(lead_id)
            return
        if current.stored.finished:
            return
        now = self.clock()
        due = self.store.outbox_due(lead_id)
        if due is not None and due <= now + timedelta(seconds=self.delay_seconds):
            return  # the row wakes it soon enough
        # No row (a previous version's loss), or one due much later: the wake-up that failed was meant for now.
        with contextlib.suppress(ConcurrentUpdateError):  # changed meanwhile: whoever changed it wrote the row
            self.store.save(current.stored, current.etag, outbox_due=now, previous=current.stored)
