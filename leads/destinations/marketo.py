"""Marketo Engage: a LaunchPoint custom service (client id + secret of an API-only user) and the REST API's
Sync Leads on e-mail. A new person is created (`createOnly`); a person Marketo already has is read and only
their empty fields are filled (`updateOnly` on the id), so what sales wrote stays — unless
LEADS_MARKETO_UPDATE_EXISTING=true (`createOrUpdate`, the old behaviour). With LEADS_MARKETO_ACTIVITY_TYPE_ID
each lead is also recorded as a custom activity on the person. A redelivered lead never adds a person.

Marketo answers HTTP 200 to almost everything: the outcome is in `success`, `errors[]` (response level,
6xx/7xx codes) and each record's `status` and `reasons[]` (1xxx codes). See docs/destinations.md (Marketo).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from leads.core.destination import Check, Delivered, Destination, Skipped
from leads.core.errors import ConfigurationError, DestinationError, LeadRejectedError, TransientDestinationError
from leads.core.mapping import map_fields
from leads.core.model import StoredLead
from leads.core.settings import MarketoSettings, Settings
from leads.core.urls import shown_host
from leads.destinations.http import new_session, send
from leads.destinations.vendor_common import (
    AccessToken,
    SettingsProblems,
    TokenCache,
    check_step,
    json_body,
    no_email_skip,
    oauth_error,
    quoted_names,
    replay_hint,
    token_body,
)

LABEL = "Marketo"
MAP_SETTING = "LEADS_MARKETO_FIELD_MAP"
DEFAULT_FIELDS = {
    "firstName": "customer.first_name",
    "lastName": "customer.last_name",
    "email": "customer.email",
    "phone": "customer.phone",
    "company": "customer.company",
    "title": "customer.title",
    "country": "customer.country",
    "leadSource": "partner_center_source",
}
TOKEN_CODES = {"601", "602"}  # access token invalid / expired: fetch a new one and try once more
# Response-level codes worth retrying (Marketo "Error Codes": 604 time-out, 608 API temporarily unavailable,
# 611 system error, 614 subscription temporarily unreachable, 615 concurrent access limit, 713 transient).
TRANSIENT_CODES = {"502", "604", "608", "611", "614", "615", "713"}
RATE_LIMIT_WINDOW_SECONDS = 20.0  # 606: more than 100 calls in the last 20 seconds
CST = timedelta(hours=-6)  # 607: "the daily quota resets daily at 12:00AM CST"
LEAD_EXISTS = "1005"  # createOnly: "Lead already exists" (Marketo "Error Codes", record-level)
ACTIVITY_TYPES = "Admin > Database Management > Marketo Custom Activities"
ROLE_FIX = ("in Marketo Admin > Users & Roles > Roles, give the API-only user's role the API permission "
            "Read-Write Person (or Read-Write Lead)")


def create(settings: Settings) -> Destination:
    return Marketo(settings.marketo, settings.http_timeout)


def seconds_until_quota_reset(now: datetime | None = None) -> float:
    """Seconds until the next midnight CST (UTC-6), when Marketo's daily API quota resets."""
    local = (now or datetime.now(UTC)).astimezone(UTC) + CST
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(60.0, (midnight - local).total_seconds())


class Marketo:
    name = "marketo"
    is_crm = True

    def __init__(self, settings: MarketoSettings, timeout: float) -> None:
        # Admin > Web Services shows the REST endpoint as .../rest and the identity one as .../identity:
        # accept either, or the bare base URL.
        url = settings.url.rstrip("/")
        for suffix in ("/rest", "/identity"):
            url = url.removesuffix(suffix)
        self.url = url
        self.client_id = settings.client_id
        self._client_secret = settings.client_secret
        self.timeout = timeout
        self.problems = SettingsProblems()
        self.problems.require(self.url, "LEADS_MARKETO_URL is not set: copy the REST API Endpoint from Marketo "
                                        "Admin > Integration > Web Services (e.g. https://123-ABC-456.mktorest.com).")
        self.problems.require(self.client_id, "LEADS_MARKETO_CLIENT_ID is not set: copy it from Marketo Admin > "
                                              "Integration > LaunchPoint > your custom service > View Details.")
        self.problems.require(self._client_secret, "LEADS_MARKETO_CLIENT_SECRET is not set: copy it from Marketo "
                                                   "Admin > Integration > LaunchPoint > your custom service > "
                                                   "View Details.")
        self.fields = self.problems.field_map(DEFAULT_FIELDS, settings.field_map, MAP_SETTING)
        self.update_existing = settings.update_existing
        self.activity_type_id = settings.activity_type_id
        self.session = new_session()
        self.tokens = TokenCache(self._fetch_token)

    def deliver(self, stored: StoredLead) -> Delivered | Skipped:
        self.problems.raise_first()
        record = map_fields(stored, self.fields)
        if not record.get("email"):
            # Marketo finds the person by e-mail (lookupField); without one it would skip the record anyway.
            return no_email_skip(LABEL)
        action = "createOrUpdate" if self.update_existing else "createOnly"
        result = self._sync(action, "email", record, stored.id)
        status = str(result.get("status", ""))
        if status == "skipped" and _reason(result)[0] == LEAD_EXISTS:
            person_id = self._fill_empty_fields(str(record["email"]), record, stored.id)
        elif status in ("created", "updated"):
            person_id = str(result.get("id", ""))
        else:
            raise _record_refusal(*_reason(result), status, stored.id)
        if self.activity_type_id is not None and person_id:
            self._add_activity(person_id, stored)
        return Delivered(person_id)

    def _sync(self, action: str, lookup_field: str, record: dict[str, Any], lead_id: str) -> dict[str, Any]:
        """Sync Leads with one record; its result (status, id, reasons)."""
        body = {"action": action, "lookupField": lookup_field, "input": [record]}
        answer = self.tokens.call(lambda token: self._rest(token, "POST", "/rest/v1/leads.json", json=body),
                                  _token_rejected)
        self._raise_response_errors(answer, lead_id)
        results = answer.get("result") or [{}]
        return results[0] if isinstance(results[0], dict) else {}

    def _fill_empty_fields(self, email: str, record: dict[str, Any], lead_id: str) -> str:
        """The person Marketo already has: read their mapped fields by e-mail and write only the empty ones.
        Get Leads by Filter Type as POST with `_method=GET` (documented for long queries) keeps the e-mail
        address out of the URL."""
        form = {"filterType": "email", "filterValues": email, "fields": ",".join(["id", *record])}
        answer = self.tokens.call(lambda token: self._rest(token, "POST", "/rest/v1/leads.json",
                                                           params={"_method": "GET"}, data=form), _token_rejected)
        self._raise_response_errors(answer, lead_id)
        people = [p for p in answer.get("result") or [] if isinstance(p, dict)]
        if not people:
            raise TransientDestinationError("Marketo said this person exists, then did not find them by e-mail "
                                            "(merged or deleted meanwhile); will retry.")
        if len(people) > 1:
            raise _record_refusal("1007", "", "skipped", lead_id)
        person = people[0]
        person_id = str(person.get("id", ""))
        empty = {name: value for name, value in record.items()
                 if name != "email" and not str(person.get(name) or "").strip()}
        if empty:
            result = self._sync("updateOnly", "id", {"id": person.get("id"), **empty}, lead_id)
            if str(result.get("status", "")) != "updated":
                raise _record_refusal(*_reason(result), str(result.get("status", "")), lead_id)
        return person_id

    def _add_activity(self, person_id: str, stored: StoredLead) -> None:
        """Add Custom Activities: the lead on the person's activity log, its offer as the primary attribute."""
        activity = {"leadId": int(person_id) if person_id.isdigit() else person_id,
                    "activityDate": stored.received_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "activityTypeId": self.activity_type_id,
                    "primaryAttributeValue": stored.lead.offer_name or stored.lead.action_meaning}
        answer = self.tokens.call(lambda token: self._rest(token, "POST", "/rest/v1/activities/external.json",
                                                           json={"input": [activity]}), _token_rejected)
        if answer.get("success") is False:
            errors = [e for e in answer.get("errors") or [] if isinstance(e, dict)]
            if errors and str(errors[0].get("code")) == "603":
                raise ConfigurationError(
                    "Marketo denied adding the lead's activity (603): in Marketo Admin > Users & Roles > Roles, give "
                    "the API-only user's role the API permission Read-Write Activity, or empty "
                    "LEADS_MARKETO_ACTIVITY_TYPE_ID.")
            self._raise_response_errors(answer, stored.id)
        results = answer.get("result") or [{}]
        result = results[0] if isinstance(results[0], dict) else {}
        if str(result.get("status", "")) != "added":
            code, _message = _reason(result)
            raise ConfigurationError(
                f"Marketo did not add the lead's activity ({code or result.get('status') or 'no status'}): set "
                f"LEADS_MARKETO_ACTIVITY_TYPE_ID to the id of an approved custom activity type ({ACTIVITY_TYPES}) "
                "whose primary attribute is a string, or empty it.")

    def check(self) -> list[Check]:
        checks = self.problems.checks(self.name)
        if any(not c.ok for c in checks):
            return checks
        token = check_step(self.name, "token", self._token_works)
        checks.append(token)
        if token.ok:
            checks.append(check_step(self.name, "mapped fields", self._mapped_fields_exist))
            if self.activity_type_id is not None:
                checks.append(check_step(self.name, "activity type", self._activity_type_exists))
        return checks

    def _activity_type_exists(self) -> str:
        answer = self.tokens.call(lambda token: self._rest(token, "GET", "/rest/v1/activities/external/types.json"),
                                  _token_rejected)
        self._raise_response_errors(answer, "")
        for item in answer.get("result") or []:
            if isinstance(item, dict) and item.get("id") == self.activity_type_id:
                if str(item.get("status", "approved")) != "approved":
                    raise ConfigurationError(
                        f"The Marketo custom activity type {self.activity_type_id} is a draft: approve it in "
                        f"{ACTIVITY_TYPES}.")
                return f"OK ({item.get('name') or item.get('apiName')}, {self.activity_type_id})"
        raise ConfigurationError(
            f"Marketo has no custom activity type {self.activity_type_id}: set LEADS_MARKETO_ACTIVITY_TYPE_ID to the "
            f"id shown in {ACTIVITY_TYPES}, or empty it.")

    def _token_works(self) -> str:
        self.tokens.get()
        return "OK (the LaunchPoint service got a token)"

    def _mapped_fields_exist(self) -> str:
        answer = self.tokens.call(lambda token: self._rest(token, "GET", "/rest/v1/leads/describe.json"),
                                  _token_rejected)
        self._raise_response_errors(answer, "")
        writable: dict[str, bool] = {}
        for item in answer.get("result") or []:
            rest = item.get("rest") if isinstance(item, dict) else None
            if isinstance(rest, dict) and rest.get("name"):
                writable[str(rest["name"])] = not rest.get("readOnly", False)
        missing = [name for name in self.fields if name not in writable]
        read_only = [name for name in self.fields if writable.get(name) is False]
        if missing or read_only:
            parts = []
            if missing:
                parts.append(f"Marketo has no lead field {', '.join(missing)} (REST API names; fix {MAP_SETTING} "
                             "or create the field in Admin > Database Management > Field Management)")
            if read_only:
                parts.append(f"{', '.join(read_only)} cannot be written through the REST API")
            raise ConfigurationError("; ".join(parts) + ".")
        return f"OK ({', '.join(self.fields)})"

    # --- HTTP -----------------------------------------------------------------------------------------

    def _rest(self, token: AccessToken, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = send(self.session, method, f"{self.url}{path}", label=LABEL, timeout=self.timeout,
                        headers={"Authorization": f"Bearer {token.value}"}, **kwargs)
        body = json_body(response)
        if response.status_code != 200 or not isinstance(body, dict):
            raise ConfigurationError(
                f"Marketo at {shown_host(self.url)} answered HTTP {response.status_code} without a REST "
                "answer: set LEADS_MARKETO_URL to the REST API Endpoint from Admin > Integration > Web Services "
                "(e.g. https://123-ABC-456.mktorest.com).")
        return body

    def _fetch_token(self) -> AccessToken:
        # Marketo's Identity call takes GET "(or POST)" (Adobe, "Authentication"). POST with a form body, as
        # OAuth 2.0 client credentials are normally sent: a query string lands in proxies' and libraries'
        # request logs (urllib3 logs the request line at DEBUG), a body does not.
        response = send(self.session, "POST", f"{self.url}/identity/oauth/token", label=LABEL,
                        timeout=self.timeout,
                        data={"grant_type": "client_credentials", "client_id": self.client_id,
                              "client_secret": self._client_secret})
        body = token_body(response)
        if body is not None:
            lifetime = float(body.get("expires_in") or 0)
            # expires_in is what is left of a token Marketo may already have handed out (it returns the same
            # token until it expires); the cache renews it a minute early.
            return AccessToken(str(body["access_token"]), self.tokens.deadline(lifetime))
        error, _description = oauth_error(response)
        if response.status_code == 401 or error in ("invalid_client", "unauthorized"):
            raise ConfigurationError(
                f"Marketo refused the LaunchPoint credentials ({error or 'HTTP 401'}): set LEADS_MARKETO_CLIENT_ID "
                "and LEADS_MARKETO_CLIENT_SECRET to the values in Admin > Integration > LaunchPoint > your custom "
                "service > View Details, and check that its API-only user is active.")
        raise ConfigurationError(
            f"Marketo's identity service answered HTTP {response.status_code}{f' ({error})' if error else ''}: set "
            "LEADS_MARKETO_URL to the REST API Endpoint from Admin > Integration > Web Services, without /rest.")

    @staticmethod
    def _raise_response_errors(answer: dict[str, Any], lead_id: str) -> None:
        if answer.get("success") is not False:
            return
        errors = [e for e in answer.get("errors") or [] if isinstance(e, dict)]
        error = errors[0] if errors else {}
        raise _response_refusal(str(error.get("code", "")), str(error.get("message", "")), lead_id)


def _token_rejected(answer: dict[str, Any]) -> bool:
    return answer.get("success") is False and any(
        str(e.get("code")) in TOKEN_CODES for e in answer.get("errors") or [] if isinstance(e, dict))


def _reason(result: dict[str, Any]) -> tuple[str, str]:
    """The first reason (code, message) of a record-level result."""
    reasons = [r for r in result.get("reasons") or [] if isinstance(r, dict)]
    reason = reasons[0] if reasons else {}
    return str(reason.get("code", "")), str(reason.get("message", ""))


def _response_refusal(code: str, message: str, lead_id: str) -> DestinationError:
    if code in TOKEN_CODES:
        return TransientDestinationError(
            f"Marketo refused a freshly issued access token ({code}); will retry. If this persists, check that "
            "the LaunchPoint service's API-only user is active.")
    if code == "603":
        return ConfigurationError(
            f"Marketo denied access (603): {ROLE_FIX}; if Admin > Integration > Web Services > IP Restrictions is "
            "on, allow the app's outbound IP addresses.")
    if code == "606":
        return TransientDestinationError(
            "Marketo's rate limit was reached (606: more than 100 calls in 20 seconds); will retry.",
            retry_after=RATE_LIMIT_WINDOW_SECONDS)
    if code == "607":
        return TransientDestinationError(
            "Marketo's daily API quota is used up (607); will retry after it resets at midnight CST. The quota is "
            "in Admin > Integration > Web Services; your Marketo account manager can raise it.",
            retry_after=seconds_until_quota_reset())
    if code in TRANSIENT_CODES:
        return TransientDestinationError(f"Marketo could not process the request ({code}); will retry.")
    if code in ("609", "610", "612"):
        return ConfigurationError(
            f"Marketo did not recognise the request ({code}): set LEADS_MARKETO_URL to the REST API Endpoint from "
            "Admin > Integration > Web Services (e.g. https://123-ABC-456.mktorest.com).")
    return _record_refusal(code, message, "", lead_id)


def _record_refusal(code: str, message: str, status: str, lead_id: str) -> DestinationError:
    replay = replay_hint(lead_id)
    # Only field names are taken from Marketo's messages: they can otherwise quote the lead's values.
    names = ", ".join(quoted_names(message))
    if code == "1006":
        return ConfigurationError(
            f"Marketo has no lead field {names or '(one of the mapped fields)'} (1006): fix {MAP_SETTING} (REST "
            "API names, as listed by Describe Lead) or create the field in Admin > Database Management > Field "
            "Management.")
    if code in ("1008", "1009", "1010"):
        return ConfigurationError(
            f"Marketo refused the lead partition ({code}): give the API-only user a role with access to the "
            "workspace holding the default lead partition (Admin > Users & Roles).")
    if code == "1003":
        return LeadRejectedError(
            f"Marketo refused this lead's data as invalid (1003{f' on {names}' if names else ''}): check the types "
            f"of the fields {MAP_SETTING} fills (a date or number field given text), {replay}.")
    if code == "1007":
        return LeadRejectedError(
            "Several Marketo people share this lead's e-mail address (1007), so Marketo cannot tell which to "
            f"update: merge them (Database > Possible Duplicates), {replay}.")
    what = f"{code}{f' on {names}' if names else ''}" or f"status {status or 'unknown'}"
    return LeadRejectedError(f"Marketo did not take this lead ({what}): {replay}.")

