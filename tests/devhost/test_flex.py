"""devhost's Flex mode: one process and one disk per instance, HTTP instances behind a round-robin front end
that a test scales in and out, host.json functionTimeout enforced by restarting the worker, the abandoned queue
message processed again, the admin API run on the instance that received the call."""

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


def start(flex_host_factory, tmp_path: Path, http_instances: int = 2, **host_json: Any,
          ) -> tuple[Any, QueueClient, Path]:
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    queue_name = f"flex-{uuid.uuid4().hex[:12]}"
    host = flex_host_factory({"FLEX_QUEUE": queue_name, "FLEX_RECORD_DIR": str(record_dir)},
                             app_module="tests.devhost.flex_app", host_json={**fast_host_json(), **host_json},
                             http_instances=http_instances)
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
    assert set(workers) == {"http-1", "http-2", "function:work", "function:tick"}
    assert http["pid"] in (workers["http-1"].pids[-1], workers["http-2"].pids[-1])
    assert by_function["work"]["spool"] == str(workers["function:work"].spool)
    assert by_function["tick"]["tmpdir"].startswith(str(workers["function:tick"].folder))


def test_an_invocation_past_function_timeout_is_abandoned_and_its_worker_restarted(flex_host_factory, tmp_path):
    host, queue, record_dir = start(flex_host_factory, tmp_path, http_instances=1, functionTimeout="00:00:02")
    queue_worker, http_worker = host.flex_host.workers["function:work"], host.flex_host.workers["http-1"]

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


def whoami_pid(host: Any) -> int:
    answer = call("GET", host.url("whoami"))
    assert answer.status == 200, answer
    return int(json.loads(answer.body)["pid"])


def test_admin_api_runs_a_timer_function_on_the_instance_that_received_it(flex_host_factory, tmp_path):
    host, _, record_dir = start(flex_host_factory, tmp_path)
    wait_until(lambda: len([r for r in records(record_dir) if r["function"] == "tick"]) == 1,
               what="the runOnStartup run")
    admin = f"{host.base_url}/admin/functions/tick"
    assert call("POST", admin, b'{"input": ""}', {"Content-Type": "application/json"}).status == 401  # no key
    wrong = {**host.admin_headers, "x-functions-key": host.flex_host.keys.host}  # a host key is not the master
    assert call("POST", admin, b'{"input": ""}', wrong).status == 401
    assert call("POST", admin, b"", host.admin_headers).status == 400  # FunctionsController.Invoke: no JSON body
    assert call("POST", admin, b'{"input": ""}', host.admin_headers).status == 202
    wait_until(lambda: len([r for r in records(record_dir) if r["function"] == "tick"]) == 2,
               what="the manual run")
    ticks = [r for r in records(record_dir) if r["function"] == "tick"]
    http_pids = {w.pids[-1] for w in host.flex_host.http_workers}
    timer_pid = host.flex_host.workers["function:tick"].pids[-1]
    pids = {r["pid"] for r in ticks}
    assert timer_pid in pids  # the scheduled (runOnStartup) run: on the timer's own instance
    assert len(pids - {timer_pid}) == 1 and pids - {timer_pid} <= http_pids  # the manual run: where it was received
    assert call("POST", f"{host.base_url}/admin/functions/nosuch", b"{}", host.admin_headers).status == 404


def test_round_robin_over_the_http_instances_and_scale_in_and_out(flex_host_factory, tmp_path):
    host, _, _ = start(flex_host_factory, tmp_path)
    flex = host.flex_host
    first, second = flex.workers["http-1"], flex.workers["http-2"]
    assert {whoami_pid(host) for _ in range(4)} == {first.pids[-1], second.pids[-1]}  # consecutive calls differ

    flex.scale_in("http-1")
    assert not first.folder.exists()  # its disk went with it
    assert {whoami_pid(host) for _ in range(4)} == {second.pids[-1]}
    assert first.restarts == 0  # a removed instance is not brought back

    third = flex.scale_out()
    assert {whoami_pid(host) for _ in range(4)} == {second.pids[-1], third.pids[-1]}
    assert third.folder != first.folder and not list(third.spool.glob("*"))
