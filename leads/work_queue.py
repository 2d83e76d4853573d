"""The Azure Queues adapter: delivery work, with an optional delay (the app's own retry backoff)."""

from __future__ import annotations

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.storage.queue import QueueClient, QueueServiceClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from leads.errors import StorageUnavailableError
from leads.messages import DeliveryMessage

MAX_VISIBILITY_SECONDS = 7 * 24 * 3600  # the service's limit on a message's initial invisibility


class WorkQueue:
    def __init__(self, service: QueueServiceClient, queue: str) -> None:
        # The Functions host decodes base64 (host.json messageEncoding): encode the same way. The policies
        # must be given here: get_queue_client() does not inherit them from the service client.
        codec = {"message_encode_policy": TextBase64EncodePolicy(), "message_decode_policy": TextBase64DecodePolicy()}
        self.queue: QueueClient = service.get_queue_client(queue, **codec)
        self.poison: QueueClient = service.get_queue_client(f"{queue}-poison", **codec)

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
