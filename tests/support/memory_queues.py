"""The in-memory Azure Queue (tests/support/memory_storage.py describes what it answers and why)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.paging import ItemPaged
from azure.storage.queue import QueueMessage, QueueProperties

from leads.core.azure_limits import MAX_QUEUE_MESSAGE_BYTES, queue_message_fits
from tests.support.memory_common import T, azure_error, too_large

if TYPE_CHECKING:
    from tests.support.memory_storage import MemoryAccount

RECEIVE_MOST = 32  # https://learn.microsoft.com/rest/api/storageservices/get-messages (numofmessages)
MAX_INITIAL_VISIBILITY = timedelta(days=7)
DEFAULT_VISIBILITY = 30  # seconds, Get Messages' default visibilitytimeout
DEFAULT_TTL = timedelta(days=7)

@dataclass
class _Message:
    id: str
    text: str  # as sent (after the encode policy)
    inserted_on: datetime
    expires_on: datetime
    next_visible_on: datetime
    dequeue_count: int = 0
    pop_receipt: str | None = None


@dataclass
class _Queue:
    messages: dict[str, _Message] = field(default_factory=dict)


class MemoryQueueService:
    def __init__(self, account: MemoryAccount) -> None:
        self.account = account

    def get_queue_client(self, queue: str, message_encode_policy: Any = None,
                         message_decode_policy: Any = None, **_: Any) -> MemoryQueueClient:
        return MemoryQueueClient(self.account, queue, message_encode_policy, message_decode_policy)


class MemoryQueueClient:
    def __init__(self, account: MemoryAccount, queue_name: str, encode: Any = None, decode: Any = None) -> None:
        self.account = account
        self.queue_name = queue_name
        self._encode = encode
        self._decode = decode

    def _call(self, operation: str, writes: bool, action: Callable[[], T]) -> T:
        return self.account.call("queue", self.queue_name, operation, writes, action)

    def _queue(self) -> _Queue:
        queue = self.account.queues.get(self.queue_name)
        if queue is None:
            raise azure_error(ResourceNotFoundError, 404, "QueueNotFound", "The specified queue does not exist.")
        return queue

    def _content(self, text: str) -> Any:
        if self._decode is None or not text:
            return text
        return self._decode.decode(text, None)

    def _message(self, message: _Message, receipt: bool = True) -> QueueMessage:
        return QueueMessage(content=self._content(message.text), id=message.id, inserted_on=message.inserted_on,
                            expires_on=message.expires_on, dequeue_count=message.dequeue_count,
                            pop_receipt=message.pop_receipt if receipt else None,
                            next_visible_on=message.next_visible_on if receipt else None)

    def create_queue(self, **_: Any) -> None:
        def run() -> None:
            # Create Queue on an existing queue with the same (no) metadata answers 204 and the SDK returns;
            # https://learn.microsoft.com/rest/api/storageservices/create-queue4 ("Remarks").
            self.account.queues.setdefault(self.queue_name, _Queue())

        self._call("create_queue", True, run)

    def delete_queue(self, **_: Any) -> None:
        self._call("delete_queue", True, lambda: self.account.queues.pop(self.queue_name, None))

    def get_queue_properties(self, **_: Any) -> QueueProperties:
        def run() -> QueueProperties:
            properties = QueueProperties()
            properties.name = self.queue_name
            properties.approximate_message_count = len(self._live(self._queue()))
            return properties

        return self._call("get_queue_properties", False, run)

    def _live(self, queue: _Queue) -> list[_Message]:
        now = self.account.clock()
        for message in [m for m in queue.messages.values() if m.expires_on <= now]:
            del queue.messages[message.id]
        return list(queue.messages.values())

    def _visible(self, queue: _Queue) -> list[_Message]:
        now = self.account.clock()
        return [m for m in self._live(queue) if m.next_visible_on <= now]

    def send_message(self, content: Any, *, visibility_timeout: int | None = None, time_to_live: int | None = None,
                     **_: Any) -> QueueMessage:
        text = self._encode(content) if self._encode is not None else str(content)
        if (len(text) > MAX_QUEUE_MESSAGE_BYTES) if self._encode is not None else not queue_message_fits(text):
            raise too_large("RequestBodyTooLarge: the message is over 64 KiB")
        delay = timedelta(seconds=visibility_timeout or 0)
        ttl = DEFAULT_TTL if time_to_live is None else timedelta(seconds=time_to_live)
        if delay > MAX_INITIAL_VISIBILITY or (time_to_live not in (None, -1) and delay >= ttl):
            raise azure_error(HttpResponseError, 400, "OutOfRangeQueryParameterValue",
                              "The visibility timeout is out of range.")

        def run() -> QueueMessage:
            queue, now = self._queue(), self.account.clock()
            message = _Message(f"m{self.account.next_id():08d}", text, now,
                               now + (timedelta(days=36500) if time_to_live == -1 else ttl), now + delay,
                               pop_receipt=f"r{self.account.next_id()}")
            queue.messages[message.id] = message
            return self._message(message)

        return self._call("send_message", True, run)

    def receive_messages(self, *, messages_per_page: int | None = None, visibility_timeout: int | None = None,
                         max_messages: int | None = None, **_: Any) -> ItemPaged[QueueMessage]:
        per_page = min(messages_per_page or 1, RECEIVE_MOST)
        hidden = timedelta(seconds=DEFAULT_VISIBILITY if visibility_timeout is None else visibility_timeout)
        taken = [0]

        def get_next(_token: Any) -> list[QueueMessage]:
            want = per_page if max_messages is None else min(per_page, max_messages - taken[0])

            def run() -> list[QueueMessage]:
                now, out = self.account.clock(), []
                for message in self._visible(self._queue())[:want]:
                    message.dequeue_count += 1
                    message.pop_receipt = f"r{self.account.next_id()}"
                    message.next_visible_on = now + hidden
                    out.append(self._message(message))
                return out

            page = self._call("receive_messages", True, run) if want > 0 else []
            taken[0] += len(page)
            return page

        def extract(page: list[QueueMessage]) -> tuple[Any, Iterator[QueueMessage]]:
            more = bool(page) and (max_messages is None or taken[0] < max_messages)
            return ("more" if more else None), iter(page)

        return ItemPaged(get_next, extract)

    def receive_message(self, *, visibility_timeout: int | None = None, **_: Any) -> QueueMessage | None:
        return next(iter(self.receive_messages(max_messages=1, visibility_timeout=visibility_timeout)), None)

    def peek_messages(self, max_messages: int | None = None, **_: Any) -> list[QueueMessage]:
        count = min(max_messages or 1, RECEIVE_MOST)
        return self._call("peek_messages", False,
                          lambda: [self._message(m, receipt=False) for m in self._visible(self._queue())[:count]])

    def _held(self, message: Any, pop_receipt: str | None) -> _Message:
        message_id = message.id if isinstance(message, QueueMessage) else str(message)
        receipt = pop_receipt or (message.pop_receipt if isinstance(message, QueueMessage) else None)
        found = self._queue().messages.get(message_id)
        if found is None or found.expires_on <= self.account.clock():
            raise azure_error(ResourceNotFoundError, 404, "MessageNotFound", "The specified message does not exist.")
        if receipt != found.pop_receipt:
            raise azure_error(HttpResponseError, 400, "PopReceiptMismatch",
                              "The specified pop receipt did not match the pop receipt for a dequeued message.")
        return found

    def delete_message(self, message: Any, pop_receipt: str | None = None, **_: Any) -> None:
        def run() -> None:
            del self._queue().messages[self._held(message, pop_receipt).id]

        self._call("delete_message", True, run)

    def update_message(self, message: Any, pop_receipt: str | None = None, content: Any = None, *,
                       visibility_timeout: int | None = None, **_: Any) -> QueueMessage:
        def run() -> QueueMessage:
            found = self._held(message, pop_receipt)
            if content is not None:
                found.text = self._encode(content) if self._encode is not None else str(content)
            found.pop_receipt = f"r{self.account.next_id()}"
            found.next_visible_on = self.account.clock() + timedelta(seconds=visibility_timeout or 0)
            return self._message(found)

        return self._call("update_message", True, run)

    def clear_messages(self, **_: Any) -> None:
        def run() -> None:
            self._queue().messages.clear()

        self._call("clear_messages", True, run)

