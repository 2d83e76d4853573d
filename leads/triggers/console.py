"""The operator console: three static files from leads/console/, served with a strict Content-Security-Policy.

The page holds no data; it reads everything from /api/manage/ (which checks who is asking), so these routes
only serve files. The CSP forbids inline script and style and any other host: a lead field that carries
markup can never run (the page also sets every value as text).
"""

from __future__ import annotations

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


def serve(name: str) -> func.HttpResponse:
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        # Revalidate each time: a deployment changes the files under the same names.
        "Cache-Control": "no-cache",
    }
    return func.HttpResponse(_file(name), status_code=200, headers=headers, mimetype=_TYPES[name], charset="utf-8")


@bp.route(route="console", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def console_page(req: func.HttpRequest) -> func.HttpResponse:
    return serve("index.html")


@bp.route(route="console/app.js", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def console_script(req: func.HttpRequest) -> func.HttpResponse:
    return serve("app.js")


@bp.route(route="console/app.css", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def console_style(req: func.HttpRequest) -> func.HttpResponse:
    return serve("app.css")
