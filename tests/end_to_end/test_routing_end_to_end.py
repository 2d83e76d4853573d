"""Named destinations and routing rules end to end: the real function_app served by the local host on Azurite,
a real SMTP server, two webhook receivers and a HubSpot fake on loopback sockets.

Canned answers copy: [CONTACTS] HubSpot "Contacts" guide (POST /crm/v3/objects/contacts answers 201 with the
contact), https://developers.hubspot.com/docs/api-reference/latest/crm/objects/contacts/guide; a webhook receiver
answers any 2xx (docs/destinations.md, Webhook)."""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from leads.core.model import DELIVERED, SKIPPED, StoredLead
from tests.end_to_end.test_end_to_end import app_env, lead_table
from tests.support.fake_http import FakeServer, Reply
from tests.support.http_json import post
from tests.support.smtp import SmtpServer
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.azurite, pytest.mark.timeout(120)]
ROUTES = "webhook:partners offer=contoso.analytics country=US,CA; webhook:ops dnc=include; hubspot country=US"
PARTNERS_SECRET = "whsec_" + base64.b64encode(b"p" * 32).decode()  # Standard Webhooks secrets
OPS_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()


def partner_center_lead(country: str, action: str, offer: str, email: str) -> bytes:
    return json.dumps({"UserDetails": {"FirstName": "Ada", "LastName": "Lovelace", "Email": email,
                                       "Company": "Contoso", "Country": country},
                       "LeadSource": f"AzureMarketplace-{action}|{offer}", "ActionCode": action,
                       "OfferTitle": "Contoso Analytics"}).encode()


@pytest.fixture
def receivers() -> Iterator[dict[str, FakeServer]]:
    with FakeServer() as partners, FakeServer() as ops, FakeServer() as crm:
        for receiver in (partners, ops):
            receiver.on("POST", "/hook", Reply(200))
        crm.on("POST", "/crm/v3/objects/contacts", Reply(201, {"id": "512", "properties": {}}))  # [CONTACTS]
        yield {"partners": partners, "ops": ops, "crm": crm}


def test_two_named_webhooks_get_the_same_lead_rules_route_it_and_a_dnc_lead_reaches_no_crm(
        local_host_factory, smtp_server: SmtpServer, azurite, tmp_path: Path,
        receivers: dict[str, FakeServer]) -> None:
    partners, ops, crm = receivers["partners"], receivers["ops"], receivers["crm"]
    env = app_env(smtp_server, tmp_path, LEADS_DESTINATIONS="email,webhook:partners,webhook:ops,hubspot",
                  LEADS_WEBHOOK_PARTNERS_URL=f"{partners.url}/hook", LEADS_WEBHOOK_PARTNERS_SECRET=PARTNERS_SECRET,
                  LEADS_WEBHOOK_OPS_URL=f"{ops.url}/hook", LEADS_WEBHOOK_OPS_SECRET=OPS_SECRET,
                  LEADS_HUBSPOT_URL=crm.url, LEADS_HUBSPOT_TOKEN="pat-na1-11111111-2222-3333-4444-555555555555",
                  LEADS_ROUTES=ROUTES)
    host = local_host_factory(env)
    table = lead_table(env, azurite)
    bodies = {"canada": partner_center_lead("CA", "INS", "contoso.analytics", "ada@contoso.example"),
              "germany": partner_center_lead("DE", "INS", "contoso.analytics", "grace@contoso.example"),
              "do-not-contact": partner_center_lead("US", "DNC", "contoso.analytics", "alan@contoso.example")}
    ids = {}
    for key, body in bodies.items():
        status, answer = post(host.url("leads"), body)
        assert status == 202, answer
        ids[key] = answer["id"]

    def stored(key: str) -> StoredLead:
        loaded = table.load(ids[key])
        assert loaded is not None
        return loaded.stored

    wait_until(lambda: all(stored(key).finished for key in ids), timeout=60, what="every lead to finish")
    states = {key: {name: d.state for name, d in stored(key).deliveries.items()} for key in ids}
    assert states == {
        "canada": {"email": DELIVERED, "webhook:partners": DELIVERED, "webhook:ops": DELIVERED, "hubspot": SKIPPED},
        "germany": {"email": DELIVERED, "webhook:partners": SKIPPED, "webhook:ops": DELIVERED, "hubspot": SKIPPED},
        "do-not-contact": {"email": DELIVERED, "webhook:partners": SKIPPED, "webhook:ops": DELIVERED,
                           "hubspot": SKIPPED}}
    # The two webhooks, each at its own URL, both got the Canadian lead.
    assert [r.json()["id"] for r in partners.sent("POST", "/hook")] == [ids["canada"]]
    assert sorted(r.json()["id"] for r in ops.sent("POST", "/hook")) == sorted(ids.values())
    # The do-not-contact lead reached the notifications (e-mail, and the webhook whose rule takes it), no CRM.
    assert {m["X-Lead-Id"] for m in smtp_server.wait_for(3)} == set(ids.values())
    assert crm.requests == []
    dnc = stored("do-not-contact").deliveries
    assert dnc["hubspot"].last_error.startswith("Not sent: do-not-contact (DNC) leads go to notifications only")
    assert "not to webhook:partners" in dnc["webhook:partners"].last_error
    assert stored("germany").deliveries["hubspot"].last_error == \
        "Not sent: the rule for hubspot takes country US; this lead's country is DE."
    assert stored("germany").deliveries["webhook:partners"].last_error == \
        "Not sent: the rule for webhook:partners takes country US, CA; this lead's country is DE."

    # `status` (and so the console and the CLI) shows each destination by name with the leads it takes.
    with urllib.request.urlopen(host.url("manage/status"), timeout=30) as response:
        report = json.loads(response.read())
    assert {d["name"]: (d["type"], d["takes"]) for d in report["destinations"]} == {
        "email": ("email", "every lead"),
        "webhook:partners": ("webhook", "offer contoso.analytics; country US, CA; no DNC leads"),
        "webhook:ops": ("webhook", "every lead"),
        "hubspot": ("hubspot", "country US; no test leads; no DNC leads")}
