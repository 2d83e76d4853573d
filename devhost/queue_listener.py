"""The queue trigger, copied from the Storage Queues extension 5.x (Azure/azure-sdk-for-net,
sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.*):

- QueueListener.cs: receive up to `batchSize` messages with a 10-minute lease, run them in parallel, fetch
  again once no more than `newBatchThreshold` are running; when a poll finds nothing, wait with a
  randomized exponential backoff from 100 ms (QueuePollingIntervals.cs) up to `maxPollingInterval`.
- QueueProcessor.cs: a message whose dequeueCount already exceeds maxDequeueCount goes to poison unrun;
  on success delete it; on failure copy it to `<queue>-poison` and delete it once dequeueCount >=
  maxDequeueCount, else make it visible again after `visibilityTimeout`. A queue whose name ends in
  `-poison` has no poison queue (QueueListenerFactory.cs): a failed message stays invisible until its
  lease ends.
- QueueServiceClientProvider.cs: a message that is not valid base64 (messageEncoding base64) goes straight
  to the poison queue, copied as it was.

- QueueListener.cs, ProcessMessageAsync / CreateUpdateMessageVisibilityTimer: while the function runs, the
  10-minute lease is renewed when it is halfway to expiring (every 5 minutes; UpdateQueueMessageVisibilityCommand
  sets the visibility to 10 minutes again and keeps the new pop receipt, which the delete or release then uses).
  So a function that runs longer than 10 minutes never sees its message delivered twice; only functionTimeout
  ends it.

A function past host.json functionTimeout (devhost/invoke.py) fails like any other: the message is made
visible again after visibilityTimeout (or moved to poison); in Flex mode the worker then restarts.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.functions.queue import QueueMessage as FunctionQueueMessage
from azure.storage.queue import QueueClient, QueueMessage, QueueServiceClient

from devhost.hostjson import QueueOptions
from devhost.invoke import IndexedFunction, invoke, trigger_scope

log = logging.getLogger("devhost.queue")
LEASE_SECONDS = 600
MIN_POLLING_INTERVAL = 0.1
POISON_SUFFIX = "-poison"


class PollingBackoff:
    """RandomizedExponentialBackoffStrategy: the minimum after a find, then about double each empty poll."""

    def __init__(self, minimum: float, maximum: float) -> None:
        self.minimum, self.maximum = minimum, max(minimum, maximum)
        self.current = minimum

    def next_delay(self, found: bool) -> float:
        if found:
            self.current = self.minimum
        else:
            self.current = min(self.maximum, self.current * random.uniform(1.6, 2.4))  # noqa: S311 - jitter
        return self.current


def decode_body(text: str, encoding: str) -> bytes | None:
    """The message body as the function sees it; None when it is not valid base64."""
    if encoding == "none":
        return text.encode("utf-8")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


class QueueListener:
    def __init__(self, function: IndexedFunction, service: QueueServiceClient, options: QueueOptions,
                 stopping: threading.Event) -> None:
        self.function = function
        self.options = options
        self.queue_name = str(function.trigger["queueName"]).lower()
        # No encode/decode policy: the raw text is decoded here, so undecodable messages can be handled.
        self.queue: QueueClient = service.get_queue_client(self.queue_name)
        self.poison: QueueClient | None = (None if self.queue_name.endswith(POISON_SUFFIX)
                                           else service.get_queue_client(self.queue_name + POISON_SUFFIX))
        self._stopping = stopping
        self.lease_seconds: float = LEASE_SECONDS  # QueueListener._visibilityTimeout (tests shorten it)
        self._workers = ThreadPoolExecutor(options.batch_size + options.new_batch_threshold,
                                           thread_name_prefix=f"devhost-{self.queue_name}")
        self._running = 0
        self._running_changed = threading.Condition()
        self._thread = threading.Thread(target=self._poll_forever, name=f"devhost-poll-{self.queue_name}",
                                        daemon=True)

    def start(self) -> None:
        # The host waits for a missing queue (and makes the poison queue on first use); creating both
        # here makes a fresh Azurite usable at once and lets a developer look at the poison queue.
        for queue in (self.queue, self.poison):
            if queue is not None:
                self._create_queue(queue)
        self._thread.start()

    def join(self) -> None:
        """Waits for the poller and every running invocation (the host drains on shutdown too)."""
        self._thread.join()
        self._workers.shutdown(wait=True)

    @staticmethod
    def _create_queue(queue: QueueClient) -> None:
        with contextlib.suppress(ResourceExistsError):
            queue.create_queue()

    def _poll_forever(self) -> None:
        backoff = PollingBackoff(MIN_POLLING_INTERVAL, self.options.max_polling_interval)
        while not self._stopping.is_set():
            with self._running_changed:
                self._running_changed.wait_for(
                    lambda: self._running <= self.options.new_batch_threshold or self._stopping.is_set())
            if self._stopping.is_set():
                return
            try:
                batch = list(self.queue.receive_messages(messages_per_page=self.options.batch_size,
                                                         max_messages=self.options.batch_size,
                                                         visibility_timeout=int(self.lease_seconds)))
            except AzureError as error:
                log.warning("queue %s: polling failed (%s); retrying", self.queue_name, type(error).__name__)
                batch = []
            for message in batch:
                with self._running_changed:
                    self._running += 1
                self._workers.submit(self._process, message)
            if not batch:
                self._stopping.wait(backoff.next_delay(found=False))
            else:
                backoff.next_delay(found=True)

    def _renew_lease(self, message: QueueMessage, done: threading.Event) -> None:
        """UpdateQueueMessageVisibilityCommand: every half lease, the lease again, keeping the new pop receipt.
        (The host speeds renewal up after a failed update, LinearSpeedupStrategy; here a failure is retried at
        the next half lease.)"""
        while not done.wait(self.lease_seconds / 2):
            try:
                receipt = self.queue.update_message(message.id, message.pop_receipt,
                                                    visibility_timeout=int(self.lease_seconds))
            except AzureError as error:
                log.warning("queue %s: message %s: lease not renewed (%s)", self.queue_name, message.id,
                            type(error).__name__)
                continue
            message.pop_receipt = receipt.pop_receipt
            message.next_visible_on = receipt.next_visible_on

    def _process(self, message: QueueMessage) -> None:
        done = threading.Event()
        renewer = threading.Thread(target=self._renew_lease, args=(message, done), daemon=True,
                                   name=f"devhost-lease-{self.queue_name}")
        renewer.start()
        try:
            with trigger_scope():
                try:
                    self._process_message(message, done, renewer)
                finally:
                    done.set()
        except AzureError as error:
            log.error("queue %s: message %s could not be completed: %s", self.queue_name, message.id, error)
        except Exception:  # a pool thread would swallow it silently; the lease returns the message later
            log.exception("queue %s: message %s: devhost failed", self.queue_name, message.id)
        finally:
            with self._running_changed:
                self._running -= 1
                self._running_changed.notify_all()

    def _process_message(self, message: QueueMessage, done: threading.Event, renewer: threading.Thread) -> None:
        body = decode_body(str(message.content), self.options.message_encoding)
        if body is None:
            log.warning("queue %s: message %s is not valid base64 (host.json messageEncoding)",
                        self.queue_name, message.id)
            self._move_to_poison(message)
            return
        if message.dequeue_count is not None and message.dequeue_count > self.options.max_dequeue_count:
            self._move_to_poison(message)
            return
        trigger_message = FunctionQueueMessage(  # type: ignore[no-untyped-call]
            id=message.id, body=body, dequeue_count=message.dequeue_count, pop_receipt=message.pop_receipt,
            insertion_time=message.inserted_on, expiration_time=message.expires_on,
            time_next_visible=message.next_visible_on)
        succeeded, _ = invoke(self.function, trigger_message,
                              lambda ok, _result: f"queue={self.queue_name} DequeueCount={message.dequeue_count}")
        done.set()  # the timer stops before the message is completed (QueueListener.ProcessMessageAsync)
        renewer.join()
        if succeeded:
            self.queue.delete_message(message.id, message.pop_receipt)
        elif self.poison is None:
            pass  # no poison queue: leave it invisible until the lease ends, as the host does
        elif (message.dequeue_count or 0) >= self.options.max_dequeue_count:
            self._move_to_poison(message)
        else:
            # Pass id and pop receipt, not the message: update_message(message) would re-upload the content.
            self.queue.update_message(message.id, message.pop_receipt,
                                      visibility_timeout=int(self.options.visibility_timeout))

    def _move_to_poison(self, message: QueueMessage) -> None:
        if self.poison is None:
            return
        log.warning("Message has reached MaxDequeueCount of %d (or cannot be decoded). Moving message to queue '%s'.",
                    self.options.max_dequeue_count, self.poison.queue_name)
        self._create_queue(self.poison)
        self.poison.send_message(message.content)
        self.queue.delete_message(message.id, message.pop_receipt)

