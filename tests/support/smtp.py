"""A real SMTP server for tests (aiosmtpd) that records what it receives.

    server = SmtpServer(auth=("user", "secret"), security="starttls").start()
    ... the code under test sends to server.host:server.port (trusting server.ca_file) ...
    [message] = server.wait_for(1)          # email.message.EmailMessage, parsed with policy.default
    server.stop(); ...; server.start()      # down for a while, then back on the same port
    server.reject_with = "451 4.3.0 Try again later"   # answer DATA with this until set back to None

security: "none", "starttls" (STARTTLS required before MAIL) or "ssl" (TLS from the first byte), with a
self-signed certificate for localhost/127.0.0.1 made at start (`.ca_file` is its PEM, for the client's
trust store, e.g. ssl.create_default_context(cafile=...) or the SSL_CERT_FILE environment variable).
With `auth`, mail is refused until AUTH succeeds; a wrong password answers 535 (AuthResult(success=False,
handled=False): any other answer makes smtplib hang, stack.md).
"""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from devhost.mailcatcher import free_port

Security = Literal["none", "starttls", "ssl"]


@dataclass(frozen=True)
class Envelope:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    login: str | None  # the AUTH user name, None without AUTH
    encrypted: bool  # the session was under TLS (STARTTLS or implicit TLS) when the message came


def make_self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """(certificate PEM, private key PEM) for CN=localhost with SANs localhost and 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class SmtpServer:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, auth: tuple[str, str] | None = None,
                 security: Security = "none") -> None:
        self.host = host
        self.port = port or free_port(host)
        self.auth = auth
        self.security: Security = security
        self.messages: list[EmailMessage] = []
        self.raw_messages: list[bytes] = []
        self.envelopes: list[Envelope] = []
        self.failed_logins = 0
        self.reject_with: str | None = None
        self.ca_file: Path | None = None
        self._tls_context: ssl.SSLContext | None = None
        self._folder = Path(tempfile.mkdtemp(prefix="smtp-test-"))
        self._received = threading.Condition()
        self._controller: Controller | None = None
        if security != "none":
            cert, key = make_self_signed_certificate(self._folder)
            self.ca_file = cert
            self._tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._tls_context.load_cert_chain(cert, key)

    @property
    def is_running(self) -> bool:
        return self._controller is not None

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's certificate."""
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def start(self) -> SmtpServer:
        if self._controller is not None:
            return self
        options: dict[str, Any] = {"hostname": self.host, "port": self.port, "server_hostname": "localhost"}
        if self.security == "starttls":
            options.update(tls_context=self._tls_context, require_starttls=True)
        elif self.security == "ssl":
            options.update(ssl_context=self._tls_context)
        if self.auth is not None:
            options.update(authenticator=self._authenticate, auth_required=True,
                           auth_require_tls=self.security != "none")
        controller = Controller(self, **options)
        deadline = time.monotonic() + 5
        while True:  # the port can stay busy for a moment after stop(): retry briefly
            try:
                controller.start()
                break
            except (OSError, RuntimeError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_for(self, count: int, timeout: float = 10) -> list[EmailMessage]:
        """Every message so far, once there are at least `count`; AssertionError after `timeout` seconds."""
        with self._received:
            if not self._received.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f"the SMTP server received {len(self.messages)} message(s) in {timeout}s, "
                                     f"expected {count}")
            return list(self.messages)

    # aiosmtpd callbacks
    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if (self.auth is not None and isinstance(auth_data, LoginPassword)
                and (auth_data.login.decode(), auth_data.password.decode()) == self.auth):
            return AuthResult(success=True, auth_data=auth_data)
        self.failed_logins += 1
        return AuthResult(success=False, handled=False)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reject_with is not None:
            return self.reject_with
        raw = bytes(envelope.original_content or envelope.content)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        with self._received:
            self.raw_messages.append(raw)
            self.envelopes.append(Envelope(envelope.mail_from, tuple(envelope.rcpt_tos), login,
                                           encrypted=server.transport.get_extra_info("ssl_object") is not None))
            self.messages.append(parsed)
            self._received.notify_all()
        return "250 Message accepted for delivery"
