"""Finding (and removing) the queued messages of given leads.

Azure Queues cannot read or change a message without receiving it (peek sees only the first 32), so the
visible messages are received in batches of 32 and held invisible while the scan lasts: those of the
given leads are deleted (their lead is being erased: nothing is left to deliver), the others are made
visible again at once with their content unchanged. Receiving raises a message's dequeue count by one; a
message that reaches host.json's maxDequeueCount through this goes to the poison queue, whose handler
enqueues its lead again (leads/services/delivery.py requeue_poisoned): it is delayed, not lost. Invisible messages
(a retry's delay, a delivery under way) cannot be reached: retries hold only the lead's id, and a message
holding a copy of an erased lead finds the lead gone when it runs and is dropped (delivery.handle)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.queue import QueueClient

from leads.core.errors import StorageUnavailableError
from leads.core.messages import decode_message

_HIDE_SECONDS = 120  # longer than a scan of the most messages it reads
_MOST_MESSAGES = 5_000  # a backlog beyond this is a storage or worker outage: run forget again afterwards


@dataclass(frozen=True)
class Found:
    queue: str
    lead_id: str
    content: str


def messages_of(client: QueueClient, lead_ids: set[str], remove: bool) -> list[Found]:
    """The visible messages of these leads on this queue, deleted when `remove`. Raises StorageUnavailableError."""
    found: list[Found] = []
    held: list[Any] = []
    seen: set[str] = set()
    try:
        while len(seen) < _MOST_MESSAGES:
            batch = list(client.receive_messages(max_messages=32, visibility_timeout=_HIDE_SECONDS))
            fresh = [message for message in batch if message.id not in seen]
            if not fresh:
                break
            for message in fresh:
                seen.add(message.id)
                lead_id = _lead_id(message.content)
                if lead_id in lead_ids:
                    found.append(Found(client.queue_name, lead_id, str(message.content)))
                    if remove:
                        client.delete_message(message)
                        continue
                held.append(message)
    except ResourceNotFoundError:
        pass  # the queue does not exist (yet): nothing is queued
    except AzureError:
        raise StorageUnavailableError(f"Queue storage did not answer while reading {client.queue_name}.") from None
    finally:
        _release(client, held)
    return found


def _lead_id(content: object) -> str:
    try:
        return decode_message(str(content)).lead_id
    except (ValueError, KeyError, TypeError, AttributeError):
        return ""


def _release(client: QueueClient, messages: list[Any]) -> None:
    """Visible again at once; a message whose receipt expired is visible already."""
    for message in messages:
        try:
            client.update_message(message, visibility_timeout=0)
        except AzureError:
            continue
