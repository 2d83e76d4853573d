"""The one way a URL is shown to people: scheme, host and port only.

Any URL setting may hold a secret: credentials before the host (`https://user:password@host/`), a key in the
query (`?sig=...`, Power Automate and Teams workflow URLs) or a key that is the path itself (Slack's
`/services/T.../B.../<token>`). A sentence, log line, notice, delivery history entry, status or doctor line
names a URL through `shown_url` or `shown_host`, never the value itself."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
# A URL inside free text (a library's exception message): scheme://authority, then anything up to a space/quote.
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")  # a bare `https://` (a rule) is no URL


def shown_host(url: str) -> str:
    """`host` or `host:port` (a port only when not the scheme's default); never user-info, path or query.
    `an unreadable address` when the URL cannot be parsed."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "an unreadable address"
    if not host:
        return "an unreadable address"
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None or port == _DEFAULT_PORTS.get(parts.scheme.lower()) else f"{shown}:{port}"


def shown_url(url: str) -> str:
    """`scheme://host[:port]`: what a person may read of a URL setting."""
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        scheme = ""
    host = shown_host(url)
    return f"{scheme}://{host}" if scheme and host != "an unreadable address" else host


def hide_urls(text: str) -> str:
    """Every URL inside `text` reduced to its scheme, host and port (for a library's message)."""
    return _URL_IN_TEXT.sub(lambda found: shown_url(found.group(0)), text)
