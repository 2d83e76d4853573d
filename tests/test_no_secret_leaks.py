"""No secret and no personal data in any log line, exception sentence or URL: the app served by the local host
on Azurite, a real SMTP server with a login, a webhook receiver and fake CRMs, every setting and every lead
field a recognisable canary, every logger captured at DEBUG (the Azure SDK's included), and the failure
paths taken on purpose: a receiver answering 500, a CRM refusing the credentials (401 / invalid_client), a
destination blocked by a bad setting.

Canned vendor answers copy the documents cited in tests/destinations/test_marketo.py ([AUTH], [LEADS]),
test_hubspot.py ([CONFLICT], [ERRORS]) and test_salesforce.py ([OAUTH-ERRORS])."""

from __future__ import annotations

import json
import logging
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leads.core.model import BLOCKED, DELIVERED, RETRYING, StoredLead
from leads.core.settings import load_settings
from leads.storage.azure_clients import table_service
from leads.storage.table_store import LeadTable
from tests.support.chat_fakes import FakeSlack, FakeTeamsWorkflow
from tests.support.fake_http import FakeServer, Reply
from tests.support.smtp import SmtpServer

pytestmark = [pytest.mark.e2e, pytest.mark.azurite, pytest.mark.timeout(120)]

SECRETS = {
    "LEADS_SMTP_PASSWORD": "SECRET-canary-smtp-password",
    # whsec_ + base64 of "SECRET-canary-webhook-signing-key-0123456789"
    "LEADS_WEBHOOK_SECRET": "whsec_U0VDUkVULWNhbmFyeS13ZWJob29rLXNpZ25pbmcta2V5LTAxMjM0NTY3ODk=",
    "LEADS_DYNAMICS_CLIENT_SECRET": "SECRET-canary-dynamics-client-secret",
    "LEADS_SALESFORCE_CLIENT_SECRET": "SECRET-canary-salesforce-consumer-secret",
    "LEADS_MARKETO_CLIENT_SECRET": "SECRET-canary-marketo-client-secret",
    "LEADS_HUBSPOT_TOKEN": "SECRET-canary-hubspot-private-app-token",
}
WEBHOOK_SIG = "SECRET-canary-webhook-url-sig"  # a Power Automate trigger URL's own key
WEBHOOK_PASSWORD = "SECRET-canary-webhook-url-password"  # https://user:password@host/ (basic auth in the URL)
TEAMS_SIG = "SECRET-canary-teams-workflow-sig"  # the Teams workflow URL's key
SLACK_PATH = "/services/T0CANARY/B0CANARY/SECRET-canary-slack-webhook-path"  # a Slack webhook's path is its key
MARKETO_ACCESS_TOKEN = "SECRET-canary-marketo-access-token"
PERSONAL = {"FirstName": "Canaryfirstname", "LastName": "Canarylastname", "Email": "canary.person@pii-canary.example",
            "Phone": "+1 555 0199 4321", "Company": "Canarycompany Ltd", "Title": "Canarytitle"}
CANARIES = [*SECRETS.values(), WEBHOOK_SIG, WEBHOOK_PASSWORD, TEAMS_SIG, SLACK_PATH, MARKETO_ACCESS_TOKEN,
            *PERSONAL.values(), "5550199",
            "pii-canary"]
CONTACTS = "/crm/v3/objects/contacts"


@pytest.fixture
def vendors() -> Iterator[dict[str, FakeServer]]:
    with FakeServer() as webhook, FakeServer() as marketo, FakeServer() as hubspot, FakeServer() as salesforce, \
            FakeServer() as teams, FakeServer() as slack:
        webhook.on("POST", "/hooks/leads", Reply(500, "upstream unavailable"))
        marketo.on("POST", "/identity/oauth/token", Reply(200, {"access_token": MARKETO_ACCESS_TOKEN,
                                                                "token_type": "bearer", "expires_in": 3599,
                                                                "scope": "apis@acmeinc.com"}))  # [AUTH]
        marketo.on("POST", "/rest/v1/leads.json", Reply(200, {"requestId": "e42b#1", "success": True,
                                                              "result": [{"id": 318581, "status": "created"}]}))
        hubspot.on("POST", CONTACTS, Reply(409, {"status": "error", "category": "CONFLICT",
                                                 "message": "Contact already exists. Existing ID: 512"}))  # [CONFLICT]
        for method in ("GET", "PATCH"):  # reading the known contact, or updating it
            hubspot.on_pattern(method, rf"{CONTACTS}/.+", lambda _r, _m: Reply(401, {
                "status": "error", "category": "INVALID_AUTHENTICATION",
                "message": "Authentication credentials not found."}))  # [ERRORS]
        salesforce.on("POST", "/services/oauth2/token", Reply(400, {
            "error": "invalid_client", "error_description": "invalid client credentials"}))  # [OAUTH-ERRORS]
        yield {"webhook": webhook, "marketo": marketo, "hubspot": hubspot, "salesforce": salesforce, "teams": teams,
               "slack": slack}


def get_json(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return str(response.read().decode())


def wait_for_lead(table: LeadTable, lead_id: str, done: Callable[[StoredLead], bool]) -> StoredLead:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        loaded = table.load(lead_id)
        if loaded is not None and done(loaded.stored):
            return loaded.stored
        time.sleep(0.1)
    raise AssertionError(f"lead {lead_id} did not reach the expected states")


def test_no_secret_and_no_personal_data_in_logs_sentences_or_urls(
        local_host_factory, smtp_server_factory: Callable[..., SmtpServer], vendors: dict[str, FakeServer],
        azurite, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: every logger that does not set a level of its own
    caplog.set_level(logging.DEBUG, logger="azure")
    smtp = smtp_server_factory(auth=("leads-app", SECRETS["LEADS_SMTP_PASSWORD"]))
    suffix = uuid.uuid4().hex[:8]
    env = {
        "LEADS_TABLE": f"leaks{suffix}", "LEADS_QUARANTINE_TABLE": f"leaksq{suffix}", "LEADS_QUEUE": f"leaks-{suffix}",
        "LEADS_DESTINATIONS": "email,webhook,marketo,hubspot,salesforce,dynamics,teams,slack",
        "LEADS_RETRY_DELAYS": "600", "LEADS_SPOOL_DIR": str(tmp_path), "LEADS_HTTP_TIMEOUT": "5",
        "LEADS_EMAIL_TO": "sales@contoso.example", "LEADS_EMAIL_FROM": "leads@contoso.example",
        "LEADS_SMTP_HOST": smtp.host, "LEADS_SMTP_PORT": str(smtp.port), "LEADS_SMTP_SECURITY": "none",
        "LEADS_SMTP_USERNAME": "leads-app", "LEADS_EMAIL_INCLUDE_PII": "true",
        "LEADS_WEBHOOK_URL": vendors["webhook"].url.replace("://", f"://leads:{WEBHOOK_PASSWORD}@")
        + f"/hooks/leads?sig={WEBHOOK_SIG}",
        # Both refuse: configuration errors, whose sentences must not quote the URLs' keys.
        "LEADS_TEAMS_WEBHOOK_URL": FakeTeamsWorkflow(vendors["teams"], state="disabled", sig=TEAMS_SIG).url,
        "LEADS_SLACK_WEBHOOK_URL": FakeSlack(vendors["slack"], state="invalid_token", path=SLACK_PATH).url,
        "LEADS_MARKETO_URL": vendors["marketo"].url, "LEADS_MARKETO_CLIENT_ID": "marketo-client",
        "LEADS_HUBSPOT_URL": vendors["hubspot"].url,
        "LEADS_SALESFORCE_MODE": "rest", "LEADS_SALESFORCE_URL": vendors["salesforce"].url,
        "LEADS_SALESFORCE_CLIENT_ID": "salesforce-client",
        # A configuration error: Dynamics is blocked by its malformed field map, with a secret set.
        "LEADS_DYNAMICS_URL": "https://contoso.crm4.dynamics.com", "LEADS_DYNAMICS_TENANT_ID": "contoso.example",
        "LEADS_DYNAMICS_CLIENT_ID": "dynamics-client", "LEADS_DYNAMICS_FIELD_MAP": "{not json",
        **SECRETS,
    }
    host = local_host_factory(env)
    lead = {"UserDetails": PERSONAL, "LeadSource": "AzureMarketplace", "ActionCode": "INS", "OfferTitle": "Router",
            "Description": "Call Canaryfirstname at +1 555 0199 4321"}
    request = urllib.request.Request(host.url("leads"), data=json.dumps(lead).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202
        lead_id = json.loads(response.read())["id"]
    settings = load_settings({**env, "AzureWebJobsStorage": azurite.connection_string})
    table = LeadTable(table_service(settings.storage), settings.table, settings.quarantine_table)

    stored = wait_for_lead(table, lead_id, lambda s: all(d.state in (DELIVERED, BLOCKED, RETRYING)
                                                         for d in s.deliveries.values()))
    status_page = get_json(host.url("status"))

    # Each path was taken: delivered, 500 (retrying), 401 and invalid_client (blocked), a bad setting (blocked).
    assert {name: d.state for name, d in stored.deliveries.items()} == {
        "email": DELIVERED, "marketo": DELIVERED, "webhook": RETRYING, "hubspot": BLOCKED, "salesforce": BLOCKED,
        "dynamics": BLOCKED, "teams": BLOCKED, "slack": BLOCKED}
    assert smtp.messages and vendors["hubspot"].sent("POST", CONTACTS)
    assert "LEADS_DYNAMICS_FIELD_MAP" in stored.deliveries["dynamics"].last_error
    sentences = " ".join(d.last_error for d in stored.deliveries.values())
    # Every record but the test SMTP server's own (aiosmtpd's "mail.log" echoes the DATA it receives: it is
    # the publisher's mail server, which is meant to get the lead).
    app_records = [r for r in caplog.records if not r.name.startswith("mail.")]
    logs = "\n".join(caplog.handler.format(r) for r in app_records)
    # And every field of every record: the structured `extra` ones (lead_id, destination, outcome, ...) are
    # exported as custom dimensions, not as part of the line.
    logs += "\n".join(json.dumps(vars(r), default=str) for r in app_records)
    assert app_records, "nothing was logged: the capture is not working"
    assert any(r.name.startswith("azure") for r in app_records), "the Azure SDK's loggers were not captured"
    assert any(getattr(r, "destination", "") == "webhook" for r in app_records), "no structured delivery line"
    for canary in CANARIES:
        assert canary.lower() not in logs.lower(), f"{canary} is in a log line"
        assert canary.lower() not in status_page.lower(), f"{canary} is on the status page"
    for secret in [*SECRETS.values(), WEBHOOK_SIG, WEBHOOK_PASSWORD, TEAMS_SIG, SLACK_PATH, MARKETO_ACCESS_TOKEN]:
        assert secret not in json.dumps([d.history for d in stored.deliveries.values()])
        assert secret not in sentences
    # The storage account key cannot be a canary (Azurite only takes its own), but it must not show either.
    account_key = dict(part.split("=", 1) for part in azurite.connection_string.split(";") if "=" in part)["AccountKey"]
    assert account_key not in logs and account_key not in status_page
    # No credential in any URL the CRMs were sent (the fakes refuse one in a query string, and record it).
    for name in ("marketo", "hubspot", "salesforce"):
        assert vendors[name].credentials_in_query == []
        for sent in vendors[name].requests:
            assert "SECRET-canary" not in sent.path + json.dumps(sent.query), (name, sent.path)


# --- Any URL setting may hold a secret: in its user-info, its path or its query (leads/core/urls.py) ---------
URL_SECRET = st.from_regex(r"SECRETurl[A-Za-z0-9]{6,12}", fullmatch=True)
PLACES = ("user", "password", "path", "query")
FAILURES = ("500", "401", "timeout", "dns")


def secret_url(base: str, secret: str, place: str) -> str:
    scheme, authority = base.split("://", 1)
    user = {"user": f"{secret}@", "password": f"leads:{secret}@"}.get(place, "")
    path = f"/hooks/{secret}" if place == "path" else "/hooks/leads"
    query = f"?api-version=1&sig={secret}" if place == "query" else ""
    return f"{scheme}://{user}{authority}{path}{query}"


class RecordedNotices:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args: self.calls.append(f"{name} {args!r}")


@settings(max_examples=16, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(secret=URL_SECRET, place=st.sampled_from(PLACES), failure=st.sampled_from(FAILURES))
def test_a_url_setting_s_secret_never_reaches_an_error_history_status_notice_or_log(
        azurite, caplog: pytest.LogCaptureFixture, secret: str, place: str, failure: str) -> None:
    from leads.destinations import build_destination
    from leads.manage.health import status_report
    from tests.support.pipeline import build_pipeline

    caplog.clear()
    caplog.set_level(logging.DEBUG)
    with FakeServer() as receiver, tempfile.TemporaryDirectory() as spool:
        answer = {"500": Reply(500, "upstream unavailable"), "401": Reply(401, "no"),
                  "timeout": Reply(200, "late", delay=1.5)}.get(failure, Reply(200, "ok"))
        receiver.on_pattern("POST", r"/hooks/.*", lambda _r, _m: answer)
        base = "https://leads-canary.invalid" if failure == "dns" else receiver.url
        env = {"LEADS_WEBHOOK_URL": secret_url(base, secret, place),
               "LEADS_WEBHOOK_SECRET": SECRETS["LEADS_WEBHOOK_SECRET"], "LEADS_HTTP_TIMEOUT": "1"}
        webhook = build_destination("webhook", load_settings({**env, "AzureWebJobsStorage": azurite.connection_string,
                                                              "LEADS_DESTINATIONS": "webhook"}))
        pipeline = build_pipeline(azurite.connection_string, spool, {"webhook": webhook}, env)  # type: ignore[dict-item]
        notices = RecordedNotices()
        pipeline.delivery.notices = notices  # type: ignore[assignment]
        lead_id = pipeline.ingest.receive("POST", json.dumps({"UserDetails": {"Email": "a@b.example"},
                                                              "LeadSource": "AzureMarketplace"}).encode()).body["id"]
        for message in pipeline.queued():
            pipeline.delivery.handle(message)
        loaded = pipeline.table.load(lead_id)
        assert loaded is not None
        state = loaded.stored.deliveries["webhook"]
        assert state.state in (RETRYING, BLOCKED) and state.last_error, (failure, state)
        shown = {
            "last error": state.last_error,
            "history": json.dumps(state.history),
            "status": json.dumps(status_report(pipeline.runtime), default=str),
            "notices": "\n".join(notices.calls),
            "logs": "\n".join(caplog.handler.format(r) + json.dumps(vars(r), default=str) for r in caplog.records),
        }
    if failure == "401":
        assert notices.calls, "a blocked destination sends a notice: the notice path was not taken"
    for where, text in shown.items():
        assert secret not in text, f"{place} secret in the {where} ({failure})"
