"""E-mail notification: one message per lead through the publisher's SMTP server (stdlib smtplib).

Security (LEADS_SMTP_SECURITY): `starttls` (plain connection upgraded with STARTTLS, usually port 587),
`ssl` (TLS from the first byte, usually port 465), `none` (no encryption: a server on a trusted network
only). TLS always verifies the certificate and the host name with `ssl.create_default_context()`, which
loads OpenSSL's default trust store: the standard `SSL_CERT_FILE` / `SSL_CERT_DIR` environment variables
point it at another PEM bundle (a private CA, a test server's self-signed certificate) with no setting of
our own and no way to switch verification off.

Every failure becomes a typed error whose sentence names the setting to change: temporary SMTP replies
(4xx), timeouts and refused connections are retried; a refused login, a TLS mismatch, a refused sender or
recipients are configuration errors (every lead would fail the same way until a person fixes them). The
password never appears in a sentence or a log line.
"""

from __future__ import annotations

import base64
import logging
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from typing import TYPE_CHECKING

from leads.core.destination import Check, Delivered
from leads.core.errors import ConfigurationError, DestinationError, LeadRejectedError, TransientDestinationError
from leads.core.model import StoredLead
from leads.core.notification import build_notification
from leads.core.settings import EmailSettings, Settings

if TYPE_CHECKING:
    from leads.destinations.email_acs import AcsEmailDestination
    from leads.destinations.email_oauth import ExchangeToken

log = logging.getLogger("leads.destinations.email")
NAME = "email"
_REPLY_MAX = 300  # characters of a server reply quoted in a sentence


def create(settings: Settings) -> EmailDestination | AcsEmailDestination:
    """LEADS_EMAIL_TRANSPORT picks how: SMTP (password or none), SMTP with an Exchange Online OAuth token, or
    Azure Communication Services (leads/destinations/email_acs.py, imported only then)."""
    if settings.email.transport == "acs":
        from leads.destinations.email_acs import AcsEmailDestination

        return AcsEmailDestination(settings.email, timeout=settings.http_timeout, console_url=settings.console_url)
    return EmailDestination(settings.email, timeout=settings.http_timeout, console_url=settings.console_url)


@dataclass
class _Progress:
    """How far one SMTP conversation got: which step failed, and what succeeded before it."""

    step: str = "connect"
    done: list[tuple[str, str]] = field(default_factory=list)  # (step, what it established)

    def passed(self, message: str) -> None:
        self.done.append((self.step, message))


class EmailDestination:
    name = NAME
    is_crm = False

    def __init__(self, settings: EmailSettings, *, timeout: float, console_url: str = "") -> None:
        self.settings = settings
        self.timeout = timeout
        self.console_url = console_url
        self._exchange: ExchangeToken | None = None
        self._token_forms: tuple[str, ...] = ()  # the last OAuth token as sent, never quoted
        if settings.transport == "smtp-oauth":
            from leads.destinations.email_oauth import ExchangeToken

            self._exchange = ExchangeToken(settings, timeout)

    # -- Destination protocol ---------------------------------------------------------------------------

    def deliver(self, stored: StoredLead) -> Delivered:
        problem = self.settings_problem()
        if problem:
            raise ConfigurationError(problem)
        message = build_notification(stored, self.settings, console_url=self.console_url)
        progress = _Progress()
        try:
            smtp = self._open(progress)
            try:
                progress.step = "send"
                refused = smtp.send_message(message, from_addr=self._sender, to_addrs=self._recipients)
            finally:
                _quit(smtp)
        except (smtplib.SMTPException, OSError) as error:
            raise self.classify(error, progress.step) from None
        if refused:
            # The message went to the other recipients: a retry would send it to them twice. Delivered,
            # with a warning to fix LEADS_EMAIL_TO (these are the publisher's own addresses, not the lead's).
            log.warning(
                "lead %s: e-mail delivered, but the SMTP server refused %s; check LEADS_EMAIL_TO",
                stored.id,
                _describe_refusals(refused, self._secrets),
            )
        return Delivered(record_id=str(message["Message-ID"]))

    def check(self) -> list[Check]:
        """Connect, EHLO, TLS as configured, login if configured, then MAIL FROM / RCPT TO for every
        recipient and RSET: the server says whether it would accept the message, and nothing is sent."""
        problem = self.settings_problem()
        if problem:
            return [Check(NAME, "settings", False, problem)]
        progress = _Progress()
        try:
            smtp = self._open(progress)
            try:
                progress.step = "addresses"
                self._try_addresses(smtp)
                progress.passed(
                    f"The server accepts sender {self._sender} and all {len(self._recipients)} recipient(s) "
                    "(checked with MAIL FROM / RCPT TO, then RSET: nothing was sent)."
                )
            finally:
                _quit(smtp)
        except (smtplib.SMTPException, OSError) as error:
            failure = self.classify(error, progress.step)
            return [*self._passed_checks(progress), Check(NAME, progress.step, False, failure.explanation)]
        except DestinationError as error:  # the OAuth token
            return [*self._passed_checks(progress), Check(NAME, progress.step, False, error.explanation)]
        return self._passed_checks(progress)

    def send_test(self) -> list[Check]:
        """One real test message to LEADS_EMAIL_TO (python -m leads doctor --send-test-email)."""
        problem = self.settings_problem()
        if problem:
            return [Check(NAME, "test e-mail", False, problem)]
        message = EmailMessage()
        message["Subject"] = "[TEST] marketplace-leads: e-mail works"
        message["From"] = self.settings.sender
        message["To"] = ", ".join(self.settings.to)
        message.set_content("python -m leads doctor --send-test-email sent this message. Nothing to do.\n")
        try:
            self.send_message(message)
        except DestinationError as error:
            return [Check(NAME, "test e-mail", False, error.explanation)]
        return [Check(NAME, "test e-mail", True, f"Sent a test message to {len(self._recipients)} recipient(s) "
                                                 f"through {self._where}.")]

    # -- the conversation -------------------------------------------------------------------------------

    @property
    def _where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    @property
    def _sender(self) -> str:
        return parseaddr(self.settings.sender)[1]

    @property
    def _recipients(self) -> list[str]:
        return [address for _, address in getaddresses(list(self.settings.to))]

    @property
    def _secrets(self) -> tuple[str, ...]:
        """The password and the forms smtplib sends it in (AUTH PLAIN and LOGIN are base64), in case a
        server quotes what it received in its reply."""
        password = self.settings.password
        if not password:
            return self._token_forms
        user = self.settings.username
        forms = (password, f"\0{user}\0{password}")
        return (password, *(base64.b64encode(form.encode("utf-8")).decode("ascii") for form in forms))

    def _open(self, progress: _Progress) -> smtplib.SMTP:
        """A connection ready to send: greeted, encrypted as configured, logged in if configured."""
        settings = self.settings
        progress.step = "connect"
        smtp: smtplib.SMTP
        if settings.security == "ssl":
            smtp = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=self.timeout)
        try:
            smtp.ehlo_or_helo_if_needed()
            progress.passed(
                f"Connected to {self._where}"
                + (" over TLS (certificate verified)." if settings.security == "ssl" else ".")
            )
            if settings.security == "starttls":
                progress.step = "starttls"
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
                progress.passed("STARTTLS done (certificate verified).")
            if self._exchange is not None:
                progress.step = "login"
                self._login_xoauth2(smtp)
                progress.passed(f"Exchange Online accepted the OAuth token for mailbox {self._oauth_user} "
                                "(AUTH XOAUTH2; no password).")
            elif settings.username:
                progress.step = "login"
                smtp.login(settings.username, settings.password)
                warning = (
                    " Warning: LEADS_SMTP_SECURITY=none sends this password unencrypted."
                    if settings.security == "none"
                    else ""
                )
                progress.passed(f"Logged in as {settings.username}.{warning}")
        except BaseException:
            smtp.close()
            raise
        return smtp

    @property
    def _oauth_user(self) -> str:
        return self.settings.username or self._sender

    def _login_xoauth2(self, smtp: smtplib.SMTP) -> None:
        from leads.destinations.email_oauth import xoauth2

        assert self._exchange is not None
        if not smtp.has_extn("auth") or "XOAUTH2" not in smtp.esmtp_features.get("auth", "").upper().split():
            raise smtplib.SMTPNotSupportedError("AUTH XOAUTH2 is not offered")
        token = self._exchange.token()
        initial = xoauth2(self._oauth_user, token)
        self._token_forms = (token, base64.b64encode(initial.encode("ascii")).decode("ascii"))
        # RFC 7628-style failure: the server sends a 334 with a JSON error; the client answers with an empty
        # line and then gets the final 535.
        smtp.auth("XOAUTH2", lambda challenge=None: initial if challenge is None else "",
                  initial_response_ok=True)

    def _try_addresses(self, smtp: smtplib.SMTP) -> None:
        code, reply = smtp.mail(self._sender)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, self._sender)
        refused = {}
        for recipient in self._recipients:
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                refused[recipient] = (code, reply)
        smtp.rset()
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)

    def send_message(self, message: EmailMessage) -> None:
        """Send a message of the app's own (an operational notice) to this destination's recipients, through
        the same conversation and with the same typed errors as a lead's e-mail."""
        problem = self.settings_problem()
        if problem:
            raise ConfigurationError(problem)
        progress = _Progress()
        try:
            smtp = self._open(progress)
            try:
                progress.step = "send"
                smtp.send_message(message, from_addr=self._sender, to_addrs=self._recipients)
            finally:
                _quit(smtp)
        except (smtplib.SMTPException, OSError) as error:
            raise self.classify(error, progress.step) from None

    def _passed_checks(self, progress: _Progress) -> list[Check]:
        return [Check(NAME, step, True, message) for step, message in progress.done]

    # -- settings and failures --------------------------------------------------------------------------

    def settings_problem(self) -> str:
        """The sentence saying which e-mail setting to set or correct; empty when they are usable."""
        settings = self.settings
        missing = [
            name
            for name, value in (
                ("LEADS_SMTP_HOST", settings.host),
                ("LEADS_EMAIL_FROM", settings.sender),
                ("LEADS_EMAIL_TO", settings.to),
            )
            if not value
        ]
        if settings.transport == "smtp-oauth":
            from leads.destinations.email_oauth import settings_problem

            oauth_problem = settings_problem(settings)
            if oauth_problem:
                return oauth_problem
        if missing:
            return (
                f"E-mail is not configured: set {' and '.join(missing)} (the SMTP server's host name, the "
                "sender address and the addresses told of each lead)."
            )
        if not _is_address(self.settings.sender):
            return f"LEADS_EMAIL_FROM must be one e-mail address such as leads@contoso.com, not {settings.sender!r}."
        bad = [recipient for recipient in settings.to if not _is_address(recipient)]
        if bad:
            return (
                f"LEADS_EMAIL_TO must be e-mail addresses separated by ; or , but {', '.join(map(repr, bad))} "
                "is not one."
            )
        return ""

    def classify(self, error: BaseException, step: str) -> DestinationError:
        """The typed error, with its one sentence, for what went wrong at `step` of the conversation."""
        where = self._where
        settings = self.settings

        def reply(code: int, text: bytes | str) -> str:
            return _quote_reply(code, text, self._secrets)

        if isinstance(error, smtplib.SMTPServerDisconnected) and isinstance(error.__context__, TimeoutError):
            # smtplib reports a read that timed out as "Connection unexpectedly closed: timed out".
            error = error.__context__
        if isinstance(error, smtplib.SMTPAuthenticationError) and self._exchange is not None \
                and not _temporary(error.smtp_code):
            from leads.destinations.email_oauth import refused_sentence

            return refused_sentence(where, self._oauth_user, reply(error.smtp_code, error.smtp_error))
        if isinstance(error, smtplib.SMTPAuthenticationError):
            if _temporary(error.smtp_code):
                return TransientDestinationError(
                    f"The SMTP server at {where} cannot check the login right now "
                    f"({reply(error.smtp_code, error.smtp_error)}); will retry."
                )
            return ConfigurationError(
                f"The SMTP server at {where} refused the login of {settings.username!r} "
                f"({reply(error.smtp_code, error.smtp_error)}): check LEADS_SMTP_USERNAME and "
                "LEADS_SMTP_PASSWORD (some providers need an app password or SMTP AUTH enabled for the mailbox)."
            )
        if isinstance(error, smtplib.SMTPNotSupportedError):
            return self._not_supported(error, step)
        if isinstance(error, smtplib.SMTPSenderRefused):
            if _temporary(error.smtp_code):
                return TransientDestinationError(
                    f"The SMTP server at {where} temporarily refused the sender "
                    f"({reply(error.smtp_code, error.smtp_error)}); will retry."
                )
            if error.smtp_code == 530:  # 5.7.0 Authentication required
                return ConfigurationError(
                    f"The SMTP server at {where} requires a login before it accepts mail "
                    f"({reply(error.smtp_code, error.smtp_error)}): set LEADS_SMTP_USERNAME and "
                    "LEADS_SMTP_PASSWORD."
                )
            return ConfigurationError(
                f"The SMTP server at {where} refused the sender {self._sender} "
                f"({reply(error.smtp_code, error.smtp_error)}): set LEADS_EMAIL_FROM to an address this server "
                "lets you send from (the login's own mailbox, or one it has send-as rights on)."
            )
        if isinstance(error, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in error.recipients.values()]
            refusals = _describe_refusals(error.recipients, self._secrets)
            if any(_temporary(code) for code in codes):
                return TransientDestinationError(
                    f"The SMTP server at {where} temporarily refused the recipients ({refusals}); will retry."
                )
            return ConfigurationError(
                f"The SMTP server at {where} refused every recipient ({refusals}): check the addresses in "
                "LEADS_EMAIL_TO; if it says relaying is denied, the server needs a login "
                "(LEADS_SMTP_USERNAME and LEADS_SMTP_PASSWORD) to send to other domains."
            )
        if isinstance(error, smtplib.SMTPDataError):
            quoted = reply(error.smtp_code, error.smtp_error)
            if _temporary(error.smtp_code):
                return TransientDestinationError(
                    f"The SMTP server at {where} did not take the message for now ({quoted}); will retry."
                )
            if _reply_text(error.smtp_error).startswith("5.7."):  # a policy refusal hits every lead alike
                return ConfigurationError(
                    f"The SMTP server at {where} refused the message for a policy reason ({quoted}): check "
                    "that LEADS_EMAIL_FROM may send through this server (send-as rights, SPF, DKIM)."
                )
            return LeadRejectedError(f"The SMTP server at {where} refused this lead's message ({quoted}).")
        if isinstance(error, (smtplib.SMTPConnectError, smtplib.SMTPHeloError, smtplib.SMTPResponseException)):
            quoted = reply(error.smtp_code, error.smtp_error)
            if _temporary(error.smtp_code):
                return TransientDestinationError(f"The SMTP server at {where} is busy ({quoted}); will retry.")
            if step == "starttls":
                return ConfigurationError(
                    f"The SMTP server at {where} refused STARTTLS ({quoted}): check LEADS_SMTP_SECURITY and "
                    "LEADS_SMTP_PORT (port 465 needs ssl, 587 needs starttls)."
                )
            return ConfigurationError(
                f"The SMTP server at {where} refused the {step} step ({quoted}): check LEADS_SMTP_HOST and "
                "LEADS_SMTP_PORT."
            )
        if isinstance(error, smtplib.SMTPServerDisconnected):
            return TransientDestinationError(
                f"The SMTP server at {where} closed the connection during the {step} step; will retry."
                + self._port_hint()
            )
        if isinstance(error, ssl.SSLCertVerificationError):
            return ConfigurationError(
                f"The TLS certificate of the SMTP server at {where} could not be verified "
                f"({error.verify_message or error.reason}): set LEADS_SMTP_HOST to the name on the server's "
                "certificate; if the server uses a private certificate authority, point the SSL_CERT_FILE "
                "environment variable at a PEM file that includes it."
            )
        if isinstance(error, ssl.SSLError):
            return ConfigurationError(
                f"The TLS handshake with the SMTP server at {where} failed ({error.reason or error}): check "
                f"LEADS_SMTP_SECURITY (now {settings.security}) and LEADS_SMTP_PORT: port 465 needs ssl, "
                "ports 587 and 25 need starttls."
            )
        if isinstance(error, socket.gaierror):
            if error.errno == socket.EAI_AGAIN:
                return TransientDestinationError(
                    f"The name {settings.host} could not be resolved for now (temporary DNS failure); will retry."
                )
            return ConfigurationError(
                f"LEADS_SMTP_HOST {settings.host!r} is not a host name that resolves ({error.strerror}): "
                "check LEADS_SMTP_HOST."
            )
        if isinstance(error, TimeoutError):
            return TransientDestinationError(
                f"The SMTP server at {where} did not answer within {self.timeout:g} seconds during the {step} "
                "step; will retry." + self._port_hint()
            )
        if isinstance(error, ConnectionRefusedError):
            return TransientDestinationError(
                f"Could not connect to the SMTP server at {where} (connection refused); will retry. If this "
                "persists, check LEADS_SMTP_HOST and LEADS_SMTP_PORT."
            )
        if isinstance(error, OSError):
            return TransientDestinationError(
                f"Could not talk to the SMTP server at {where} ({error.strerror or type(error).__name__}); "
                "will retry."
            )
        return TransientDestinationError(
            f"Sending e-mail through {where} failed ({type(error).__name__}) during the {step} step; will retry."
        )

    def _not_supported(self, error: smtplib.SMTPNotSupportedError, step: str) -> ConfigurationError:
        where = self._where
        if step == "starttls":
            return ConfigurationError(
                f"The SMTP server at {where} does not offer STARTTLS: set LEADS_SMTP_SECURITY=ssl if it expects "
                "TLS from the first byte (usually LEADS_SMTP_PORT=465), or use its submission port "
                "(LEADS_SMTP_PORT=587); LEADS_SMTP_SECURITY=none only for a server on a trusted network."
            )
        if step == "login" and self._exchange is not None:
            return ConfigurationError(
                f"The SMTP server at {where} does not offer AUTH XOAUTH2 (OAuth login): with "
                "LEADS_EMAIL_TRANSPORT=smtp-oauth, LEADS_SMTP_HOST must be Exchange Online's smtp.office365.com "
                "(or empty), port 587, LEADS_SMTP_SECURITY=starttls."
            )
        if step == "login":
            hint = (
                "many servers offer it only after STARTTLS: set LEADS_SMTP_SECURITY=starttls"
                if self.settings.security == "none"
                else "check LEADS_SMTP_PORT (the submission port, usually 587 or 465, is the one with login)"
            )
            return ConfigurationError(
                f"The SMTP server at {where} does not offer a login (AUTH): {hint}; if it needs no login, "
                "clear LEADS_SMTP_USERNAME and LEADS_SMTP_PASSWORD."
            )
        # smtplib's other refusal: a non-ASCII address on a server without SMTPUTF8.
        return ConfigurationError(
            f"The SMTP server at {where} cannot send to or from a non-ASCII address ({error}): use ASCII "
            "addresses in LEADS_EMAIL_FROM and LEADS_EMAIL_TO."
        )

    def _port_hint(self) -> str:
        """A plain conversation with a TLS-on-connect port waits for a greeting that never comes."""
        if self.settings.port == 465 and self.settings.security != "ssl":
            return " Port 465 normally needs LEADS_SMTP_SECURITY=ssl."
        if self.settings.port in (25, 587) and self.settings.security == "ssl":
            return f" Port {self.settings.port} normally needs LEADS_SMTP_SECURITY=starttls."
        return ""


def _quit(smtp: smtplib.SMTP) -> None:
    """QUIT politely; the message (if any) is already accepted, so a failure here changes nothing."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _temporary(code: int) -> bool:
    return 400 <= code < 500


def _is_address(text: str) -> bool:
    if "\r" in text or "\n" in text:
        return False
    pairs = getaddresses([text])
    return len(pairs) == 1 and "@" in pairs[0][1] and " " not in pairs[0][1]


def _reply_text(text: bytes | str) -> str:
    decoded = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return " ".join(decoded.split())


def _quote_reply(code: int, text: bytes | str, secrets: tuple[str, ...]) -> str:
    quoted = _reply_text(text)
    for secret in secrets:
        quoted = quoted.replace(secret, "***")
    if len(quoted) > _REPLY_MAX:
        quoted = quoted[: _REPLY_MAX - 1] + "…"
    return f"{code} {quoted}".strip()


def _describe_refusals(refused: dict[str, tuple[int, bytes]], secrets: tuple[str, ...]) -> str:
    return "; ".join(f"{address}: {_quote_reply(code, text, secrets)}" for address, (code, text) in refused.items())
