"""A real SMTP server for tests (aiosmtpd) that records what it receives.

    server = SmtpServer(auth=("user", "secret"), security="starttls").start()
    ... the code under test sends to server.host:server.port (trusting server.ca_file) ...
    [message] = server.wait_for(1)          # email.message.EmailMessage, parsed with policy.default
    server.stop(); ...; server.start()      # down for a while, then back on the same port
    server.reject_with = "451 4.3.0 Try again later"   # answer DATA with this until set back to None
    with SmtpServer(refuse_recipients={"a@contoso.example": "550 5.1.1 No such user"}) as server: ...

security: "none", "starttls" (STARTTLS required before MAIL) or "ssl" (TLS from the first byte), with
`certificate` (tests/support/certificates.py) or else a self-signed one for `names` / `addresses` made here
(`.ca_file` is its PEM, for the client's trust store, e.g. ssl.create_default_context(cafile=...) or the
SSL_CERT_FILE environment variable). With `auth`, mail is refused until AUTH succeeds; a wrong password
answers 535 (AuthResult(success=False, handled=False): any other answer makes smtplib hang, docs/stack.md).

Replies, each settable at construction or later as an attribute (None, or no entry: the normal answer):
`refuse_sender` answers MAIL FROM, `refuse_recipients` maps an address to the answer to its RCPT TO,
`reject_with` answers DATA; `drop_on_quit` cuts the connection instead of answering QUIT. `transactions`
counts the MAIL FROM commands seen, accepted or not.

With `xoauth2=(mailbox, token)` the server offers only AUTH XOAUTH2 (Exchange Online's OAuth login, as
"Authenticate an IMAP, POP or SMTP connection using OAuth" describes it) and accepts exactly that mailbox
with that bearer token; `xoauth2_refusal` is its answer to anything else (Exchange's 535 5.7.3 by default).

`SilentServer` accepts connections and never answers: a hung SMTP server.
"""

from __future__ import annotations

import base64
import email
import email.policy
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from devhost.mailcatcher import free_port
from tests.support.certificates import CertificateFiles, self_signed

Security = Literal["none", "starttls", "ssl"]


@dataclass(frozen=True)
class Envelope:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    login: str | None  # the AUTH user name, None without AUTH
    encrypted: bool  # the session was under TLS (STARTTLS or TLS from the first byte) when the message came


class SmtpServer:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, auth: tuple[str, str] | None = None,
                 security: Security = "none", certificate: CertificateFiles | None = None,
                 names: tuple[str, ...] = ("localhost",), addresses: tuple[str, ...] = ("127.0.0.1",),
                 refuse_sender: str | None = None, refuse_recipients: Mapping[str, str] | None = None,
                 reject_with: str | None = None, drop_on_quit: bool = False,
                 xoauth2: tuple[str, str] | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.auth = auth
        self.security: Security = security
        self.messages: list[EmailMessage] = []
        self.raw_messages: list[bytes] = []
        self.envelopes: list[Envelope] = []
        self.failed_logins = 0
        self.transactions = 0
        self.refuse_sender = refuse_sender
        self.refuse_recipients: dict[str, str] = dict(refuse_recipients or {})
        self.reject_with = reject_with
        self.drop_on_quit = drop_on_quit
        self.xoauth2 = xoauth2
        # Microsoft's SMTP AUTH troubleshooting: the generic refusal of a login Exchange Online does not accept.
        self.xoauth2_refusal = "535 5.7.3 Authentication unsuccessful [SN4PR0601CA0005.namprd06.prod.outlook.com]"
        self.xoauth2_attempts: list[bytes] = []  # each decoded initial response, as received
        self.ca_file: Path | None = None
        self._tls_context: ssl.SSLContext | None = None
        self._received = threading.Condition()
        self._controller: Controller | None = None
        if security != "none":
            if certificate is None:
                certificate = self_signed(Path(tempfile.mkdtemp(prefix="smtp-test-")), names=names,
                                          addresses=addresses, stem="smtp")
            self.ca_file = certificate.certificate
            self._tls_context = certificate.server_context()

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
        if self.xoauth2 is not None:
            options.update(auth_required=True, auth_require_tls=self.security != "none",
                           auth_exclude_mechanism=["LOGIN", "PLAIN"])
        else:
            options.update(auth_exclude_mechanism=["XOAUTH2"])
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

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

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

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> AuthResult:
        """SASL XOAUTH2: base64("user=" + mailbox + "^Aauth=Bearer " + token + "^A^A") as the initial response."""
        try:
            decoded = base64.b64decode(args[1], validate=True) if len(args) == 2 else b""
        except ValueError:
            decoded = b""
        self.xoauth2_attempts.append(decoded)
        if self.xoauth2 is not None:
            mailbox, token = self.xoauth2
            if decoded == f"user={mailbox}\x01auth=Bearer {token}\x01\x01".encode():
                return AuthResult(success=True, auth_data=LoginPassword(mailbox.encode(), b""))
        self.failed_logins += 1
        return AuthResult(success=False, handled=False, message=self.xoauth2_refusal)

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        self.transactions += 1
        if self.refuse_sender is not None:
            return self.refuse_sender
        envelope.mail_from = address  # a handler that answers MAIL records the sender itself
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        refusal = self.refuse_recipients.get(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reject_with is not None:
            return self.reject_with
        raw = bytes(envelope.original_content or envelope.content)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        # session.ssl is set by STARTTLS; TLS from the first byte shows on the transport.
        encrypted = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        with self._received:
            self.raw_messages.append(raw)
            self.envelopes.append(Envelope(envelope.mail_from, tuple(envelope.rcpt_tos), login, encrypted))
            self.messages.append(parsed)
            self._received.notify_all()
        return "250 Message accepted for delivery"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        if self.drop_on_quit:
            server.transport.abort()
        return "221 Bye"


class SilentServer:
    """Accepts TCP connections (through the listen backlog) and never says a word: a hung SMTP server."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind((host, 0))
        self.socket.listen(8)
        self.port: int = self.socket.getsockname()[1]

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.socket.close()
