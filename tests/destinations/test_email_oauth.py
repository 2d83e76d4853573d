"""E-mail through Exchange Online's SMTP AUTH with an OAuth token (LEADS_EMAIL_TRANSPORT=smtp-oauth).

Real msal asks a fake Azure AD (tests/support/azure_ad.py) for a client-credentials token for
https://outlook.office365.com/.default; a real SMTP server (aiosmtpd, STARTTLS) offers only AUTH XOAUTH2 and
accepts only that token for the mailbox.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from leads.core.destination import Delivered
from leads.core.errors import ConfigurationError, DestinationError
from leads.core.settings import load_settings
from leads.destinations.email import EmailDestination, create
from leads.destinations.email_oauth import EXCHANGE_RESOURCE
from leads.services import doctor
from tests.destinations.test_email import TO, stored_lead
from tests.support.azure_ad import (
    CLIENT_SECRET,
    FakeAzureAD,
    TlsFiles,
    expired_secret,
    invalid_secret,
    make_client_certificate,
)
from tests.support.certificates import CertificateFiles, self_signed
from tests.support.fake_http import Reply
from tests.support.smtp import SmtpServer

MAILBOX = "leads@contoso.example"


@pytest.fixture
def aad(tls: TlsFiles, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAzureAD]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.certificate))
    fake = FakeAzureAD(tls, resource=EXCHANGE_RESOURCE)
    with fake.server:
        yield fake


@pytest.fixture
def exchange(tmp_path: Path, aad: FakeAzureAD, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    certificate: CertificateFiles = self_signed(tmp_path / "smtp-tls")
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.certificate))
    with SmtpServer(security="starttls", certificate=certificate, xoauth2=(MAILBOX, aad.access_token)) as server:
        yield server


def env(aad: FakeAzureAD, server: SmtpServer, **overrides: str) -> dict[str, str]:
    values = {
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "LEADS_HTTP_TIMEOUT": "5",
        "LEADS_EMAIL_TRANSPORT": "smtp-oauth",
        "LEADS_SMTP_HOST": "localhost",
        "LEADS_SMTP_PORT": str(server.port),
        "LEADS_EMAIL_FROM": f"Marketplace leads <{MAILBOX}>",
        "LEADS_EMAIL_TO": "; ".join(TO),
        "LEADS_AUTHORITY_HOST": aad.url,
        "LEADS_SMTP_OAUTH_TENANT_ID": aad.tenant_id,
        "LEADS_SMTP_OAUTH_CLIENT_ID": aad.app.client_id,
        "LEADS_SMTP_OAUTH_CLIENT_SECRET": CLIENT_SECRET,
        **overrides,
    }
    return {k: v for k, v in values.items() if v}


def destination(aad: FakeAzureAD, server: SmtpServer, **overrides: str) -> EmailDestination:
    built = create(load_settings(env(aad, server, **overrides)))
    assert isinstance(built, EmailDestination)
    return built


def test_delivers_with_an_exchange_online_token_and_no_password(aad: FakeAzureAD, exchange: SmtpServer) -> None:
    outcome = destination(aad, exchange).deliver(stored_lead())
    [envelope] = exchange.envelopes
    assert isinstance(outcome, Delivered)
    assert envelope.login == MAILBOX and envelope.encrypted
    assert envelope.rcpt_tos == TO
    [token_request] = aad.token_requests()
    assert token_request.form()["scope"] == [f"{EXCHANGE_RESOURCE}/.default"]
    assert exchange.xoauth2_attempts == [f"user={MAILBOX}\x01auth=Bearer {aad.access_token}\x01\x01".encode()]


def test_smtp_username_names_the_mailbox_when_it_differs_from_the_sender(aad: FakeAzureAD,
                                                                         exchange: SmtpServer) -> None:
    exchange.xoauth2 = ("shared-leads@contoso.example", aad.access_token)
    exchange.stop()
    exchange.start()
    destination(aad, exchange, LEADS_SMTP_USERNAME="shared-leads@contoso.example").deliver(stored_lead())
    assert [e.login for e in exchange.envelopes] == ["shared-leads@contoso.example"]


def test_a_certificate_signs_the_token_request_instead_of_a_secret(aad: FakeAzureAD, exchange: SmtpServer) -> None:
    certificate = make_client_certificate()
    aad.app.certificate = certificate
    destination(aad, exchange, LEADS_SMTP_OAUTH_CLIENT_SECRET="",
                LEADS_SMTP_OAUTH_CLIENT_CERTIFICATE=certificate.pem).deliver(stored_lead())
    [token_request] = aad.token_requests()
    assert "client_secret" not in token_request.form() and "client_assertion" in token_request.form()
    assert [e.login for e in exchange.envelopes] == [MAILBOX]


def test_a_certificate_without_a_key_names_this_transports_setting(aad: FakeAzureAD, exchange: SmtpServer) -> None:
    with pytest.raises(ConfigurationError) as caught:
        destination(aad, exchange, LEADS_SMTP_OAUTH_CLIENT_SECRET="",
                    LEADS_SMTP_OAUTH_CLIENT_CERTIFICATE="-----BEGIN CERTIFICATE-----\nnot a key\n").deliver(
            stored_lead())
    assert "LEADS_SMTP_OAUTH_CLIENT_CERTIFICATE holds no unencrypted private key" in caught.value.explanation


def test_a_token_exchange_refuses_is_a_configuration_error_naming_the_exchange_setup(
        aad: FakeAzureAD, exchange: SmtpServer) -> None:
    exchange.xoauth2 = (MAILBOX, "another-token")
    exchange.stop()
    exchange.start()
    with pytest.raises(ConfigurationError) as caught:
        destination(aad, exchange).deliver(stored_lead())
    sentence = caught.value.explanation
    assert "535 5.7.3 Authentication unsuccessful" in sentence
    assert "SMTP.SendAsApp" in sentence and "New-ServicePrincipal" in sentence and "Add-MailboxPermission" in sentence
    assert aad.access_token not in sentence and not exchange.envelopes


def test_smtp_auth_disabled_for_the_tenant_names_the_switch(aad: FakeAzureAD, exchange: SmtpServer) -> None:
    exchange.xoauth2 = (MAILBOX, "refused")
    # Microsoft's SMTP AUTH troubleshooting ("SmtpClientAuthentication is disabled for the Tenant").
    exchange.xoauth2_refusal = ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for "
                                "the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.")
    exchange.stop()
    exchange.start()
    with pytest.raises(ConfigurationError, match="Set-CASMailbox"):
        destination(aad, exchange).deliver(stored_lead())


@pytest.mark.parametrize(("reply", "fix"), [
    (invalid_secret, "LEADS_SMTP_OAUTH_CLIENT_SECRET"),
    (expired_secret, "LEADS_SMTP_OAUTH_CLIENT_SECRET"),
])
def test_azure_ad_refusals_name_this_transports_settings(aad: FakeAzureAD, exchange: SmtpServer,
                                                         reply: Callable[[str], Reply], fix: str) -> None:
    aad.token_error = reply(aad.app.client_id)
    with pytest.raises(DestinationError) as caught:
        destination(aad, exchange).deliver(stored_lead())
    assert fix in caught.value.explanation and "DYNAMICS" not in caught.value.explanation
    assert not exchange.xoauth2_attempts  # no token, no login attempt


def test_a_server_without_xoauth2_says_which_host_to_use(aad: FakeAzureAD, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    certificate = self_signed(tmp_path / "plain-tls")
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.certificate))
    with (SmtpServer(security="starttls", certificate=certificate, auth=("user", "password")) as server,
          pytest.raises(ConfigurationError, match=r"smtp\.office365\.com")):
        destination(aad, server).deliver(stored_lead())


def test_missing_oauth_settings_and_wrong_security_are_named(aad: FakeAzureAD, exchange: SmtpServer) -> None:
    with pytest.raises(ConfigurationError, match="LEADS_SMTP_OAUTH_CLIENT_SECRET"):
        destination(aad, exchange, LEADS_SMTP_OAUTH_CLIENT_SECRET="").deliver(stored_lead())
    with pytest.raises(ConfigurationError, match="LEADS_SMTP_SECURITY=starttls"):
        destination(aad, exchange, LEADS_SMTP_SECURITY="ssl").deliver(stored_lead())
    assert load_settings({"AzureWebJobsStorage": "UseDevelopmentStorage=true",
                          "LEADS_EMAIL_TRANSPORT": "smtp-oauth"}).email.host == "smtp.office365.com"


def test_doctor_shows_the_oauth_login_and_the_refusal(aad: FakeAzureAD, exchange: SmtpServer) -> None:
    out = io.StringIO()
    assert doctor.main([], env=env(aad, exchange), out=out, extra_checks=[]) == 0
    assert f"OK   email  login: Exchange Online accepted the OAuth token for mailbox {MAILBOX}" in out.getvalue()

    exchange.xoauth2 = (MAILBOX, "another-token")
    exchange.stop()
    exchange.start()
    out = io.StringIO()
    assert doctor.main([], env=env(aad, exchange), out=out, extra_checks=[]) == 1
    assert "FAIL email  login: Exchange Online at localhost" in out.getvalue()
    assert CLIENT_SECRET not in out.getvalue()


def test_doctor_can_send_a_test_message(aad: FakeAzureAD, exchange: SmtpServer) -> None:
    out = io.StringIO()
    assert doctor.main(["--send-test-email"], env=env(aad, exchange), out=out, extra_checks=[]) == 0
    assert "OK   email  test e-mail: Sent a test message" in out.getvalue()
    [message] = exchange.wait_for(1)
    assert str(message["Subject"]).startswith("[TEST]")
