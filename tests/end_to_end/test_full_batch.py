"""A full batch of deliveries against a destination that answers only at LEADS_HTTP_TIMEOUT: no spurious
timeout, worker restart or poison message, with the default concurrency settings.

The host hands a queue instance batchSize + newBatchThreshold messages at once (16 + 8 by default,
host.json), and the Python worker runs them on its thread pool, min(32, cpu + 4) threads unless
PYTHON_THREADPOOL_THREAD_COUNT says otherwise, with functionTimeout counted from dispatch (devhost/invoke.py).
A message's destinations are called in parallel, so one message takes about LEADS_HTTP_TIMEOUT at worst, and
the last of 24 messages finishes after ceil(24 / threads) * LEADS_HTTP_TIMEOUT: with the defaults (20 s,
10 min in host.json) and one CPU (5 threads), 100 s, well inside functionTimeout and the 10-minute delivery
lease. Here every duration is scaled down ten times (2 s, 60 s) so the test takes seconds; the batch sizes and
the thread pool are the defaults."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import Counter
from pathlib import Path

import pytest

from devhost.invoke import python_worker_threads
from leads.core.model import DELIVERED
from tests.end_to_end.test_end_to_end import lead_table
from tests.support.azurite import PROJECT_ROOT
from tests.support.fake_http import FakeServer, Recorded, Reply
from tests.support.http_json import post
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.azurite, pytest.mark.timeout(180)]
SCALE = 10
HTTP_TIMEOUT = 20 / SCALE
BATCH = 16 + 8  # host.json batchSize + newBatchThreshold


def lead_body(n: int) -> bytes:
    return json.dumps({"UserDetails": {"FirstName": f"Slow{n}", "Email": f"slow{n}@fabrikam.example",
                                       "Company": "Fabrikam"}, "LeadSource": "AzureMarketplace",
                       "ActionCode": "INS", "OfferTitle": "Lead Router"}).encode()


def test_a_full_batch_against_a_destination_at_its_timeout_delivers_every_lead_without_a_timeout(
        local_host_factory, azurite, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    host_json = json.loads((PROJECT_ROOT / "host.json").read_text(encoding="utf-8"))
    assert (host_json["extensions"]["queues"]["batchSize"], host_json["extensions"]["queues"]["newBatchThreshold"]
            ) == (16, 8)  # the defaults this test stands for
    assert host_json["functionTimeout"] == "00:10:00"
    host_json["functionTimeout"] = f"00:00:{600 // SCALE:02d}" if 600 // SCALE < 60 else "00:01:00"
    host_json["extensions"]["queues"]["maxPollingInterval"] = "00:00:00.500"
    hooks: Counter[str] = Counter()

    def slow_receiver(request: Recorded) -> Reply:
        time.sleep(HTTP_TIMEOUT - 0.3)  # answers just inside LEADS_HTTP_TIMEOUT
        hooks[request.headers.get("webhook-id", "")] += 1
        return Reply(200, {"ok": True})

    suffix = os.urandom(4).hex()
    with FakeServer() as webhook:
        webhook.on("POST", "/hook", slow_receiver)
        env = {"LEADS_TABLE": f"batch{suffix}", "LEADS_QUARANTINE_TABLE": f"batchq{suffix}",
               "LEADS_QUEUE": f"batch-{suffix}", "LEADS_DESTINATIONS": "webhook",
               "LEADS_WEBHOOK_URL": f"{webhook.url}/hook", "LEADS_WEBHOOK_SECRET": "whsec_" + "c2VjcmV0" * 5,
               "LEADS_SPOOL_DIR": str(tmp_path), "LEADS_HTTP_TIMEOUT": str(HTTP_TIMEOUT),
               "LEADS_DELIVERY_LEASE_SECONDS": str(600 // SCALE), "PYTHON_THREADPOOL_THREAD_COUNT": None,
               "AzureWebJobs.deliver_lead.Disabled": "true"}
        intake = local_host_factory(env, host_json=host_json)  # queue function off: the messages wait
        accepted = []
        for n in range(BATCH):
            status, answer = post(intake.url("leads"), lead_body(n))
            assert status == 202, answer
            accepted.append(answer["id"])
        intake.local_host.stop()
        started = time.monotonic()
        local_host_factory({**env, "AzureWebJobs.deliver_lead.Disabled": None}, host_json=host_json)
        table = lead_table({k: v for k, v in env.items() if v is not None}, azurite)
        wait_until(lambda: all((s := table.load(i)) is not None and s.stored.status == DELIVERED for i in accepted),
                   timeout=120, what="every lead delivered")
        took = time.monotonic() - started
    threads = python_worker_threads(os.environ)
    timeouts = caplog.text.count("Timeout value of")
    poisoned = caplog.text.count("went to the poison queue") + caplog.text.count("MaxDequeueCount")
    print(f"\n[full batch] messages={BATCH} worker threads={threads} destination answer={HTTP_TIMEOUT - 0.3:.1f}s "
          f"all delivered in {took:.1f}s (bound {math.ceil(BATCH / threads) * HTTP_TIMEOUT:.0f}s, functionTimeout "
          f"{600 // SCALE}s) timeouts={timeouts} poison={poisoned} webhook calls={sum(hooks.values())}")
    assert timeouts == 0 and poisoned == 0
    assert sorted(hooks.values()) == [1] * BATCH  # each lead called once: no attempt was abandoned and repeated
