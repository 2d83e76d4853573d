"""Webhook destination against a fake receiver, and the Standard Webhooks signature a receiver verifies with
the `standardwebhooks` library (PyPI, the specification's own Python library; a test dependency only).

The receiver's answers are plain HTTP statuses (no vendor document); the Power Automate run id header
`x-ms-workflow-run-id` is what the "When a HTTP request is received" trigger returns (Microsoft Learn,
"Receive and respond to inbound HTTPS calls", https://learn.microsoft.com/azure/connectors/connectors-native-reqres).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from standardwebhooks import Webhook as Receiver
from standardwebhooks import WebhookVerificationError

from leads.core.destination import Delivered
from leads.core.errors import ConfigurationError, LeadRejectedError, TransientDestinationError
from leads.core.model import Customer
from leads.core.webhook_signature import signature, signature_header, signing_keys
from leads.destinations import build_destination
from leads.destinations.webhook import Webhook
from tests.destinations.sample import LEAD_ID, edu_lead, settings, stored_lead
from tests.support.fake_http import FakeServer, Recorded, Reply

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
NEW_SECRET = "whsec_" + base64.b64encode(bytes(range(100, 132))).decode()
NOW = 1_795_000_000


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as fake:
        yield fake


def webhook(server: FakeServer, secret: str = SECRET, now: float | None = NOW) -> Webhook:
    destination = build_destination("webhook", settings(LEADS_WEBHOOK_URL=f"{server.url}/hooks/leads",
                                                        LEADS_WEBHOOK_SECRET=secret))
    assert isinstance(destination, Webhook)
    if now is not None:
        destination.clock = lambda: now
    return destination


def verifies(secret: str, post: Recorded) -> bool:
    """What a receiver does with the library: Webhook(secret).verify(raw body, headers)."""
    try:
        Receiver(secret).verify(post.body, post.headers)
    except WebhookVerificationError:
        return False
    return True


def test_posts_the_documented_json_signed_with_the_secret(server: FakeServer) -> None:
    server.on("POST", "/hooks/leads", Reply(202, "", headers={"x-ms-workflow-run-id": "08584631868"}))
    destination = webhook(server)
    assert (destination.name, destination.is_crm) == ("webhook", False)

    assert destination.deliver(stored_lead()) == Delivered("08584631868")

    [post] = server.sent("POST", "/hooks/leads")
    assert post.headers["Content-Type"] == "application/json; charset=utf-8"
    assert post.headers["webhook-id"] == LEAD_ID
    assert post.headers["webhook-timestamp"] == str(NOW)
    assert post.headers["webhook-signature"] == signature(base64.b64decode(SECRET[6:]), LEAD_ID, NOW, post.body)
    assert not {"X-Leads-Signature", "X-Leads-Timestamp", "X-Leads-Id"} & set(post.headers)  # one scheme only
    assert post.headers["User-Agent"].startswith("marketplace-leads/")
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


def test_the_standardwebhooks_library_verifies_a_delivery_and_refuses_another_secret(server: FakeServer) -> None:
    server.on("POST", "/hooks/leads", Reply(204, ""))
    webhook(server, now=None).deliver(stored_lead())  # signed now: the library checks the time against its clock
    [post] = server.sent("POST", "/hooks/leads")
    assert verifies(SECRET, post)
    assert not verifies(NEW_SECRET, post)


def test_during_a_rotation_receivers_with_the_old_or_the_new_secret_both_verify(server: FakeServer) -> None:
    server.on("POST", "/hooks/leads", Reply(204, ""))
    webhook(server, secret=f"{NEW_SECRET} {SECRET}", now=None).deliver(stored_lead())
    [post] = server.sent("POST", "/hooks/leads")
    assert len(post.headers["webhook-signature"].split(" ")) == 2
    assert verifies(SECRET, post) and verifies(NEW_SECRET, post)
    assert not verifies("whsec_" + base64.b64encode(b"x" * 32).decode(), post)


def test_a_resend_keeps_the_id_and_is_signed_for_its_own_time(server: FakeServer) -> None:
    server.on("POST", "/hooks/leads", Reply(204, ""))
    destination = webhook(server)
    destination.deliver(stored_lead())
    destination.clock = lambda: NOW + 3600
    destination.deliver(stored_lead())
    first, second = server.sent("POST", "/hooks/leads")
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == LEAD_ID  # the idempotency key
    assert (first.body, first.headers["webhook-timestamp"]) == (second.body, str(NOW))
    assert second.headers["webhook-timestamp"] == str(NOW + 3600)
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_signature_says_the_secrets_differ_without_showing_it(server: FakeServer, status: int) -> None:
    server.on("POST", "/hooks/leads", Reply(status, "bad signature"))
    with pytest.raises(ConfigurationError) as raised:
        webhook(server).deliver(stored_lead())
    assert "LEADS_WEBHOOK_SECRET" in raised.value.explanation and "whsec_" in raised.value.explanation
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


@pytest.mark.parametrize(("secret", "words"), [
    ("a-long-random-secret-that-is-not-whsec-0123456789", ["not a Standard Webhooks secret", "whsec_"]),
    (f"{SECRET} raw-second-secret-0123456789", ["secret 2 of LEADS_WEBHOOK_SECRET is not a Standard Webhooks"]),
    ("whsec_***not-base64***", ["not valid base64"]),
    ("whsec_" + base64.b64encode(b"16 bytes only..!").decode(), ["holds 16 bytes", "24 to 64"]),
])
def test_a_secret_that_is_not_whsec_blocks_the_webhook_with_its_fix(
        server: FakeServer, secret: str, words: list[str]) -> None:
    destination = webhook(server, secret=secret)
    with pytest.raises(ConfigurationError) as raised:
        destination.deliver(stored_lead())
    assert all(word in raised.value.explanation for word in words), raised.value.explanation
    assert "secrets.token_bytes(32)" in raised.value.explanation  # how to make a good one
    assert secret.rsplit(maxsplit=1)[-1].removeprefix("whsec_")[:10] not in raised.value.explanation
    [check] = destination.check()
    assert not check.ok and check.message == raised.value.explanation
    assert server.requests == []


def test_check_names_the_rotation_and_sends_nothing(server: FakeServer) -> None:
    good = {c.name: c for c in webhook(server).check()}
    assert good["settings"].ok and good["url"].ok and good["secret"].ok and good["receiver"].ok
    rotating = {c.name: c for c in webhook(server, secret=f"{NEW_SECRET} {SECRET}").check()}
    assert rotating["secret"].ok and "2 whsec_ secrets" in rotating["secret"].message
    assert server.requests == []


# --- the signature itself -------------------------------------------------------------------------------------

def test_known_answer_of_the_specifications_library() -> None:
    # The vector of standardwebhooks' own test_sign_function (libraries/python/tests/test_webhooks.py).
    [key] = signing_keys("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    ours = signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert ours == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@hypothesis_settings(max_examples=200)
@given(key=st.binary(min_size=24, max_size=64), other=st.binary(min_size=24, max_size=64),
       body=st.text(max_size=300), timestamp=st.integers(0, 4_000_000_000))
def test_any_key_and_body_sign_as_the_library_does(key: bytes, other: bytes, body: str, timestamp: int) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    [parsed] = signing_keys(secret)
    assert parsed == key
    moment = datetime.fromtimestamp(timestamp, UTC)
    expected = Receiver(secret).sign(msg_id=LEAD_ID, timestamp=moment, data=body)
    data = body.encode()
    assert signature(key, LEAD_ID, timestamp, data) == expected
    header = signature_header((other, key), LEAD_ID, timestamp, data)
    assert header.split(" ")[1] == signature(key, LEAD_ID, timestamp, data)
    assert header.split(" ")[0] == signature(other, LEAD_ID, timestamp, data)


def test_customer_without_data_still_signs(server: FakeServer) -> None:
    server.on("POST", "/hooks/leads", Reply(204, ""))
    assert webhook(server).deliver(stored_lead(Customer())) == Delivered("")
