"""The management API (`/api/manage/...`, signed-in people; `/api/manage-key/...`, scripts with the function
key) and its OpenAPI description. The routing and the rules live in leads/manage/routes.py; this only
translates requests and answers. Never a 500."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import azure.functions as func

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger("leads.manage")
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def security_headers() -> dict[str, str]:
    """On every answer of the management API and the console: never framed, never sniffed, and HTTPS only
    in Azure (HSTS, RFC 6797; not locally, where the app is served over plain http://127.0.0.1)."""
    from leads.core.hosting import is_local

    headers = {"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
               "X-Content-Type-Options": "nosniff"}
    if not is_local(os.environ):
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return headers


def request_headers(req: func.HttpRequest) -> dict[str, str]:
    """The request's headers with lower-case names, `host` taken from the URL when the host passed none."""
    from urllib.parse import urlsplit

    headers = {k.lower(): v for k, v in req.headers.items()}
    headers.setdefault("host", urlsplit(req.url).netloc)
    return headers


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status,
                             headers={"Cache-Control": "no-store", **security_headers(), **(headers or {})},
                             mimetype="application/json", charset="utf-8")


def _answer(req: func.HttpRequest, via_key: bool) -> func.HttpResponse:
    from leads.manage.routes import dispatch
    from leads.manage.service import ManageService
    from leads.runtime import runtime

    try:
        status, body, headers = dispatch(req.method, req.route_params.get("path") or "", dict(req.params),
                                         req.get_body() or b"", request_headers(req), os.environ, via_key,
                                         lambda: ManageService(runtime()))
    except Exception as error:  # noqa: BLE001 - a bug: answered without details, logged without personal data
        log.error("management request failed (%s)", type(error).__name__)
        return _json(503, {"error": "unavailable", "message": "The management API failed on this request; the "
                           "app's logs say why. Please retry later."}, {"Retry-After": "30"})
    return _json(status, body, headers)


@bp.route(route="manage/{*path}", methods=_ALL_METHODS, auth_level=func.AuthLevel.ANONYMOUS)
def manage(req: func.HttpRequest) -> func.HttpResponse:
    """Signed-in people (App Service Authentication and app roles); locally open."""
    return _answer(req, via_key=False)


@bp.route(route="manage-key/{*path}", methods=_ALL_METHODS, auth_level=func.AuthLevel.FUNCTION)
def manage_key(req: func.HttpRequest) -> func.HttpResponse:
    """The same API for scripts: the host has checked the function key before this runs."""
    return _answer(req, via_key=True)


@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    from leads.manage.openapi import openapi_document

    return _json(200, openapi_document())
