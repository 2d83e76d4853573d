"""HubSpot (Partner Center has no HubSpot connector): a private app's access token and the CRM v3 contacts
API. The contact is identified by e-mail: create it, and when HubSpot answers 409 (the e-mail is already a
contact) that contact is read by e-mail and only its empty properties are filled
(`PATCH /crm/v3/objects/contacts/{email}?idProperty=email`): what sales wrote stays, unless
LEADS_HUBSPOT_UPDATE_EXISTING=true. The lead itself is then logged as a note on that contact's timeline.
A redelivered lead never creates a second contact. See docs/destinations.md (HubSpot).
"""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import quote

import requests

from leads.core.destination import Check, Delivered, Destination, Skipped
from leads.core.errors import ConfigurationError, DestinationError, LeadRejectedError, TransientDestinationError
from leads.core.mapping import map_fields
from leads.core.model import StoredLead, iso
from leads.core.settings import HubSpotSettings, Settings
from leads.core.urls import shown_host
from leads.destinations.http import new_session, send
from leads.destinations.vendor_common import (
    SettingsProblems,
    check_step,
    json_body,
    no_email_skip,
    replay_hint,
)

LABEL = "HubSpot"
MAP_SETTING = "LEADS_HUBSPOT_FIELD_MAP"
# Standard contact properties only, so the mapping works in any HubSpot account. `message` (a textarea
# HubSpot's own forms fill) carries what happened, the offer and the lead's text; hs_lead_status is an
# enumeration whose options each account edits, so it is left to LEADS_HUBSPOT_FIELD_MAP.
DEFAULT_PROPERTIES = {
    "firstname": "customer.first_name",
    "lastname": "customer.last_name",
    "email": "customer.email",
    "phone": "customer.phone",
    "company": "customer.company",
    "jobtitle": "customer.title",
    "country": "customer.country",
    "message": "summary",
}
WRITE_SCOPE = "crm.objects.contacts.write"
READ_SCOPE = "crm.objects.contacts.read"
CONTACTS = "/crm/v3/objects/contacts"
NOTES = "/crm/v3/objects/notes"
NOTE_TO_CONTACT = 202  # HubSpot-defined association type "note to contact" (Notes guide, Associations)
PRIVATE_APPS = "HubSpot Settings > Integrations > Private Apps (Development > Legacy apps in newer accounts)"


def create(settings: Settings) -> Destination:
    return HubSpot(settings.hubspot, settings.http_timeout)


class HubSpot:
    name = "hubspot"
    is_crm = True

    def __init__(self, settings: HubSpotSettings, timeout: float) -> None:
        self.url = settings.url.rstrip("/")
        self._token = settings.token
        self.timeout = timeout
        self.problems = SettingsProblems()
        self.problems.require(self.url, "LEADS_HUBSPOT_URL is empty: use https://api.hubapi.com.")
        self.problems.require(self._token, f"LEADS_HUBSPOT_TOKEN is not set: create a private app in {PRIVATE_APPS} "
                                           f"with the scopes {READ_SCOPE} and {WRITE_SCOPE}, and copy its access "
                                           "token.")
        self.properties = self.problems.field_map(DEFAULT_PROPERTIES, settings.field_map, MAP_SETTING)
        self.update_existing = settings.update_existing
        self.session = new_session()

    def deliver(self, stored: StoredLead) -> Delivered | Skipped:
        self.problems.raise_first()
        properties = map_fields(stored, self.properties)
        email = properties.get("email")
        if not email:
            # E-mail is how HubSpot tells contacts apart; without it every redelivery would add a contact.
            return no_email_skip(LABEL)
        response = self._call("POST", CONTACTS, json={"properties": properties})
        if response.status_code == 409:  # CONFLICT: "Contact already exists. Existing ID: ..."
            contact_id = self._update_known_contact(str(email), properties)
            self._log_note(contact_id, stored)
            return Delivered(contact_id)
        if response.status_code in (200, 201):
            body = json_body(response)
            return Delivered(str(body.get("id", "")) if isinstance(body, dict) else "")
        raise _refusal(response, stored.id)

    def _update_known_contact(self, email: str, properties: dict[str, Any]) -> str:
        """Fill the known contact's empty properties (all mapped ones with LEADS_HUBSPOT_UPDATE_EXISTING);
        returns its id. As documented: the e-mail in the path ("@" is legal there), idProperty=email."""
        path = f"{CONTACTS}/{quote(email, safe='@')}"
        contact_id = ""
        changes = properties
        if not self.update_existing:
            response = self._call("GET", path, params={"idProperty": "email", "properties": ",".join(properties)})
            body = json_body(response)
            if response.status_code != 200 or not isinstance(body, dict):
                raise _gone_or_refused(response)
            contact_id = str(body.get("id", ""))
            found = body.get("properties")
            current: dict[str, Any] = found if isinstance(found, dict) else {}
            changes = {name: value for name, value in properties.items()
                       if name != "email" and not str(current.get(name) or "").strip()}
            if not changes:
                return contact_id
        response = self._call("PATCH", path, params={"idProperty": "email"}, json={"properties": changes})
        body = json_body(response)
        if response.status_code != 200:
            raise _gone_or_refused(response)
        return str(body.get("id", contact_id)) if isinstance(body, dict) else contact_id

    def _log_note(self, contact_id: str, stored: StoredLead) -> None:
        """The marketplace interaction, on the contact's timeline (hs_note_body is HTML: values escaped)."""
        lines = [f"Marketplace lead {stored.id}", *stored.lead.summary.splitlines()]
        note = {"properties": {"hs_timestamp": iso(stored.received_at),
                               "hs_note_body": "<br>".join(html.escape(line) for line in lines)},
                "associations": [{"to": {"id": contact_id},
                                  "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                             "associationTypeId": NOTE_TO_CONTACT}]}]}
        response = self._call("POST", NOTES, json=note)
        if response.status_code not in (200, 201):
            raise _refusal(response, stored.id)

    def check(self) -> list[Check]:
        checks = self.problems.checks(self.name)
        if any(not c.ok for c in checks):
            return checks
        read = check_step(self.name, "read contacts", self._can_read)
        checks.append(read)
        if read.ok:
            checks.append(check_step(self.name, "scopes", self._write_scope))
            checks.append(check_step(self.name, "mapped properties", self._properties_exist))
        return checks

    def _can_read(self) -> str:
        response = self._call("GET", "/crm/v3/objects/contacts", params={"limit": "1"})
        if response.status_code != 200:
            raise _refusal(response, "")
        return "OK (the token is valid and can read contacts)"

    def _write_scope(self) -> str:
        # The only way to see the write scope without writing: HubSpot's private-app token info endpoint.
        response = self._call("POST", "/oauth/v2/private-apps/get/access-token-info", json={"tokenKey": self._token})
        body = json_body(response)
        if response.status_code != 200 or not isinstance(body, dict) or not isinstance(body.get("scopes"), list):
            return f"OK (could not list the token's scopes, HTTP {response.status_code}; the first lead will tell)"
        if WRITE_SCOPE not in body["scopes"]:
            raise ConfigurationError(
                f"The private app lacks the scope {WRITE_SCOPE}: add it in {PRIVATE_APPS} > your app > Scopes and "
                "commit the change (the token stays the same).")
        return f"OK ({WRITE_SCOPE})"

    def _properties_exist(self) -> str:
        response = self._call("GET", "/crm/v3/properties/contacts")
        body = json_body(response)
        if response.status_code != 200 or not isinstance(body, dict):
            raise _refusal(response, "")
        read_only: dict[str, bool] = {}
        for item in body.get("results") or []:
            if isinstance(item, dict) and item.get("name"):
                metadata = item.get("modificationMetadata")
                read_only[str(item["name"])] = bool(isinstance(metadata, dict) and metadata.get("readOnlyValue"))
        missing = [name for name in self.properties if name not in read_only]
        locked = [name for name in self.properties if read_only.get(name)]
        if missing or locked:
            parts = []
            if missing:
                parts.append(f"HubSpot has no contact property {', '.join(missing)} (internal names; fix "
                             f"{MAP_SETTING} or create the property in Settings > Properties)")
            if locked:
                parts.append(f"{', '.join(locked)} is read-only")
            raise ConfigurationError("; ".join(parts) + ".")
        return f"OK ({', '.join(self.properties)})"

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return send(self.session, method, f"{self.url}{path}", label=LABEL, timeout=self.timeout,
                    headers={"Authorization": f"Bearer {self._token}"}, **kwargs)


def _gone_or_refused(response: requests.Response) -> DestinationError:
    if response.status_code == 404:
        return TransientDestinationError(
            "HubSpot said the contact exists, then did not find it by e-mail (merged or deleted meanwhile); "
            "will retry.")
    return _refusal(response, "")


def _refusal(response: requests.Response, lead_id: str) -> DestinationError:
    body = json_body(response)
    body = body if isinstance(body, dict) else {}
    category = str(body.get("category", ""))
    status = response.status_code
    replay = replay_hint(lead_id)
    if status == 401:
        return ConfigurationError(
            f"HubSpot refused the access token ({category or 'HTTP 401'}): LEADS_HUBSPOT_TOKEN is wrong, or the "
            f"token was rotated or the private app deleted. Copy the current token from {PRIVATE_APPS} > your app "
            "> Auth > Show token (Rotate if it leaked) into LEADS_HUBSPOT_TOKEN.")
    if status == 403:
        scopes = _required_scopes(body) or [WRITE_SCOPE]
        return ConfigurationError(
            f"The HubSpot private app lacks the scope {', '.join(scopes)} ({category or 'HTTP 403'}): add it in "
            f"{PRIVATE_APPS} > your app > Scopes ({READ_SCOPE} and {WRITE_SCOPE}) and commit the change.")
    if status == 404:
        return ConfigurationError(
            f"HubSpot at {shown_host(response.url)} answered 404 for the contacts API: set LEADS_HUBSPOT_URL "
            "to https://api.hubapi.com.")
    if status == 400 and category == "VALIDATION_ERROR":
        return _validation_refusal(str(body.get("message", "")), replay)
    # The message can quote the lead's values: name the category only.
    return LeadRejectedError(f"HubSpot refused this lead ({category or f'HTTP {status}'}): {replay}.")


def _validation_refusal(message: str, replay: str) -> DestinationError:
    """`Property values were not valid: [{"isValid":false,"error":"PROPERTY_DOESNT_EXIST","name":"foo",...}]`:
    only the error codes and property names are used (the messages quote the values)."""
    problems: list[tuple[str, str]] = []
    if "[" in message:
        try:
            items = json.loads(message[message.index("["):])
        except ValueError:
            items = []
        problems = [(str(i.get("error", "")), str(i.get("name", ""))) for i in items if isinstance(i, dict)]
    unknown = [name for error, name in problems if error == "PROPERTY_DOESNT_EXIST"]
    if unknown:
        return ConfigurationError(
            f"HubSpot has no contact property {', '.join(unknown)}: fix {MAP_SETTING} (use internal property "
            "names) or create the property in HubSpot Settings > Properties.")
    locked = [name for error, name in problems if error == "READ_ONLY_VALUE"]
    if locked:
        return ConfigurationError(f"HubSpot contact property {', '.join(locked)} is read-only: remove it from "
                                  f"{MAP_SETTING}.")
    if any(error == "INVALID_EMAIL" for error, _ in problems):
        return LeadRejectedError("HubSpot says this lead's e-mail address is not valid (INVALID_EMAIL), so it cannot "
                                 "become a contact: the lead stays in the lead table and the other destinations.")
    named = ", ".join(f"{name} ({error})" for error, name in problems if name) or "VALIDATION_ERROR"
    return LeadRejectedError(
        f"HubSpot refused this lead's value for {named}: adjust the property's options in HubSpot Settings > "
        f"Properties or {MAP_SETTING}, {replay}.")


def _required_scopes(body: dict[str, Any]) -> list[str]:
    scopes: list[str] = []
    for error in body.get("errors") or []:
        context = error.get("context") if isinstance(error, dict) else None
        if isinstance(context, dict):
            for key in ("requiredGranularScopes", "requiredScopes"):
                scopes.extend(str(scope) for scope in context.get(key) or [])
    return list(dict.fromkeys(scopes))
