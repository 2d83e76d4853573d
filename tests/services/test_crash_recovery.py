"""A worker killed (SIGKILL) right after one destination answered: that answer is already durable, and the
next delivery, once the lease ran out, sends only the destination whose call was in flight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from leads.core.messages import DeliveryMessage
from leads.core.model import DELIVERED, SENDING
from tests.support.azurite import PROJECT_ROOT
from tests.support.crash_worker import FileRecordingDestination
from tests.support.pipeline import build_pipeline
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(60)]




def test_a_killed_worker_resends_only_the_call_in_flight(azurite, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:10]
    env = {"LEADS_TABLE": f"crash{suffix}", "LEADS_QUARANTINE_TABLE": f"crashq{suffix}",
           "LEADS_QUEUE": f"crash-{suffix}", "LEADS_DELIVERY_LEASE_SECONDS": "2", "LEADS_OUTBOX_GRACE_SECONDS": "1"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.support.crash_worker", azurite.connection_string, json.dumps(env), str(tmp_path)],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout is not None
        lead_id = worker.stdout.readline().strip()
        destinations = {"email": FileRecordingDestination("email", folder=tmp_path),
                        "webhook": FileRecordingDestination("webhook", folder=tmp_path)}
        pipeline = build_pipeline(azurite.connection_string, str(tmp_path), destinations, env=env)

        def state(name: str) -> str:
            loaded = pipeline.table.load(lead_id)
            return loaded.stored.deliveries[name].state if loaded else ""

        wait_until(lambda: state("email") == DELIVERED)  # e-mail's answer is in the table ...
        assert state("webhook") == SENDING  # ... while the webhook call is still in flight
        wait_until(lambda: destinations["webhook"].receipts() == [lead_id])
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()

    # The lease (2 s here) runs out; the outbox row says the lead is due again.
    wait_until(lambda: [item.lead_id for item in pipeline.table.due_work(pipeline.clock())] == [lead_id])
    report = pipeline.delivery.handle(DeliveryMessage(lead_id))
    assert report.sent == {"webhook": DELIVERED}  # only the destination whose call was in flight
    assert destinations["email"].receipts() == [lead_id]  # e-mail received the lead exactly once
    assert destinations["webhook"].receipts() == [lead_id, lead_id]  # at-least-once: the in-flight call, again
    lead = pipeline.table.load(lead_id).stored  # type: ignore[union-attr]
    assert lead.status == DELIVERED and lead.deliveries["webhook"].expired_claims == 0
    assert pipeline.table.due_work(pipeline.clock() + pipeline.delivery.lease * 100) == []
