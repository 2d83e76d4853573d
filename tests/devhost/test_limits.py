"""Timeouts and concurrency as Azure has them, in the in-process mode too (devhost/invoke.py,
devhost/queue_listener.py name the host and worker source): functionTimeout counted from dispatch while the
invocation waits for one of the Python worker's threads (PYTHON_THREADPOOL_THREAD_COUNT, else min(32, cpu+4)),
the queue lease renewed while a function runs, HTTP answers cut by the front end's limit."""

from __future__ import annotations

import os
import time

import pytest
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

import devhost.queue_listener
from devhost.invoke import python_worker_threads
from tests.devhost.conftest import fast_host_json
from tests.devhost.http_client import call
from tests.devhost.recorder import wait_until

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(60)]


def producer(connection_string: str, queue: str) -> QueueClient:
    return QueueClient.from_connection_string(connection_string, queue, message_encode_policy=TextBase64EncodePolicy())


def test_python_worker_threads_follow_the_worker() -> None:
    assert python_worker_threads({"PYTHON_THREADPOOL_THREAD_COUNT": "3"}) == 3
    default = min(32, (os.cpu_count() or 1) + 4)
    for ignored in ("", "0", "-2", "many"):
        assert python_worker_threads({"PYTHON_THREADPOOL_THREAD_COUNT": ignored}) == default
    assert python_worker_threads({}) == default


@pytest.mark.parametrize("threads, timed_out", [("1", True), ("2", False)])
def test_the_timeout_clock_starts_at_dispatch_while_an_invocation_waits_for_a_thread(
        sample_host, azurite, queue_name, record, threads, timed_out) -> None:
    """Two 2-second invocations dispatched together with functionTimeout 3 s: on one thread the second waits
    2 s, runs 2 s and times out (4 s from dispatch); on two threads neither does."""
    host_json = {**fast_host_json(), "functionTimeout": "00:00:03"}
    sample_host(host_json=host_json, PYTHON_THREADPOOL_THREAD_COUNT=threads)
    queue = producer(azurite.connection_string, queue_name)
    for _ in range(2):
        queue.send_message("sleep:2")
    wait_until(lambda: (queue.get_queue_properties().approximate_message_count or 0) == 0, timeout=30,
               what="both messages to be completed")
    counts = sorted(count or 0 for _, count in record.queue_calls)
    assert (max(counts) > 1) is timed_out, counts  # a timed-out invocation's message came back


def test_the_queue_lease_is_renewed_while_the_function_runs(sample_host, azurite, queue_name, record,
                                                            monkeypatch) -> None:
    monkeypatch.setattr(devhost.queue_listener, "LEASE_SECONDS", 2)  # the host's is 10 minutes, renewed at 5
    sample_host()
    queue = producer(azurite.connection_string, queue_name)
    queue.send_message("sleep:5")
    wait_until(lambda: (queue.get_queue_properties().approximate_message_count or 0) == 0, timeout=30,
               what="the message to be completed")
    time.sleep(0.5)
    assert record.queue_calls == [(b"sleep:5", 1)]  # never delivered twice though it ran past two leases


def test_the_front_end_cuts_an_http_answer_after_its_limit(sample_host) -> None:
    host = sample_host()
    host.local_host._http._server.respond_within = 1.0  # 230 s in Azure
    started = time.monotonic()
    answer = call("GET", host.url("nap?s=3"))
    assert answer.status == 502 and time.monotonic() - started < 2.5
    assert call("GET", host.url("nap?s=0")).body == b"rested"
