"""One bad setting stops nothing else: on a real pipeline (Azurite, a real SMTP server, real destinations),
each broken destination setting blocks that destination alone with a sentence naming the setting, and each
malformed global setting falls back to its default; the lead is stored and answered 202 either way, the
e-mail (or the webhook, when the e-mail is what is broken) still delivers, and the doctor names the setting."""

from __future__ import annotations

import base64
import io
import json
import logging
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from leads.core.breaker import CircuitBreakers
from leads.core.model import BLOCKED, DELIVERED, StoredLead
from leads.core.settings import get_settings
from leads.destinations import build_destinations
from leads.services import doctor
from leads.services.delivery import DeliveryService
from tests.support.fake_http import FakeServer, Reply
from tests.support.pipeline import Pipeline, build_pipeline
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.azurite

LEAD = json.dumps({"UserDetails": {"FirstName": "Ana", "LastName": "Lopez", "Email": "ana@fabrikam.example",
                                   "Company": "Fabrikam", "Country": "ES"},
                   "LeadSource": "AzureMarketplace", "ActionCode": "INS", "OfferTitle": "Lead Router"}).encode()
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"3f9a1c7e5b2d8f4a6c0e9b1d7f3a5c8e").decode()

# destination -> (settings that break it, words of the sentence that must name the setting)
BROKEN_DESTINATIONS: dict[str, tuple[dict[str, str], str]] = {
    "email": ({"LEADS_SMTP_SECURITY": "tls"}, "LEADS_SMTP_SECURITY must be none, starttls or ssl"),
    "webhook": ({"LEADS_WEBHOOK_URL": "http://hooks.example.com/leads"}, "LEADS_WEBHOOK_URL must start with https://"),
    "dynamics": ({"LEADS_DYNAMICS_URL": "https://contoso.crm4.dynamics.com", "LEADS_DYNAMICS_TENANT_ID": "t",
                  "LEADS_DYNAMICS_CLIENT_ID": "c", "LEADS_DYNAMICS_CLIENT_SECRET": "s",
                  "LEADS_DYNAMICS_FIELD_MAP": '{"jobtitle": '}, "LEADS_DYNAMICS_FIELD_MAP is not valid JSON"),
    "salesforce": ({"LEADS_SALESFORCE_ORG_ID": "12345"}, "LEADS_SALESFORCE_ORG_ID is not a Salesforce Organization ID"),
    "marketo": ({"LEADS_MARKETO_URL": "123-ABC-456.mktorest.com", "LEADS_MARKETO_CLIENT_ID": "c",
                 "LEADS_MARKETO_CLIENT_SECRET": "s"}, "LEADS_MARKETO_URL must be a full URL"),
    "hubspot": ({"LEADS_HUBSPOT_TOKEN": "pat-na1-0000", "LEADS_HUBSPOT_FIELD_MAP": '["email"]'},
                "LEADS_HUBSPOT_FIELD_MAP must be a JSON object"),
    "teams": ({"LEADS_TEAMS_WEBHOOK_URL": "http://prod-01.westeurope.logic.azure.com/workflows/x"},
              "LEADS_TEAMS_WEBHOOK_URL must start with https://"),
    "slack": ({}, "LEADS_SLACK_WEBHOOK_URL is not set"),
    "salesforse": ({}, "LEADS_DESTINATIONS names salesforse, which is not a destination: did you mean salesforce?"),
}

# global setting -> (its malformed value, the Settings attribute and the default it falls back to)
BROKEN_GLOBALS: dict[str, tuple[str, str, object]] = {
    "LEADS_RETRY_DELAYS": ("30,-1", "retry_delays", (30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200)),
    "LEADS_DEDUPE_HOURS": ("a day", "dedupe_hours", 24),
    "LEADS_HTTP_TIMEOUT": ("20s", "http_timeout", 20.0),
    "LEADS_FORWARD_TEST_LEADS": ("sometimes", "forward_test_leads", False),
    "LEADS_DELIVERY_LEASE_SECONDS": ("10 minutes", "delivery_lease_seconds", 600),
    "LEADS_OUTBOX_GRACE_SECONDS": ("0", "outbox_grace_seconds", 120),
    "LEADS_REQUEUE_AGAIN_SECONDS": ("-5", "requeue_again_seconds", 300),
    "LEADS_FALLBACK_STORAGE": ("ftp://elsewhere.example", "fallback_storage", None),
}


@pytest.fixture
def receiver() -> Iterator[FakeServer]:
    with FakeServer() as fake:
        fake.on("POST", "/hooks/leads", Reply(200))  # any 2xx is success for the webhook receiver
        yield fake


def email_env(smtp: SmtpServer) -> dict[str, str]:
    return {"LEADS_EMAIL_TO": "sales@contoso.example", "LEADS_EMAIL_FROM": "leads@contoso.example",
            "LEADS_SMTP_HOST": smtp.host, "LEADS_SMTP_PORT": str(smtp.port), "LEADS_SMTP_SECURITY": "none",
            "LEADS_HTTP_TIMEOUT": "5"}


def real_pipeline(azurite, tmp_path: Path, env: dict[str, str]) -> Pipeline:
    """The test pipeline with the destinations the app itself builds from the settings."""
    pipeline = build_pipeline(azurite.connection_string, str(tmp_path / "spool"), {}, env=env)
    pipeline.delivery = DeliveryService(pipeline.table, pipeline.runtime.queue, build_destinations(pipeline.settings),
                                        pipeline.settings, CircuitBreakers(), clock=pipeline.clock)
    return pipeline


def ingest_and_deliver(pipeline: Pipeline) -> StoredLead:
    answer = pipeline.ingest.receive("POST", LEAD, "application/json")
    assert answer.status == 202, answer.body
    [message] = pipeline.queued()
    pipeline.delivery.handle(message)
    loaded = pipeline.table.load(answer.body["id"])
    assert loaded is not None
    return loaded.stored


def run_doctor(env: dict[str, str]) -> str:
    out = io.StringIO()
    doctor.main([], env=env, out=out, extra_checks=[])
    return out.getvalue()


@pytest.mark.parametrize("broken", list(BROKEN_DESTINATIONS))
def test_a_broken_destination_setting_blocks_that_destination_alone(
        broken: str, azurite, smtp_server: SmtpServer, receiver: FakeServer, tmp_path: Path) -> None:
    breaking, words = BROKEN_DESTINATIONS[broken]
    # The e-mail delivers, or (when the e-mail is what is broken) the webhook does.
    working = "webhook" if broken == "email" else "email"
    env = {**email_env(smtp_server), "LEADS_WEBHOOK_URL": f"{receiver.url}/hooks/leads",
           "LEADS_WEBHOOK_SECRET": WEBHOOK_SECRET, "LEADS_DESTINATIONS": f"{working},{broken}", **breaking}
    pipeline = real_pipeline(azurite, tmp_path, env)

    stored = ingest_and_deliver(pipeline)

    assert stored.deliveries[working].state == DELIVERED
    assert len(smtp_server.messages if working == "email" else receiver.sent("POST", "/hooks/leads")) == 1
    assert stored.deliveries[broken].state == BLOCKED
    assert words in stored.deliveries[broken].last_error
    doctor_lines = run_doctor({**env, "AzureWebJobsStorage": azurite.connection_string}).splitlines()
    assert any(line.startswith(f"FAIL {broken}") and words in line for line in doctor_lines), doctor_lines


@pytest.mark.parametrize("setting", list(BROKEN_GLOBALS))
def test_a_malformed_global_setting_falls_back_to_its_default(
        setting: str, azurite, smtp_server: SmtpServer, tmp_path: Path) -> None:
    value, attribute, default = BROKEN_GLOBALS[setting]
    env = {**email_env(smtp_server), "LEADS_DESTINATIONS": "email", setting: value}
    pipeline = real_pipeline(azurite, tmp_path, env)

    stored = ingest_and_deliver(pipeline)

    assert stored.deliveries["email"].state == DELIVERED
    assert len(smtp_server.messages) == 1
    assert getattr(pipeline.settings, attribute) == default
    assert pipeline.settings.problems == {}
    doctor_lines = run_doctor({**env, "AzureWebJobsStorage": azurite.connection_string}).splitlines()
    [line] = [line for line in doctor_lines if line.startswith("FAIL settings")]
    assert line.startswith(f"FAIL settings  {setting}: {setting} must") and "default" in line


def test_a_malformed_global_setting_is_logged_once(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    monkeypatch.setenv("LEADS_HTTP_TIMEOUT", "0")
    get_settings.cache_clear()
    caplog.set_level(logging.WARNING, logger="leads")
    try:
        get_settings()
        get_settings()
    finally:
        get_settings.cache_clear()
    [record] = [r for r in caplog.records if r.name == "leads.settings"]
    assert record.levelno == logging.WARNING
    assert "LEADS_HTTP_TIMEOUT must be at least 1" in record.getMessage()


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_through_the_http_trigger_a_destination_typo_still_answers_202_and_health_200(
        local_host_factory, smtp_server: SmtpServer, azurite, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    env = {**email_env(smtp_server), "LEADS_DESTINATIONS": "email,salesforse", "LEADS_TABLE": f"typo{suffix}",
           "LEADS_QUARANTINE_TABLE": f"typoq{suffix}", "LEADS_QUEUE": f"typo-{suffix}", "LEADS_RETRY_DELAYS": "600",
           "LEADS_SPOOL_DIR": str(tmp_path)}
    host = local_host_factory(env)

    request = urllib.request.Request(host.url("leads"), data=LEAD, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202
        lead_id = json.loads(response.read())["id"]
    with urllib.request.urlopen(host.url("health"), timeout=30) as response:
        assert (response.status, json.loads(response.read())) == (200, {"status": "ok"})

    [message] = smtp_server.wait_for(1, timeout=20)
    assert message["X-Lead-Id"] == lead_id
    deadline = time.monotonic() + 20
    while True:
        with urllib.request.urlopen(host.url("status"), timeout=30) as response:
            status = json.loads(response.read())
        [lead] = [lead for lead in status["recent_leads"] if lead["id"] == lead_id]
        # Each destination's answer is recorded on its own, the e-mail's just after the mail is sent.
        states = (lead["deliveries"]["salesforse"]["state"], lead["deliveries"]["email"]["state"])
        if states == (BLOCKED, DELIVERED) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert lead["deliveries"]["email"]["state"] == DELIVERED
    assert lead["deliveries"]["salesforse"]["state"] == BLOCKED
    assert "did you mean salesforce?" in lead["deliveries"]["salesforse"]["last_error"]
    assert "did you mean salesforce?" in status["blocked_by_settings"]["salesforse"]


# A connection string the Tables SDK refuses when the client is made (no AccountKey nor SharedAccessSignature):
# azure-sdk-for-python, sdk/tables/azure-data-tables, azure/data/tables/_base_client.py, parse_connection_str.
KEYLESS_FALLBACK = "DefaultEndpointsProtocol=https;AccountName=stfallback;EndpointSuffix=core.windows.net"


def test_defect_1_a_keyless_fallback_connection_string_turns_the_fallback_off_and_stops_nothing_else(
        azurite, smtp_server: SmtpServer) -> None:
    from leads.core.messages import decode_message
    from leads.core.settings import load_settings
    from leads.runtime import build_delivery, build_runtime

    suffix = uuid.uuid4().hex[:8]
    env = {**email_env(smtp_server), "AzureWebJobsStorage": azurite.connection_string, "LEADS_DESTINATIONS": "email",
           "LEADS_TABLE": f"keyless{suffix}", "LEADS_QUEUE": f"keyless-{suffix}",
           "LEADS_FALLBACK_STORAGE": KEYLESS_FALLBACK}
    settings = load_settings(env)
    rt = build_runtime(settings)  # raised ValueError before the fix: every POST 503, every delivery failed

    assert settings.fallback_storage is None and rt.ingest.fallback is None
    answer = rt.ingest.receive("POST", LEAD, "application/json")
    assert answer.status == 202, answer.body
    delivery = build_delivery(rt)
    [message] = [decode_message(m.content) for m in rt.queue.queue.receive_messages(max_messages=32)]
    assert delivery.handle(message).sent == {"email": DELIVERED}
    doctor_lines = run_doctor(env).splitlines()
    [line] = [line for line in doctor_lines if line.startswith("FAIL settings")]
    assert "LEADS_FALLBACK_STORAGE is a connection string without an AccountName and AccountKey" in line
    assert "stfallback" not in line  # the value itself is never repeated (it may hold a secret)


def test_a_fallback_the_sdk_refuses_is_turned_off_by_the_runtime_too(azurite) -> None:
    """The backstop: whatever the settings let through, a client the SDK cannot build turns the fallback off."""
    from dataclasses import replace

    from leads.core.settings import StorageSettings, load_settings
    from leads.runtime import build_fallback

    settings = load_settings({"AzureWebJobsStorage": azurite.connection_string})
    keyless = StorageSettings(connection_string=KEYLESS_FALLBACK)
    assert build_fallback(replace(settings, fallback_storage=keyless)) is None
