"""The Azure Queues adapter: delivery work, with an optional delay (the app's own retry backoff)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient, QueueServiceClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from leads.core.errors import StorageUnavailableError
from leads.core.messages import DeliveryMessage

MAX_VISIBILITY_SECONDS = 7 * 24 * 3600  # the service's limit on a message's initial invisibility
POISON_LEASE_SECONDS = 300  # a poison message taken but not requeued (storage trouble) is back after this


class WorkQueue:
    def __init__(self, service: QueueServiceClient, queue: str) -> None:
        # The Functions host decodes base64 (host.json messageEncoding): encode the same way. The policies
        # must be given here: get_queue_client() does not inherit them from the service client.
        codec = {"message_encode_policy": TextBase64EncodePolicy(), "message_decode_policy": TextBase64DecodePolicy()}
        self.queue: QueueClient = service.get_queue_client(queue, **codec)
        self.poison: QueueClient = service.get_queue_client(f"{queue}-poison", **codec)
        self._service = service

    def create_queues(self) -> None:
        for client in (self.queue, self.poison):
            try:
                client.create_queue()
            except ResourceExistsError:
                pass
            except AzureError:
                raise StorageUnavailableError("Queue storage did not answer when asked to create the queues.") \
                    from None

    def send(self, message: DeliveryMessage, delay_seconds: int = 0) -> None:
        try:
            self.queue.send_message(
                message.encode(), visibility_timeout=min(max(0, delay_seconds), MAX_VISIBILITY_SECONDS) or None
            )
        except AzureError:
            raise StorageUnavailableError("Queue storage did not accept the delivery message.") from None

    def poison_queue(self) -> PoisonQueue:
        return PoisonQueue(self._service.get_queue_client(self.poison.queue_name))


@dataclass(frozen=True)
class PoisonedMessage:
    body: bytes
    id: str
    pop_receipt: str


class PoisonQueue:
    """`<queue>-poison`, read by the sweeper (leads/services/poison.py). Raw text: the host copies each message as it
    was, base64 (host.json messageEncoding) or not; one that is not base64 is passed on as it is."""

    def __init__(self, client: QueueClient) -> None:
        self.client = client
        self.name: str = client.queue_name

    def holds_messages(self) -> bool:
        """One metadata read (approximate count: visible and leased messages alike)."""
        try:
            return bool(self.client.get_queue_properties().approximate_message_count)
        except ResourceNotFoundError:
            return False
        except AzureError:
            raise StorageUnavailableError("Queue storage did not answer when asked about the poison queue.") \
                from None

    def take(self, limit: int) -> list[PoisonedMessage]:
        try:
            received = list(self.client.receive_messages(messages_per_page=limit, max_messages=limit,
                                                         visibility_timeout=POISON_LEASE_SECONDS))
        except AzureError:
            raise StorageUnavailableError("Queue storage did not answer when asked for the poison messages.") \
                from None
        return [PoisonedMessage(_body(str(m.content)), m.id, str(m.pop_receipt)) for m in received]

    def remove(self, message: PoisonedMessage) -> None:
        try:
            self.client.delete_message(message.id, message.pop_receipt)
        except ResourceNotFoundError:
            pass  # its lease ran out and another sweep took it: that sweep removes it
        except AzureError:
            raise StorageUnavailableError("Queue storage did not delete a poison message.") from None


def _body(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text.encode("utf-8")
