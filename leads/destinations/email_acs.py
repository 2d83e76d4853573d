"""E-mail through Azure Communication Services (ACS) Email: no SMTP server, no mailbox password.

REST API "Email - Send" / "Email - Get Send Result", api-version 2023-03-31 (azure-rest-api-specs,
specification/communication/data-plane/Email/stable/2023-03-31): POST {endpoint}/emails:send answers 202
with `Operation-Location`; GET {endpoint}/emails/operations/{id} answers NotStarted, Running, Succeeded,
Failed or Canceled, with `retry-after` while it is not finished. Errors are `{"error": {"code", "message"}}`.

Authentication: the app's managed identity (an Entra token for https://communication.azure.com/.default;
the identity needs the Communication and Email Service Owner role on the resource), or the access key of
LEADS_ACS_CONNECTION_STRING, signing each request as "Sign an HTTP request with HMAC" documents.

Idempotency: the `Operation-Id` header names the send, and the spec says only that the service generates
one when it is missing. So the app does not rely on the service refusing a repeat: the id is derived from
the lead id, and before sending it asks for that operation. Found (running or succeeded): nothing is sent
again, the delivery waits for it. Failed or canceled: the next id in the lead's series is a new send.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr
from typing import Any
from urllib.parse import urlsplit

import requests

from leads.core.destination import Check, Delivered
from leads.core.errors import ConfigurationError, DestinationError, LeadRejectedError, TransientDestinationError
from leads.core.model import StoredLead, utcnow
from leads.core.notification import build_notification
from leads.core.settings import EmailSettings, is_loopback_url
from leads.core.urls import shown_host
from leads.destinations.http import new_session, retry_after_seconds, send

log = logging.getLogger("leads.destinations.email")
NAME = "email"
API_VERSION = "2023-03-31"
SCOPE = "https://communication.azure.com/.default"
ROLE = "Communication and Email Service Owner"
SERIES = 5  # sends of one lead before giving up (each earlier one failed or was canceled)
_NAMESPACE = uuid.UUID("5f1b0c3e-2d4a-4e8b-9c6d-7a8b9c0d1e2f")  # fixed: the same lead gets the same ids
_QUOTE_MAX = 300
LABEL = "Azure Communication Services"


def operation_id(lead_id: str, attempt: int) -> str:
    """The `Operation-Id` of the lead's attempt-th send (a UUID, as the header's format requires)."""
    return str(uuid.uuid5(_NAMESPACE, f"{lead_id}/email/{attempt}"))


@dataclass(frozen=True)
class AccessKey:
    endpoint: str
    key: bytes


def parse_connection_string(value: str) -> AccessKey:
    parts = dict(p.split("=", 1) for p in value.split(";") if "=" in p)
    lowered = {k.strip().lower(): v.strip() for k, v in parts.items()}
    endpoint, key = lowered.get("endpoint", ""), lowered.get("accesskey", "")
    try:
        decoded = base64.b64decode(key, validate=True) if key else b""
    except ValueError:
        decoded = b""
    if not decoded or not (endpoint.startswith("https://") or is_loopback_url(endpoint)):
        raise ConfigurationError(
            "LEADS_ACS_CONNECTION_STRING must be endpoint=https://<name>.communication.azure.com/;accesskey=<key> "
            "as shown under the Communication Services resource > Settings > Keys."
        )
    return AccessKey(endpoint.rstrip("/"), decoded)


def sign(key: bytes, method: str, url: str, body: bytes, now: str) -> dict[str, str]:
    """The headers of "Sign an HTTP request with HMAC" (Azure Communication Services tutorial): the
    signature covers the verb, the path and query, x-ms-date, host and the body's SHA-256."""
    parts = urlsplit(url)
    path_and_query = parts.path + (f"?{parts.query}" if parts.query else "")
    content_hash = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
    to_sign = f"{method}\n{path_and_query}\n{now};{parts.netloc};{content_hash}"
    signature = base64.b64encode(hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).digest()).decode("ascii")
    return {"x-ms-date": now, "x-ms-content-sha256": content_hash,
            "Authorization": f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"}


class AcsEmailDestination:
    name = NAME
    is_crm = False

    def __init__(self, settings: EmailSettings, *, timeout: float, console_url: str = "",
                 sleep: Callable[[float], object] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.timeout = timeout
        self.console_url = console_url
        self._sleep = sleep
        self._clock = clock
        self._session = new_session()
        self._credential: Any = None
        self._lock = threading.Lock()

    # -- Destination protocol ---------------------------------------------------------------------------

    def deliver(self, stored: StoredLead) -> Delivered:
        problem = self.settings_problem()
        if problem:
            raise ConfigurationError(problem)
        body = self._message(build_notification(stored, self.settings, console_url=self.console_url))
        return self._send_once(stored.id, body)

    def check(self) -> list[Check]:
        problem = self.settings_problem()
        if problem:
            return [Check(NAME, "settings", False, problem)]
        checks = [Check(NAME, "settings", True, f"LEADS_EMAIL_TRANSPORT=acs, endpoint {self._host}.")]
        try:
            self._authorization("GET", self._url("/emails/operations/x"), b"")
            checks.append(Check(NAME, "credential", True, self._describe_credential()))
            self._probe()
            checks.append(Check(NAME, "endpoint", True, (
                f"{self._host} answers as {LABEL} and accepts {self._who} (asked for an unknown send "
                "operation: 404, nothing was sent).")))
        except DestinationError as error:
            sentence = error.explanation
            if isinstance(error, TransientDestinationError) and len(checks) > 1:
                sentence += (" If the host name is wrong, copy the endpoint from the Communication Services "
                             "resource's Overview > Endpoint into LEADS_ACS_ENDPOINT (or the connection string).")
            return [*checks, Check(NAME, "endpoint" if len(checks) > 1 else "credential", False, sentence)]
        checks.append(Check(NAME, "sender", True, (
            f"Whether {self._sender} may send (its domain linked to the resource) shows only when sending: "
            "run python -m leads doctor --send-test-email to send one test message to LEADS_EMAIL_TO.")))
        return checks

    def send_test(self) -> list[Check]:
        """One real test message to LEADS_EMAIL_TO (python -m leads doctor --send-test-email)."""
        problem = self.settings_problem()
        if problem:
            return [Check(NAME, "test e-mail", False, problem)]
        message = EmailMessage()
        message["Subject"] = "[TEST] marketplace-leads: e-mail through Azure Communication Services works"
        message.set_content("python -m leads doctor --send-test-email sent this message. Nothing to do.\n")
        try:
            outcome = self._send_once(f"doctor-test-{uuid.uuid4()}", self._message(message))
        except DestinationError as error:
            return [Check(NAME, "test e-mail", False, error.explanation)]
        return [Check(NAME, "test e-mail", True, (
            f"{LABEL} sent the test message from {self._sender} to {len(self._recipients)} recipient(s) "
            f"(operation {outcome.record_id}: Succeeded).")) ]

    # -- sending ----------------------------------------------------------------------------------------

    def _send_once(self, lead_id: str, body: bytes) -> Delivered:
        for attempt in range(SERIES):
            operation = operation_id(lead_id, attempt)
            status = self._status(operation)
            if status is None:
                accepted = self._post(operation, body)
                return self._finish(operation, accepted)
            if status[0] in ("Failed", "Canceled"):
                continue  # that send is over and did not happen: the next id is a new send
            log.info("lead %s: e-mail operation %s already exists (%s): not sent again", lead_id, operation,
                     status[0])
            return self._finish(operation, status)
        raise LeadRejectedError(
            f"{LABEL} failed this lead's e-mail {SERIES} times (operations {operation_id(lead_id, 0)} and on); "
            "see each operation's error in the app's logs, fix LEADS_EMAIL_TO or LEADS_EMAIL_FROM, then "
            "replay the lead."
        )

    def _post(self, operation: str, body: bytes) -> tuple[str, dict[str, Any], float | None]:
        url = self._url("/emails:send")
        headers = {"Content-Type": "application/json", "Operation-Id": operation,
                   **self._authorization("POST", url, body)}
        response = send(self._session, "POST", url, label=LABEL, timeout=self.timeout, data=body, headers=headers)
        if response.status_code == 202:
            return self._state(response)
        if response.status_code == 409:  # that Operation-Id exists after all (a race with another worker)
            found = self._status(operation)
            if found is None:
                raise TransientDestinationError(f"{LABEL} says operation {operation} exists but does not show it "
                                                "yet; will check again (no second send).")
            return found
        raise self._refusal(response, "send")

    def _status(self, operation: str) -> tuple[str, dict[str, Any], float | None] | None:
        """The operation's (status, body, retry-after), or None when the service does not know it."""
        url = self._url(f"/emails/operations/{operation}")
        response = send(self._session, "GET", url, label=LABEL, timeout=self.timeout,
                        headers=self._authorization("GET", url, b""))
        if response.status_code == 200:
            return self._state(response)
        if response.status_code == 404:
            # Any 404: the reference documents no body for an unknown id, and taking a real "not found" for a
            # wrong endpoint would block every e-mail. A wrong endpoint shows on the POST that follows.
            return None
        raise self._refusal(response, "status")

    def _probe(self) -> None:
        """Ask for a send operation that cannot exist: ACS answers 404 with its error body or headers, another
        server (a wrong endpoint) answers something else."""
        url = self._url(f"/emails/operations/{uuid.uuid4()}")
        response = send(self._session, "GET", url, label=LABEL, timeout=self.timeout,
                        headers=self._authorization("GET", url, b""))
        looks_like_acs = bool(_error(response)[0]) or "x-ms-error-code" in response.headers
        if response.status_code != 404 or not looks_like_acs:
            raise self._refusal(response, "status")

    def _finish(self, operation: str, state: tuple[str, dict[str, Any], float | None]) -> Delivered:
        """Wait (at most LEADS_ACS_WAIT_SECONDS) for a terminal status, polling as `retry-after` asks."""
        deadline = self._clock() + self.settings.acs_wait_seconds
        while True:
            status, body, retry_after = state
            if status == "Succeeded":
                return Delivered(record_id=operation)
            if status == "Failed":
                code, message = _error_in(body)
                log.warning("e-mail operation %s failed: %s", operation, code)
                raise LeadRejectedError(
                    f"{LABEL} accepted the e-mail but could not send it ({_quote(code, message)}, operation "
                    f"{operation}): check the addresses in LEADS_EMAIL_TO, then replay the lead (a new send)."
                )
            if status == "Canceled":
                raise TransientDestinationError(f"{LABEL} canceled the send (operation {operation}); will send "
                                                "again.")
            wait = retry_after if retry_after is not None else 1.0
            if self._clock() + wait > deadline:
                raise TransientDestinationError(
                    f"{LABEL} accepted the e-mail and is still sending it (operation {operation}, {status}); "
                    "will check again then (no second send).", retry_after=wait)
            self._sleep(wait)
            found = self._status(operation)
            if found is None:
                raise TransientDestinationError(f"{LABEL} no longer knows operation {operation}; will retry.")
            state = found

    # -- requests ---------------------------------------------------------------------------------------

    @property
    def _endpoint(self) -> str:
        if self.settings.acs_connection_string:
            return parse_connection_string(self.settings.acs_connection_string).endpoint
        return self.settings.acs_endpoint.rstrip("/")

    @property
    def _host(self) -> str:
        return shown_host(self._endpoint)

    @property
    def _who(self) -> str:
        if self.settings.acs_connection_string:
            return "the access key of LEADS_ACS_CONNECTION_STRING"
        which = f"user-assigned, client id {self.settings.acs_client_id}" if self.settings.acs_client_id \
            else "system-assigned"
        return f"the app's managed identity ({which})"

    def _url(self, path: str) -> str:
        return f"{self._endpoint}{path}?api-version={API_VERSION}"

    def _authorization(self, method: str, url: str, body: bytes) -> dict[str, str]:
        if self.settings.acs_connection_string:
            key = parse_connection_string(self.settings.acs_connection_string).key
            return sign(key, method, url, body, format_datetime(utcnow(), usegmt=True))
        return {"Authorization": f"Bearer {self._token()}"}

    def _describe_credential(self) -> str:
        if self.settings.acs_connection_string:
            return "LEADS_ACS_CONNECTION_STRING holds an endpoint and an access key; every request is signed with it."
        return f"{self._who} got a token for {LABEL}."

    def _token(self) -> str:
        from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
        from azure.identity import CredentialUnavailableError, ManagedIdentityCredential

        with self._lock:
            if self._credential is None:
                # azure-identity caches the token until shortly before it expires.
                self._credential = ManagedIdentityCredential(client_id=self.settings.acs_client_id or None)
        try:
            return str(self._credential.get_token(SCOPE).token)
        except CredentialUnavailableError:
            raise ConfigurationError(
                "No managed identity is available to this app: turn on the Function App's identity and give it "
                f"the {ROLE} role on the Communication Services resource, or set LEADS_ACS_CONNECTION_STRING."
            ) from None
        except ServiceRequestError:
            raise TransientDestinationError("The managed identity endpoint did not answer; will retry.") from None
        except ClientAuthenticationError:
            raise ConfigurationError(
                f"{self._who} could not get a token for {LABEL}: check that the identity is turned on and that "
                "AzureWebJobsStorage__clientId is its client id."
            ) from None

    def _state(self, response: requests.Response) -> tuple[str, dict[str, Any], float | None]:
        body = _json(response)
        status = str(body.get("status", "")) if isinstance(body, dict) else ""
        if status not in ("NotStarted", "Running", "Succeeded", "Failed", "Canceled"):
            raise ConfigurationError(
                f"{self._host} answered {response.status_code} without a send status: LEADS_ACS_ENDPOINT is not "
                "a Communication Services endpoint (copy it from the resource's Overview > Endpoint)."
            )
        return status, body, retry_after_seconds(response.headers.get("retry-after"))

    def _refusal(self, response: requests.Response, step: str) -> DestinationError:
        code, message = _error(response)
        status = response.status_code
        quoted = _quote(code or str(status), message)
        if code == "DomainNotLinked":
            domain = self._sender.rpartition("@")[2]
            return ConfigurationError(
                f"{LABEL} refused the sender {self._sender} ({quoted}): its domain {domain} is not a verified "
                "domain connected to this Communication Services resource. Set LEADS_EMAIL_FROM to an address of a "
                "connected domain (the Azure-managed one is DoNotReply@<id>.azurecomm.net, shown under Email "
                "Communication Service > Provision domains), or verify your domain there and connect it under "
                "Communication Services > Email > Domains."
            )
        if code == "InvalidSenderUserName":
            return ConfigurationError(
                f"{LABEL} refused the sender {self._sender} ({quoted}): its domain is connected, but the part "
                "before @ is not one of the domain's sender usernames. Use DoNotReply@ (always there), or add "
                "the name under Email Communication Service > your domain > MailFrom addresses."
            )
        if status in (401, 403):
            if self.settings.acs_connection_string:
                return ConfigurationError(
                    f"{LABEL} at {self._host} refused the request signed with LEADS_ACS_CONNECTION_STRING's "
                    f"access key ({quoted}): the key was regenerated or belongs to another resource. Copy the "
                    "connection string again from the resource's Settings > Keys."
                )
            return ConfigurationError(
                f"{LABEL} at {self._host} refused {self._who} ({quoted}): give that identity the {ROLE} role on "
                "this Communication Services resource (Access control (IAM) > Add role assignment; a new "
                "assignment can take a few minutes to apply), or set LEADS_ACS_CONNECTION_STRING."
            )
        if 300 <= status < 400 or not code:
            return ConfigurationError(
                f"{self._host} answered {status} to the {step} request without an {LABEL} error: "
                "LEADS_ACS_ENDPOINT is not a Communication Services endpoint (copy it from the resource's "
                "Overview > Endpoint, https://<name>.<geo>.communication.azure.com)."
            )
        if status == 400 and ("Recipient" in code or "Address" in code):
            return ConfigurationError(f"{LABEL} refused the addresses ({quoted}): check LEADS_EMAIL_TO and "
                                      "LEADS_EMAIL_FROM.")
        return LeadRejectedError(f"{LABEL} refused this lead's e-mail ({status}, {quoted}).")

    # -- the message ------------------------------------------------------------------------------------

    @property
    def _sender(self) -> str:
        return parseaddr(self.settings.sender)[1]

    @property
    def _recipients(self) -> list[tuple[str, str]]:
        return getaddresses(list(self.settings.to))

    def _message(self, message: EmailMessage) -> bytes:
        """The "Email - Send" body: subject, plain text and HTML of the notification, the same recipients."""
        plain = message.get_body(("plain",))
        html = message.get_body(("html",))
        content: dict[str, str] = {"subject": str(message["Subject"])}
        if plain is not None:
            content["plainText"] = plain.get_content()
        if html is not None:
            content["html"] = html.get_content()
        to = [{"address": address, **({"displayName": name} if name else {})} for name, address in self._recipients]
        body: dict[str, Any] = {"senderAddress": self._sender, "content": content, "recipients": {"to": to},
                                "userEngagementTrackingDisabled": True}
        if message["X-Lead-Id"]:
            body["headers"] = {"X-Lead-Id": str(message["X-Lead-Id"])}
        return json.dumps(body, ensure_ascii=False).encode("utf-8")

    def settings_problem(self) -> str:
        settings = self.settings
        if not settings.acs_endpoint and not settings.acs_connection_string:
            return ("LEADS_EMAIL_TRANSPORT=acs needs LEADS_ACS_ENDPOINT (the Communication Services endpoint, "
                    "reached with the app's managed identity) or LEADS_ACS_CONNECTION_STRING.")
        if settings.acs_connection_string:
            try:
                parse_connection_string(settings.acs_connection_string)
            except ConfigurationError as error:
                return error.explanation
        missing = [n for n, v in (("LEADS_EMAIL_FROM", settings.sender), ("LEADS_EMAIL_TO", settings.to)) if not v]
        if missing:
            return f"E-mail is not configured: set {' and '.join(missing)}."
        if "@" not in self._sender or not all("@" in address for _, address in self._recipients):
            return "LEADS_EMAIL_FROM and LEADS_EMAIL_TO must be e-mail addresses (LEADS_EMAIL_TO separated by ; or ,)."
        return ""


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error(response: requests.Response) -> tuple[str, str]:
    return _error_in(_json(response))


def _error_in(body: Any) -> tuple[str, str]:
    """`{"error": {"code", "message"}}` (ErrorResponse of the Azure data-plane common types)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", ""
    return str(error.get("code") or ""), str(error.get("message") or "")


def _quote(code: str, message: str) -> str:
    text = " ".join(message.split())
    if len(text) > _QUOTE_MAX:
        text = text[: _QUOTE_MAX - 1] + "…"
    return f"{code}: {text}" if text else code
