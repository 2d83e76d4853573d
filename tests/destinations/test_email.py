"""The e-mail destination against a real SMTP server (aiosmtpd) over real sockets.

Settings are read through `load_settings` from the same variables an operator sets, so a sentence that
names LEADS_SMTP_SECURITY is checked against the setting that really changes the behaviour.
"""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devhost.mailcatcher import free_port
from leads.core.destination import Check, Delivered
from leads.core.errors import ConfigurationError, DestinationError, LeadRejectedError, TransientDestinationError
from leads.core.model import Customer, Lead, LeadSource, StoredLead
from leads.core.settings import Settings, load_settings
from leads.destinations import build_destination
from leads.destinations.email import EmailDestination, create
from tests.support.certificates import CertificateFiles, self_signed
from tests.support.smtp import Security, SilentServer, SmtpServer

HOST = "127.0.0.1"  # where SmtpServer listens
LEAD_ID = "20261121T120000000Z-0a1b2c3d"
FIRST_NAME = "Philippa"
USER, PASSWORD = "leads-bot", "correct horse battery staple"
WRONG_PASSWORD = "Tr0ub4dor&3-wrong"
TO = ("sales@contoso.example", "ops@contoso.example")


def stored_lead(lead_id: str = LEAD_ID) -> StoredLead:
    lead = Lead(
        customer=Customer(first_name=FIRST_NAME, last_name="Quarrington", email="pq@fabrikam.example",
                          phone="16175550199", country="US", company="Fabrikam", title="CTO"),
        lead_source=LeadSource(raw="AzureMarketplace-INS|contoso.analytics", source="AzureMarketplace",
                               action="INS", offer="contoso.analytics"),
        action_code="INS",
        offer_title="Contoso Analytics",
    )
    return StoredLead(lead_id, datetime(2026, 11, 21, 12, 0, tzinfo=UTC), lead)


def app_settings(port: int, **env: str) -> Settings:
    values = {
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "LEADS_HTTP_TIMEOUT": "5",
        "LEADS_SMTP_HOST": HOST,
        "LEADS_SMTP_PORT": str(port),
        "LEADS_SMTP_SECURITY": "none",
        "LEADS_EMAIL_FROM": "Marketplace leads <leads@contoso.example>",
        "LEADS_EMAIL_TO": "; ".join(TO),
        **env,
    }
    return load_settings(values)


def email_destination(port: int, **env: str) -> EmailDestination:
    destination = create(app_settings(port, **env))
    assert isinstance(destination, EmailDestination)
    return destination


def fails_with(destination: EmailDestination, kind: type[DestinationError]) -> DestinationError:
    with pytest.raises(DestinationError) as caught:
        destination.deliver(stored_lead())
    assert type(caught.value) is kind, caught.value.explanation
    return caught.value


@pytest.fixture
def certificate(tmp_path: Path) -> CertificateFiles:
    return self_signed(tmp_path / "tls")


@pytest.fixture
def trusted(certificate: CertificateFiles, monkeypatch: pytest.MonkeyPatch) -> CertificateFiles:
    """The test server's certificate trusted the way an operator would: the standard SSL_CERT_FILE."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.certificate))
    return certificate


# -- delivery ---------------------------------------------------------------------------------------------


def test_create_builds_a_notification_destination() -> None:
    destination = build_destination("email", app_settings(25, LEADS_HTTP_TIMEOUT="7"))
    assert isinstance(destination, EmailDestination)
    assert destination.name == "email" and destination.is_crm is False
    assert destination.timeout == 7


def test_delivers_over_plain_smtp_to_every_recipient(smtp_server: SmtpServer) -> None:
    outcome = email_destination(smtp_server.port).deliver(stored_lead())
    [envelope], [message], [raw] = smtp_server.envelopes, smtp_server.messages, smtp_server.raw_messages
    assert outcome == Delivered(record_id=f"<{LEAD_ID}@contoso.example>")
    assert message["Message-ID"] == outcome.record_id
    assert message["X-Lead-Id"] == LEAD_ID
    assert envelope.mail_from == "leads@contoso.example"
    assert envelope.rcpt_tos == TO
    assert message["To"] == ", ".join(TO)
    assert str(message["Subject"]) == "New marketplace lead: Contoso Analytics — Install — Fabrikam"
    assert not envelope.encrypted
    assert FIRST_NAME.encode() not in raw  # and no personal data by default


def test_a_second_send_of_the_same_lead_has_the_same_message_id(smtp_server: SmtpServer) -> None:
    destination = email_destination(smtp_server.port)
    first, second = destination.deliver(stored_lead()), destination.deliver(stored_lead())
    ids = [message["Message-ID"] for message in smtp_server.messages]
    assert first == second and ids == [first.record_id] * 2


def test_delivers_over_starttls_trusting_the_certificate_through_ssl_cert_file(trusted: CertificateFiles) -> None:
    with SmtpServer(security="starttls", certificate=trusted) as server:
        email_destination(server.port, LEADS_SMTP_SECURITY="starttls").deliver(stored_lead())
        [envelope] = server.envelopes
    assert envelope.encrypted


def test_delivers_over_ssl(trusted: CertificateFiles) -> None:
    with SmtpServer(security="ssl", certificate=trusted) as server:
        email_destination(server.port, LEADS_SMTP_SECURITY="ssl").deliver(stored_lead())
        [envelope] = server.envelopes
    assert envelope.encrypted


def test_logs_in_when_a_username_is_set(trusted: CertificateFiles) -> None:
    with SmtpServer(security="starttls", certificate=trusted, auth=(USER, PASSWORD)) as server:
        email_destination(server.port, LEADS_SMTP_SECURITY="starttls", LEADS_SMTP_USERNAME=USER,
                          LEADS_SMTP_PASSWORD=PASSWORD).deliver(stored_lead())
        [envelope] = server.envelopes
    assert envelope.login == USER


def test_a_connection_lost_after_the_message_was_accepted_is_still_delivered() -> None:
    # The server has the message once it answers 250 to DATA: failing now would send it again on retry.
    with SmtpServer(drop_on_quit=True) as server:
        outcome = email_destination(server.port).deliver(stored_lead())
        assert len(server.messages) == 1
    assert isinstance(outcome, Delivered)


def test_includes_personal_data_only_when_asked(smtp_server: SmtpServer) -> None:
    email_destination(smtp_server.port, LEADS_EMAIL_INCLUDE_PII="true").deliver(stored_lead())
    [message] = smtp_server.messages
    plain = message.get_body(("plain",))
    assert plain is not None and FIRST_NAME in plain.get_content()


# -- failures: configuration ------------------------------------------------------------------------------


def test_wrong_password_is_a_configuration_error_that_never_shows_the_password(
    trusted: CertificateFiles, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with SmtpServer(security="starttls", certificate=trusted, auth=(USER, PASSWORD)) as server:
        destination = email_destination(server.port, LEADS_SMTP_SECURITY="starttls", LEADS_SMTP_USERNAME=USER,
                                        LEADS_SMTP_PASSWORD=WRONG_PASSWORD)
        error = fails_with(destination, ConfigurationError)
        assert not server.messages
    assert "535" in error.explanation
    assert "LEADS_SMTP_USERNAME" in error.explanation and "LEADS_SMTP_PASSWORD" in error.explanation
    for shown in (error.explanation, str(error), repr(error), caplog.text, repr(destination.settings)):
        assert WRONG_PASSWORD not in shown


def test_a_server_that_requires_a_login_says_which_settings_to_set(trusted: CertificateFiles) -> None:
    with SmtpServer(security="starttls", certificate=trusted, auth=(USER, PASSWORD)) as server:
        error = fails_with(email_destination(server.port, LEADS_SMTP_SECURITY="starttls"), ConfigurationError)
    assert "530" in error.explanation and "LEADS_SMTP_USERNAME" in error.explanation


def test_starttls_not_offered_is_a_configuration_error(smtp_server: SmtpServer) -> None:
    error = fails_with(email_destination(smtp_server.port, LEADS_SMTP_SECURITY="starttls"), ConfigurationError)
    assert "does not offer STARTTLS" in error.explanation and "LEADS_SMTP_SECURITY" in error.explanation
    assert not smtp_server.messages  # nothing went out unencrypted


def test_ssl_against_a_plain_server_is_a_configuration_error(smtp_server: SmtpServer) -> None:
    error = fails_with(email_destination(smtp_server.port, LEADS_SMTP_SECURITY="ssl"), ConfigurationError)
    assert "TLS handshake" in error.explanation
    assert "LEADS_SMTP_SECURITY" in error.explanation and "LEADS_SMTP_PORT" in error.explanation


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_an_untrusted_certificate_is_a_configuration_error(
    certificate: CertificateFiles, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, security: Security
) -> None:
    other = self_signed(tmp_path / "other")  # SSL_CERT_FILE trusts a different certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(other.certificate))
    with SmtpServer(security=security, certificate=certificate) as server:
        error = fails_with(email_destination(server.port, LEADS_SMTP_SECURITY=security), ConfigurationError)
        assert not server.messages
    assert "could not be verified" in error.explanation and "SSL_CERT_FILE" in error.explanation


def test_a_certificate_for_another_host_name_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with SmtpServer(security="starttls", names=("mail.contoso.example",), addresses=()) as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))  # trusted, but for another name
        error = fails_with(email_destination(server.port, LEADS_SMTP_SECURITY="starttls"), ConfigurationError)
    assert "LEADS_SMTP_HOST" in error.explanation


def test_every_recipient_refused_is_a_configuration_error() -> None:
    refusal = "550 5.1.1 No such user here"
    with SmtpServer(refuse_recipients=dict.fromkeys(TO, refusal)) as server:
        error = fails_with(email_destination(server.port), ConfigurationError)
        assert not server.messages
    assert "LEADS_EMAIL_TO" in error.explanation and "550 5.1.1 No such user here" in error.explanation


def test_one_recipient_refused_still_delivers_to_the_others_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with SmtpServer(refuse_recipients={TO[0]: "550 5.1.1 No such user"}) as server:
        outcome = email_destination(server.port).deliver(stored_lead())
        [envelope] = server.envelopes
    # A retry would send it twice to the recipient who got it: delivered, with a warning to fix the setting.
    assert isinstance(outcome, Delivered)
    assert envelope.rcpt_tos == (TO[1],)
    assert "LEADS_EMAIL_TO" in caplog.text and TO[0] in caplog.text and LEAD_ID in caplog.text
    assert FIRST_NAME not in caplog.text


def test_a_refused_sender_is_a_configuration_error() -> None:
    refusal = "550 5.7.60 SMTP; Client does not have permissions to send as this sender"
    with SmtpServer(refuse_sender=refusal) as server:
        error = fails_with(email_destination(server.port), ConfigurationError)
    assert "LEADS_EMAIL_FROM" in error.explanation and "5.7.60" in error.explanation


def test_a_policy_refusal_of_the_message_is_a_configuration_error() -> None:
    with SmtpServer(reject_with="554 5.7.1 Message rejected: sender domain not authorised") as server:
        error = fails_with(email_destination(server.port), ConfigurationError)
    assert "LEADS_EMAIL_FROM" in error.explanation


def test_a_refusal_of_this_message_only_is_a_rejected_lead() -> None:
    with SmtpServer(reject_with="552 5.3.4 Message size exceeds fixed limit") as server:
        error = fails_with(email_destination(server.port), LeadRejectedError)
    assert "552" in error.explanation


@pytest.mark.parametrize(
    ("missing", "env"),
    [
        ("LEADS_SMTP_HOST", {"LEADS_SMTP_HOST": ""}),
        ("LEADS_EMAIL_TO", {"LEADS_EMAIL_TO": ""}),
        ("LEADS_EMAIL_FROM", {"LEADS_EMAIL_FROM": ""}),
    ],
)
def test_a_missing_setting_is_named(smtp_server: SmtpServer, missing: str, env: dict[str, str]) -> None:
    error = fails_with(email_destination(smtp_server.port, **env), ConfigurationError)
    assert f"set {missing}" in error.explanation
    others = {"LEADS_SMTP_HOST", "LEADS_EMAIL_TO", "LEADS_EMAIL_FROM"} - {missing}
    assert not any(name in error.explanation for name in others)
    assert smtp_server.transactions == 0


def test_a_malformed_address_is_named(smtp_server: SmtpServer) -> None:
    error = fails_with(email_destination(smtp_server.port, LEADS_EMAIL_TO="sales at contoso"), ConfigurationError)
    assert "LEADS_EMAIL_TO" in error.explanation and "sales at contoso" in error.explanation


# -- failures: transient ----------------------------------------------------------------------------------


def test_server_down_is_transient() -> None:
    port = free_port()  # nothing listens there
    error = fails_with(email_destination(port), TransientDestinationError)
    assert f"{HOST}:{port}" in error.explanation and "connection refused" in error.explanation


def test_server_down_then_back_delivers() -> None:
    server = SmtpServer()
    destination = email_destination(server.port)
    fails_with(destination, TransientDestinationError)
    with server:
        assert isinstance(destination.deliver(stored_lead()), Delivered)
        assert len(server.messages) == 1


def test_a_server_that_never_answers_is_transient() -> None:
    with SilentServer() as silent:
        error = fails_with(email_destination(silent.port, LEADS_HTTP_TIMEOUT="1"), TransientDestinationError)
    assert "did not answer within 1 seconds" in error.explanation


def test_an_unknown_host_name_is_a_configuration_error() -> None:
    unknown = "smtp.does-not-exist.invalid"  # RFC 6761: never resolves
    try:
        socket.getaddrinfo(unknown, 25)
    except socket.gaierror as lookup:
        if lookup.errno != socket.EAI_NONAME:
            pytest.skip(f"this machine's DNS does not answer ({lookup.strerror})")
    error = fails_with(email_destination(25, LEADS_SMTP_HOST=unknown), ConfigurationError)
    assert "LEADS_SMTP_HOST" in error.explanation


@pytest.mark.parametrize(
    "replies",
    [
        {"reject_with": "421 4.3.2 Service shutting down, closing transmission channel"},
        {"reject_with": "451 4.3.0 Temporary local problem, try again later"},
        {"refuse_recipients": dict.fromkeys(TO, "451 4.7.1 Greylisted, please try again later")},
        {"refuse_recipients": dict.fromkeys(TO, "421 4.7.0 Too many connections")},
        {"refuse_sender": "452 4.3.1 Insufficient system storage"},
    ],
    ids=["421-data", "451-data", "451-rcpt", "421-rcpt", "452-mail"],
)
def test_a_temporary_reply_is_transient(replies: dict[str, Any]) -> None:
    with SmtpServer(**replies) as server:
        error = fails_with(email_destination(server.port), TransientDestinationError)
        assert not server.messages
    assert "will retry" in error.explanation


# -- check() ----------------------------------------------------------------------------------------------


def lines(checks: list[Check]) -> list[tuple[str, bool]]:
    assert all(check.destination == "email" for check in checks)
    return [(check.name, check.ok) for check in checks]


def test_check_passes_every_step_and_sends_nothing(trusted: CertificateFiles) -> None:
    with SmtpServer(security="starttls", certificate=trusted, auth=(USER, PASSWORD)) as server:
        checks = email_destination(server.port, LEADS_SMTP_SECURITY="starttls", LEADS_SMTP_USERNAME=USER,
                                   LEADS_SMTP_PASSWORD=PASSWORD).check()
        assert not server.messages
        assert server.transactions == 1  # MAIL FROM / RCPT TO were tried, then RSET
    assert lines(checks) == [("connect", True), ("starttls", True), ("login", True), ("addresses", True)]
    assert all(PASSWORD not in check.message for check in checks)


def test_check_reports_a_wrong_password_on_the_login_line(trusted: CertificateFiles) -> None:
    with SmtpServer(security="starttls", certificate=trusted, auth=(USER, PASSWORD)) as server:
        checks = email_destination(server.port, LEADS_SMTP_SECURITY="starttls", LEADS_SMTP_USERNAME=USER,
                                   LEADS_SMTP_PASSWORD=WRONG_PASSWORD).check()
    assert lines(checks) == [("connect", True), ("starttls", True), ("login", False)]
    assert "LEADS_SMTP_PASSWORD" in checks[-1].message and WRONG_PASSWORD not in checks[-1].message


def test_check_reports_refused_recipients() -> None:
    with SmtpServer(refuse_recipients=dict.fromkeys(TO, "550 5.1.1 No such user")) as server:
        checks = email_destination(server.port).check()
    assert lines(checks) == [("connect", True), ("addresses", False)]
    assert "LEADS_EMAIL_TO" in checks[-1].message


def test_check_reports_a_server_that_is_down() -> None:
    checks = email_destination(free_port()).check()
    assert lines(checks) == [("connect", False)]
    assert "LEADS_SMTP_HOST" in checks[0].message


def test_check_reports_missing_settings_without_connecting() -> None:
    checks = email_destination(free_port(), LEADS_SMTP_HOST="").check()
    assert lines(checks) == [("settings", False)]
    assert "set LEADS_SMTP_HOST" in checks[0].message
