"""A fake Azure Communication Services Email endpoint on a loopback socket.

It answers "Email - Send" and "Email - Get Send Result" (api-version 2023-03-31) as the REST reference and
its examples show (azure-rest-api-specs, specification/communication/data-plane/Email/stable/2023-03-31:
CommunicationServicesEmail.json, examples/SendEmail.json, examples/GetOperationStatusReturns*.json), and
authenticates each request like the service: the HMAC-SHA256 signature of "Sign an HTTP request with HMAC"
(learn.microsoft.com/azure/communication-services/tutorials/hmac-header-tutorial), or a bearer token.

    acs = FakeAcsEmail(access_key=KEY) or FakeAcsEmail(bearer_token="...")
    acs.sends                     # each accepted POST: (operation id, body)
    acs.polls_before_done = 2     # answer Running this many times before the terminal status
    acs.outcome = failed_operation()   # the terminal status (default Succeeded)
    acs.send_reply = domain_not_linked()   # answer POST with this instead
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.support.fake_http import FakeServer, Recorded, Reply

API_VERSION = "2023-03-31"
ACCESS_KEY = base64.b64encode(b"fake-acs-access-key-0123456789abcdef").decode()  # base64, as the portal shows


def acs_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    """The spec's default (error) response: ErrorResponse `{"error": {"code", "message"}}` of the Azure
    data-plane common types, and `x-ms-error-code` "the same as the code in the error property"."""
    return Reply(status, {"error": {"code": code, "message": message}}, {"x-ms-error-code": code, **(headers or {})})


def denied() -> Reply:
    # What ACS answers a signature or token it does not accept, or an identity without a role on the resource.
    # [SEEN] 401, code "Denied", "Denied by the resource provider." (third-party client code classifying it).
    return acs_error(401, "Denied", "Denied by the resource provider.")


def domain_not_linked() -> Reply:
    # [SEEN] 404 DomainNotLinked "The specified sender domain has not been linked." (third-party reports and
    # MicrosoftDocs/azure-docs#123379 quoting the SMTP form "5.1.7 The specified sender domain has not been linked").
    return acs_error(404, "DomainNotLinked", "The specified sender domain has not been linked.")


def invalid_sender_username() -> Reply:
    # [SEEN] 400 InvalidSenderUserName "Invalid email sender username" (third-party code matching it).
    return acs_error(400, "InvalidSenderUserName", "Invalid email sender username.")


def throttled(seconds: int) -> Reply:
    # Azure data-plane throttling: 429 with Retry-After in seconds. [GUESS on the exact message]
    return acs_error(429, "TooManyRequests", "Too many requests.", {"Retry-After": str(seconds)})


def unknown_operation(operation: str) -> Reply:
    # The spec documents only the default error for an unknown id. [GUESS] 404 with an error body.
    return acs_error(404, "NotFound", f"Operation {operation} not found.")


def failed_operation(operation: str = "") -> dict[str, Any]:
    # examples/GetOperationStatusReturnsFailedTerminalStatus.json
    return {"id": operation, "status": "Failed",
            "error": {"code": "EmailDropped", "message": "Email was dropped after several attempts to deliver."}}


@dataclass
class FakeAcsEmail:
    access_key: str = ACCESS_KEY
    bearer_token: str = ""  # when set, only `Authorization: Bearer <it>` is accepted (managed identity)
    polls_before_done: int = 0
    retry_after: int = 1  # the examples show 20 and 100; tests keep it short
    outcome: dict[str, Any] | None = None  # terminal body; None: Succeeded
    send_reply: Reply | None = None
    status_reply: Reply | None = None
    sends: list[tuple[str, Any]] = field(default_factory=list)
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.server = FakeServer()
        self._polls: dict[str, int] = {}
        self.server.on("POST", "/emails:send", self._send)
        self.server.on_pattern("GET", r"/emails/operations/([^/]+)", self._status)

    @property
    def endpoint(self) -> str:
        return self.server.url

    @property
    def connection_string(self) -> str:
        return f"endpoint={self.endpoint}/;accesskey={self.access_key}"

    def __enter__(self) -> FakeAcsEmail:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    # -- authentication, as the service checks it ---------------------------------------------------------

    def _authenticated(self, request: Recorded) -> bool:
        headers = {k.lower(): v for k, v in request.headers.items()}
        authorization = headers.get("authorization", "")
        if self.bearer_token:
            return authorization == f"Bearer {self.bearer_token}"
        match = re.fullmatch(r"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=(.+)",
                             authorization)
        if not match:
            return False
        content_hash = base64.b64encode(hashlib.sha256(request.body).digest()).decode()
        if headers.get("x-ms-content-sha256") != content_hash:
            return False
        to_sign = (f"{request.method}\n{request.target}\n{headers.get('x-ms-date', '')};"
                   f"{headers.get('host', '')};{content_hash}")
        expected = hmac.new(base64.b64decode(self.access_key), to_sign.encode(), hashlib.sha256).digest()
        return hmac.compare_digest(base64.b64encode(expected).decode(), match.group(1))

    def _refused(self, request: Recorded) -> Reply | None:
        if request.query.get("api-version") != [API_VERSION]:
            return acs_error(400, "InvalidApiVersion", "The api-version query parameter is missing or invalid.")
        if not self._authenticated(request):
            return denied()
        return None

    # -- the two operations -------------------------------------------------------------------------------

    def _send(self, request: Recorded) -> Reply:
        refused = self._refused(request)
        if refused or self.send_reply:
            return refused or self.send_reply  # type: ignore[return-value]
        body = request.json()
        if not {"senderAddress", "content", "recipients"} <= set(body) or not body["recipients"].get("to"):
            return acs_error(400, "BadRequest", "The request body is not a valid EmailMessage.")
        operation = request.headers.get("Operation-Id") or str(uuid.uuid4())
        uuid.UUID(operation)  # the header's format is uuid
        if operation in self.operations:
            # [GUESS] A repeated Operation-Id: 409 Conflict (third-party client code treats it so).
            return acs_error(409, "Conflict", f"An operation with id {operation} already exists.")
        self.sends.append((operation, body))
        self.operations[operation] = {"id": operation, "status": "Running"}
        self._polls[operation] = 0
        # examples/SendEmail.json: 202, Operation-Location and retry-after headers, body {id, status: Running}.
        location = f"{self.endpoint}/emails/operations/{operation}?api-version={API_VERSION}"
        return Reply(202, {"id": operation, "status": "Running"},
                     {"Operation-Location": location, "retry-after": str(self.retry_after)})

    def _status(self, request: Recorded, match: re.Match[str]) -> Reply:
        refused = self._refused(request)
        if refused or self.status_reply:
            return refused or self.status_reply  # type: ignore[return-value]
        operation = match.group(1)
        if operation not in self.operations:
            return unknown_operation(operation)
        if self.operations[operation]["status"] == "Running":
            self._polls[operation] += 1
            if self._polls[operation] > self.polls_before_done:
                terminal = dict(self.outcome) if self.outcome else {"status": "Succeeded"}
                self.operations[operation] = {**terminal, "id": operation}
        state = self.operations[operation]
        if state["status"] == "Running":
            # examples/GetOperationStatusReturnsNonTerminalStatus.json: 200 Running with retry-after.
            return Reply(200, state, {"retry-after": str(self.retry_after)})
        # examples/GetOperationStatusReturnsSuccessTerminalStatus.json / ...FailedTerminalStatus.json
        return Reply(200, state)
