"""Queue triggers through the local host against real Azurite: base64 decoding, poison handling after
maxDequeueCount, undecodable messages, and parallel invocations."""

from __future__ import annotations

import base64
import threading

import pytest
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from tests.devhost.conftest import fast_host_json
from tests.devhost.recorder import wait_until

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(60)]


def producer(connection_string: str, queue: str) -> QueueClient:
    """Sends the way the app does: base64, which the host decodes by default."""
    return QueueClient.from_connection_string(connection_string, queue,
                                              message_encode_policy=TextBase64EncodePolicy())


def raw_client(connection_string: str, queue: str) -> QueueClient:
    return QueueClient.from_connection_string(connection_string, queue)


def message_count(client: QueueClient) -> int:
    """Visible and invisible messages alike (a leased message is still in the queue)."""
    return client.get_queue_properties().approximate_message_count or 0


def test_base64_message_is_decoded_and_deleted_after_success(sample_host, azurite, queue_name, record):
    sample_host()
    queue = producer(azurite.connection_string, queue_name)

    queue.send_message("héllo lead")

    wait_until(lambda: len(record.queue_calls) == 1, what="the queue function to run")
    assert record.queue_calls[0] == ("héllo lead".encode(), 1)
    wait_until(lambda: message_count(queue) == 0, what="the message to be deleted")


def test_message_failing_max_dequeue_count_times_lands_in_poison(sample_host, azurite, queue_name, record):
    sample_host(host_json=fast_host_json(maxDequeueCount=3))
    queue = producer(azurite.connection_string, queue_name)
    poison = raw_client(azurite.connection_string, f"{queue_name}-poison")

    queue.send_message("fail")

    wait_until(lambda: poison.get_queue_properties().approximate_message_count == 1,
               what="the message in the poison queue")
    assert [count for _, count in record.queue_calls] == [1, 2, 3]
    [moved] = poison.peek_messages()
    assert base64.b64decode(moved.content) == b"fail"  # copied as it was: still base64
    # The host copies to poison, then deletes the original: the delete may land just after the copy is seen.
    wait_until(lambda: message_count(queue) == 0, what="the original message deleted")


def test_failed_message_waits_visibility_timeout_before_the_next_attempt(sample_host, azurite, queue_name,
                                                                          record):
    sample_host(host_json=fast_host_json(visibilityTimeout="00:01:00"))
    queue = producer(azurite.connection_string, queue_name)

    queue.send_message("fail")

    wait_until(lambda: len(record.queue_calls) == 1, what="the first attempt")
    wait_until(lambda: next(iter(queue.peek_messages()), None) is None and message_count(queue) == 1,
               what="the failed message to be invisible but still queued")
    assert len(record.queue_calls) == 1


def test_message_that_is_not_base64_goes_to_poison_at_once(sample_host, azurite, queue_name, record):
    sample_host()
    poison = raw_client(azurite.connection_string, f"{queue_name}-poison")

    raw_client(azurite.connection_string, queue_name).send_message("not base64 ~~~")

    wait_until(lambda: poison.get_queue_properties().approximate_message_count == 1,
               what="the undecodable message in the poison queue")
    [moved] = poison.peek_messages()
    assert moved.content == "not base64 ~~~"
    assert record.queue_calls == []
    assert message_count(raw_client(azurite.connection_string, queue_name)) == 0


def test_messages_run_in_parallel_up_to_batch_size(sample_host, azurite, queue_name, record):
    parallel = 4
    record.barrier = threading.Barrier(parallel)  # releases only when `parallel` invocations wait at once
    sample_host(host_json=fast_host_json(batchSize=parallel, newBatchThreshold=0))
    queue = producer(azurite.connection_string, queue_name)

    for number in range(parallel):
        queue.send_message(f"together {number}")

    wait_until(lambda: message_count(queue) == 0, what="every message to succeed")
    assert len(record.queue_calls) == parallel  # no retries: the barrier never broke
    assert not record.barrier.broken
