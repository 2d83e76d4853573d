"""The operator console: three static files from leads/console/, served with a strict Content-Security-Policy.

The page holds no data; it reads everything from /api/manage/, which checks each caller's app role. These
routes only refuse what the API refuses before any role: in Azure without sign-in, a 401 with the sentence
that says how to turn it on (leads/manage/auth.py; locally, a Host
that is not loopback is refused too); a signed-in person without a role gets the page, and the
page shows the API's 403 sentence. The CSP forbids inline script and style and any other host: a lead field that carries
markup can never run (the page also sets every value as text).
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

import azure.functions as func

bp = func.Blueprint()  # type: ignore[no-untyped-call]

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                           "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_TYPES = {"index.html": "text/html", "app.js": "text/javascript", "app.css": "text/css"}


@cache
def _file(name: str) -> bytes:
    return (CONSOLE_DIR / name).read_bytes()


def serve(req: func.HttpRequest, name: str) -> func.HttpResponse:
    from leads.manage.auth import AuthError, identify
    from leads.triggers.manage import request_headers, security_headers

    try:
        identify(request_headers(req), os.environ, via_key=False)
    except AuthError as error:
        return func.HttpResponse(json.dumps({"error": "unauthorized", "message": error.explanation}),
                                 status_code=error.status, mimetype="application/json", charset="utf-8",
                                 headers={**security_headers(), "Cache-Control": "no-store"})
    headers = {
        **security_headers(),
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Referrer-Policy": "no-referrer",
        # Revalidate each time: a deployment changes the files under the same names.
        "Cache-Control": "no-cache",
    }
    return func.HttpResponse(_file(name), status_code=200, headers=headers, mimetype=_TYPES[name], charset="utf-8")


@bp.route(route="console", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def console_page(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, "index.html")


@bp.route(route="console/app.js", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def console_script(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, "app.js")


@bp.route(route="console/app.css", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def console_style(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, "app.css")
