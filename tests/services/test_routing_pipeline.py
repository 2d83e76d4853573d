"""Routing on a real pipeline (Azurite, a real SMTP server, the destinations the app builds, a webhook receiver on a
loopback socket): a bad rule or a named destination's bad setting blocks that destination alone, naming what to
fix, and a lead stored before destinations had names is delivered under its old keys.

Canned answers: a webhook receiver answers any 2xx (docs/destinations.md, Webhook); [CONTACTS] HubSpot
"Contacts" guide (POST /crm/v3/objects/contacts answers 201 with the contact),
https://developers.hubspot.com/docs/api-reference/latest/crm/objects/contacts/guide."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from leads.core.messages import DeliveryMessage
from leads.core.model import BLOCKED, DELIVERED, SKIPPED, DeliveryState, StoredLead
from leads.core.parsing import parse_lead
from leads.services import doctor
from tests.services.test_broken_settings import LEAD, email_env, ingest_and_deliver, real_pipeline
from tests.support.fake_http import FakeServer, Reply
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.azurite
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # Standard Webhooks: whsec_ + base64 of 24 bytes


@pytest.fixture
def receiver() -> Iterator[FakeServer]:
    with FakeServer() as fake:
        fake.on("POST", "/partners", Reply(200))
        fake.on("POST", "/ops", Reply(200))
        yield fake


def named_webhooks(smtp: SmtpServer, receiver: FakeServer, **more: str) -> dict[str, str]:
    return {**email_env(smtp), "LEADS_DESTINATIONS": "email,webhook:partners,webhook:ops",
            "LEADS_WEBHOOK_PARTNERS_URL": f"{receiver.url}/partners", "LEADS_WEBHOOK_PARTNERS_SECRET": SECRET,
            "LEADS_WEBHOOK_OPS_URL": f"{receiver.url}/ops", "LEADS_WEBHOOK_OPS_SECRET": SECRET, **more}


def doctor_lines(env: dict[str, str], azurite) -> list[str]:
    out = io.StringIO()
    doctor.main([], env={**env, "AzureWebJobsStorage": azurite.connection_string}, out=out, extra_checks=[])
    return out.getvalue().splitlines()


@pytest.mark.parametrize(("breaking", "sentence"), [
    ({"LEADS_ROUTES": "webhook:partners country=ES; webhook:ops country=Spain"},
     "LEADS_ROUTES: webhook:ops names country 'Spain': use ISO codes like ES."),
    ({"LEADS_WEBHOOK_OPS_URL": "http://hooks.example.com/ops"},
     "LEADS_WEBHOOK_OPS_URL must start with https:// (plain http is only allowed to localhost)."),
    ({"LEADS_WEBHOOK_OPS_SECRET": ""}, "LEADS_WEBHOOK_OPS_SECRET is not set: leads are only sent signed."),
])
def test_a_bad_rule_or_setting_of_a_named_destination_blocks_it_alone(
        breaking: dict[str, str], sentence: str, azurite, smtp_server: SmtpServer, receiver: FakeServer,
        tmp_path: Path) -> None:
    env = named_webhooks(smtp_server, receiver, **breaking)
    pipeline = real_pipeline(azurite, tmp_path, env)

    stored = ingest_and_deliver(pipeline)  # a Spanish lead (LEAD)

    assert stored.deliveries["email"].state == DELIVERED and len(smtp_server.messages) == 1
    assert stored.deliveries["webhook:partners"].state == DELIVERED
    assert len(receiver.sent("POST", "/partners")) == 1
    assert stored.deliveries["webhook:ops"].state == BLOCKED
    assert stored.deliveries["webhook:ops"].last_error.startswith(sentence)
    assert receiver.sent("POST", "/ops") == []
    lines = doctor_lines(env, azurite)
    assert any(line.startswith("FAIL webhook:ops") and sentence in line for line in lines), lines
    if "LEADS_ROUTES" in breaking:
        assert "OK   webhook:partners  routing: LEADS_ROUTES gives it country ES; no DNC leads." in lines


def test_a_lead_stored_before_destinations_had_names_is_delivered_under_its_old_keys(
        azurite, smtp_server: SmtpServer, receiver: FakeServer, tmp_path: Path) -> None:
    receiver.on("POST", "/hubspot/crm/v3/objects/contacts", Reply(201, {"id": "512", "properties": {}}))  # [CONTACTS]
    env = {**email_env(smtp_server), "LEADS_DESTINATIONS": "email,webhook,hubspot",
           "LEADS_WEBHOOK_URL": f"{receiver.url}/partners", "LEADS_WEBHOOK_SECRET": SECRET,
           "LEADS_HUBSPOT_TOKEN": "pat-na1-11111111-2222-3333-4444-555555555555",
           "LEADS_HUBSPOT_URL": f"{receiver.url}/hubspot"}
    pipeline = real_pipeline(azurite, tmp_path, env)
    dnc = LEAD.replace(b'"INS"', b'"DNC"').replace(b"ana@fabrikam.example", b"dnc@fabrikam.example")
    olds: dict[str, str] = {}
    for key, body in (("install", LEAD), ("do-not-contact", dnc)):
        # As the previous version stored it: a state per type name, all pending (it sent DNC leads to CRMs too).
        lead = parse_lead(body)
        old = StoredLead(f"20261130T120000000Z-0000000{len(olds)}", pipeline.clock(), lead,
                         {"email": DeliveryState(), "webhook": DeliveryState(), "hubspot": DeliveryState()})
        pipeline.table.add(old, lead.fingerprint(), timedelta(hours=1), outbox_due=pipeline.clock(), body=body)
        olds[key] = old.id

    for lead_id in olds.values():
        pipeline.delivery.handle(DeliveryMessage(lead_id))

    def states(lead_id: str) -> dict[str, str]:
        loaded = pipeline.table.load(lead_id)
        assert loaded is not None
        return {name: d.state for name, d in loaded.stored.deliveries.items()}

    assert states(olds["install"]) == {"email": DELIVERED, "webhook": DELIVERED, "hubspot": DELIVERED}
    assert states(olds["do-not-contact"]) == {"email": DELIVERED, "webhook": SKIPPED, "hubspot": SKIPPED}
    to_hubspot = [r.body for r in receiver.requests if r.path.startswith("/hubspot")]
    assert any(b"ana@fabrikam.example" in body for body in to_hubspot)
    assert not any(b"dnc@fabrikam.example" in body for body in to_hubspot)
    assert [m["X-Lead-Id"] for m in smtp_server.wait_for(2)] == list(olds.values())
