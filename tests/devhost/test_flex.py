"""devhost's Flex mode: one process and one disk per scaling group, host.json functionTimeout enforced by
restarting the worker, the abandoned queue message processed again."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from tests.devhost.conftest import fast_host_json
from tests.devhost.http_client import call
from tests.devhost.recorder import wait_until

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(120)]


def records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]


def start(flex_host_factory, tmp_path: Path, **host_json: Any) -> tuple[Any, QueueClient, Path]:
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    queue_name = f"flex-{uuid.uuid4().hex[:12]}"
    host = flex_host_factory({"FLEX_QUEUE": queue_name, "FLEX_RECORD_DIR": str(record_dir)},
                             app_module="tests.devhost.flex_app", host_json={**fast_host_json(), **host_json})
    connection = host.flex_host.env["AzureWebJobsStorage"]
    queue = QueueClient.from_connection_string(connection, queue_name, message_encode_policy=TextBase64EncodePolicy())
    return host, queue, record_dir


def test_http_queue_and_timer_run_in_separate_processes_with_separate_disks(flex_host_factory, tmp_path):
    host, queue, record_dir = start(flex_host_factory, tmp_path)
    answer = call("GET", host.url("whoami"))
    assert answer.status == 200
    http = json.loads(answer.body)
    queue.send_message("hello")
    wait_until(lambda: {r["function"] for r in records(record_dir)} >= {"work-finished", "tick"},
               timeout=30, what="the queue function and the timer (runOnStartup) to run")
    by_function = {r["function"]: r for r in records(record_dir)}
    seen = [http, by_function["work"], by_function["tick"]]

    assert len({s["pid"] for s in seen} | {os.getpid()}) == 4  # three worker processes, none is the test's
    for key in ("tmpdir", "home", "spool"):
        assert len({s[key] for s in seen}) == 3, key  # nothing one group writes to disk is seen by another
    workers = host.flex_host.workers
    assert set(workers) == {"http", "function:work", "function:tick"}
    assert http["pid"] == workers["http"].pids[-1]
    assert by_function["work"]["spool"] == str(workers["function:work"].spool)
    assert by_function["tick"]["tmpdir"].startswith(str(workers["function:tick"].folder))


def test_an_invocation_past_function_timeout_is_abandoned_and_its_worker_restarted(flex_host_factory, tmp_path):
    host, queue, record_dir = start(flex_host_factory, tmp_path, functionTimeout="00:00:02")
    queue_worker, http_worker = host.flex_host.workers["function:work"], host.flex_host.workers["http"]

    # Queue: the first attempt times out; the message is not deleted and comes back after visibilityTimeout
    # (0 in fast_host_json) to the restarted worker, where it finishes.
    queue.send_message("slow")
    wait_until(lambda: any(r["function"] == "work-finished" for r in records(record_dir)), timeout=60,
               what="the abandoned message to be processed again")
    attempts = [(r["dequeue_count"], r["pid"]) for r in records(record_dir) if r["function"] == "work"]
    finished = [r for r in records(record_dir) if r["function"] == "work-finished"]
    assert sorted(count for count, _ in attempts) == [1, 2]
    first_pid, second_pid = (pid for _, pid in sorted(attempts))
    assert first_pid != second_pid
    assert [(r["dequeue_count"], r["pid"]) for r in finished] == [(2, second_pid)]
    assert queue_worker.pids == [first_pid, second_pid] and queue_worker.restarts == 1
    wait_until(lambda: (queue.get_queue_properties().approximate_message_count or 0) == 0,
               what="the message to be deleted after the successful attempt")

    # HTTP: the timed-out request gets a 500; the worker restarts and the next request works.
    assert call("GET", host.url("slow")).status == 500
    wait_until(lambda: http_worker.restarts == 1 and len(http_worker.pids) == 2, timeout=30,
               what="the HTTP worker to be restarted")

    def whoami() -> int | None:
        try:
            answer = call("GET", host.url("whoami"))
        except OSError:
            return None  # still starting
        return int(json.loads(answer.body)["pid"]) if answer.status == 200 else None

    wait_until(lambda: whoami() is not None, what="the restarted HTTP worker to answer")
    assert whoami() == http_worker.pids[-1] != http_worker.pids[0]
    assert host.flex_host.workers["function:tick"].restarts == 0  # other groups are other instances


def test_admin_api_runs_a_timer_function_in_its_own_worker(flex_host_factory, tmp_path):
    host, _, record_dir = start(flex_host_factory, tmp_path)
    wait_until(lambda: len([r for r in records(record_dir) if r["function"] == "tick"]) == 1,
               what="the runOnStartup run")
    answer = call("POST", f"{host.base_url}/admin/functions/tick", b'{"input": ""}',
                  {"Content-Type": "application/json"})
    assert answer.status == 202
    wait_until(lambda: len([r for r in records(record_dir) if r["function"] == "tick"]) == 2,
               what="the manual run")
    ticks = [r for r in records(record_dir) if r["function"] == "tick"]
    assert {r["pid"] for r in ticks} == {host.flex_host.workers["function:tick"].pids[-1]}
    assert call("POST", f"{host.base_url}/admin/functions/nosuch", b"{}").status == 404
