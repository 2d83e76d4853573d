"""E-mail through Azure Communication Services Email (LEADS_EMAIL_TRANSPORT=acs) against a fake of its REST API
(tests/support/acs_email.py) that checks the HMAC signature or the bearer token like the service."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from leads.core.destination import Delivered
from leads.core.errors import ConfigurationError, DestinationError, LeadRejectedError, TransientDestinationError
from leads.core.settings import load_settings
from leads.destinations.email import create
from leads.destinations.email_acs import AcsEmailDestination, operation_id
from leads.services import doctor
from tests.destinations.test_email import FIRST_NAME, LEAD_ID, TO, stored_lead
from tests.support.acs_email import (
    ACCESS_KEY,
    FakeAcsEmail,
    acs_error,
    domain_not_linked,
    failed_operation,
    invalid_sender_username,
    throttled,
)
from tests.support.azure_ad import FakeManagedIdentity
from tests.support.fake_http import FakeServer, Reply

SENDER = "DoNotReply@1a2b3c4d-contoso.azurecomm.net"


@pytest.fixture
def acs() -> Iterator[FakeAcsEmail]:
    with FakeAcsEmail(retry_after=0) as fake:
        yield fake


@pytest.fixture
def identity(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeManagedIdentity]:
    """The App Service managed identity endpoint, as azure-identity finds it (IDENTITY_ENDPOINT/HEADER)."""
    fake = FakeManagedIdentity("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.acs-token")
    monkeypatch.setenv("IDENTITY_ENDPOINT", fake.endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", fake.header)
    with fake.server:
        yield fake


def env(acs: FakeAcsEmail | None = None, **overrides: str) -> dict[str, str]:
    values = {
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "LEADS_HTTP_TIMEOUT": "5",
        "LEADS_EMAIL_TRANSPORT": "acs",
        "LEADS_EMAIL_FROM": f"Marketplace leads <{SENDER}>",
        "LEADS_EMAIL_TO": "; ".join(TO),
        "LEADS_ACS_CONNECTION_STRING": acs.connection_string if acs else "",
        "LEADS_ACS_WAIT_SECONDS": "5",
        **overrides,
    }
    return {k: v for k, v in values.items() if v}


def destination(acs: FakeAcsEmail | None = None, sleeps: list[float] | None = None,
                **overrides: str) -> AcsEmailDestination:
    built = create(load_settings(env(acs, **overrides)))
    assert isinstance(built, AcsEmailDestination)
    if sleeps is not None:
        built._sleep = sleeps.append
    return built


def fails(target: AcsEmailDestination, kind: type[DestinationError]) -> str:
    with pytest.raises(DestinationError) as caught:
        target.deliver(stored_lead())
    assert type(caught.value) is kind, caught.value.explanation
    return caught.value.explanation


# -- delivery -------------------------------------------------------------------------------------------


def test_delivers_signed_with_the_access_key_and_polls_until_succeeded(acs: FakeAcsEmail) -> None:
    acs.polls_before_done = 2
    acs.retry_after = 3
    sleeps: list[float] = []
    outcome = destination(acs, sleeps).deliver(stored_lead())
    [(operation, body)] = acs.sends
    assert outcome == Delivered(record_id=operation) and operation == operation_id(LEAD_ID, 0)
    assert sleeps == [3.0, 3.0, 3.0]  # each poll waits the retry-after the service asked for
    assert body["senderAddress"] == SENDER
    assert body["recipients"]["to"] == [{"address": address} for address in TO]
    assert body["content"]["subject"] == "New marketplace lead: Contoso Analytics — Install — Fabrikam"
    assert "Fabrikam" in body["content"]["plainText"] and "<table>" in body["content"]["html"]
    assert FIRST_NAME not in str(body)  # no personal data by default, as with SMTP
    assert body["headers"] == {"X-Lead-Id": LEAD_ID}


def test_delivers_with_the_managed_identity_token(acs: FakeAcsEmail, identity: FakeManagedIdentity) -> None:
    acs.bearer_token = identity.access_token
    outcome = destination(acs, LEADS_ACS_CONNECTION_STRING="", LEADS_ACS_ENDPOINT=acs.endpoint).deliver(stored_lead())
    assert isinstance(outcome, Delivered) and len(acs.sends) == 1
    [token_request] = identity.server.sent("GET", identity.path)
    assert token_request.query["resource"] == ["https://communication.azure.com"]


def test_the_identity_is_the_user_assigned_one_of_storage(acs: FakeAcsEmail, identity: FakeManagedIdentity) -> None:
    acs.bearer_token = identity.access_token
    destination(acs, LEADS_ACS_CONNECTION_STRING="", LEADS_ACS_ENDPOINT=acs.endpoint,
                AzureWebJobsStorage__clientId="9d8c7b6a-user-assigned").deliver(stored_lead())
    [token_request] = identity.server.sent("GET", identity.path)
    assert token_request.query["client_id"] == ["9d8c7b6a-user-assigned"]


# -- idempotency ----------------------------------------------------------------------------------------


def test_a_resend_of_a_delivered_lead_sends_nothing_again(acs: FakeAcsEmail) -> None:
    target = destination(acs)
    first, second = target.deliver(stored_lead()), target.deliver(stored_lead())
    assert first == second and len(acs.sends) == 1


def test_a_send_still_running_is_checked_again_later_not_sent_twice(acs: FakeAcsEmail) -> None:
    acs.polls_before_done = 10
    acs.retry_after = 20  # as examples/SendEmail.json: more than LEADS_ACS_WAIT_SECONDS
    with pytest.raises(TransientDestinationError) as caught:
        destination(acs, []).deliver(stored_lead())
    assert caught.value.retry_after == 20 and "no second send" in caught.value.explanation
    acs.polls_before_done = 0
    assert isinstance(destination(acs, []).deliver(stored_lead()), Delivered)
    assert len(acs.sends) == 1


def test_a_failed_send_is_rejected_with_its_reason_and_a_replay_sends_anew(acs: FakeAcsEmail) -> None:
    acs.outcome = failed_operation()
    sentence = fails(destination(acs), LeadRejectedError)
    assert "EmailDropped: Email was dropped after several attempts to deliver." in sentence
    acs.outcome = None
    outcome = destination(acs).deliver(stored_lead())
    assert [operation for operation, _ in acs.sends] == [operation_id(LEAD_ID, 0), operation_id(LEAD_ID, 1)]
    assert outcome == Delivered(record_id=operation_id(LEAD_ID, 1))


def test_a_repeated_operation_id_answered_409_is_followed_not_resent(acs: FakeAcsEmail) -> None:
    target = destination(acs)
    first = target.deliver(stored_lead())
    real_status = target._status
    calls: list[str] = []

    def racing_status(operation: str) -> Any:
        calls.append(operation)  # the first look misses the operation another worker just created
        return None if len(calls) == 1 else real_status(operation)

    target._status = racing_status  # type: ignore[method-assign]
    assert target.deliver(stored_lead()) == first  # POST answered 409, then the operation was followed
    assert len(acs.sends) == 1 and len(calls) == 2


# -- failures -------------------------------------------------------------------------------------------


def test_a_wrong_access_key_names_the_connection_string(acs: FakeAcsEmail) -> None:
    wrong = f"endpoint={acs.endpoint}/;accesskey=d3Jvbmcta2V5LXdyb25nLWtleQ=="
    sentence = fails(destination(acs, LEADS_ACS_CONNECTION_STRING=wrong), ConfigurationError)
    assert "Denied by the resource provider" in sentence and "Settings > Keys" in sentence
    assert ACCESS_KEY not in sentence and not acs.sends


def test_an_identity_without_the_role_is_told_which_role(acs: FakeAcsEmail, identity: FakeManagedIdentity) -> None:
    acs.bearer_token = "the token of an identity that has the role"
    sentence = fails(destination(acs, LEADS_ACS_CONNECTION_STRING="", LEADS_ACS_ENDPOINT=acs.endpoint),
                     ConfigurationError)
    assert "Communication and Email Service Owner" in sentence and "system-assigned" in sentence


def test_a_sender_domain_not_linked_says_which_address_to_use(acs: FakeAcsEmail) -> None:
    acs.send_reply = domain_not_linked()
    sentence = fails(destination(acs, LEADS_EMAIL_FROM="leads@contoso.example"), ConfigurationError)
    assert "DomainNotLinked" in sentence and "contoso.example" in sentence and "DoNotReply@" in sentence


def test_a_sender_username_the_domain_lacks_is_explained(acs: FakeAcsEmail) -> None:
    acs.send_reply = invalid_sender_username()
    assert "MailFrom addresses" in fails(destination(acs), ConfigurationError)


@pytest.mark.parametrize(("reply", "retry_after"), [(throttled(7), 7.0), (acs_error(503, "ServiceUnavailable",
                                                                                     "Try later."), None)])
def test_throttling_and_server_errors_are_retried(acs: FakeAcsEmail, reply: Reply, retry_after: Any) -> None:
    acs.send_reply = reply
    with pytest.raises(TransientDestinationError) as caught:
        destination(acs).deliver(stored_lead())
    assert caught.value.retry_after == retry_after


def test_an_endpoint_that_is_not_acs_is_a_configuration_error() -> None:
    with FakeServer() as other:
        connection = f"endpoint={other.url}/;accesskey={ACCESS_KEY}"
        assert "not a Communication Services endpoint" in fails(
            destination(LEADS_ACS_CONNECTION_STRING=connection), ConfigurationError)


def test_an_endpoint_nothing_answers_on_is_retried() -> None:
    with FakeServer() as closed:
        url = closed.url
    assert "Could not connect" in fails(destination(LEADS_ACS_CONNECTION_STRING=f"endpoint={url}/;accesskey="
                                                                                 f"{ACCESS_KEY}"),
                                        TransientDestinationError)


@pytest.mark.parametrize(("overrides", "words"), [
    ({"LEADS_ACS_CONNECTION_STRING": ""}, "needs LEADS_ACS_ENDPOINT"),
    ({"LEADS_ACS_CONNECTION_STRING": "endpoint=https://x.communication.azure.com/;accesskey=not base64!"},
     "Settings > Keys"),
    ({"LEADS_EMAIL_TO": "", "LEADS_ACS_ENDPOINT": "https://x.communication.azure.com"}, "set LEADS_EMAIL_TO"),
])
def test_settings_problems_are_named(overrides: dict[str, str], words: str) -> None:
    assert words in fails(destination(None, None, **overrides), ConfigurationError)


def test_an_unknown_transport_blocks_only_email() -> None:
    settings = load_settings({**env(), "LEADS_EMAIL_TRANSPORT": "graph", "LEADS_DESTINATIONS": "email,webhook"})
    assert settings.problems["email"] == "LEADS_EMAIL_TRANSPORT must be smtp, smtp-oauth or acs, not 'graph'."
    assert "webhook" not in settings.problems or "TRANSPORT" not in settings.problems["webhook"]


# -- doctor ---------------------------------------------------------------------------------------------


def run_doctor(environment: dict[str, str], *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return doctor.main(list(argv), env=environment, out=out, extra_checks=[]), out.getvalue()


def test_doctor_passes_a_working_setup_and_sends_nothing(acs: FakeAcsEmail) -> None:
    status, output = run_doctor(env(acs))
    assert status == 0, output
    assert "OK   email  endpoint: 127.0.0.1" in output and "--send-test-email" in output
    assert not acs.sends


def test_doctor_explains_a_missing_role(acs: FakeAcsEmail, identity: FakeManagedIdentity) -> None:
    acs.bearer_token = "another identity's token"
    status, output = run_doctor(env(acs, LEADS_ACS_CONNECTION_STRING="", LEADS_ACS_ENDPOINT=acs.endpoint))
    assert status == 1
    assert "OK   email  credential: the app's managed identity (system-assigned) got a token" in output
    assert "FAIL email  endpoint:" in output and "Communication and Email Service Owner role" in output


def test_doctor_explains_a_wrong_endpoint() -> None:
    with FakeServer() as other:
        status, output = run_doctor(env(LEADS_ACS_CONNECTION_STRING=f"endpoint={other.url}/;accesskey={ACCESS_KEY}"))
    assert status == 1 and "FAIL email  endpoint:" in output and "Overview > Endpoint" in output
    assert ACCESS_KEY not in output


def test_doctor_explains_an_endpoint_nothing_answers_on() -> None:
    with FakeServer() as closed:
        url = closed.url
    status, output = run_doctor(env(LEADS_ACS_CONNECTION_STRING=f"endpoint={url}/;accesskey={ACCESS_KEY}"))
    assert status == 1 and "FAIL email  endpoint: Could not connect" in output and "Overview > Endpoint" in output


def test_doctor_test_email_shows_an_unlinked_sender_domain(acs: FakeAcsEmail) -> None:
    acs.send_reply = domain_not_linked()
    status, output = run_doctor(env(acs), "--send-test-email")
    assert status == 1 and "FAIL email  test e-mail:" in output and "DomainNotLinked" in output
    acs.send_reply = None
    status, output = run_doctor(env(acs), "--send-test-email")
    assert status == 0 and "OK   email  test e-mail:" in output and len(acs.sends) == 1
    assert acs.sends[0][1]["content"]["subject"].startswith("[TEST]")
