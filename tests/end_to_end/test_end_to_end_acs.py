"""End to end with Azure Communication Services Email: the real function_app on the local host and Azurite,
sending through the fake ACS REST API (tests/support/acs_email.py) with a signed connection string."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leads.core.model import DELIVERED
from leads.core.settings import load_settings
from leads.destinations.email_acs import operation_id
from leads.storage.table_store import LeadTable
from tests.support.acs_email import FakeAcsEmail
from tests.support.http_json import post
from tests.support.samples import SAMPLES
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.azurite, pytest.mark.timeout(120)]


@pytest.fixture
def acs() -> Iterator[FakeAcsEmail]:
    with FakeAcsEmail(retry_after=1) as fake:
        yield fake


def test_a_lead_is_sent_once_through_acs_even_when_the_send_outlasts_a_delivery(
        local_host_factory: Any, azurite: Any, acs: FakeAcsEmail, tmp_path: Path) -> None:
    acs.polls_before_done = 1  # still Running at the first two looks
    suffix = uuid.uuid4().hex[:8]
    env = {
        "LEADS_TABLE": f"e2eacs{suffix}", "LEADS_QUARANTINE_TABLE": f"e2eacsq{suffix}",
        "LEADS_QUEUE": f"e2e-acs-{suffix}",
        "LEADS_DESTINATIONS": "email", "LEADS_EMAIL_TRANSPORT": "acs",
        "LEADS_ACS_CONNECTION_STRING": acs.connection_string, "LEADS_ACS_WAIT_SECONDS": "0",
        "LEADS_EMAIL_TO": "sales@contoso.example", "LEADS_EMAIL_FROM": "DoNotReply@1a2b.azurecomm.net",
        "LEADS_RETRY_DELAYS": "1,1,1,1,1", "LEADS_SPOOL_DIR": str(tmp_path), "LEADS_HTTP_TIMEOUT": "5",
    }
    host = local_host_factory(env)
    status, answer = post(host.url("leads"), (SAMPLES / "partner-center-doc-sample.json").read_bytes())
    assert status == 202, answer
    settings = load_settings({**env, "AzureWebJobsStorage": azurite.connection_string})
    from leads.storage.azure_clients import table_service

    table = LeadTable(table_service(settings.storage), settings.table, settings.quarantine_table)
    wait_until(lambda: table.load(answer["id"]).stored.status == DELIVERED, timeout=60)  # type: ignore[union-attr]
    email = table.load(answer["id"]).stored.deliveries["email"]  # type: ignore[union-attr]
    assert email.record_id == operation_id(answer["id"], 0)
    assert email.attempts >= 3  # two deliveries found the send still running and left it alone
    [(operation, body)] = acs.sends
    assert operation == email.record_id and body["headers"] == {"X-Lead-Id": answer["id"]}
