"""A real SMTP server (aiosmtpd) on a free loopback port, for the e-mail destination's tests.

It records every accepted message with its envelope and whether the session was encrypted, and can be told
to refuse a sender or recipients, answer DATA with a given reply, require a login, offer STARTTLS or speak
TLS from the first byte with a self-signed certificate made here. `self_signed_certificate()` writes a PEM
that a client trusts through the standard SSL_CERT_FILE environment variable.

Kept separate from the shared `smtp_server` fixture (tests/support/smtp.py) so these tests do not depend on
its timing; the two can be merged once it has refusal replies and `tls_seen`.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"


def free_port() -> int:
    """aiosmtpd's Controller(port=0) does not report the port it got: pick one first."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Certificate:
    cert_file: Path  # PEM certificate: what a client trusts (SSL_CERT_FILE)
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def self_signed_certificate(folder: Path, *, names: tuple[str, ...] = ("localhost",),
                            addresses: tuple[str, ...] = (HOST,)) -> Certificate:
    """A self-signed certificate valid for `names` (DNS) and `addresses` (IP), for one day."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "test")])
    now = datetime.datetime.now(datetime.UTC)
    alternative_names: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
    alternative_names += [x509.IPAddress(ipaddress.ip_address(address)) for address in addresses]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Certificate(cert_file, key_file)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool  # the session was encrypted (STARTTLS or TLS on connect) when the message came in
    login: str  # who logged in, "" if nobody

    def message(self) -> EmailMessage:
        parsed: EmailMessage = BytesParser(policy=default_policy).parsebytes(self.data)
        return parsed


@dataclass
class Behaviour:
    """What the server answers. Empty means the normal 250."""

    mail_reply: str = ""
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address -> reply
    data_reply: str = ""
    drop_on_quit: bool = False  # cut the connection instead of answering QUIT


class RecordingHandler:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.received: list[Received] = []
        self.transactions = 0  # MAIL FROM commands seen, accepted or not

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        self.transactions += 1
        if self.behaviour.mail_reply:
            return self.behaviour.mail_reply
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        reply = self.behaviour.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.behaviour.data_reply:
            return self.behaviour.data_reply
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else ""
        # session.ssl is set by STARTTLS only; TLS on connect shows on the transport.
        tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, tls, login))
        return "250 Message accepted"


    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        if self.behaviour.drop_on_quit:
            server.transport.abort()
        return "221 Bye"


class SMTPTestServer:
    """`with SMTPTestServer(...) as server:` -> server.port, server.received.

    tls: "none", "starttls" (offered and required before MAIL) or "ssl" (TLS on connect).
    login: (user, password) to require a login; a wrong one is refused with 535."""

    def __init__(self, *, tls: str = "none", certificate: Certificate | None = None,
                 login: tuple[str, str] | None = None, behaviour: Behaviour | None = None) -> None:
        self.handler = RecordingHandler(behaviour or Behaviour())
        self.port = free_port()
        kwargs: dict[str, Any] = {}
        if tls in ("starttls", "ssl") and certificate is None:
            raise ValueError("a TLS server needs a certificate")
        if tls == "starttls":
            assert certificate is not None
            kwargs.update(tls_context=certificate.server_context(), require_starttls=True)
        elif tls == "ssl":
            assert certificate is not None
            kwargs.update(ssl_context=certificate.server_context())
        if login is not None:
            user, password = login

            def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
                ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
                    user.encode(), password.encode())
                # handled=False lets aiosmtpd answer 535 itself; a bare failure leaves smtplib waiting.
                if ok:  # auth_data is what session.auth_data will hold (aiosmtpd keeps nothing by itself)
                    return AuthResult(success=True, auth_data=data)
                return AuthResult(success=False, handled=False)

            kwargs.update(authenticator=authenticate, auth_required=True, auth_require_tls=tls != "none")
        self.controller = Controller(self.handler, hostname=HOST, port=self.port, **kwargs)

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def __enter__(self) -> SMTPTestServer:
        self.controller.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.controller.stop()


class SilentServer:
    """Accepts TCP connections (through the listen backlog) and never says a word: a hung SMTP server."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind((HOST, 0))
        self.socket.listen(8)
        self.port: int = self.socket.getsockname()[1]

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.socket.close()
