"""A queue message that is not a delivery message is recorded as a rejected request, not retried."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from leads.core.messages import DeliveryMessage, decode_message
from leads.core.model import utcnow
from leads.core.ports import RejectedRequest

log = logging.getLogger("leads.queue")


class Quarantine(Protocol):
    def quarantine(self, rejected: RejectedRequest) -> None: ...


def decode_or_quarantine(body: bytes, quarantine: Quarantine, queue: str, now: datetime | None = None) \
        -> DeliveryMessage | None:
    try:
        return decode_message(body.decode("utf-8"))
    except (ValueError, KeyError, TypeError, AttributeError):
        log.error("unreadable message on %s; kept in the quarantine table", queue)
        # If storage is down this raises: the host retries and the message stays on the queue meanwhile.
        quarantine.quarantine(RejectedRequest(now or utcnow(), "unreadable_queue_message", 0,
                                              f"A message on {queue} is not a delivery message.",
                                              "QUEUE", queue, body))
        return None
