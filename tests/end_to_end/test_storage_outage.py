"""Table storage goes away in the middle of traffic and comes back: every lead is delivered, exactly once
per destination, none ends failed, no operator action. The realistic bad case: the queue stays up, so
delivery messages are dequeued, fail, and go to the poison queue (the local host honours host.json)."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from leads.core.model import DELIVERED, FAILED, RETRYING, utcnow
from leads.storage.table_store import LeadTable
from tests.end_to_end.test_end_to_end import lead_table
from tests.support.azurite import PROJECT_ROOT
from tests.support.fake_http import FakeServer, Recorded, Reply
from tests.support.http_json import post
from tests.support.smtp import SmtpServer
from tests.support.tcp_proxy import SwitchableProxy
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.azurite, pytest.mark.timeout(120)]
LEADS_BEFORE, LEADS_DURING = 10, 4
OUTAGE_SECONDS = 20
RETRY_SECONDS = 2




def lead_body(n: int, note: str = "") -> bytes:
    return json.dumps({"UserDetails": {"FirstName": "Ana", "LastName": "Lopez", "Email": f"ana{n}@fabrikam.example",
                                       "Company": "Fabrikam"}, "LeadSource": "AzureMarketplace",
                       "ActionCode": "INS", "OfferTitle": "Lead Router", "Description": f"lead {n} {note}"}).encode()




def test_a_table_outage_during_traffic_ends_with_every_lead_delivered_once_and_none_failed(
        local_host_factory, smtp_server: SmtpServer, azurite, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="leads")
    table_url = azurite.endpoints["table"]
    proxy = SwitchableProxy("127.0.0.1", int(table_url.rsplit(":", 1)[1])).start()
    suffix = uuid.uuid4().hex[:8]
    host_json = json.loads((PROJECT_ROOT / "host.json").read_text(encoding="utf-8"))
    # Shortened: three failures a second apart and a message is poison. A high newBatchThreshold keeps the
    # host fetching while the workers caught in the outage wait to record their answers.
    host_json["extensions"]["queues"].update({"visibilityTimeout": "00:00:01", "maxDequeueCount": 3,
                                              "maxPollingInterval": "00:00:00.5", "newBatchThreshold": 32})
    hooks: Counter[str] = Counter()  # lead id -> webhook calls answered 200
    refused_once: list[str] = []

    def receive_hook(request: Recorded) -> Reply:
        lead_id = request.headers.get("webhook-id", "")
        if b"retry me" in request.body and not refused_once:
            refused_once.append(lead_id)  # its retry message comes back while the table is down
            return Reply(503, {"error": "busy"})
        time.sleep(1.0)  # a slow receiver: calls are in flight when the table goes
        hooks[lead_id] += 1
        return Reply(200, {"ok": True})

    with FakeServer() as webhook:
        webhook.on("POST", "/hook", receive_hook)
        env = {
            "AzureWebJobsStorage": azurite.connection_string.replace(table_url, f"http://127.0.0.1:{proxy.port}"),
            "LEADS_TABLE": f"outage{suffix}", "LEADS_QUARANTINE_TABLE": f"outageq{suffix}",
            "LEADS_QUEUE": f"outage-{suffix}", "LEADS_DESTINATIONS": "email,webhook",
            "LEADS_EMAIL_TO": "sales@contoso.example", "LEADS_EMAIL_FROM": "leads@contoso.example",
            "LEADS_SMTP_HOST": smtp_server.host, "LEADS_SMTP_PORT": str(smtp_server.port),
            "LEADS_SMTP_SECURITY": "none", "LEADS_WEBHOOK_URL": f"{webhook.url}/hook",
            "LEADS_WEBHOOK_SECRET": "whsec_" + "c2VjcmV0" * 5, "LEADS_SPOOL_DIR": str(tmp_path),
            "LEADS_HTTP_TIMEOUT": "5",
            "LEADS_RETRY_DELAYS": f"{RETRY_SECONDS},1,1", "LEADS_DELIVERY_LEASE_SECONDS": "40",
            "LEADS_OUTBOX_GRACE_SECONDS": "2", "LEADS_REQUEUE_AGAIN_SECONDS": "2",
            "LEADS_SWEEP_SCHEDULE": "*/2 * * * * *",  # it also reads the poison queue
        }
        host = local_host_factory(env, host_json=host_json)
        table = lead_table(env | {"AzureWebJobsStorage": azurite.connection_string}, azurite)  # around the proxy
        accepted: set[str] = set()
        for n in range(LEADS_BEFORE):
            status, answer = post(host.url("leads"), lead_body(n))
            assert status == 202, answer
            accepted.add(answer["id"])
        status, answer = post(host.url("leads"), lead_body(LEADS_BEFORE, "retry me"))
        assert status == 202, answer
        accepted.add(answer["id"])
        retried = answer["id"]
        wait_until(lambda: (state_of(table, retried, "webhook"), state_of(table, retried, "email"))
                   == (RETRYING, DELIVERED), timeout=30)  # its round is over: the retry message is on the queue
        proxy.down()  # its retry is due in RETRY_SECONDS, in the middle of the outage; other calls are in flight
        started = time.monotonic()
        refused = []
        for n in range(LEADS_BEFORE + 1, LEADS_BEFORE + 1 + LEADS_DURING):
            status, answer = post(host.url("leads"), lead_body(n))
            assert status == 503, answer
            refused.append(n)
        threading.Event().wait(max(0.0, OUTAGE_SECONDS - (time.monotonic() - started)))
        proxy.up()
        for n in refused:  # the caller retries a 503 once (the lead was also kept on disk; the repeat is recognised)
            status, answer = post(host.url("leads"), lead_body(n))
            assert status == 202, answer  # the first request after the outage included: no second retry needed
            accepted.add(answer["id"])

        def all_finished() -> bool:
            leads = [table.load(lead_id) for lead_id in accepted]
            return all(s is not None and s.stored.finished for s in leads) and not table.due_work(
                utcnow() + timedelta(days=1))

        wait_until(all_finished, timeout=60)
        # Lead e-mails carry X-Lead-Id; an operational notice (a lead woken 3 times without progress while the table
        # is down: leads/services/sweeper.py) goes to the same inbox without one and is counted apart.
        mails = Counter(str(message["X-Lead-Id"]) for message in smtp_server.messages if message["X-Lead-Id"])
        notices = sum(1 for message in smtp_server.messages if not message["X-Lead-Id"])
        poisoned = caplog.text.count("went to the poison queue")
    proxy.stop()
    statuses = Counter(table.load(lead_id).stored.status for lead_id in accepted)  # type: ignore[union-attr]
    duplicates = sum(n - 1 for n in mails.values()) + sum(n - 1 for n in hooks.values())
    sent = LEADS_BEFORE + 1 + LEADS_DURING
    print(f"\ntable outage {OUTAGE_SECONDS} s during traffic: leads sent {sent}, "
          f"accepted at once {sent - len(refused)}, "
          f"503 then accepted on the caller's first retry {len(refused)}, "
          f"delivered {statuses[DELIVERED]}, "
          f"failed {statuses[FAILED]}, duplicates {duplicates}, poison messages seen by the sweeper {poisoned}, "
          f"table connections reset {proxy.refused}, operational notices {notices}")
    assert len(accepted) == sent
    assert statuses == {DELIVERED: sent}
    assert mails == Counter(dict.fromkeys(accepted, 1))  # every lead mailed exactly once
    assert hooks == Counter(dict.fromkeys(accepted, 1))  # and accepted by the webhook exactly once
    assert poisoned >= 1  # the bad case happened: a message went to poison, and the outbox row woke its lead


def state_of(table: LeadTable, lead_id: str, destination: str) -> str:
    loaded = table.load(lead_id)
    return loaded.stored.deliveries[destination].state if loaded else ""
