"""Webhook destination against a fake receiver, and the signature a receiver verifies.

The receiver's answers are plain HTTP statuses (no vendor document); the Power Automate run id header
`x-ms-workflow-run-id` is what the "When a HTTP request is received" trigger returns (Microsoft Learn,
"Receive and respond to inbound HTTPS calls", https://learn.microsoft.com/azure/connectors/connectors-native-reqres).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from leads.destinations import build_destination
from leads.destinations.base import Delivered
from leads.destinations.webhook import Webhook
from leads.errors import ConfigurationError, LeadRejectedError, TransientDestinationError
from leads.model import Customer
from leads.webhook_signature import sign, verify_signature
from tests.destinations.sample import LEAD_ID, edu_lead, settings, stored_lead
from tests.support.fake_http import FakeServer, Reply

SECRET = "whsec-3f9a1c7e5b2d8f4a6c0e9b1d7f3a5c8e"
NOW = 1_795_000_000


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as fake:
        yield fake


def webhook(server: FakeServer, secret: str = SECRET) -> Webhook:
    destination = build_destination("webhook", settings(LEADS_WEBHOOK_URL=f"{server.url}/hooks/leads",
                                                        LEADS_WEBHOOK_SECRET=secret))
    assert isinstance(destination, Webhook)
    destination.clock = lambda: NOW
    return destination


def test_posts_the_documented_json_signed_with_the_secret(server: FakeServer) -> None:
    server.on("POST", "/hooks/leads", Reply(202, "", headers={"x-ms-workflow-run-id": "08584631868"}))
    destination = webhook(server)
    assert (destination.name, destination.is_crm) == ("webhook", False)

    assert destination.deliver(stored_lead()) == Delivered("08584631868")

    [post] = server.sent("POST", "/hooks/leads")
    assert post.headers["Content-Type"] == "application/json; charset=utf-8"
    assert post.headers["X-Leads-Id"] == LEAD_ID
    assert post.headers["X-Leads-Timestamp"] == str(NOW)
    assert post.headers["User-Agent"].startswith("marketplace-leads/")
    assert verify_signature(SECRET, post.headers["X-Leads-Timestamp"], post.body, post.headers["X-Leads-Signature"],
                            now=NOW)
    assert not verify_signature("another-secret-of-the-same-length!!", post.headers["X-Leads-Timestamp"], post.body,
                                post.headers["X-Leads-Signature"], now=NOW)
    assert post.json() == {
        "schema": "marketplace-lead/1",
        "id": LEAD_ID,
        "received_at": "2026-11-21T12:00:00.000Z",
        "is_test": False,
        "is_edu": False,
        "action": {"code": "INS",
                   "meaning": "Install: the customer acquired the offer on Azure Marketplace or AppSource"},
        "offer": {"title": "Contoso Analytics", "name": "Contoso Analytics", "publisher_id": "contoso",
                  "offer_id": "analytics"},
        "customer": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@contoso.example",
                     "phone": "16175555555", "country": "US", "company": "Contoso", "title": "CTO"},
        "campaign": {"mktcmpid": "spring-launch"},
        "lead_source": {"raw": "AzureMarketplace-INS|contoso.analytics", "source": "AzureMarketplace",
                        "action": "INS", "offer": "contoso.analytics",
                        "partner_center": "AzureMarketplace-INS|contoso.analytics"},
        "description": "Please call me about pricing.",
        "extra": {},
    }


def test_an_edu_lead_is_sent_with_its_flag_and_empty_customer(server: FakeServer) -> None:
    server.on("POST", "/hooks/leads", Reply(200, {"id": "zap-req-1"}))  # a JSON id becomes the record id
    assert webhook(server).deliver(edu_lead()) == Delivered("zap-req-1")
    body = server.sent("POST", "/hooks/leads")[0].json()
    assert body["is_edu"] is True
    fields = ("first_name", "last_name", "email", "phone", "country", "company", "title")
    assert body["customer"] == dict.fromkeys(fields, "")


def test_a_redirect_is_not_followed_and_names_the_fix(server: FakeServer) -> None:
    server.on("POST", "/hooks/leads", Reply(301, "", headers={"Location": "https://elsewhere.example/hook"}))
    server.on("GET", "/hooks/leads", Reply(200, ""))
    with pytest.raises(ConfigurationError) as raised:
        webhook(server).deliver(stored_lead())
    assert "final URL" in raised.value.explanation and "elsewhere.example" in raised.value.explanation
    assert len(server.requests) == 1  # not followed


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_signature_says_the_secrets_differ_without_showing_it(server: FakeServer, status: int) -> None:
    server.on("POST", "/hooks/leads", Reply(status, "bad signature"))
    with pytest.raises(ConfigurationError) as raised:
        webhook(server).deliver(stored_lead())
    assert "LEADS_WEBHOOK_SECRET" in raised.value.explanation
    assert SECRET not in raised.value.explanation


@pytest.mark.parametrize("status", [400, 422])
def test_a_receiver_refusing_this_lead_rejects_it(server: FakeServer, status: int) -> None:
    server.on("POST", "/hooks/leads", Reply(status, "missing field"))
    with pytest.raises(LeadRejectedError) as raised:
        webhook(server).deliver(stored_lead())
    assert f"python -m leads replay {LEAD_ID}" in raised.value.explanation


def test_a_url_that_is_gone_is_a_configuration_error(server: FakeServer) -> None:
    with pytest.raises(ConfigurationError, match="LEADS_WEBHOOK_URL"):
        webhook(server).deliver(stored_lead())  # no route: 404


@pytest.mark.parametrize(("reply", "retry_after"), [
    (Reply(429, "", headers={"Retry-After": "12"}), 12.0),
    (Reply(503, ""), None),
    (Reply(408, ""), None),
])
def test_busy_or_failing_receivers_are_retried(server: FakeServer, reply: Reply, retry_after: float | None) -> None:
    server.on("POST", "/hooks/leads", reply)
    with pytest.raises(TransientDestinationError) as raised:
        webhook(server).deliver(stored_lead())
    assert raised.value.retry_after == retry_after


def test_a_slow_receiver_times_out_as_a_transient_error(server: FakeServer) -> None:
    server.on("POST", "/hooks/leads", Reply(200, "", delay=1.5))
    destination = webhook(server)
    destination.timeout = 0.5
    with pytest.raises(TransientDestinationError, match="did not answer"):
        destination.deliver(stored_lead())


def test_no_secret_no_delivery(server: FakeServer) -> None:
    destination = build_destination("webhook", settings(LEADS_WEBHOOK_URL=f"{server.url}/hooks/leads"))
    with pytest.raises(ConfigurationError, match="LEADS_WEBHOOK_SECRET"):
        destination.deliver(stored_lead())
    assert server.requests == []


def test_check_flags_a_short_secret_and_sends_nothing(server: FakeServer) -> None:
    good = {c.name: c for c in webhook(server).check()}
    assert good["settings"].ok and good["url"].ok and good["secret"].ok and good["receiver"].ok
    short = {c.name: c for c in webhook(server, secret="too-short").check()}
    assert not short["secret"].ok
    assert "32" in short["secret"].message and "too-short" not in short["secret"].message
    assert server.requests == []


# --- the signature a receiver checks -------------------------------------------------------------------------

def test_a_signature_outside_the_replay_window_is_refused() -> None:
    body = json.dumps({"id": LEAD_ID}).encode()
    signature = sign(SECRET, NOW, body)
    assert verify_signature(SECRET, str(NOW), body, signature, now=NOW + 300)
    assert not verify_signature(SECRET, str(NOW), body, signature, now=NOW + 301)
    assert not verify_signature(SECRET, str(NOW), body, signature, now=NOW - 301)
    assert not verify_signature(SECRET, "not-a-number", body, signature, now=NOW)
    assert not verify_signature(SECRET, str(NOW), body, signature.removeprefix("sha256="), now=NOW)


@hypothesis_settings(max_examples=200)
@given(secret=st.text(min_size=1, max_size=64), body=st.binary(max_size=512), data=st.data())
def test_any_body_and_secret_verify_and_any_single_byte_change_fails(
        secret: str, body: bytes, data: st.DataObject) -> None:
    signature = sign(secret, NOW, body)
    assert verify_signature(secret, str(NOW), body, signature, now=NOW)
    if body:
        index = data.draw(st.integers(0, len(body) - 1))
        flip = data.draw(st.integers(1, 255))
        tampered = body[:index] + bytes([body[index] ^ flip]) + body[index + 1:]
        assert not verify_signature(secret, str(NOW), tampered, signature, now=NOW)
    changed = data.draw(st.integers(len("sha256="), len(signature) - 1))
    other = "0" if signature[changed] != "0" else "1"
    assert not verify_signature(secret, str(NOW), body, signature[:changed] + other + signature[changed + 1:], now=NOW)
    assert not verify_signature(secret + "x", str(NOW), body, signature, now=NOW)


def test_customer_without_data_still_signs(server: FakeServer) -> None:
    server.on("POST", "/hooks/leads", Reply(204, ""))
    assert webhook(server).deliver(stored_lead(Customer())) == Delivered("")
