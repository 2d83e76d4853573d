"""The queue trigger of the delivery work queue. Its poison queue has no trigger: the sweeper reads it
(leads/services/poison.py), so an instance does not poll a queue that is almost always empty."""

from __future__ import annotations

import logging

import azure.functions as func

from leads.core.settings import binding_queue_name

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger("leads.queue")
QUEUE = binding_queue_name()


@bp.queue_trigger(arg_name="msg", queue_name=QUEUE, connection="AzureWebJobsStorage")
def deliver_lead(msg: func.QueueMessage) -> None:
    """Raises on storage errors so the host retries; a retry backoff of hours is the app's own."""
    from leads.runtime import delivery, runtime
    from leads.services.unreadable import decode_or_quarantine

    message = decode_or_quarantine(msg.get_body(), runtime().table, QUEUE)
    if message is not None:
        delivery().handle(message)

