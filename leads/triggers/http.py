"""HTTP triggers: translate the request, call the package, translate the answer. Never a 500."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import azure.functions as func

from leads.core.errors import LeadsError, SettingsError

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger("leads.http")
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, headers=headers or {},
                             mimetype="application/json", charset="utf-8")


# Every method is bound so that a wrong one gets a 405 that explains itself (and is recorded).
@bp.route(route="leads", methods=_ALL_METHODS, auth_level=func.AuthLevel.FUNCTION)
def ingest_lead(req: func.HttpRequest) -> func.HttpResponse:
    from leads.runtime import runtime
    from leads.telemetry import elapsed_ms, log_ingest

    body, started = req.get_body() or b"", time.monotonic()
    try:
        answer = runtime().ingest.receive(req.method, body, req.headers.get("content-type", ""))
    except Exception as error:  # noqa: BLE001 - a bug or a misconfiguration: keep the lead, answer 503
        kept = _keep_on_disk(body)
        log_ingest("", "spooled" if kept else "unavailable", elapsed_ms(started, time.monotonic()))
        log.error("ingest failed: %s", error.explanation if isinstance(error, LeadsError) else type(error).__name__)
        # Only storage settings stop intake (any other bad setting blocks one destination, or falls back).
        message = ("The app's storage is not configured; its administrator can run `python -m leads doctor`."
                   if isinstance(error, SettingsError) else "The lead could not be processed right now.")
        return _json(503, {"error": "unavailable", "message": message + " Please retry later."},
                     {"Retry-After": "60"})
    return _json(answer.status, answer.body, answer.headers)


def _keep_on_disk(body: bytes) -> bool:
    if not body:
        return False
    import os

    from leads.core.model import utcnow
    from leads.storage.spool import Spool

    # Read the one setting directly: the settings as a whole may be what is broken. This instance's own disk:
    # it stores the file itself after its next successful ingest (leads/services/recovery.py); no other
    # instance sees it.
    return Spool(os.environ.get("LEADS_SPOOL_DIR", "")).keep(body, utcnow()) is not None


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """200 when storage answers, 503 when not. Says nothing about the configuration."""
    from leads.runtime import runtime

    try:
        runtime().table.ping()
    except Exception as error:  # noqa: BLE001 - any failure here means "not healthy"
        log.warning("health check failed: %s", type(error).__name__)
        return _json(503, {"status": "unavailable"})
    return _json(200, {"status": "ok"})


@bp.route(route="status", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def status(req: func.HttpRequest) -> func.HttpResponse:
    """For operators (function key): open circuit breakers and the latest leads' delivery states."""
    from leads.runtime import runtime
    from leads.services.status import status_report

    try:
        return _json(200, status_report(runtime()))
    except LeadsError as error:
        return _json(503, {"error": "unavailable", "message": error.explanation})
