"""The management API's routes, in one table: the HTTP trigger dispatches with it and the OpenAPI description
(leads/manage/openapi.py) is built from it. Plain Python: a request in, (status, JSON, headers) out."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from leads.core.errors import BadRequestError, LeadsError, NotFoundError, SettingsError, StorageUnavailableError
from leads.manage.audit import audited
from leads.manage.auth import OPERATOR, READER, AuthError, authorize, identify, request_mode
from leads.manage.cross_site import CrossSiteError, check_same_origin_json
from leads.manage.filters import LeadFilter, parse_limit, parse_moment
from leads.manage.service import ManageService

log = logging.getLogger("leads.manage")
_MAX_BODY = 16 * 1024


@dataclass(frozen=True)
class Request:
    path: dict[str, str]
    query: Mapping[str, str]
    body: bytes
    mode: str = ""  # the API's mode for this request (leads/core/hosting.py): status and doctor say it


Handler = Callable[[ManageService, Request], dict[str, Any]]


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # under /api/manage
    role: str
    handler: Handler
    operation: str  # OpenAPI operationId
    summary: str
    answer: str  # the schema name of the success body
    status: int = 200
    query: tuple[str, ...] = ()  # OpenAPI parameter names (leads/manage/openapi.py)
    body: str | None = None  # the schema name of an (optional) JSON body
    errors: tuple[int, ...] = field(default=(400, 401, 403, 404, 405, 503))

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template) + "/?$")


def _json_body(request: Request) -> dict[str, Any]:
    if not request.body.strip():
        return {}
    if len(request.body) > _MAX_BODY:
        raise BadRequestError(f"The body is larger than {_MAX_BODY} bytes.")
    try:
        document = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequestError("The body is not JSON: send a JSON object, or nothing.") from None
    except RecursionError:  # json.loads recurses once per nesting level: 16 KiB of `[` is far too deep
        raise BadRequestError("The body is nested too deeply: send a flat JSON object such as "
                              "{\"email\": \"name@example.com\"}.") from None
    if not isinstance(document, dict):
        raise BadRequestError("The body must be a JSON object.")
    return document


def _optional_text(document: dict[str, Any], name: str) -> str | None:
    if name not in document:
        return None
    value = document[name]
    if not isinstance(value, str) or not value.strip() or len(value) > 100:
        raise BadRequestError(f"{name} must be a non-empty text of at most 100 characters.", parameter=name)
    return value.strip().lower()


def _moment(document: dict[str, Any], name: str) -> Any:
    value = document.get(name)
    if name in document and not isinstance(value, str):
        raise BadRequestError(f"{name} must be an ISO-8601 text such as 2026-11-30.", parameter=name)
    return parse_moment(value, name)


def list_leads(service: ManageService, request: Request) -> dict[str, Any]:
    if "q" in request.query:
        raise BadRequestError("Search terms are not taken in a URL (addresses are written to logs): POST "
                              "/api/manage/leads/search with {\"q\": \"...\"} and the other filters.", parameter="q")
    filters = LeadFilter.from_query(request.query)
    return service.list_leads(filters, parse_limit(request.query.get("limit")), request.query.get("continuation"))


def search_leads(service: ManageService, request: Request) -> dict[str, Any]:
    """The list's filters from a JSON body: texts, `test` as true/false, `limit` as a number."""
    params: dict[str, str] = {}
    for name, value in _json_body(request).items():
        if name == "test" and isinstance(value, bool):
            params[name] = "true" if value else "false"
        elif name == "limit" and isinstance(value, int) and not isinstance(value, bool):
            params[name] = str(value)
        elif name not in ("test", "limit") and isinstance(value, str):
            params[name] = value
        else:
            raise BadRequestError(f"{name[:40]} must be a text (limit a number, test true or false), not "
                                  f"{type(value).__name__}.",
                                  parameter=name[:40])
    filters = LeadFilter.from_query(params)
    return service.list_leads(filters, parse_limit(params.get("limit")), params.get("continuation"))


def replay_lead(service: ManageService, request: Request) -> dict[str, Any]:
    document = _json_body(request)
    return service.replay_lead(request.path["id"], _optional_text(document, "destination"))


def replay_many(service: ManageService, request: Request) -> dict[str, Any]:
    document = _json_body(request)
    states = document.get("states", ["failed", "blocked", "parked"])
    if not isinstance(states, list) or not all(isinstance(s, str) for s in states):
        raise BadRequestError("states must be a list of states such as [\"failed\", \"blocked\"].", parameter="states")
    since, until = _moment(document, "from"), _moment(document, "to")
    return service.replay_many(_optional_text(document, "destination"), tuple(s.lower() for s in states),
                               since, until)


def _page_query(request: Request, what: str) -> tuple[int, str | None]:
    """`limit` and `continuation`, the only parameters a paged listing takes (any other is named back)."""
    unknown = sorted(set(request.query) - {"limit", "continuation"})
    if unknown:
        raise BadRequestError(f"Unknown parameter {unknown[0]!r}; {what} takes limit and continuation.",
                              parameter=unknown[0])
    return parse_limit(request.query.get("limit")), request.query.get("continuation")


def list_quarantine(service: ManageService, request: Request) -> dict[str, Any]:
    return service.list_quarantine(*_page_query(request, "the quarantine"))


def email_of(request: Request) -> str:
    email = _json_body(request).get("email")
    if not isinstance(email, str):
        raise BadRequestError("Send {\"email\": \"name@example.com\"}: the address of the person concerned.",
                              parameter="email")
    return email


def forget(service: ManageService, request: Request) -> dict[str, Any]:
    return service.forget(email_of(request))


def export(service: ManageService, request: Request) -> dict[str, Any]:
    return service.export(email_of(request))


def list_audit(service: ManageService, request: Request) -> dict[str, Any]:
    return service.audit_page(*_page_query(request, "the audit trail"))


def with_mode(answer: dict[str, Any], mode: str) -> dict[str, Any]:
    from leads.core.hosting import MODE_SENTENCES

    return {**answer, "api_mode": mode, "api_access": MODE_SENTENCES.get(mode, mode)}


ROUTES: tuple[Route, ...] = (
    Route("GET", "/leads", READER, list_leads, "listLeads", "Leads, newest first, filtered and paged (a search "
          "text only through POST /leads/search)",
          "LeadPage", query=("test", "status", "destination", "destination_state", "offer", "action", "from", "to",
                             "limit", "continuation"), errors=(400, 401, 403, 405, 503)),
    Route("POST", "/leads/search", READER, search_leads, "searchLeads",
          "Leads, newest first, filtered and paged, the search text in the body (never in a URL)", "LeadPage",
          body="LeadSearch", errors=(400, 401, 403, 405, 503)),
    Route("GET", "/leads/{id}", READER, lambda s, r: s.get_lead(r.path["id"]), "getLead",
          "One lead: every field, the body as received, each destination's attempt history", "LeadDetail"),
    Route("POST", "/leads/{id}/replay", OPERATOR, replay_lead, "replayLead",
          "Send a lead again to its failed, blocked and parked destinations (or to the one named)", "ReplayResult",
          body="ReplayOne"),
    Route("POST", "/replay", OPERATOR, replay_many, "replayMany",
          "Send again every lead in the given states (of one destination, in a date range)", "ReplayMany",
          body="ReplayFilter", errors=(400, 401, 403, 405, 503)),
    Route("GET", "/quarantine", READER, list_quarantine, "listQuarantine", "Rejected requests, newest first",
          "QuarantinePage", query=("limit", "continuation"), errors=(400, 401, 403, 405, 503)),
    Route("GET", "/quarantine/{id}", READER, lambda s, r: s.get_quarantined(r.path["id"]), "getQuarantined",
          "One rejected request with its body", "QuarantinedDetail"),
    Route("POST", "/quarantine/{id}/reingest", OPERATOR, lambda s, r: s.reingest(r.path["id"]), "reingest",
          "Run a rejected request through ingest again (its cause fixed)", "Reingested"),
    Route("GET", "/status", READER, lambda s, r: with_mode(s.status(), r.mode), "status",
          "Why do I see no leads: last lead, last test lead, counts, each destination's health", "Status",
          errors=(401, 403, 405, 503)),
    Route("POST", "/doctor", OPERATOR, lambda s, r: with_mode(s.doctor(), r.mode), "doctor",
          "Run the live checks of every destination and of storage", "Doctor", errors=(401, 403, 405, 503)),
    Route("POST", "/forget", OPERATOR, forget, "forgetPerson",
          "Erase every record of the person with this e-mail address (leads, markers, rejected requests, held and "
          "spooled copies, queued messages); answers the counts, all zero when nothing is left", "Forgotten",
          body="ForgetRequest", errors=(400, 401, 403, 405, 503)),
    Route("POST", "/export", OPERATOR, export, "exportPerson",
          "Everything held about the person with this e-mail address (leads, rejected requests, held and spooled "
          "copies, queued messages)", "Export", body="ForgetRequest", errors=(400, 401, 403, 405, 503)),
    Route("GET", "/audit", READER, list_audit, "listAudit",
          "The audit trail, newest first: who replayed, re-ingested, forgot, exported, sent a test lead or ran the "
          "checks, when, on which leads, and the outcome", "AuditPage", query=("limit", "continuation"),
          errors=(400, 401, 403, 405, 503)),
    Route("POST", "/test-lead", OPERATOR, lambda s, r: s.send_test_lead(), "sendTestLead",
          "Send a Partner Center-shaped test lead (MSFT_TEST) through ingest", "IngestAccepted", status=202,
          errors=(401, 403, 405, 503)),
)


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None,
          ) -> tuple[int, dict[str, Any], dict[str, str]]:
    return status, {"error": code, "message": message}, headers or {}


def without_function_key(query: Mapping[str, str]) -> dict[str, str]:
    """The query without the host's own `code` parameter (the function key). The Functions host reads the key
    from `code` and leaves it in the query string it passes on with the other parameters
    (azure-functions-host src/WebJobs.Script.WebHost/Security/Authentication/Keys/AuthenticationLevelHandler.cs,
    FunctionsKeyQueryParamName; GrpcMessageConversionExtensions.ToRpcHttp copies every request.Query pair), so
    `?code=<key>` must be accepted, and ignored, on every management route. ASP.NET's query is
    case-insensitive: `CODE` is the same parameter."""
    return {name: value for name, value in query.items() if name.lower() != "code"}


def dispatch(method: str, path: str, query: Mapping[str, str], body: bytes, headers: Mapping[str, str],
             env: Mapping[str, str], via_key: bool, service: Callable[[], ManageService],
             ) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Answer one management request: who (401), which route (404, 405), may they (403), then the service."""
    query = without_function_key(query)
    try:
        lowered = {k.lower(): v for k, v in headers.items()}
        caller = identify(lowered, env, via_key)
        path = "/" + path.strip("/")
        matches = [(route, found) for route in ROUTES if (found := route.pattern.match(path))]
        if not matches:
            return error(404, "not_found", f"No management route {path[:100]!r}; see /api/openapi.json.")
        chosen = [(route, found) for route, found in matches if route.method == method.upper()]
        if not chosen:
            allowed = ", ".join(sorted({route.method for route, _ in matches}))
            return error(405, "method_not_allowed", f"{method.upper()[:10]} is not allowed here; use {allowed}.",
                         {"Allow": allowed})
        route, found = chosen[0]
        if route.method == "POST":
            check_same_origin_json(headers)
            _json_body(Request({}, query, body))  # every action's body is a JSON object (or empty)
        authorize(caller, route.role)
        request = Request(found.groupdict(), query, body, request_mode(lowered, env, via_key))
        with audited(route.operation, route.status, caller, request.path, lambda: email_of(request)) as trail:
            answer = route.handler(trail.service(service), request)
            trail.answer = answer
        return route.status, answer, {}
    except AuthError as refused:
        extra = {"WWW-Authenticate": 'Bearer realm="leads"'} if refused.status == 401 else {}
        return error(refused.status, "unauthorized" if refused.status == 401 else "forbidden",
                     refused.explanation, extra)
    except CrossSiteError as refused:
        return error(refused.status, refused.code, refused.explanation)
    except BadRequestError as bad:
        return error(400, "bad_request", bad.explanation)
    except NotFoundError as missing:
        return error(404, "not_found", missing.explanation)
    except (StorageUnavailableError, SettingsError) as down:
        return error(503, "unavailable", down.explanation + " Please retry later.", {"Retry-After": "30"})
    except LeadsError as other:
        log.warning("management request failed: %s", type(other).__name__)
        return error(503, "unavailable", other.explanation, {"Retry-After": "30"})
