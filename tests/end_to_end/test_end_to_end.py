"""End to end: the real function_app served by the local host on Azurite, mail to a real SMTP server."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from leads.core.model import DELIVERED
from leads.core.settings import load_settings
from leads.storage.table_store import LeadTable
from tests.support.http_json import post
from tests.support.samples import SAMPLES
from tests.support.smtp import SmtpServer
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.azurite, pytest.mark.timeout(120)]
ACCEPTED = ["partner-center-doc-sample.json", "camelcase-wire.json", "faq-test-lead.json",
            "azure-table-destination-row.json"]




def app_env(smtp: SmtpServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {
        "LEADS_TABLE": f"e2e{suffix}", "LEADS_QUARANTINE_TABLE": f"e2eq{suffix}", "LEADS_QUEUE": f"e2e-{suffix}",
        "LEADS_DESTINATIONS": "email", "LEADS_EMAIL_TO": "sales@contoso.example; ops@contoso.example",
        "LEADS_EMAIL_FROM": "leads@contoso.example", "LEADS_SMTP_HOST": smtp.host, "LEADS_SMTP_PORT": str(smtp.port),
        "LEADS_SMTP_SECURITY": "none", "LEADS_RETRY_DELAYS": "1,1,1,2,2,2", "LEADS_SPOOL_DIR": str(tmp_path),
        "LEADS_HTTP_TIMEOUT": "5", **extra,
    }


def lead_table(env: dict[str, str], azurite: Any) -> LeadTable:
    from leads.storage.azure_clients import table_service

    settings = load_settings({**env, "AzureWebJobsStorage": azurite.connection_string})
    return LeadTable(table_service(settings.storage), settings.table, settings.quarantine_table)




def test_each_sample_is_stored_and_mailed_once_and_a_repeat_sends_nothing(
        local_host_factory, smtp_server: SmtpServer, azurite, tmp_path: Path) -> None:
    env = app_env(smtp_server, tmp_path)
    host = local_host_factory(env)
    ids = []
    for count, name in enumerate(ACCEPTED, start=1):
        status, answer = post(host.url("leads"), (SAMPLES / name).read_bytes())
        assert status == 202, answer
        assert answer["duplicate"] is False
        ids.append(answer["id"])
        messages = smtp_server.wait_for(count, timeout=15)
        assert messages[-1]["X-Lead-Id"] == answer["id"]
        assert ("[TEST]" in messages[-1]["Subject"]) is answer["test"]
    for name, lead_id in zip(ACCEPTED, ids, strict=True):
        status, answer = post(host.url("leads"), (SAMPLES / name).read_bytes())
        assert (status, answer["id"], answer["duplicate"]) == (202, lead_id, True)
    table = lead_table(env, azurite)
    wait_until(lambda: all(table.load(i).stored.status == DELIVERED for i in ids))  # type: ignore[union-attr]
    time.sleep(3)  # longer than the queue's polling interval: a second e-mail would have arrived
    assert len(smtp_server.messages) == len(ACCEPTED)
    assert sorted(m["X-Lead-Id"] for m in smtp_server.messages) == sorted(ids)
    assert smtp_server.envelopes[0].rcpt_tos == ("sales@contoso.example", "ops@contoso.example")


def test_the_faq_sample_as_printed_is_rejected_with_line_and_column(
        local_host_factory, smtp_server: SmtpServer, azurite, tmp_path: Path) -> None:
    env = app_env(smtp_server, tmp_path)
    host = local_host_factory(env)
    status, answer = post(host.url("leads"), (SAMPLES / "faq-test-lead-as-printed.txt").read_bytes())
    assert status == 400
    assert answer["where"] == "line 14, column 5"
    assert [row["Reason"] for row in lead_table(env, azurite).rejected()] == ["invalid_json"]
    status, answer = post(host.url("leads"), b"", method="GET")
    assert status == 405


def test_smtp_down_for_a_while_every_lead_still_arrives_exactly_once(
        local_host_factory, smtp_server: SmtpServer, azurite, tmp_path: Path) -> None:
    env = app_env(smtp_server, tmp_path)
    host = local_host_factory(env)
    smtp_server.stop()
    ids = []
    for n in range(5):
        body = json.dumps({"UserDetails": {"Company": f"Company {n}", "Email": f"buyer{n}@c.example"},
                           "LeadSource": "AzureMarketplace", "ActionCode": "INS", "OfferTitle": "Widget"}).encode()
        status, answer = post(host.url("leads"), body)
        assert status == 202
        ids.append(answer["id"])
    table = lead_table(env, azurite)

    def all_retrying() -> bool:
        return all(table.load(i).stored.deliveries["email"].attempts >= 1 for i in ids)  # type: ignore[union-attr]

    wait_until(all_retrying)
    assert smtp_server.messages == []
    smtp_server.start()
    smtp_server.wait_for(len(ids), timeout=30)
    wait_until(lambda: all(table.load(i).stored.status == DELIVERED for i in ids))  # type: ignore[union-attr]
    time.sleep(3)
    assert sorted(m["X-Lead-Id"] for m in smtp_server.messages) == sorted(ids)  # each once, none twice


def test_a_message_in_the_poison_queue_brings_its_lead_back_and_marks_nothing_failed(
        local_host_factory, smtp_server: SmtpServer, azurite, tmp_path: Path) -> None:
    from datetime import timedelta

    from azure.storage.queue import QueueClient

    from leads.core.keys import new_lead_id
    from leads.core.model import DeliveryState, StoredLead, utcnow
    from leads.core.parsing import parse_lead

    # The poison queue has no trigger: the sweeper reads it (every second here, every 5 minutes by default).
    env = app_env(smtp_server, tmp_path, LEADS_REQUEUE_AGAIN_SECONDS="1", LEADS_SWEEP_SCHEDULE="* * * * * *")
    local_host_factory(env)
    table = lead_table(env, azurite)
    table.create_tables()
    # A lead stored whose delivery message failed five times (a storage hiccup) and went to poison.
    lead = parse_lead((SAMPLES / "camelcase-wire.json").read_bytes())
    now = utcnow()
    stored = StoredLead(new_lead_id(now), now, lead, {"email": DeliveryState()})
    table.add(stored, lead.fingerprint(), timedelta(hours=24), outbox_due=now + timedelta(hours=1))
    poison = QueueClient.from_connection_string(azurite.connection_string, f"{env['LEADS_QUEUE']}-poison")
    poison.send_message(base64.b64encode(json.dumps({"v": 1, "id": stored.id}).encode()).decode())
    [mail] = smtp_server.wait_for(1, timeout=20)  # enqueued again after a second, and delivered
    assert mail["X-Lead-Id"] == stored.id
    wait_until(lambda: table.load(stored.id).stored.status == DELIVERED)  # type: ignore[union-attr]
    wait_until(lambda: not poison.peek_messages())  # consumed, not left sitting there


def test_health_answers_through_the_host(local_host_factory, smtp_server: SmtpServer, tmp_path: Path) -> None:
    host = local_host_factory(app_env(smtp_server, tmp_path))
    with urllib.request.urlopen(host.url("health"), timeout=10) as response:
        assert response.status == 200
        assert json.loads(response.read()) == {"status": "ok"}
