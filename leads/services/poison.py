"""Messages the host gave up on, read by the sweeper instead of a queue trigger on `<queue>-poison`.

A trigger would poll that queue every maxPollingInterval for as long as an instance is up, for a queue that
is empty almost always; the sweeper asks once per run whether it holds anything (one metadata read) and
reads it only then. Each message's lead is enqueued again after LEADS_REQUEUE_AGAIN_SECONDS and nothing is
marked failed: the lead's own state decides what is still due, so a live claim or a delivered destination
is never overridden (a destination whose workers keep dying fails by its state: policy.settle_crashes).
The poison message is deleted only after that enqueue: a crash in between enqueues the lead twice, which
the ETag claims make harmless. If the enqueue fails, the message becomes visible again for a later sweep."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from leads.core.messages import DeliveryMessage
from leads.core.ports import WorkQueue
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


class PoisonRequeue:
    def __init__(self, poison: PoisonQueue[Any], queue: WorkQueue, quarantine: Quarantine, delay_seconds: int) -> None:
        self.poison = poison
        self.queue = queue
        self.quarantine = quarantine
        self.delay_seconds = delay_seconds

    def requeue(self, limit: int = BATCH) -> int:
        """Enqueue the lead of each poison message again; returns how many messages left the poison queue.
        Raises StorageUnavailableError when the queue (or, for an unreadable message, the table) is down."""
        if not self.poison.holds_messages():
            return 0
        done = 0
        for message in self.poison.take(limit):
            decoded = decode_or_quarantine(message.body, self.quarantine, self.poison.name)
            if decoded is not None:
                self.queue.send(DeliveryMessage(decoded.lead_id, traceparent=decoded.traceparent),
                                delay_seconds=self.delay_seconds)
                log.error("lead %s: its delivery message kept failing (see the errors above) and went to the "
                          "poison queue; enqueued again in %d s", decoded.lead_id, self.delay_seconds)
            self.poison.remove(message)
            done += 1
        return done
