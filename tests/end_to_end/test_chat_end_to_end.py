"""End to end through the local host on Azurite: one lead reaches the webhook, Teams and Slack once each, and
the webhook's signature verifies with the `standardwebhooks` library for a receiver holding the old secret and
for one holding the new, while LEADS_WEBHOOK_SECRET holds both (a rotation)."""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path

import pytest
from standardwebhooks import Webhook as Receiver

from leads.core.model import DELIVERED
from leads.core.settings import load_settings
from leads.storage.table_store import LeadTable
from tests.support.chat_fakes import FakeSlack, FakeTeamsWorkflow, card_facts
from tests.support.fake_http import FakeServer, Reply
from tests.support.http_json import post
from tests.support.samples import SAMPLES
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.azurite, pytest.mark.timeout(120)]

OLD_SECRET = "whsec_" + base64.b64encode(b"the-old-secret-of-32-bytes-len!!").decode()
NEW_SECRET = "whsec_" + base64.b64encode(b"the-new-secret-of-32-bytes-len!!").decode()


def test_one_lead_reaches_webhook_teams_and_slack_once_and_verifies_during_a_rotation(
        local_host_factory, azurite, tmp_path: Path) -> None:
    from leads.storage.azure_clients import table_service

    with FakeServer() as hooks, FakeServer() as teams_server, FakeServer() as slack_server:
        hooks.on("POST", "/hooks/leads", Reply(204))
        workflow, slack = FakeTeamsWorkflow(teams_server), FakeSlack(slack_server)
        suffix = uuid.uuid4().hex[:8]
        env = {
            "LEADS_TABLE": f"chat{suffix}", "LEADS_QUARANTINE_TABLE": f"chatq{suffix}", "LEADS_QUEUE": f"chat-{suffix}",
            "LEADS_DESTINATIONS": "webhook,teams,slack", "LEADS_SPOOL_DIR": str(tmp_path),
            "LEADS_RETRY_DELAYS": "1,1,2", "LEADS_HTTP_TIMEOUT": "5",
            "LEADS_WEBHOOK_URL": f"{hooks.url}/hooks/leads", "LEADS_WEBHOOK_SECRET": f"{NEW_SECRET} {OLD_SECRET}",
            "LEADS_TEAMS_WEBHOOK_URL": workflow.url, "LEADS_SLACK_WEBHOOK_URL": slack.url,
            "LEADS_CONSOLE_URL": "http://127.0.0.1:7071/api/console",
        }
        host = local_host_factory(env)
        status, answer = post(host.url("leads"), (SAMPLES / "partner-center-doc-sample.json").read_bytes())
        assert status == 202, answer
        lead_id = answer["id"]
        settings = load_settings({**env, "AzureWebJobsStorage": azurite.connection_string})
        table = LeadTable(table_service(settings.storage), settings.table, settings.quarantine_table)
        wait_until(lambda: table.load(lead_id).stored.status == DELIVERED)  # type: ignore[union-attr]
        time.sleep(3)  # longer than the queue's polling interval: a second send would have arrived

        [hook] = hooks.sent("POST", "/hooks/leads")
        assert hook.headers["webhook-id"] == lead_id
        for secret in (OLD_SECRET, NEW_SECRET):
            assert Receiver(secret).verify(hook.body, hook.headers)["id"] == lead_id
        [card] = workflow.posted
        assert card_facts(card)["Lead id"] == lead_id
        [message] = slack.posted
        assert f"#/leads/{lead_id}|Open the lead in the console>" in str(message["blocks"])
        deliveries = table.load(lead_id).stored.deliveries  # type: ignore[union-attr]
        assert {name: d.state for name, d in deliveries.items()} == dict.fromkeys(("webhook", "teams", "slack"),
                                                                                 DELIVERED)
        assert deliveries["teams"].record_id == "08580000000000000001"  # the workflow's run id
