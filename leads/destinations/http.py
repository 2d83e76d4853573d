"""HTTP for destinations: one place that turns timeouts, 429 and 5xx into retryable errors."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import requests

from leads.core.errors import TransientDestinationError
from leads.core.urls import shown_host


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` is either seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


USER_AGENT = "marketplace-leads/0.1 (the publisher's Microsoft commercial marketplace lead destination)"


def new_session() -> requests.Session:
    """One session per destination object (connection reuse), identifying the app to the vendor."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


def send(
    session: requests.Session, method: str, url: str, *, label: str, timeout: float, **kwargs: Any
) -> requests.Response:
    """Send a request; raise TransientDestinationError for what is worth retrying, return the rest.

    `label` names the service in the sentence ("Dynamics 365", "HubSpot"); the URL's host is named, never
    its query string (which can hold a key). Redirects are never followed: requests would turn a redirected
    POST into a GET and drop the lead; each destination explains a 3xx instead."""
    host = shown_host(url)
    try:
        response = session.request(method, url, timeout=timeout, allow_redirects=False, **kwargs)
    except requests.Timeout:
        raise TransientDestinationError(
            f"{label} at {host} did not answer within {timeout:g} seconds; will retry. If this persists, "
            f"check that the URL is the right one and that the service is up."
        ) from None
    except requests.ConnectionError:
        raise TransientDestinationError(
            f"Could not connect to {label} at {host}; will retry. If this persists, check the URL setting "
            f"(host name, https) and that the service is reachable from the app."
        ) from None
    if response.status_code == 429:
        raise TransientDestinationError(
            f"{label} is throttling requests (429); will retry after the delay it asked for.",
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )
    if response.status_code >= 500:
        raise TransientDestinationError(
            f"{label} at {host} answered {response.status_code} (a server-side error); will retry.",
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )
    return response
