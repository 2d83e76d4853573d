"""The OpenAPI 3.1 description of every route the app serves, built from the route tables (the management
routes from leads/manage/routes.py). Served at GET /api/openapi.json; `make test` drives the local host from
it with schemathesis (tests/manage/test_api_fuzz.py)."""

from __future__ import annotations

import importlib.util
from typing import Any

from leads.core.audit import ACTIONS
from leads.core.hosting import CLOSED, KEY_ONLY, LOCAL_OPEN, SIGN_IN
from leads.core.model import ACTION_MEANINGS
from leads.core.subjects import EMAIL_MAX, EMAIL_PATTERN, FORGET_COUNTS
from leads.manage.filters import DESTINATION_STATES, LEAD_STATUSES, MAX_LIMIT
from leads.manage.routes import ROUTES, Route

_TEXT: dict[str, Any] = {"type": "string"}
_NULLABLE_TEXT: dict[str, Any] = {"type": ["string", "null"]}
_INT: dict[str, Any] = {"type": "integer"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_OUTCOMES = ["delivered", "skipped", "retrying", "blocked", "failed", "crashed"]


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties,
            "required": list(properties) if required is None else required}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _page(item: str, key: str) -> dict[str, Any]:
    return _object({key: {"type": "array", "items": _ref(item)}, "continuation": {
        "type": ["string", "null"], "description": "Pass as `continuation` to get the next page; null: no more."}})


_DELIVERY = {"state": {"type": "string", "enum": list(DESTINATION_STATES)}, "attempts": _INT,
             "last_error": _TEXT, "record_id": _TEXT}
_SUMMARY = {
    "id": _TEXT, "received_at": _NULLABLE_TEXT, "status": {"type": "string", "enum": list(LEAD_STATUSES)},
    "test": _BOOL, "edu": _BOOL, "action": _TEXT, "action_meaning": _TEXT, "offer": _TEXT, "company": _TEXT,
    "country": _TEXT, "name": _TEXT, "email": _TEXT, "duplicate_arrivals": _INT,
    "deliveries": {"type": "object", "additionalProperties": _ref("DeliverySummary")},
}
_REJECTED = {"id": _TEXT, "received_at": _NULLABLE_TEXT, "reason": _TEXT, "status": _INT, "message": _TEXT,
             "method": _TEXT, "content_type": _TEXT, "body_bytes": _INT, "truncated": _BOOL,
             "reingested": {"type": ["string", "null"], "description": "What the last re-ingest answered."}}
_BRIEF = {"type": ["object", "null"], "properties": {"id": _TEXT, "received_at": _NULLABLE_TEXT},
          "required": ["id", "received_at"]}

_QUERY: dict[str, dict[str, Any]] = {
    "test": {"schema": {"type": "string", "enum": ["true", "false"]}, "description": "Partner Center test leads "
             "(MSFT_TEST) or real ones."},
    "status": {"schema": {"type": "string", "enum": list(LEAD_STATUSES)}},
    "destination": {"schema": {"type": "string", "maxLength": 200}, "description": "Leads sent to this destination."},
    "destination_state": {"schema": {"type": "string", "enum": list(DESTINATION_STATES)},
                          "description": "With destination: its state; alone: any destination's."},
    "offer": {"schema": {"type": "string", "maxLength": 200}, "description": "Substring of the offer title or id."},
    "action": {"schema": {"type": "string", "maxLength": 200}, "description": "Action code, exactly: "
               + ", ".join(ACTION_MEANINGS)},
    "from": {"schema": {"type": "string", "maxLength": 200}, "description": "Received at or after (ISO-8601)."},
    "to": {"schema": {"type": "string", "maxLength": 200}, "description": "Received at or before (ISO-8601)."},
    "q": {"schema": {"type": "string", "maxLength": 200}, "description": "Substring of company, e-mail or name."},
    "limit": {"schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50}},
    "continuation": {"schema": {"type": "string", "maxLength": 2000}, "description": "The previous page's token."},
}
_MODE = {"api_mode": {"type": "string", "enum": [LOCAL_OPEN, SIGN_IN, KEY_ONLY, CLOSED],
                      "description": "How the management API is open to this request (docs/operations.md)."},
         "api_access": _TEXT}

SCHEMAS: dict[str, Any] = {
    "Error": {**_object({"error": _TEXT, "message": _TEXT, "where": _TEXT}, ["error", "message"]),
              "description": "Every error: a code and a sentence a person can act on."},
    "DeliverySummary": _object(_DELIVERY),
    "Attempt": _object({"at": _TEXT, "outcome": {"type": "string", "enum": _OUTCOMES}, "sentence": _TEXT,
                        "record_id": _TEXT}),
    "DeliveryDetail": _object({**_DELIVERY, "delivered_at": _NULLABLE_TEXT, "next_attempt_at": _NULLABLE_TEXT,
                               "history": {"type": "array", "items": _ref("Attempt")}}),
    "LeadSummary": _object(_SUMMARY),
    "LeadDetail": _object({**_SUMMARY, "lead": {"type": "object"}, "raw_body": _TEXT, "raw_body_bytes": _INT,
                           "campaign": {"type": "object", "additionalProperties": _TEXT}, "description": _TEXT,
                           "lead_source": _TEXT, "last_duplicate_at": _NULLABLE_TEXT,
                           "deliveries": {"type": "object", "additionalProperties": _ref("DeliveryDetail")}}),
    "LeadPage": _page("LeadSummary", "leads"),
    "ReplayOne": _object({"destination": {"type": "string", "minLength": 1, "maxLength": 100}}, []),
    "ReplayResult": _object({"id": _TEXT, "result": _TEXT, "queued": _BOOL}),
    "ReplayFilter": _object({
        "destination": {"type": "string", "minLength": 1, "maxLength": 100},
        "states": {"type": "array", "minItems": 1,
                   "items": {"type": "string", "enum": [s for s in DESTINATION_STATES if s not in ("delivered",
                                                                                                  "sending")]}},
        "from": {"type": "string", "description": "ISO-8601 date or time (UTC when no zone)."},
        "to": {"type": "string", "description": "ISO-8601 date or time (UTC when no zone)."}}, []),
    "ReplayMany": _object({"queued": _INT, "results": {"type": "array", "items": _ref("ReplayResult")}}),
    "Quarantined": _object(_REJECTED),
    "QuarantinedDetail": _object({**_REJECTED, "body": _TEXT}),
    "QuarantinePage": _page("Quarantined", "requests"),
    "Reingested": _object({"status": _INT, "answer": {"type": "object"}}),
    "Status": _object({
        "last_lead": _BRIEF, "last_test_lead": _BRIEF,
        "why_no_leads": {"type": "array", "items": _TEXT},
        "counts": _object({w: {"type": "object", "additionalProperties": _INT} for w in ("24h", "7d", "30d")}),
        "destinations": {"type": "array", "items": _object({
            "name": _TEXT, "type": _TEXT, "takes": _TEXT, "circuit": {"type": "string", "enum": ["open", "closed"]},
            "circuit_reason": _NULLABLE_TEXT, "blocked_by_settings": _NULLABLE_TEXT, "last_success": _NULLABLE_TEXT,
            "last_failure": {"type": ["object", "null"], "properties": {"at": _TEXT, "sentence": _TEXT},
                             "required": ["at", "sentence"]}})},
        "settings_ignored": {"type": "object", "additionalProperties": _TEXT}, **_MODE}),
    "Doctor": _object({"ok": _BOOL, "checks": {"type": "array", "items": _object(
        {"destination": _TEXT, "name": _TEXT, "ok": _BOOL, "message": _TEXT})}, **_MODE}),
    "Export": {"type": "object", "required": ["email", "exported_at", "leads"], "description": "Everything held "
               "about the person: leads, rejected requests, held and spooled copies, queued messages."},
    "AuditEntry": _object({
        "at": _TEXT, "who": {"type": "string", "description": "The signed-in name (and object id), "
                             "\"function key\" or \"local\"."},
        "object_id": _NULLABLE_TEXT, "how": {"type": "string", "enum": ["sign-in", "key", "local"]},
        "action": {"type": "string", "enum": list(ACTIONS.values())},
        "lead_ids": {"type": "array", "items": _TEXT}, "lead_count": _INT,
        "subject": {"type": ["string", "null"], "description": "A person's address as its keyed hash (forget, "
                    "export), or a rejected request's id (re-ingest)."},
        "status": _INT, "outcome": _TEXT}),
    "AuditPage": _page("AuditEntry", "entries"),
    "LeadSearch": {"type": "object", "required": [], "additionalProperties": False, "properties": {
        **{name: spec["schema"] for name, spec in _QUERY.items() if name not in ("test", "limit")},
        "test": _BOOL, "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}}},
    "ForgetRequest": _object({"email": {"type": "string", "maxLength": EMAIL_MAX, "pattern": EMAIL_PATTERN,
                                        "description": "The person's address; case is ignored."}}, ["email"]),
    "Forgotten": _object({name: {"type": "integer", "minimum": 0} for name in FORGET_COUNTS}),
    "IngestAccepted": _object({"id": _TEXT, "duplicate": _BOOL, "test": _BOOL}),
    "Health": _object({"status": {"type": "string", "enum": ["ok", "unavailable"]}}),
    "OperatorStatus": {"type": "object", "description": "Open breakers, leads needing attention, recent leads "
                                                        "(no personal data): `python -m leads status`."},
}

_REASONS = {200: "OK", 202: "Accepted: stored before this answer", 400: "A parameter or the body is wrong",
            401: "Nobody signed in (or sign-in not configured in Azure)",
            403: "Signed in without the role, or an action from another site's page",
            404: "No such lead, request or route", 405: "Method not allowed here", 413: "Body too large",
            415: "An action takes only application/json", 421: "The Host is not this app's (local host)",
            503: "Storage did not answer; retry later"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(route: Route, prefix: str, keyed: bool) -> dict[str, Any]:
    responses = {str(route.status): _json(_ref(route.answer), _REASONS[route.status])}
    errors = (*route.errors, 400, 403, 415) if route.method == "POST" else route.errors
    for status in sorted(set(errors)):
        responses[str(status)] = _json(_ref("Error"), _REASONS[status])
    operation: dict[str, Any] = {
        "operationId": route.operation + ("ByKey" if keyed else ""), "summary": route.summary,
        "tags": ["manage (function key)" if keyed else "manage"],
        "description": f"Needs the {route.role} app role (or the function key on /api/manage-key).",
        "security": [{"functionKey": []}] if keyed else [{"appServiceSignIn": []}, {}],
        "responses": responses,
    }
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string", "maxLength": 200}}
                  for name in route.pattern.groupindex]
    parameters += [{"name": name, "in": "query", "required": False, **_QUERY[name]} for name in route.query]
    if parameters:
        operation["parameters"] = parameters
    if route.method == "POST":  # every action is JSON, from the same origin (leads/manage/cross_site.py)
        schema = _ref(route.body) if route.body else {"type": "object", "description": "Ignored: send {}."}
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    return operation


def _fixed_paths() -> dict[str, Any]:
    ingest_errors = {str(s): _json(_ref("Error"), _REASONS[s]) for s in (400, 405, 413, 503)}
    paths: dict[str, Any] = {
        "/leads": {"post": {
            "operationId": "ingestLead", "tags": ["ingest"], "security": [{"functionKey": []}],
            "summary": "Partner Center's HTTPS endpoint: store the lead, then answer 202",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "description": "Partner Center's lead (docs/marketplace-leads.md): keys read "
                                                 "case-insensitively, any may be missing."}}}},
            "responses": {"202": _json(_ref("IngestAccepted"), _REASONS[202]), **ingest_errors}}},
        "/health": {"get": {"operationId": "health", "tags": ["health"], "security": [{}],
                            "summary": "200 when storage answers, 503 when not",
                            "responses": {"200": _json(_ref("Health"), "Storage answers"),
                                          "503": _json(_ref("Health"), "Storage does not answer")}}},
        "/status": {"get": {"operationId": "operatorStatus", "tags": ["status"], "security": [{"functionKey": []}],
                            "summary": "Open breakers and recent leads' states, without personal data",
                            "responses": {"200": _json(_ref("OperatorStatus"), "OK"),
                                          "503": _json(_ref("Error"), _REASONS[503])}}},
        "/openapi.json": {"get": {"operationId": "openapi", "tags": ["openapi"], "security": [{}],
                                  "summary": "This description",
                                  "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")}}},
    }
    if importlib.util.find_spec("leads.triggers.console") is not None:  # served once the console is part of the app
        page = {"description": "The console", "content": {"text/html": {"schema": _TEXT}}}
        for path, kind in (("/console", "text/html"), ("/console/app.js", "text/javascript"),
                           ("/console/app.css", "text/css")):
            paths[path] = {"get": {"operationId": "console" + path.rsplit("/", 1)[-1].replace(".", "_"),
                                   "tags": ["console"], "security": [{"appServiceSignIn": []}, {}],
                                   "summary": "The lead console (" + kind + ")",
                                   "responses": {"200": {**page, "content": {kind: {"schema": _TEXT}}}}}}
    return paths


def openapi_document(server_url: str = "/api") -> dict[str, Any]:
    paths = _fixed_paths()
    for keyed, prefix in ((False, "/manage"), (True, "/manage-key")):
        for route in ROUTES:
            paths.setdefault(prefix + route.template, {})[route.method.lower()] = _operation(route, prefix, keyed)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Marketplace leads", "version": "1",
                 "description": "Partner Center lead intake, delivery to CRMs and e-mail, and its management API. "
                                "Management routes: in Azure behind App Service Authentication (app roles "
                                "Leads.Reader, Leads.Operator) or with the function key under /api/manage-key; "
                                "open without credentials only on the developer's machine (a local host, a "
                                "loopback Host). Every POST takes only application/json from the same origin."},
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key",
                            "description": "The function key (also accepted as ?code=)."},
            "appServiceSignIn": {"type": "apiKey", "in": "header", "name": "X-MS-CLIENT-PRINCIPAL",
                                 "description": "Set by App Service Authentication after Microsoft Entra sign-in; "
                                                "never by a client."}}},
    }
