"""What the Salesforce, Marketo, HubSpot and webhook destinations share: a cached OAuth access token,
lenient JSON reading, the lead values computed for CRMs, and the settings problems found at start-up.

Each destination is built once per process and called from several threads at a time (the pipeline
delivers to destinations in parallel), so the token cache is locked.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests

from leads.core.destination import Check, Skipped
from leads.core.errors import ConfigurationError, DestinationError, SettingsError
from leads.core.mapping import field_map
from leads.core.settings import is_loopback_url

Result = TypeVar("Result")



@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    # time.monotonic() after which the token is not used any more; None: until the service rejects it
    # (Salesforce's client-credentials answer carries no lifetime: the org's session timeout applies).
    expires_at: float | None = None
    instance_url: str = ""  # Salesforce answers with the org's API host


class TokenCache:
    """One access token per destination: fetched on first use, reused until shortly before it expires,
    dropped when the service says it is no longer valid, then fetched again once."""

    def __init__(self, fetch: Callable[[], AccessToken], *, margin: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._margin = margin  # a token about to expire may die between our check and the vendor's
        self._clock = clock
        self._token: AccessToken | None = None
        self._lock = threading.Lock()

    def get(self) -> AccessToken:
        with self._lock:
            token = self._token
            if token is None or (token.expires_at is not None and token.expires_at - self._margin <= self._clock()):
                token = self._token = self._fetch()
            return token

    def invalidate(self, token: AccessToken) -> None:
        with self._lock:
            # Only the token that failed: another thread may already have fetched a fresh one.
            if self._token is token:
                self._token = None

    def call(self, attempt: Callable[[AccessToken], Result], rejected: Callable[[Result], bool]) -> Result:
        """Run `attempt` with the current token; if the service rejects the token, fetch a new one and try
        once more. The caller decides what a second rejection means."""
        token = self.get()
        result = attempt(token)
        if rejected(result):
            self.invalidate(token)
            result = attempt(self.get())
        return result

    def deadline(self, seconds: float) -> float:
        """The `expires_at` of a token the vendor says lives `seconds` more, on this cache's clock."""
        return self._clock() + seconds


def json_body(response: requests.Response) -> Any:
    """The answer's JSON, or None when it is not JSON (a proxy's HTML error page, an empty 204)."""
    try:
        return response.json()
    except ValueError:
        return None


def token_body(response: requests.Response) -> dict[str, Any] | None:
    """The JSON of a successful OAuth token answer (200 with an access_token), else None."""
    body = json_body(response)
    if response.status_code == 200 and isinstance(body, dict) and body.get("access_token"):
        return body
    return None


def oauth_error(response: requests.Response) -> tuple[str, str]:
    """RFC 6749 §5.2 error answer: (`error`, `error_description`), empty strings when absent."""
    body = json_body(response)
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("error") or ""), str(body.get("error_description") or "")


def quoted_names(message: str) -> list[str]:
    """Field names a vendor quotes in its message (`Field 'foo' not found`). Used instead of the whole
    message where the message could echo a lead's values."""
    return [single or double for single, double in re.findall(r"'([^']+)'|\"([^\"]+)\"", message)]


class SettingsProblems:
    """Settings problems found when the destination is built. A CRM's bad setting must not stop the app
    (the e-mail and the other destinations still work), so they are raised on each delivery instead, as a
    ConfigurationError that opens this destination's circuit breaker, and shown by `check()`."""

    def __init__(self) -> None:
        self.sentences: list[str] = []

    def require(self, value: str, sentence: str) -> None:
        if not value:
            self.sentences.append(sentence)

    def field_map(self, default: dict[str, str], override_json: str, setting: str) -> dict[str, str]:
        try:
            return field_map(default, override_json, setting)
        except SettingsError as error:
            self.sentences.append(error.explanation)
            return dict(default)

    def raise_first(self) -> None:
        if self.sentences:
            raise ConfigurationError(self.sentences[0])

    def checks(self, destination: str) -> list[Check]:
        if not self.sentences:
            return [Check(destination, "settings", True, "OK")]
        return [Check(destination, "settings", False, sentence) for sentence in self.sentences]


def check_step(destination: str, name: str, step: Callable[[], str]) -> Check:
    """Run one live check; its DestinationError sentence (never a secret) becomes the failing line."""
    try:
        return Check(destination, name, True, step())
    except DestinationError as error:
        return Check(destination, name, False, error.explanation)


def replay_hint(lead_id: str) -> str:
    """How to send a rejected lead again once its cause is fixed."""
    return f"then replay the lead (python -m leads replay {lead_id})" if lead_id else "then replay the lead"


def no_email_skip(crm: str) -> Skipped:
    return Skipped(
        f"Not sent to {crm}: the lead has no e-mail address, which {crm} uses to identify a person (and "
        "Microsoft passes no personal data for .edu customers). The lead is kept here and in the other "
        "destinations."
    )


def outbound_url_check(destination: str, setting: str, url: str) -> Check:
    """The doctor's line for a URL the app posts to: HTTPS (or loopback, for tests) and a host that resolves.
    Only the host is named: the path or query can carry a key (Power Automate's sig=, Slack's token path)."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not is_loopback_url(url):
        return Check(destination, "url", False, f"{setting} must start with https://.")
    try:
        socket.getaddrinfo(parts.hostname or "", parts.port or 443)
    except OSError:
        return Check(destination, "url", False,
                     f"{setting}'s host {parts.hostname} does not resolve: check the URL for typos.")
    return Check(destination, "url", True, f"OK (HTTPS or loopback; {parts.hostname} resolves)")
