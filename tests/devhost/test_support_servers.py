"""The local servers: Azurite's connection string, the mail catcher's .eml files, the test SMTP server."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path

import pytest
from azure.storage.queue import QueueServiceClient
from azure.storage.queue._shared.parser import DEVSTORE_ACCOUNT_KEY

from devhost.azurite import ACCOUNT_KEY, AzuriteError, azurite_executable
from devhost.mailcatcher import MailCatcher
from tests.devhost.recorder import wait_until
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.timeout(60)


def a_message(subject: str = "New lead") -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "app@example.com", "sales@example.com", subject
    message.set_content("A lead arrived.")
    return message


def test_development_account_key_matches_the_storage_sdk():
    assert ACCOUNT_KEY == DEVSTORE_ACCOUNT_KEY


@pytest.mark.azurite
def test_azurite_connection_string_reaches_the_emulator(azurite):
    service = QueueServiceClient.from_connection_string(azurite.connection_string)
    service.create_queue("connection-check")
    assert "connection-check" in [q.name for q in service.list_queues()]


def test_missing_node_modules_says_to_run_npm_ci(tmp_path):
    with pytest.raises(AzuriteError, match="run `npm ci`"):
        azurite_executable(tmp_path)


def test_mail_catcher_keeps_each_message_as_an_eml_file(tmp_path: Path):
    catcher = MailCatcher(tmp_path / "mail", port=0)
    catcher.start()
    try:
        with smtplib.SMTP(catcher.host, catcher.port, timeout=10) as client:
            client.send_message(a_message("first"))
            client.send_message(a_message("second"))
    finally:
        catcher.stop()
    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert [f.read_bytes().count(b"Subject: first") for f in files] == [1, 0]
    assert b"Subject: second" in files[1].read_bytes()


def test_smtp_server_records_messages_and_comes_back_on_the_same_port(smtp_server: SmtpServer):
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.send_message(a_message("before"))
    smtp_server.stop()
    with pytest.raises(OSError):
        smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5)
    smtp_server.start()
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.send_message(a_message("after"))

    messages = smtp_server.wait_for(2)
    assert [m["Subject"] for m in messages] == ["before", "after"]
    assert smtp_server.envelopes[0].rcpt_tos == ("sales@example.com",)
    assert not smtp_server.envelopes[0].encrypted


def test_smtp_server_can_refuse_data_for_a_while(smtp_server: SmtpServer):
    smtp_server.reject_with = "451 4.3.0 Try again later"
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client, \
            pytest.raises(smtplib.SMTPDataError) as refused:
        client.send_message(a_message())
    assert refused.value.smtp_code == 451
    assert smtp_server.messages == []


def test_starttls_with_auth_accepts_the_right_password_only(smtp_server_factory):
    server = smtp_server_factory(auth=("leads", "s3cret"), security="starttls")
    context = server.client_ssl_context()
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.starttls(context=context)
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("leads", "wrong")  # answered (535), not a hang
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.starttls(context=context)
        client.login("leads", "s3cret")
        client.send_message(a_message())
    server.wait_for(1)
    assert server.failed_logins >= 1  # smtplib tries each mechanism it knows
    assert server.envelopes[0].login == "leads"
    assert server.envelopes[0].encrypted


def test_starttls_is_required_before_mail(smtp_server_factory):
    server = smtp_server_factory(security="starttls")
    with smtplib.SMTP(server.host, server.port, timeout=10) as client, pytest.raises(smtplib.SMTPException):
        client.send_message(a_message())
    assert server.messages == []


def test_implicit_tls_server_presents_a_certificate_the_client_can_trust(smtp_server_factory):
    server = smtp_server_factory(security="ssl")
    with smtplib.SMTP_SSL(server.host, server.port, timeout=10, context=server.client_ssl_context()) as client:
        client.send_message(a_message())
    wait_until(lambda: len(server.messages) == 1, what="the message over SMTPS")
    assert server.envelopes[0].encrypted
    with pytest.raises(ssl.SSLCertVerificationError):
        smtplib.SMTP_SSL(server.host, server.port, timeout=10, context=ssl.create_default_context())
