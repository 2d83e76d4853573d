"""No cross-site actions: a state-changing management request is taken only as `application/json` and only
from this app's own pages.

A browser adds `Origin` to every cross-origin request and to every POST (Fetch Standard, "Origin header":
fetch.spec.whatwg.org/#origin-header) and `Sec-Fetch-Site` to every request it makes (W3C Fetch Metadata
Request Headers, w3.org/TR/fetch-metadata/#sec-fetch-site-header); a form or a `no-cors` fetch from another
site can send only `text/plain`, `application/x-www-form-urlencoded` or `multipart/form-data` ("CORS-safelisted
request-header", fetch.spec.whatwg.org/#cors-safelisted-request-header), so requiring `application/json`
forces a CORS preflight that this app never answers with `Access-Control-Allow-Origin`. A script with the
function key or a bearer token sends neither header and is taken."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from leads.core.errors import BadRequestError

_DEFAULT_PORTS = {"http": "80", "https": "443"}


class CrossSiteError(BadRequestError):
    """415 (a body that is not JSON) or 403 (another site's page)."""

    def __init__(self, explanation: str, status: int, code: str) -> None:
        super().__init__(explanation)
        self.status = status
        self.code = code


def _authority(host: str, scheme: str) -> str:
    value = host.strip().lower()
    default = _DEFAULT_PORTS.get(scheme, "")
    return value[: -len(default) - 1] if default and value.endswith(f":{default}") else value


def same_origin(origin: str, host: str) -> bool:
    """Whether `Origin` names the host this request was sent to (the scheme's default port ignored)."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in _DEFAULT_PORTS or not parts.netloc or parts.path not in ("", "/"):
        return False
    return bool(host) and _authority(parts.netloc, parts.scheme) == _authority(host, parts.scheme)


def check_same_origin_json(headers: Mapping[str, str]) -> None:
    """Raises CrossSiteError unless the request is JSON and not from another site. `headers` any case."""
    lower = {k.lower(): v for k, v in headers.items()}
    media = lower.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise CrossSiteError("This action takes only a JSON request: send Content-Type: application/json (with "
                             "{} as the body when there is nothing to say). Nothing was changed.", 415,
                             "unsupported_media_type")
    fetch_site = lower.get("sec-fetch-site", "").strip().lower()
    if fetch_site and fetch_site != "same-origin":
        raise CrossSiteError(f"A page of another site ({fetch_site}) asked for this action: it is taken only from "
                             "this app's own console, or from a script with the function key or a token. Nothing "
                             "was changed.", 403, "cross_site")
    origin = lower.get("origin")
    if origin is not None and not same_origin(origin, lower.get("host", "")):
        raise CrossSiteError("This action came from a page of another origin: it is taken only from this app's "
                             "own console, or from a script with the function key or a token. Nothing was "
                             "changed.", 403, "cross_site")
