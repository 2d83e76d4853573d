"""Salesforce, two ways (LEADS_SALESFORCE_MODE):

- `web-to-lead`: the form post Partner Center itself makes. No credentials, but Salesforce answers 200
  whatever becomes of the lead, so a lead dropped by a picklist, a validation rule, reCAPTCHA or the
  500-a-day limit is invisible here too.
- `rest`: a connected app with the OAuth 2.0 client-credentials flow and the REST API. Salesforce's
  errors become visible (and classified), and with an External ID field on Lead a redelivered lead
  updates its record instead of creating a second one.

See docs/destinations.md (Salesforce).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import requests

from leads.core.destination import Check, Delivered, Destination, Skipped
from leads.core.errors import ConfigurationError, DestinationError, LeadRejectedError, TransientDestinationError
from leads.core.mapping import map_fields
from leads.core.model import StoredLead
from leads.core.settings import SalesforceSettings, Settings
from leads.core.urls import shown_host
from leads.destinations.http import new_session, send
from leads.destinations.vendor_common import (
    AccessToken,
    SettingsProblems,
    TokenCache,
    check_step,
    json_body,
    oauth_error,
    quoted_names,
    replay_hint,
    token_body,
)

LABEL = "Salesforce"
MAP_SETTING = "LEADS_SALESFORCE_FIELD_MAP"

# The fields Partner Center's own Salesforce connector posts (docs/marketplace-leads.md §5).
WEB_TO_LEAD_FIELDS = {
    "first_name": "customer.first_name",
    "last_name": "customer.last_name",
    "email": "customer.email",
    "phone": "customer.phone",
    "company": "customer.company",
    "title": "customer.title",
    "country": "customer.country",
    "description": "description",
}
# The same, by Lead field API name. LeadSource is not a lead path but LEADS_SALESFORCE_LEAD_SOURCE: a value of the
# org's LeadSource picklist (Partner Center's `<source>-<action>|<offer>` is refused where that picklist is
# restricted, defect 12); the offer goes to a field of its own, LEADS_SALESFORCE_OFFER_FIELD.
REST_FIELDS = {
    "FirstName": "customer.first_name",
    "LastName": "customer.last_name",
    "Email": "customer.email",
    "Phone": "customer.phone",
    "Company": "customer.company",
    "Title": "customer.title",
    "Country": "customer.country",
    "Description": "description",
}
# Salesforce requires LastName and Company on every Lead. Web-to-Lead writes this placeholder when they are
# missing (Salesforce knowledge article 000171026); the REST mode does the same, so both modes store the
# same record for the same lead.
PLACEHOLDER = "[not provided]"
REQUIRED_ON_LEAD = ("LastName", "Company")
FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,79}")  # a field's API name (custom ones end in __c)
ORG_ID = re.compile(r"00D[0-9A-Za-z]{12}(?:[0-9A-Za-z]{3})?")
API_VERSION = re.compile(r"v\d+\.\d+")
DAILY_LIMIT_RETRY_SECONDS = 3600.0  # the org's API limit is a rolling 24 hours: look again in an hour

NOTHING_TO_FOLLOW_UP = Skipped(
    "Not sent to Salesforce: the lead has no name, e-mail, phone or company (Microsoft passes no personal "
    "data for .edu customers), so a Lead record would have no one to follow up. The lead is kept here and "
    "in the other destinations."
)
WEB_TO_LEAD_BLIND = (
    "OK (but Web-to-Lead hides errors: Salesforce answers 200 even when it drops a lead because of a "
    "required picklist, a validation rule, reCAPTCHA, a country missing from the country picklist or the "
    "500-leads-a-day limit. After Partner Center's Validate button, search Salesforce for MSFT_TEST; set "
    "LEADS_SALESFORCE_MODE=rest to see errors.)"
)


def create(settings: Settings) -> Destination:
    if settings.salesforce.mode == "rest":
        return SalesforceRest(settings.salesforce, settings.http_timeout)
    return SalesforceWebToLead(settings.salesforce, settings.http_timeout)


def _has_someone_to_follow_up(stored: StoredLead) -> bool:
    customer = stored.lead.customer
    return customer.has_personal_data or bool(customer.company)


class SalesforceWebToLead:
    name = "salesforce"
    is_crm = True

    def __init__(self, settings: SalesforceSettings, timeout: float) -> None:
        self.org_id = settings.org_id
        self.url = settings.web_to_lead_url
        self.timeout = timeout
        self.problems = SettingsProblems()
        if settings.mode not in ("web-to-lead", "rest"):
            self.problems.sentences.append(
                f"LEADS_SALESFORCE_MODE must be web-to-lead or rest, not {settings.mode!r}.")
        self.problems.require(self.org_id, "LEADS_SALESFORCE_ORG_ID is not set: copy the Organization ID from "
                                           "Salesforce Setup > Company Information (or set "
                                           "LEADS_SALESFORCE_MODE=rest).")
        if self.org_id and not ORG_ID.fullmatch(self.org_id):
            self.problems.sentences.append(
                "LEADS_SALESFORCE_ORG_ID is not a Salesforce Organization ID: it has 15 or 18 letters and "
                "digits and starts with 00D (Setup > Company Information > Organization ID).")
        self.problems.require(self.url, "LEADS_SALESFORCE_WEB_TO_LEAD_URL is empty: use "
                                        "https://webto.salesforce.com/servlet/servlet.WebToLead?encoding=UTF-8.")
        self.fields = self.problems.field_map(WEB_TO_LEAD_FIELDS, settings.field_map, MAP_SETTING)
        self.lead_source = settings.lead_source
        self.session = new_session()

    def deliver(self, stored: StoredLead) -> Delivered | Skipped:
        self.problems.raise_first()
        if not _has_someone_to_follow_up(stored):
            return NOTHING_TO_FOLLOW_UP
        fixed = {"lead_source": self.lead_source} if self.lead_source else {}
        form = {"oid": self.org_id, "encoding": "UTF-8", **fixed, **map_fields(stored, self.fields)}
        response = send(self.session, "POST", self.url, label=LABEL, timeout=self.timeout, data=form)
        if not 200 <= response.status_code < 300:
            raise ConfigurationError(
                f"Salesforce Web-to-Lead at {shown_host(self.url)} answered HTTP {response.status_code}: "
                "set LEADS_SALESFORCE_WEB_TO_LEAD_URL to "
                "https://webto.salesforce.com/servlet/servlet.WebToLead?encoding=UTF-8.")
        # Web-to-Lead gives no record id and no error, whatever became of the lead.
        return Delivered("")

    def check(self) -> list[Check]:
        checks = self.problems.checks(self.name)
        if any(not c.ok for c in checks):
            return checks
        checks.append(check_step(self.name, "endpoint", self._endpoint_answers))
        checks.append(Check(self.name, "errors visible", True, WEB_TO_LEAD_BLIND))
        return checks

    def _endpoint_answers(self) -> str:
        # A GET without oid creates nothing; it only shows that the URL is a live Web-to-Lead servlet.
        response = send(self.session, "GET", self.url, label=LABEL, timeout=self.timeout)
        if response.status_code >= 400:
            raise ConfigurationError(
                f"LEADS_SALESFORCE_WEB_TO_LEAD_URL answered HTTP {response.status_code}: use "
                "https://webto.salesforce.com/servlet/servlet.WebToLead?encoding=UTF-8.")
        return f"OK (answers HTTP {response.status_code})"


class SalesforceRest:
    name = "salesforce"
    is_crm = True

    def __init__(self, settings: SalesforceSettings, timeout: float) -> None:
        self.url = settings.url
        self.client_id = settings.client_id
        self._client_secret = settings.client_secret
        self.api_version = settings.api_version
        self.external_id_field = settings.external_id_field
        self.timeout = timeout
        self.problems = SettingsProblems()
        self.problems.require(self.url, "LEADS_SALESFORCE_URL is not set: use the org's My Domain URL, e.g. "
                                        "https://contoso.my.salesforce.com (Setup > My Domain).")
        self.problems.require(self.client_id, "LEADS_SALESFORCE_CLIENT_ID is not set: copy the connected app's "
                                              "Consumer Key (Setup > App Manager > your app > View > Manage "
                                              "Consumer Details).")
        self.problems.require(self._client_secret, "LEADS_SALESFORCE_CLIENT_SECRET is not set: copy the "
                                                   "connected app's Consumer Secret (Setup > App Manager > your "
                                                   "app > View > Manage Consumer Details).")
        if not API_VERSION.fullmatch(self.api_version):
            self.problems.sentences.append(
                f"LEADS_SALESFORCE_API_VERSION must look like v62.0, not {self.api_version!r}.")
        self.fields = self.problems.field_map(REST_FIELDS, settings.field_map, MAP_SETTING)
        self.lead_source = settings.lead_source
        self.offer_field = settings.offer_field
        if self.offer_field and not FIELD_NAME.fullmatch(self.offer_field):
            self.problems.sentences.append(
                "LEADS_SALESFORCE_OFFER_FIELD must be the API name of a Lead text field, e.g. Marketplace_Offer__c "
                "(Setup > Object Manager > Lead > Fields & Relationships), or empty.")
        self.session = new_session()
        self.tokens = TokenCache(self._fetch_token)

    # --- delivery -------------------------------------------------------------------------------------

    def deliver(self, stored: StoredLead) -> Delivered | Skipped:
        self.problems.raise_first()
        if not _has_someone_to_follow_up(stored):
            return NOTHING_TO_FOLLOW_UP
        record = {**self._fixed(stored), **map_fields(stored, self.fields)}  # the field map wins
        for name in REQUIRED_ON_LEAD:
            if name in self.fields and not record.get(name):
                record[name] = PLACEHOLDER
        if self.external_id_field:
            # Upsert on our lead id: a redelivered lead updates its Lead instead of creating a second one.
            record.pop(self.external_id_field, None)
            method = "PATCH"
            path = f"sobjects/Lead/{quote(self.external_id_field, safe='')}/{quote(stored.id, safe='')}"
        else:
            method, path = "POST", "sobjects/Lead"
        response = self.tokens.call(lambda token: self._api(token, method, path, json=record), _session_rejected)
        return self._outcome(response, stored.id)

    def _fixed(self, stored: StoredLead) -> dict[str, str]:
        fixed = {"LeadSource": self.lead_source} if self.lead_source else {}
        if self.offer_field and stored.lead.offer_name:
            fixed[self.offer_field] = stored.lead.offer_name
        return fixed

    def _outcome(self, response: requests.Response, lead_id: str) -> Delivered:
        status = response.status_code
        if status in (200, 201):  # 201 created; 200 an upsert that updated (API v46.0 and later)
            body = json_body(response)
            return Delivered(str(body.get("id", "")) if isinstance(body, dict) else "")
        if status == 204:  # an upsert that updated, before API v46.0: no body, no id
            return Delivered("")
        raise self._refusal(response, lead_id)

    def _refusal(self, response: requests.Response, lead_id: str) -> DestinationError:
        status = response.status_code
        errors = _errors(response)
        code, message, fields = errors[0] if errors else ("", "", [])
        replay = replay_hint(lead_id)
        if status == 401:
            return ConfigurationError(
                f"Salesforce refused a freshly issued access token ({code or 'INVALID_SESSION_ID'}): in Setup > App "
                "Manager > your app > Manage > Edit Policies, set IP Relaxation to 'Relax IP restrictions' (the app's "
                "outbound IP addresses change), and untick 'Lock sessions to the IP address from which they "
                "originated' in Setup > Session Settings.")
        if status == 300:
            return LeadRejectedError(
                f"Several Salesforce Leads carry this lead's id in {self.external_id_field} (HTTP 300, Multiple "
                f"Choices: Salesforce sends no errorCode with it): mark the field "
                f"Unique in Setup > Object Manager > Lead > Fields & Relationships, merge the duplicates, {replay}.")
        if status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
            return TransientDestinationError(
                "The Salesforce org has used up its API requests for the last 24 hours (REQUEST_LIMIT_EXCEEDED); "
                "will retry in an hour. If it recurs, see Setup > Company Information > API Requests, Last 24 "
                "Hours, and lower other integrations' use or buy more API calls.",
                retry_after=DAILY_LIMIT_RETRY_SECONDS)
        if status == 403:
            return ConfigurationError(
                f"Salesforce refused access ({code or 'HTTP 403'}): give the connected app's Run As user a profile "
                "or permission set with 'API Enabled' and Create (and Edit, for upserts) on Leads, in Setup > "
                "Users.")
        if status == 404:
            if self.external_id_field:
                return ConfigurationError(
                    f"Salesforce has no Lead field {self.external_id_field} to upsert on ({code or 'NOT_FOUND'}): set "
                    "LEADS_SALESFORCE_EXTERNAL_ID_FIELD to the API name of a Lead text field marked External ID "
                    "and Unique (e.g. Marketplace_Lead_Id__c), or leave it empty to create Leads.")
            return ConfigurationError(
                f"Salesforce answered 404 for the Lead API ({code or 'NOT_FOUND'}): check LEADS_SALESFORCE_API_VERSION "
                f"({self.api_version}) and LEADS_SALESFORCE_URL.")
        named = ", ".join(fields or quoted_names(message)) or "a field"
        if code == "REQUIRED_FIELD_MISSING":
            unmapped = [f for f in fields if f not in self.fields]
            if unmapped:
                return ConfigurationError(
                    f"Salesforce requires {', '.join(unmapped)} on every Lead ({code}) and the mapping does not fill "
                    "it: "
                    f"add it to {MAP_SETTING} (e.g. {{\"{unmapped[0]}\": \"offer_name\"}}) or make it optional "
                    "in Setup > Object Manager > Lead > Fields & Relationships.")
            return LeadRejectedError(
                f"Salesforce requires {named} on every Lead ({code}) and this lead has no value for it: make the field "
                f"optional in Setup > Object Manager > Lead > Fields & Relationships, {replay}.")
        if code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST":
            return LeadRejectedError(
                f"Salesforce refused this lead's value for {named} ({code}): it is not one of that restricted "
                "picklist's values. Add the value in Setup > Object Manager > Lead > Fields & Relationships > "
                f"{named} > Values, or change {MAP_SETTING}; {replay}.")
        if code == "FIELD_CUSTOM_VALIDATION_EXCEPTION":
            # The message is the text an admin wrote for the rule, not the lead's data.
            return LeadRejectedError(
                f"A Salesforce validation rule on Lead refused this lead ({code}): \"{message.strip()}\". Change the "
                f"rule (Setup > Object Manager > Lead > Validation Rules) or {MAP_SETTING}, {replay}.")
        if code in ("INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE", "INVALID_TYPE"):
            return ConfigurationError(
                f"Salesforce cannot write {named} on Lead ({code}): fix {MAP_SETTING} (Lead field API names, "
                "e.g. Campaign_Code__c), or give the connected app's Run As user edit access to the field "
                "(field-level security).")
        if code == "FIELD_INTEGRITY_EXCEPTION":
            return LeadRejectedError(
                f"Salesforce refused this lead's value for {named} (FIELD_INTEGRITY_EXCEPTION; with State and "
                "Country/Territory Picklists on, Country must be one of the picklist's values): map another "
                f"field in {MAP_SETTING} or adjust the picklist, {replay}.")
        # Other codes' messages can quote the lead's values (an e-mail address): name the code and fields only.
        where = f" on {named}" if fields else ""
        return LeadRejectedError(
            f"Salesforce refused this lead ({code or f'HTTP {status}'}{where}): fix what it names in Salesforce "
            f"or in {MAP_SETTING}, {replay}.")

    # --- live checks ----------------------------------------------------------------------------------

    def check(self) -> list[Check]:
        checks = self.problems.checks(self.name)
        if any(not c.ok for c in checks):
            return checks
        token = check_step(self.name, "token", self._token_works)
        checks.append(token)
        if token.ok:
            checks.extend(self._lead_object_checks())
        return checks

    def _token_works(self) -> str:
        token = self.tokens.get()
        return f"OK (the connected app got a token; API host {shown_host(token.instance_url)})"

    def _lead_object_checks(self) -> list[Check]:
        try:
            response = self.tokens.call(lambda token: self._api(token, "GET", "sobjects/Lead/describe"),
                                        _session_rejected)
            if response.status_code != 200:
                raise self._refusal(response, "")
        except DestinationError as error:
            return [Check(self.name, "Lead object", False, error.explanation)]
        describe = json_body(response)
        describe = describe if isinstance(describe, dict) else {}
        fields = {str(f.get("name")): f for f in describe.get("fields", []) if isinstance(f, dict)}
        checks = [Check(self.name, "Lead object", bool(describe.get("createable")),
                        "OK (the Run As user can create Leads)" if describe.get("createable") else
                        "The Run As user cannot create Leads: give its profile or a permission set Create on Leads.")]
        missing = [name for name in self.fields if name not in fields]
        read_only = [name for name in self.fields if name in fields and not fields[name].get("createable")]
        if missing or read_only:
            parts = []
            if missing:
                parts.append(f"Lead has no field {', '.join(missing)} (fix {MAP_SETTING})")
            if read_only:
                parts.append(f"the Run As user cannot write {', '.join(read_only)} (field-level security)")
            checks.append(Check(self.name, "mapped fields", False, "; ".join(parts) + "."))
        else:
            checks.append(Check(self.name, "mapped fields", True, f"OK ({', '.join(self.fields)})"))
        required = [name for name, f in fields.items()
                    if f.get("createable") and not f.get("nillable") and not f.get("defaultedOnCreate")
                    and f.get("type") != "boolean" and name not in self.fields]
        checks.append(Check(self.name, "required fields", not required,
                            "OK" if not required else
                            f"Lead requires {', '.join(required)}, which the mapping does not fill: add it to "
                            f"{MAP_SETTING} or make it optional."))
        if self.external_id_field:
            ext = fields.get(self.external_id_field)
            ok = bool(ext and ext.get("externalId"))
            checks.append(Check(self.name, "external id", ok,
                                f"OK (upserts on {self.external_id_field})" if ok else
                                f"{self.external_id_field} is not an External ID field on Lead: create a text "
                                "field marked External ID and Unique, or fix LEADS_SALESFORCE_EXTERNAL_ID_FIELD."))
        return checks

    # --- HTTP -----------------------------------------------------------------------------------------

    def _api(self, token: AccessToken, method: str, path: str, **kwargs: Any) -> requests.Response:
        return send(self.session, method, f"{token.instance_url}/services/data/{self.api_version}/{path}",
                    label=LABEL, timeout=self.timeout,
                    headers={"Authorization": f"Bearer {token.value}"}, **kwargs)

    def _fetch_token(self) -> AccessToken:
        response = send(self.session, "POST", f"{self.url}/services/oauth2/token", label=LABEL,
                        timeout=self.timeout,
                        data={"grant_type": "client_credentials", "client_id": self.client_id,
                              "client_secret": self._client_secret})
        body = token_body(response)
        if body is not None:
            instance_url = str(body.get("instance_url") or self.url).rstrip("/")
            return AccessToken(str(body["access_token"]), None, instance_url)
        raise _token_refusal(response)


def _session_rejected(response: requests.Response) -> bool:
    return response.status_code == 401  # INVALID_SESSION_ID: the token expired or was revoked


def _errors(response: requests.Response) -> list[tuple[str, str, list[str]]]:
    """REST API errors: a JSON array of {message, errorCode, fields}."""
    body = json_body(response)
    items = body if isinstance(body, list) else [body] if isinstance(body, dict) else []
    return [(str(i.get("errorCode", "")), str(i.get("message", "")), [str(f) for f in i.get("fields") or []])
            for i in items if isinstance(i, dict)]


def _token_refusal(response: requests.Response) -> ConfigurationError:
    error, description = oauth_error(response)
    text = description.lower()
    app = "Setup > App Manager > your connected app"
    if error == "invalid_client_id":
        return ConfigurationError(
            "Salesforce does not know the connected app's consumer key (invalid_client_id): set "
            f"LEADS_SALESFORCE_CLIENT_ID to the Consumer Key from {app} > View > Manage Consumer Details (a new "
            "app can take 10 minutes to become usable).")
    if error == "invalid_client" or "invalid client credentials" in text:
        return ConfigurationError(
            "Salesforce refused the connected app's consumer secret (invalid client credentials): set "
            f"LEADS_SALESFORCE_CLIENT_SECRET to the Consumer Secret from {app} > View > Manage Consumer Details.")
    if "no client credentials user enabled" in text:
        return ConfigurationError(
            "The connected app has no Run As user for the client credentials flow (no client credentials user "
            f"enabled): in {app} > Manage > Edit Policies > Client Credentials Flow, set Run As to an "
            "integration user with API access and Create on Leads.")
    if "not supported on this domain" in text:
        return ConfigurationError(
            "LEADS_SALESFORCE_URL must be the org's My Domain URL (e.g. https://contoso.my.salesforce.com), not "
            "login.salesforce.com: the client credentials flow only works there.")
    if error == "unsupported_grant_type" or "client credentials" in text:
        return ConfigurationError(
            f"The connected app does not allow the client credentials flow ({error}): in {app} > Edit > API "
            "(Enable OAuth Settings), tick Enable Client Credentials Flow.")
    if response.status_code == 404 or not error:
        return ConfigurationError(
            f"LEADS_SALESFORCE_URL has no OAuth token endpoint (HTTP {response.status_code}): use the org's My "
            "Domain URL, e.g. https://contoso.my.salesforce.com.")
    # Salesforce's descriptions are fixed phrases ("user is locked"), never the credentials.
    return ConfigurationError(
        f"Salesforce refused the connected app's token request ({error}: {description}): check the connected "
        f"app in {app} and its Run As user.")
