"""Dynamics 365 (Dataverse): each lead becomes one `lead` record, created at most once.

Idempotent create: the record id is derived from our lead id (UUID5), and the record is written with
`PATCH leads(<id>)` + `If-None-Match: *` ("prevent update in upsert"). Dataverse creates it (204) or, if a
previous attempt already did, answers 412 Precondition Failed — which means "already delivered", so a
redelivered or replayed lead never makes a second record. Documented in "Perform conditional operations
using the Web API" (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/perform-conditional-operations-using-web-api#prevent-update-in-upsert).

Every Dataverse answer becomes Delivered, Skipped or one typed error whose sentence says what to change.
"""

from __future__ import annotations

import logging
import re
import socket
import uuid
from typing import Any

import requests

from leads.core.destination import Check, Delivered, Skipped
from leads.core.errors import (
    ConfigurationError,
    DestinationError,
    LeadRejectedError,
    TransientDestinationError,
)
from leads.core.mapping import field_map, lead_value, map_fields
from leads.core.model import StoredLead
from leads.core.settings import Settings
from leads.core.urls import shown_host, shown_url
from leads.destinations.dynamics_auth import INSTANCE, TokenSource, token_source
from leads.destinations.http import new_session, send

log = logging.getLogger("leads.destinations.dynamics")

API_PATH = "/api/data/v9.2"
LABEL = "Dynamics 365"
WHERE_URL = ("Power Platform admin center > Environments > your environment > Environment URL (or, in Dynamics "
             "365, Settings > Customizations > Developer Resources)")
WHERE_USER = "Power Platform admin center > Environments > your environment > Settings > Users + permissions > " \
             "Application users"
# Fixed forever: changing it would give already-delivered leads new record ids (and a second record).
LEAD_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:marketplace-leads:dynamics-365:lead")
LEADSOURCE_WEB = 8  # leadsourcecode choice "Web" (standard choices 1-10, docs/marketplace-leads.md §4)

# Default mapping of lead columns to our lead's fields (see docs/destinations.md, Dynamics 365). Values are paths for
# `leads.core.mapping.lead_value`, or `computed.subject` / `computed.description`, or `=<literal>` (a number
# is sent as a number, which is what a choice column such as leadsourcecode needs).
DEFAULT_FIELD_MAP: dict[str, str] = {
    "firstname": "customer.first_name",
    "lastname": "customer.last_name",
    "emailaddress1": "customer.email",
    "telephone1": "customer.phone",
    "companyname": "customer.company",
    "jobtitle": "customer.title",
    "address1_country": "customer.country",
    "subject": "computed.subject",
    "description": "computed.description",
    "leadsourcecode": f"={LEADSOURCE_WEB}",
}
SUBJECT_MAX = 200  # lead.subject holds 300 characters; a title is read in a list, so keep it short
DESCRIPTION_MAX = 2000  # lead.description's maximum length


def record_id_for(lead_id: str) -> str:
    """The Dataverse record id of a lead: the same lead id always gives the same GUID."""
    return str(uuid.uuid5(LEAD_ID_NAMESPACE, lead_id))


def subject_of(stored: StoredLead) -> str:
    lead = stored.lead
    action = lead.action_meaning.split(":", 1)[0]
    return f"{lead.offer_name} — {action}"[:SUBJECT_MAX]


def description_of(stored: StoredLead) -> str:
    lead = stored.lead
    lines = []
    if lead.description.strip():
        lines.append(lead.description.strip())
    lines.append(f"Action: {lead.action or '(none)'} — {lead.action_meaning}")
    if lead.lead_source.raw:
        lines.append(f"LeadSource: {lead.lead_source.raw}")
    if lead.campaign:
        lines.append("Campaign: " + ", ".join(f"{k}={v}" for k, v in sorted(lead.campaign.items())))
    lines.append(f"Marketplace lead id: {stored.id}")
    text = "\n".join(lines)
    if len(text) <= DESCRIPTION_MAX:
        return text
    # Keep the lead id (the way back to the stored lead): cut Partner Center's text instead.
    tail = "\n".join(lines[1:])
    return text[: max(0, DESCRIPTION_MAX - len(tail) - 2)] + "…\n" + tail


def resolve(stored: StoredLead, path: str) -> Any:
    if path.startswith("="):
        literal = path[1:]
        return int(literal) if re.fullmatch(r"-?\d+", literal) else literal
    if path == "computed.subject":
        return subject_of(stored)
    if path == "computed.description":
        return description_of(stored)
    return lead_value(stored, path)


def _dns_error_number(exc: BaseException | None) -> int | None:
    """The getaddrinfo error behind a requests ConnectionError, if that is what it was."""
    pending: list[BaseException | None] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return current.errno
        pending.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
    return None


class DynamicsDestination:
    name = "dynamics"
    is_crm = True

    def __init__(self, settings: Settings, tokens: TokenSource | None = None) -> None:
        self.settings = settings.dynamics
        self.timeout = settings.http_timeout
        self.instance = self.settings.url.rstrip("/")
        self.mapping = field_map(DEFAULT_FIELD_MAP, self.settings.field_map, "LEADS_DYNAMICS_FIELD_MAP")
        self.tokens = tokens or token_source(self.settings, settings.http_timeout)
        self.session = new_session()

    @property
    def host(self) -> str:
        return shown_host(self.instance)

    # --- delivery -------------------------------------------------------------------------------------

    def deliver(self, stored: StoredLead) -> Delivered | Skipped:
        body = map_fields(stored, self.mapping, resolve)  # empty values left out
        record_id = record_id_for(stored.id)
        response = self._call("PATCH", f"/leads({record_id})", json=body, headers={"If-None-Match": "*"})
        if response.status_code == 412:
            # Prevent-update-in-upsert: the record exists, so an earlier attempt created it.
            log.info("lead %s: already in Dynamics 365 as %s", stored.id, record_id)
            return Delivered(record_id)
        if 200 <= response.status_code < 300 and response.headers.get("OData-Version"):
            created = _entity_id(response.headers.get("OData-EntityId", "")) or record_id
            log.info("lead %s: created in Dynamics 365 as %s", stored.id, created)
            return Delivered(created)
        outcome = self._refusal(response, stored)
        if isinstance(outcome, Skipped):
            log.info("lead %s: skipped by Dynamics 365: %s", stored.id, outcome.reason)
            return outcome
        raise outcome

    def _call(self, method: str, path: str, *, headers: dict[str, str] | None = None,
              **kwargs: Any) -> requests.Response:
        if not self.instance:
            raise ConfigurationError(f"The {INSTANCE} is not set: copy it from {WHERE_URL}.")
        token = self.tokens.token()
        all_headers = {
            "Authorization": f"Bearer {token}",
            "OData-Version": "4.0",
            "OData-MaxVersion": "4.0",
            "Accept": "application/json",
            "Content-Type": "application/json; charset=utf-8",
            **(headers or {}),
        }
        try:
            return send(self.session, method, f"{self.instance}{API_PATH}{path}", label=LABEL, timeout=self.timeout,
                        headers=all_headers, **kwargs)
        except TransientDestinationError as error:
            raise self._unreachable(error) from None

    def _unreachable(self, error: TransientDestinationError) -> DestinationError:
        """Say what a failure to reach the instance means in the FAQ's terms."""
        cause = error.__context__  # http.send raises `from None`: the requests exception is kept here
        if isinstance(cause, requests.Timeout):
            return TransientDestinationError(
                f"{LABEL} at {self.host} did not answer within {self.timeout:g} seconds (Partner Center reports "
                "this as 'The request channel timed out ... after 00:02:00'); will retry. If it persists, check "
                f"that the {INSTANCE} is your environment's URL: {WHERE_URL}."
            )
        if isinstance(cause, requests.ConnectionError):
            number = _dns_error_number(cause)
            if number == socket.EAI_NONAME:
                # "Name or service not known": the name does not exist, which is nearly always a typo in
                # the setting. A configuration error opens the circuit breaker and says what to fix; the
                # lead is still retried on the same schedule (state "blocked"), so a real DNS outage that
                # happens to look like this costs a delay, not a lead. A resolver that is down answers
                # EAI_AGAIN ("Temporary failure in name resolution"), which stays transient below.
                return ConfigurationError(
                    f"The host name {self.host} of the {INSTANCE} does not exist: this is not a Dynamics 365 "
                    f"instance. Copy the Environment URL from {WHERE_URL} (it looks like "
                    "https://contoso.crm4.dynamics.com)."
                )
            return TransientDestinationError(
                f"Could not connect to {LABEL} at {self.host}; will retry. If it persists, check the {INSTANCE} "
                f"({WHERE_URL})."
            )
        return error  # 429 / 5xx, with Retry-After

    def _refusal(self, response: requests.Response, stored: StoredLead | None = None) -> DestinationError | Skipped:
        status = response.status_code
        error = _odata_error(response)
        if error is None:
            return ConfigurationError(
                f"{self.host} answered {status} without a Dataverse error, so the {INSTANCE} does not point to a "
                f"Dynamics 365 instance. Copy the Environment URL from {WHERE_URL}."
            )
        code, message = error
        if status == 401:
            return ConfigurationError(
                f"{LABEL} at {self.host} refused the app's token (401): the environment is in another tenant "
                "than the Directory (tenant) ID, or the instance URL is not the one the token was asked for. "
                f"Use the tenant that holds the environment and the Environment URL from {WHERE_URL}."
            )
        if status == 403:
            return self._forbidden(code, message)
        if status == 404:
            return ConfigurationError(
                f"{self.host} has no Dataverse Web API at {API_PATH} ({status} {code or ''}): the {INSTANCE} is "
                f"not a Dynamics 365 instance. Copy the Environment URL from {WHERE_URL}."
            )
        if status == 400 and stored is not None:
            if re.search(r"Invalid property|Could not find a property|undeclared property", message):
                name = _quoted_name(message)
                return ConfigurationError(
                    f"The lead table in {LABEL} has no column {name or 'named in the mapping'} (400 {code}): fix "
                    "LEADS_DYNAMICS_FIELD_MAP (column logical names are lower case, e.g. new_campaign), or set "
                    "that column to null to drop it."
                )
            sent = map_fields(stored, self.mapping, resolve)
            columns = sorted(c for c in sent if re.search(rf"\b{re.escape(c)}\b", message))
            about = f" about {', '.join(columns)}" if columns else ""
            if not stored.lead.customer.has_personal_data:
                return Skipped(
                    f"{LABEL} refused this lead{about} (Dataverse error {code}), and the lead carries no "
                    "personal data (Microsoft withholds it for .edu customers), so there is nothing more to "
                    "send. It is in the lead table and the notification e-mail."
                )
            # The message can quote the refused value (personal data): name the columns, not the values.
            return LeadRejectedError(
                f"{LABEL} refused this lead{about} (Dataverse error {code}, 400): a validation rule, a "
                "required column or a value too long for the column. Check the lead table's columns and "
                "business rules, or change LEADS_DYNAMICS_FIELD_MAP; then replay the lead."
            )
        return ConfigurationError(
            f"{LABEL} at {self.host} answered {status} (Dataverse error {code or 'without a code'}): check the "
            f"{INSTANCE} and the application user's security role."
        )

    def _forbidden(self, code: str, message: str) -> ConfigurationError:
        code = code.lower()
        if code == "0x80042f09" or "RetrievePrivilegeForUser" in message:
            return ConfigurationError(
                "The application user has no security role in Dynamics 365 (Dataverse 0x80042F09, the FAQ's "
                "'SecLib::RetrievePrivilegeForUser failed - no roles are assigned to user'): assign it a "
                f"security role that can create leads, in {WHERE_USER} > the app > Edit security roles."
            )
        if code == "0x80040220":
            privilege = re.search(r"missing (prv\w+) privilege", message)
            if privilege:
                return ConfigurationError(
                    f"The application user's security role lacks the {privilege.group(1)} privilege (Dataverse "
                    "0x80040220, the FAQ's 'no create permission ... leadsourcecode on lead'): give the role "
                    "Create and Read on Lead (Settings > Security roles > the role > the Lead table), or "
                    "assign a role that has them."
                )
            return ConfigurationError(
                "The application user may not write a lead column (Dataverse 0x80040220: field-level security, "
                "the FAQ's 'no create permission for the attribute leadsourcecode on entity lead'): add the app "
                "user to a column security profile that allows Create on that column, or drop the column with "
                'LEADS_DYNAMICS_FIELD_MAP, e.g. {"leadsourcecode": null}.'
            )
        return ConfigurationError(
            f"{LABEL} refused access (403, Dataverse {code or 'no code'}): this app is not an enabled application "
            f"user of the environment. Add the app registration whose Application (client) ID is in "
            f"LEADS_DYNAMICS_CLIENT_ID (or the app's managed identity) as an application user in {WHERE_USER}, "
            "with a security role that can create leads."
        )

    # --- doctor ---------------------------------------------------------------------------------------

    def check(self) -> list[Check]:
        if not self.instance:
            return [Check(self.name, "settings", False, f"The {INSTANCE} is not set: copy it from {WHERE_URL}.")]
        checks: list[Check] = []
        try:
            self.tokens.token()
        except DestinationError as error:
            return [Check(self.name, "token", False, error.explanation)]
        checks.append(Check(self.name, "token", True,
                            f"Azure AD issued a token for {shown_url(self.instance)} to {self.tokens.describe()}."))
        try:
            user_id = self._who_am_i()
        except DestinationError as error:
            return [*checks, Check(self.name, "instance", False, error.explanation)]
        checks.append(Check(self.name, "instance", True,
                            f"{self.host} is a Dynamics 365 instance and knows this app as application user "
                            f"{user_id}."))
        checks.append(self._create_privilege(user_id))
        return checks

    def _who_am_i(self) -> str:
        # WhoAmI function: GET only ("Troubleshoot Dataverse Web API client errors": POST gives 404).
        response = self._call("GET", "/WhoAmI")
        body = _json(response) if response.status_code == 200 else None
        if body is None or "UserId" not in body:
            refusal = self._refusal(response)
            raise refusal if isinstance(refusal, DestinationError) else ConfigurationError(refusal.reason)
        return str(body["UserId"])

    def _create_privilege(self, user_id: str) -> Check:
        """RetrieveUserPrivilegeByPrivilegeName, bound to the application user ("Verifying access in code
        (Microsoft Dataverse)", https://learn.microsoft.com/power-apps/developer/data-platform/security-access-checking):
        an empty RolePrivileges list means no role grants prvCreateLead."""
        path = (f"/systemusers({user_id})/Microsoft.Dynamics.CRM.RetrieveUserPrivilegeByPrivilegeName"
                "(PrivilegeName='prvCreateLead')")
        try:
            response = self._call("GET", path)
        except DestinationError as error:
            return Check(self.name, "create privilege", False, error.explanation)
        body = _json(response) if response.status_code == 200 else None
        if body is not None and isinstance(body.get("RolePrivileges"), list):
            grants = body["RolePrivileges"]
            if grants:
                depth = str(grants[0].get("Depth", "")) if isinstance(grants[0], dict) else ""
                return Check(self.name, "create privilege", True,
                             f"the application user's role grants prvCreateLead{f' ({depth})' if depth else ''}. "
                             "Field-level security on lead columns shows only when a lead is created.")
            return Check(self.name, "create privilege", False, self._forbidden(
                "0x80040220", "is missing prvCreateLead privilege").explanation)
        if response.status_code == 403:
            # Reading one's own privileges needs Read on User; a minimal lead-writer role may not have it.
            # That is not a fault in the setup, only a limit of what this check can see.
            return Check(self.name, "create privilege", True,
                         "not verified: the role may not read users' privileges (403). Creating a lead will "
                         "tell; a missing privilege is then reported with its fix.")
        refusal = self._refusal(response)
        message = refusal.explanation if isinstance(refusal, DestinationError) else refusal.reason
        return Check(self.name, "create privilege", False, message)


def _json(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _odata_error(response: requests.Response) -> tuple[str, str] | None:
    """Dataverse's error body `{"error": {"code": "0x...", "message": "..."}}`, or None when the answer
    is not from Dataverse (an HTML page, an empty body)."""
    body = _json(response)
    if body is None or not isinstance(body.get("error"), dict):
        return None
    error = body["error"]
    return str(error.get("code") or ""), str(error.get("message") or "")


def _entity_id(header: str) -> str:
    """`OData-EntityId: https://org.crm.dynamics.com/api/data/v9.2/leads(<guid>)` -> the GUID."""
    match = re.search(r"\(([0-9a-fA-F-]{36})\)\s*$", header)
    return match.group(1).lower() if match else ""


def _quoted_name(message: str) -> str:
    match = re.search(r"property '?(\w+)'?", message)
    return match.group(1) if match else ""


def create(settings: Settings) -> DynamicsDestination:
    return DynamicsDestination(settings)


__all__ = ["DEFAULT_FIELD_MAP", "DynamicsDestination", "create", "record_id_for"]
