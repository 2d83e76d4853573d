"""Every app setting, read once into one typed object.

`SETTINGS` is the single list of names the app reads: docs/settings.md, `local.settings.sample.json` and the
Bicep test are checked against it. `load_settings()` reads them from the environment (which is how
the Functions host exposes app settings). Only missing storage settings raise a `SettingsError`: intake
needs storage and nothing else. Any other bad setting is kept as a sentence naming it: a destination's
blocks that destination alone (`Settings.problems`, shown on each lead as `blocked`); a global one falls
back to its default (`Settings.warnings`, shown by the doctor and the status page, logged once).
"""

from __future__ import annotations

import contextvars
import difflib
import functools
import ipaddress
import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from leads.core.errors import SettingsError
from leads.core.routing import CRM_TYPES, Routing, Rule, destination_type, parse_routes


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    description: str
    secret: bool = False
    group: str = "core"


SETTINGS: tuple[Setting, ...] = (
    # Storage (the Functions host uses the same connection for the queue trigger).
    Setting("AzureWebJobsStorage", "", "Storage connection string. Locally `UseDevelopmentStorage=true` "
            "(Azurite). In Azure leave it unset and use the identity-based `__` settings below.",
            secret=True, group="storage"),
    Setting("AzureWebJobsStorage__tableServiceUri", "", "Table endpoint for identity-based access, "
            "e.g. `https://<account>.table.core.windows.net`.", group="storage"),
    Setting("AzureWebJobsStorage__queueServiceUri", "", "Queue endpoint for identity-based access, "
            "e.g. `https://<account>.queue.core.windows.net`.", group="storage"),
    Setting("AzureWebJobsStorage__credential", "", "`managedidentity` in Azure (read by the host).",
            group="storage"),
    Setting("AzureWebJobsStorage__clientId", "", "Client id of the user-assigned managed identity "
            "(leave empty for a system-assigned identity).", group="storage"),
    Setting("LEADS_FALLBACK_STORAGE", "", "Where a lead waits, answered 202, while the main table is "
            "unreachable: a table endpoint such as `https://<account>.table.core.windows.net` (reached with "
            "the identity of `AzureWebJobsStorage__clientId`; best another account in another region) or a "
            "connection string. Empty: such a lead gets 503 with Retry-After. A malformed value turns the "
            "fallback off (doctor and status say so); it never stops intake.", secret=True, group="storage"),
    Setting("LEADS_IMPORT_STORAGE", "", "Import leads from Partner Center's \"Azure Table\" destination: the "
            "storage account Partner Center writes to, as a connection string or as its table endpoint "
            "`https://<account>.table.core.windows.net` (reached with the app's identity, which needs Storage Table "
            "Data Reader there). Every minute the new rows become leads like POSTed ones. Empty: no import, no "
            "storage call. A malformed value turns the import off (doctor and status say so).", secret=True,
            group="storage"),
    Setting("LEADS_IMPORT_TABLE", "MarketplaceLeads", "The table Partner Center writes leads to (with "
            "LEADS_IMPORT_STORAGE)."),
    Setting("LEADS_TABLE", "leads", "Table holding every lead, its delivery state and the de-duplication "
            "markers."),
    Setting("LEADS_QUARANTINE_TABLE", "leadsquarantine", "Table holding every rejected request "
            "(reason and the first 64 KiB of the body)."),
    Setting("LEADS_QUEUE", "leads-delivery", "Queue of delivery work; the sweeper reads `<name>-poison`."),
    Setting("LEADS_DESTINATIONS", "email", "Where each lead goes, comma-separated: "
            "`email`, `webhook`, `teams`, `slack`, `dynamics`, `salesforce`, `marketo`, `hubspot`. Several of one "
            "type are named `type:name` (e.g. `webhook:partners`, letters and digits), each with the type's "
            "settings under its own prefix (`LEADS_WEBHOOK_PARTNERS_URL` for `LEADS_WEBHOOK_URL`; "
            "docs/destinations.md, Routing)."),
    Setting("LEADS_ROUTES", "", "Which leads each destination takes, one rule per destination separated by `;`, "
            "e.g. `salesforce:emea country=DE,FR; hubspot action=INS,PLT; webhook dnc=include` (conditions "
            "`offer`, `action`, `country` with `=` or `!=`; `test`, `edu`, `dnc` = `include`, `exclude` or `only`). "
            "Empty: every lead everywhere, except test leads (CRMs) and do-not-contact leads (notifications only). "
            "A bad rule blocks its destination alone."),
    Setting("LEADS_FORWARD_TEST_LEADS", "false", "`true` sends Partner Center's MSFT_TEST leads to CRMs "
            "too (they go to e-mail, webhook, Teams and Slack; a LEADS_ROUTES rule's `test=` decides for its "
            "destination)."),
    Setting("LEADS_RETRY_DELAYS", "30,120,600,1800,3600,7200,14400,28800,43200",
            "Seconds to wait before each retry of a destination that failed transiently "
            "(default: 9 retries over about 28 hours)."),
    Setting("LEADS_DEDUPE_HOURS", "24", "The same payload received again within this many hours is the "
            "same lead."),
    Setting("LEADS_RETENTION_DAYS", "730", "Days a lead is kept (with its delivery history, markers and "
            "rejected requests): a daily run deletes what arrived longer ago once every destination is done with "
            "it (a lead still waiting, or held because storage was down, is kept until it is). Must be longer "
            "than `LEADS_DEDUPE_HOURS`; the importer skips Partner Center rows older than this less "
            "`LEADS_DEDUPE_HOURS`. `0` keeps everything."),
    Setting("LEADS_SPOOL_DIR", "", "Folder where a lead is kept when storage is down, stored by the "
            "instance that kept it once storage answers (default: a folder under the system temp directory)."),
    Setting("LEADS_HTTP_TIMEOUT", "20", "Seconds before a call to a CRM, webhook or SMTP server is "
            "abandoned (and retried later)."),
    # E-mail
    Setting("LEADS_EMAIL_TO", "", "Who is told of each lead: addresses separated by `;` or `,` (like "
            "Partner Center's Contact email field).", group="email"),
    Setting("LEADS_EMAIL_FROM", "", "Sender address of the notification e-mail.", group="email"),
    Setting("LEADS_SMTP_HOST", "", "SMTP server.", group="email"),
    Setting("LEADS_SMTP_PORT", "", "SMTP port (default 25, 587 with `starttls`, 465 with `ssl`).",
            group="email"),
    Setting("LEADS_SMTP_USERNAME", "", "SMTP login (optional).", group="email"),
    Setting("LEADS_SMTP_PASSWORD", "", "SMTP password (optional).", secret=True, group="email"),
    Setting("LEADS_SMTP_SECURITY", "starttls", "`none`, `starttls` or `ssl`. Certificates are always verified; "
            "for a private CA set the standard `SSL_CERT_FILE` variable to a PEM bundle holding it.", group="email"),
    Setting("LEADS_EMAIL_TRANSPORT", "smtp", "How the e-mail is sent: `smtp` (LEADS_SMTP_* with a password or none), "
            "`smtp-oauth` (Exchange Online SMTP AUTH with an OAuth token: LEADS_SMTP_OAUTH_*, no password) or `acs` "
            "(Azure Communication Services Email: LEADS_ACS_*).", group="email"),
    Setting("LEADS_SMTP_OAUTH_TENANT_ID", "", "`smtp-oauth`: Directory (tenant) ID of the app registration that "
            "may send as LEADS_EMAIL_FROM.", group="email"),
    Setting("LEADS_SMTP_OAUTH_CLIENT_ID", "", "`smtp-oauth`: Application (client) ID of that app registration.",
            group="email"),
    Setting("LEADS_SMTP_OAUTH_CLIENT_SECRET", "", "`smtp-oauth`: its client secret.", secret=True, group="email"),
    Setting("LEADS_SMTP_OAUTH_CLIENT_CERTIFICATE", "", "`smtp-oauth`: PEM (private key and certificate) used "
            "instead of a secret: the text itself or a file path.", secret=True, group="email"),
    Setting("LEADS_ACS_ENDPOINT", "", "`acs`: the Communication Services endpoint, e.g. "
            "`https://<name>.<geo>.communication.azure.com`, reached with the app's managed identity (the "
            "identity of `AzureWebJobsStorage__clientId`; it needs the Communication and Email Service Owner "
            "role). The Bicep sets it when `emailService` is on.", group="email"),
    Setting("LEADS_ACS_CONNECTION_STRING", "", "`acs`: `endpoint=https://...;accesskey=...` from Keys, used "
            "instead of the identity (the key signs each request).", secret=True, group="email"),
    Setting("LEADS_ACS_WAIT_SECONDS", "30", "`acs`: how long one delivery waits for the send operation to "
            "finish; after that the lead is retried, which checks the same operation again (no second send).",
            group="email"),
    Setting("LEADS_EMAIL_INCLUDE_PII", "false", "`true` puts the customer's name, e-mail and phone in "
            "the e-mail, and in the Teams and Slack messages. Off by default: lead data should not travel by "
            "unsecured e-mail, nor be read by a whole channel.",
            group="email"),
    # Webhook
    Setting("LEADS_WEBHOOK_URL", "", "HTTPS URL that receives each lead as signed JSON (it may carry a key, "
            "e.g. `sig=`: kept in Key Vault in Azure).", secret=True, group="webhook"),
    Setting("LEADS_WEBHOOK_SECRET", "", "Standard Webhooks signing secret (`whsec_` + base64 of 24 to 64 random "
            "bytes); several space-separated while rotating (each request is signed with each).",
            secret=True, group="webhook"),
    # Teams and Slack: their URLs carry the key that lets anyone post to the channel.
    Setting("LEADS_TEAMS_WEBHOOK_URL", "", "URL of a Teams workflow (\"Post to a channel when a webhook request is "
            "received\"): each lead is posted to the channel as an Adaptive Card.", secret=True, group="teams"),
    Setting("LEADS_SLACK_WEBHOOK_URL", "", "Slack incoming webhook URL (`https://hooks.slack.com/services/...`): "
            "each lead is posted to its channel.", secret=True, group="slack"),
    # Dynamics 365 / Azure AD
    Setting("LEADS_AUTHORITY_HOST", "https://login.microsoftonline.com", "Azure AD authority (sovereign "
            "clouds: e.g. `https://login.microsoftonline.us`).", group="dynamics"),
    Setting("LEADS_DYNAMICS_URL", "", "Dynamics 365 instance URL, e.g. `https://contoso.crm4.dynamics.com`.",
            group="dynamics"),
    Setting("LEADS_DYNAMICS_TENANT_ID", "", "Directory (tenant) ID of the app registration.",
            group="dynamics"),
    Setting("LEADS_DYNAMICS_CLIENT_ID", "", "Application (client) ID of the app registration; with no "
            "secret and no certificate, the client id of the managed identity to use (empty: "
            "system-assigned).", group="dynamics"),
    Setting("LEADS_DYNAMICS_CLIENT_SECRET", "", "Client secret of the app registration.", secret=True,
            group="dynamics"),
    Setting("LEADS_DYNAMICS_CLIENT_CERTIFICATE", "", "PEM (private key and certificate) used instead of a "
            "secret: the text itself or a file path.", secret=True, group="dynamics"),
    Setting("LEADS_DYNAMICS_FIELD_MAP", "", "JSON object that changes or extends the lead mapping, e.g. "
            '`{"jobtitle": null, "new_campaign": "campaign.mktcmpid"}`.', group="dynamics"),
    # Salesforce
    Setting("LEADS_SALESFORCE_MODE", "web-to-lead", "`web-to-lead` (no credentials; errors are invisible) "
            "or `rest` (connected app; errors are reported).", group="salesforce"),
    Setting("LEADS_SALESFORCE_ORG_ID", "", "Web-to-Lead: the 15- or 18-character Organization ID "
            "(`oid`, starts with 00D).", group="salesforce"),
    Setting("LEADS_SALESFORCE_WEB_TO_LEAD_URL",
            "https://webto.salesforce.com/servlet/servlet.WebToLead?encoding=UTF-8",
            "Web-to-Lead endpoint.", group="salesforce"),
    Setting("LEADS_SALESFORCE_URL", "", "REST: the org's My Domain URL, e.g. "
            "`https://contoso.my.salesforce.com`.", group="salesforce"),
    Setting("LEADS_SALESFORCE_CLIENT_ID", "", "REST: the connected app's consumer key.", group="salesforce"),
    Setting("LEADS_SALESFORCE_CLIENT_SECRET", "", "REST: the connected app's consumer secret.", secret=True,
            group="salesforce"),
    Setting("LEADS_SALESFORCE_API_VERSION", "v62.0", "REST API version.", group="salesforce"),
    Setting("LEADS_SALESFORCE_EXTERNAL_ID_FIELD", "", "REST: an External ID field on Lead (e.g. "
            "`Marketplace_Lead_Id__c`); when set, leads are upserted on it.", group="salesforce"),
    Setting("LEADS_SALESFORCE_FIELD_MAP", "", "JSON object that changes or extends the Lead mapping.",
            group="salesforce"),
    Setting("LEADS_SALESFORCE_LEAD_SOURCE", "Web", "The Lead's `LeadSource`: a value of the org's Lead Source "
            "picklist (`Web` is one of a new org's standard values).", group="salesforce"),
    Setting("LEADS_SALESFORCE_OFFER_FIELD", "", "REST: the API name of a Lead text field (e.g. "
            "`Marketplace_Offer__c`) that receives the offer's name; empty: not sent.", group="salesforce"),
    # Marketo
    Setting("LEADS_MARKETO_URL", "", "REST endpoint from Admin > Integration > Web Services, e.g. "
            "`https://123-ABC-456.mktorest.com`.", group="marketo"),
    Setting("LEADS_MARKETO_CLIENT_ID", "", "Client ID of the LaunchPoint custom service.", group="marketo"),
    Setting("LEADS_MARKETO_CLIENT_SECRET", "", "Client Secret of the LaunchPoint custom service.",
            secret=True, group="marketo"),
    Setting("LEADS_MARKETO_FIELD_MAP", "", "JSON object that changes or extends the lead mapping.",
            group="marketo"),
    Setting("LEADS_MARKETO_UPDATE_EXISTING", "false", "`true`: a lead from a person Marketo already has overwrites "
            "that person's mapped fields (the old behaviour). `false`: it fills only the fields that are empty.",
            group="marketo"),
    Setting("LEADS_MARKETO_ACTIVITY_TYPE_ID", "", "Id of a custom activity type (Admin > Marketo Custom "
            "Activities) recorded on the person for every lead, new or known. Empty: no activity.",
            group="marketo"),
    # HubSpot
    Setting("LEADS_HUBSPOT_URL", "https://api.hubapi.com", "HubSpot API base URL.", group="hubspot"),
    Setting("LEADS_HUBSPOT_TOKEN", "", "Private app access token (scopes crm.objects.contacts.read and "
            ".write).", secret=True, group="hubspot"),
    Setting("LEADS_HUBSPOT_FIELD_MAP", "", "JSON object that changes or extends the contact property "
            "mapping.", group="hubspot"),
    Setting("LEADS_HUBSPOT_UPDATE_EXISTING", "false", "`true`: a lead from an existing contact overwrites its "
            "mapped properties (the old behaviour). `false`: it fills only empty properties. Either way the lead "
            "is logged as a note on that contact.", group="hubspot"),
    # Delivery timing (tests shorten them; the defaults suit Azure)
    Setting("LEADS_DELIVERY_LEASE_SECONDS", "600", "How long a worker holds a destination it is sending to. "
            "A worker that dies is replaced after this; keep it at least the host's functionTimeout."),
    Setting("LEADS_OUTBOX_GRACE_SECONDS", "120", "How late a lead's next step may be before the sweeper "
            "enqueues it again."),
    Setting("LEADS_REQUEUE_AGAIN_SECONDS", "300", "After the sweeper wakes a lead (a due outbox row), how long "
            "before it may wake it once more if the lead is still unfinished (the wake-up's lease, `EnqueuedUntil`; "
            "doubled, up to an hour, for a lead stuck before it can claim)."),
    Setting("LEADS_SWEEP_SCHEDULE", "0 */5 * * * *", "When the outbox sweeper runs (NCRONTAB, six fields, UTC). "
            "It re-enqueues lost work and reads the poison queue: a lost enqueue is retried at most "
            "LEADS_OUTBOX_GRACE_SECONDS plus one period after the lead was stored. Read when the app starts."),
    Setting("AzureFunctionsJobHost__extensions__queues__maxPollingInterval", "00:00:10", "Read by the Functions "
            "host (it overrides host.json): the longest wait between two reads of the delivery queue while it is "
            "empty. On a running instance a lead reaches e-mail within about this plus the delivery itself; "
            "halving it doubles the idle polling cost (docs/deploy.md#cost-for-1000-leads-a-month).",
            group="host"),
    Setting("LEADS_CONSOLE_URL", "", "Address of the lead console, e.g. `https://<app>.azurewebsites.net/api/console` "
            "(locally `http://127.0.0.1:7071/api/console`): the notification e-mail links to each lead there. "
            "Empty: no link."),
    # Operational notices (leads/services/ops_notices.py)
    Setting("LEADS_OPS_EMAIL_TO", "", "Who is told when a destination is blocked, a lead fails for good or no lead "
            "arrives for a while (and again when it clears): addresses separated by `;` or `,`. Empty: "
            "LEADS_EMAIL_TO. Sent through the SMTP server of the e-mail destination; no lead data in them."),
    Setting("LEADS_OPS_CHAT", "", "Teams or Slack destinations of LEADS_DESTINATIONS (by name, e.g. `teams` or "
            "`slack:ops`) that get the operational notices too, in their channel. Empty: e-mail only."),
    Setting("LEADS_SILENCE_ALERT_DAYS", "7", "Days without any lead (test or real) before the operational "
            "notice says so (checked hourly, counted from the newest stored lead). 0 turns it off."),
    Setting("LEADS_NOTICE_INTERVAL_SECONDS", "3600", "At most one operational notice per condition in this "
            "many seconds (later events are counted into the next one); also how often the sweeper reviews "
            "open conditions and the silence."),
)

EMAIL_TRANSPORTS = ("smtp", "smtp-oauth", "acs")
EXCHANGE_SMTP_HOST = "smtp.office365.com"
DESTINATION_NAMES = ("email", "webhook", "dynamics", "salesforce", "marketo", "hubspot", "teams", "slack")
# CRMs do not get Partner Center's MSFT_TEST leads unless LEADS_FORWARD_TEST_LEADS=true (leads/core/routing.py).
CRM_DESTINATIONS = CRM_TYPES
_INSTANCE_NAME = re.compile(r"[a-z][a-z0-9]{0,19}")
_DEFAULTS = {s.name: s.default for s in SETTINGS}
_GROUPS = {s.name: s.group for s in SETTINGS}
SETTINGS_BY_GROUP: dict[str, tuple[Setting, ...]] = {
    group: tuple(s for s in SETTINGS if s.group == group) for group in dict.fromkeys(_GROUPS.values())}
log = logging.getLogger("leads.settings")


@dataclass(frozen=True)
class StorageSettings:
    connection_string: str = field(default="", repr=False)  # holds the account key
    table_service_uri: str = ""
    queue_service_uri: str = ""
    client_id: str = ""

    @property
    def uses_identity(self) -> bool:
        return not self.connection_string


@dataclass(frozen=True)
class EmailSettings:
    to: tuple[str, ...] = ()
    sender: str = ""
    host: str = ""
    port: int = 25
    username: str = ""
    password: str = field(default="", repr=False)
    security: str = "starttls"
    include_pii: bool = False
    transport: str = "smtp"  # smtp | smtp-oauth | acs
    oauth_tenant_id: str = ""
    oauth_client_id: str = ""
    oauth_client_secret: str = field(default="", repr=False)
    oauth_client_certificate: str = field(default="", repr=False)
    authority_host: str = "https://login.microsoftonline.com"
    acs_endpoint: str = ""
    acs_connection_string: str = field(default="", repr=False)  # holds the access key
    acs_client_id: str = ""  # the user-assigned identity (AzureWebJobsStorage__clientId); empty: system-assigned
    acs_wait_seconds: int = 30


@dataclass(frozen=True)
class WebhookSettings:
    url: str = field(default="", repr=False)  # a Power Automate or Zapier URL carries its own key (`sig=`)
    secret: str = field(default="", repr=False)


@dataclass(frozen=True)
class TeamsSettings:
    url: str = field(default="", repr=False)  # the workflow URL's sig= lets anyone post to the channel


@dataclass(frozen=True)
class SlackSettings:
    url: str = field(default="", repr=False)  # the path is the webhook's secret


@dataclass(frozen=True)
class DynamicsSettings:
    url: str = ""
    tenant_id: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    client_certificate: str = field(default="", repr=False)
    authority_host: str = "https://login.microsoftonline.com"
    field_map: str = ""


@dataclass(frozen=True)
class SalesforceSettings:
    mode: str = "web-to-lead"
    org_id: str = ""
    web_to_lead_url: str = ""
    url: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    api_version: str = "v62.0"
    external_id_field: str = ""
    field_map: str = ""
    lead_source: str = "Web"  # a standard value of Salesforce's Lead Source picklist (docs/destinations.md)
    offer_field: str = ""


@dataclass(frozen=True)
class MarketoSettings:
    url: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    field_map: str = ""
    update_existing: bool = False
    activity_type_id: int | None = None


@dataclass(frozen=True)
class HubSpotSettings:
    url: str = "https://api.hubapi.com"
    token: str = field(default="", repr=False)
    field_map: str = ""
    update_existing: bool = False


@dataclass(frozen=True)
class Settings:
    storage: StorageSettings
    table: str = "leads"
    quarantine_table: str = "leadsquarantine"
    queue: str = "leads-delivery"
    destinations: tuple[str, ...] = ("email",)
    # Destination -> the sentence naming the setting that keeps it from working (it is `blocked`).
    problems: dict[str, str] = field(default_factory=dict, hash=False)
    # Global setting -> the sentence saying it is malformed and its default is used instead.
    warnings: dict[str, str] = field(default_factory=dict, hash=False)
    forward_test_leads: bool = False
    retry_delays: tuple[int, ...] = (30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200)
    dedupe_hours: int = 24
    retention_days: int = 730  # LEADS_RETENTION_DAYS; 0 keeps everything
    spool_dir: str = ""
    http_timeout: float = 20.0
    email: EmailSettings = EmailSettings()
    webhook: WebhookSettings = WebhookSettings()
    dynamics: DynamicsSettings = DynamicsSettings()
    salesforce: SalesforceSettings = SalesforceSettings()
    marketo: MarketoSettings = MarketoSettings()
    hubspot: HubSpotSettings = HubSpotSettings()
    teams: TeamsSettings = TeamsSettings()
    slack: SlackSettings = SlackSettings()
    fallback_storage: StorageSettings | None = None  # LEADS_FALLBACK_STORAGE (its table endpoint only)
    delivery_lease_seconds: int = 600
    outbox_grace_seconds: int = 120
    requeue_again_seconds: int = 300
    sweep_schedule: str = "0 */5 * * * *"  # LEADS_SWEEP_SCHEDULE, as the timer binding reads it
    console_url: str = ""  # LEADS_CONSOLE_URL: the notification e-mail links to `<it>#/leads/<id>`
    routes: dict[str, Rule] = field(default_factory=dict, hash=False)  # LEADS_ROUTES, by destination
    # A named destination (`webhook:partners`) -> the settings read from its own prefix (LEADS_WEBHOOK_PARTNERS_*).
    instances: dict[str, Settings] = field(default_factory=dict, hash=False, repr=False)
    import_storage: StorageSettings | None = None  # LEADS_IMPORT_STORAGE: Partner Center's account (tables only)
    import_table: str = "MarketplaceLeads"
    ops_email_to: tuple[str, ...] = ()  # LEADS_OPS_EMAIL_TO, else LEADS_EMAIL_TO
    ops_chat: tuple[str, ...] = ()  # LEADS_OPS_CHAT: teams/slack destinations that get the notices too
    silence_alert_days: int = 7
    notice_interval_seconds: int = 3600

    @property
    def poison_queue(self) -> str:
        return f"{self.queue}-poison"

    @property
    def crm_flags(self) -> dict[str, bool]:
        """Each configured destination and whether it is a CRM (by its type)."""
        return {name: destination_type(name) in CRM_DESTINATIONS for name in self.destinations}

    @property
    def routing(self) -> Routing:
        """Which destinations take a lead (LEADS_ROUTES and the test-lead and do-not-contact defaults)."""
        unreadable = frozenset(name for name, sentence in self.problems.items() if sentence.startswith("LEADS_ROUTES"))
        return Routing(self.destinations, self.routes, self.forward_test_leads, unreadable)

    def import_horizon(self, now: datetime) -> datetime | None:
        """The oldest Partner Center time the importer takes a row from (None: any). Older, the lead is past
        retention, and a copy POSTed back then may be purged already (with its de-dup marker), so it could no
        longer be recognised as a repeat and would be sent again: the retention period less the de-dup window."""
        if not self.retention_days:
            return None
        return now - timedelta(days=self.retention_days) + timedelta(hours=self.dedupe_hours)

    def for_destination(self, name: str) -> Settings:
        """The settings `name`'s module is created with: its own prefix's for a named one, else these."""
        return self.instances.get(name, self)


@dataclass
class _Found:
    problems: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, str] = field(default_factory=dict)


_found: contextvars.ContextVar[_Found | None] = contextvars.ContextVar("settings_found", default=None)


@contextmanager
def _collecting() -> Iterator[_Found]:
    found = _Found()
    token = _found.set(found)
    try:
        yield found
    finally:
        _found.reset(token)


def _ops_chat(value: str, destinations: tuple[str, ...]) -> tuple[str, ...]:
    """The Teams/Slack destinations named; any other name is left out with a sentence (notices still go by
    e-mail)."""
    names = tuple(name.lower() for name in split_list(value))
    wrong = [name for name in names if name not in destinations or name.partition(":")[0] not in ("teams", "slack")]
    if wrong:
        _report("LEADS_OPS_CHAT", f"LEADS_OPS_CHAT names {', '.join(wrong)}, not a teams or slack destination of "
                                  "LEADS_DESTINATIONS: notices go to e-mail and to the ones it names correctly.")
    return tuple(name for name in names if name not in wrong)


def _report(name: str, sentence: str) -> None:
    """A bad value. While settings load it is kept against what it concerns (by its group): a destination's
    setting blocks that destination, any other falls back to its default; storage (and a call outside
    `load_settings`) raises. The sentence must never quote a value that could be a secret or a keyed URL."""
    found = _found.get()
    group = _GROUPS.get(name, "core")
    if found is None or group == "storage":
        raise SettingsError(sentence)
    if group in DESTINATION_NAMES:
        found.problems.setdefault(group, sentence)
    else:
        default = _DEFAULTS.get(name) or "empty"
        found.warnings.setdefault(name, f"{sentence} Its default ({default}) is used until it is fixed.")


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off", ""):
        return False
    _report(name, f"{name} must be true or false, not {value!r}.")
    return _flag(name, _DEFAULTS[name])


def _int(name: str, value: str, minimum: int = 0, maximum: int | None = None) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        return _int_default(name, f"{name} must be a whole number, not {value!r}.", minimum)
    if number < minimum:
        return _int_default(name, f"{name} must be at least {minimum}, not {number}.", minimum)
    if maximum is not None and number > maximum:
        return _int_default(name, f"{name} must be at most {maximum}, not {number}.", minimum)
    return number


def _optional_int(name: str, value: str) -> int | None:
    """Empty means "not set"; anything else must be a positive whole number."""
    if not value.strip():
        return None
    if value.strip().isascii() and value.strip().isdigit() and int(value) > 0:
        return int(value)
    _report(name, f"{name} must be a positive whole number (or empty), not {value!r}.")
    return None


def _int_default(name: str, sentence: str, minimum: int) -> int:
    _report(name, sentence)
    default = _DEFAULTS.get(name, "").strip()
    return int(default) if default.isascii() and default.isdigit() else minimum


def _delays(value: str) -> tuple[int, ...]:
    parts = split_list(value)
    bad = [part for part in parts if not (part.isascii() and part.isdigit())]
    if bad:
        _report("LEADS_RETRY_DELAYS", "LEADS_RETRY_DELAYS must be whole numbers of seconds (0 or more) separated "
                                      f"by commas, not {bad[0]!r}.")
        parts = split_list(_DEFAULTS["LEADS_RETRY_DELAYS"])
    return tuple(int(part) for part in parts)


def _destination_names(value: str) -> tuple[str, ...]:
    """Every name listed, known or not: an unknown one (a typo) stays, so each lead shows it `blocked` with
    the sentence naming it, instead of the app refusing leads or dropping the destination silently."""
    # Lower-case, and only characters a table key and a log line take safely (the name keys a breaker row).
    names = tuple(dict.fromkeys(re.sub(r"[^a-z0-9_.:-]+", "-", d.lower())[:40] for d in split_list(value)))
    found = _found.get()
    for name in names:
        sentence = _bad_destination_name(name)
        if not sentence:
            continue
        if found is None:
            raise SettingsError(sentence)
        found.problems.setdefault(name, sentence)
    return names


def _bad_destination_name(name: str) -> str:
    kind, named, instance = name.partition(":")
    if kind not in DESTINATION_NAMES:
        close = difflib.get_close_matches(kind, DESTINATION_NAMES, n=1)
        hint = f"did you mean {close[0]}?" if close else f"use any of {', '.join(DESTINATION_NAMES)}."
        return f"LEADS_DESTINATIONS names {name}, which is not a destination: {hint}"
    if named and not _INSTANCE_NAME.fullmatch(instance):
        example = instance_setting_name(SETTINGS_BY_GROUP[kind][0].name, kind, re.sub(r"[^a-z0-9]", "", instance)
                                        or "partners")
        return (f"LEADS_DESTINATIONS names {name}: the name after {kind}: must be letters and digits (at most 20, "
                f"starting with a letter), as it becomes part of its settings' names, e.g. {example}.")
    return ""


def instance_setting_name(name: str, kind: str, instance: str) -> str:
    """`LEADS_WEBHOOK_URL` of `webhook:partners` is `LEADS_WEBHOOK_PARTNERS_URL`; a setting of the type's group
    outside its prefix keeps its own words after it (`LEADS_SMTP_HOST` of `email:sales` is
    `LEADS_EMAIL_SALES_SMTP_HOST`)."""
    prefix = f"LEADS_{kind.upper()}_"
    rest = name[len(prefix):] if name.startswith(prefix) else name.removeprefix("LEADS_")
    return f"{prefix}{instance.upper()}_{rest}"


def instance_settings_renamed(text: str, name: str) -> str:
    """A sentence about a type's settings, reworded with the named destination's own setting names."""
    kind, _, instance = name.partition(":")
    if not instance:
        return text
    for setting in sorted(SETTINGS_BY_GROUP.get(kind, ()), key=lambda s: len(s.name), reverse=True):
        text = re.sub(rf"\b{setting.name}\b", instance_setting_name(setting.name, kind, instance), text)
    return text


def secret_setting_names(env: Mapping[str, str]) -> list[str]:
    """The secret settings' names, those of each named destination in LEADS_DESTINATIONS included."""
    names = [s.name for s in SETTINGS if s.secret]
    for destination in split_list(env.get("LEADS_DESTINATIONS", "")):
        kind, _, instance = destination.lower().partition(":")
        if instance and kind in SETTINGS_BY_GROUP:
            names += [instance_setting_name(s.name, kind, instance) for s in SETTINGS_BY_GROUP[kind] if s.secret]
    return names


def split_list(value: str) -> tuple[str, ...]:
    """Split on `;` or `,` (Partner Center's Contact email field uses `;`)."""
    return tuple(part.strip() for part in value.replace(";", ",").split(",") if part.strip())


def is_loopback_url(url: str) -> bool:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_outbound_url(name: str, url: str) -> str:
    """Outbound URLs must be HTTPS; plain HTTP is allowed only to a loopback address (local tests)."""
    url = url.strip().rstrip("/")
    if not url:
        return url
    # The value is not quoted: a webhook URL carries its own key.
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # e.g. an unclosed [ or a port that is not a number
        hostname = None
    if not hostname or parts.scheme not in ("https", "http"):
        _report(name, f"{name} must be a full URL such as https://example.com.")
        return ""
    if parts.scheme != "https" and not is_loopback_url(url):
        _report(name, f"{name} must start with https:// (plain http is only allowed to localhost).")
        return ""
    return url


def _unresolved_reference(value: str) -> bool:
    """App Service passes a Key Vault reference it cannot resolve through as its literal text."""
    return value.strip().startswith("@Microsoft.KeyVault(")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Raises SettingsError only when storage is not configured; see the module's docstring."""
    env = os.environ if env is None else env
    with _collecting() as found:
        settings = _read(env)
        routes = _routes(env.get("LEADS_ROUTES") or "", settings.destinations)
    instances = {name: _instance(env, name, found) for name in settings.destinations
                 if ":" in name and name not in found.problems}
    return replace(settings, problems=found.problems, warnings=found.warnings, routes=routes, instances=instances)


def _routes(text: str, destinations: tuple[str, ...]) -> dict[str, Rule]:
    found = _found.get()
    assert found is not None
    parsed = parse_routes("" if _unresolved_reference(text) else text, destinations)
    for name, sentence in parsed.problems.items():
        found.problems.setdefault(name, sentence)
    if parsed.warnings:
        found.warnings.setdefault("LEADS_ROUTES", " ".join(parsed.warnings))
    return parsed.rules


def _instance(env: Mapping[str, str], name: str, found: _Found) -> Settings:
    """The settings of a named destination: its type's settings read from its own prefix (no fallback on the
    type's: a second webhook must not post to the first one's URL). Its bad setting blocks it alone."""
    kind, _, instance = name.partition(":")
    mapped = {**env}
    for setting in SETTINGS_BY_GROUP.get(kind, ()):
        mapped.pop(setting.name, None)
        own = env.get(instance_setting_name(setting.name, kind, instance))
        if own is not None:
            mapped[setting.name] = own
    with _collecting() as own_found:
        settings = _read(mapped)
    if kind in own_found.problems:
        found.problems.setdefault(name, instance_settings_renamed(own_found.problems[kind], name))
    return settings


def _read(env: Mapping[str, str]) -> Settings:

    def get(name: str) -> str:
        value = env.get(name)
        if value is None or value.strip() == "" or _unresolved_reference(value):
            return _DEFAULTS[name]
        return value.strip()

    storage = StorageSettings(
        connection_string=get("AzureWebJobsStorage"),
        table_service_uri=get("AzureWebJobsStorage__tableServiceUri"),
        queue_service_uri=get("AzureWebJobsStorage__queueServiceUri"),
        client_id=get("AzureWebJobsStorage__clientId"),
    )
    if storage.uses_identity and not (storage.table_service_uri and storage.queue_service_uri):
        raise SettingsError(
            "Storage is not configured: set AzureWebJobsStorage to a connection string "
            "(UseDevelopmentStorage=true for Azurite), or set AzureWebJobsStorage__tableServiceUri and "
            "AzureWebJobsStorage__queueServiceUri to use the app's managed identity."
        )

    destinations = _destination_names(get("LEADS_DESTINATIONS"))
    delays = _delays(get("LEADS_RETRY_DELAYS"))

    security = get("LEADS_SMTP_SECURITY").lower()
    if security not in ("none", "starttls", "ssl"):
        _report("LEADS_SMTP_SECURITY", f"LEADS_SMTP_SECURITY must be none, starttls or ssl, not {security!r}.")
        security = _DEFAULTS["LEADS_SMTP_SECURITY"]
    default_port = {"none": "25", "starttls": "587", "ssl": "465"}[security]
    transport = get("LEADS_EMAIL_TRANSPORT").lower()
    if transport not in EMAIL_TRANSPORTS:
        _report("LEADS_EMAIL_TRANSPORT", f"LEADS_EMAIL_TRANSPORT must be {', '.join(EMAIL_TRANSPORTS[:-1])} or "
                                         f"{EMAIL_TRANSPORTS[-1]}, not {transport!r}.")
    email = EmailSettings(
        to=split_list(get("LEADS_EMAIL_TO")),
        sender=get("LEADS_EMAIL_FROM"),
        # Exchange Online's SMTP AUTH host is the same for every tenant (submission, port 587, STARTTLS).
        host=get("LEADS_SMTP_HOST") or (EXCHANGE_SMTP_HOST if transport == "smtp-oauth" else ""),
        port=_int("LEADS_SMTP_PORT", get("LEADS_SMTP_PORT") or default_port, minimum=1, maximum=65535),
        username=get("LEADS_SMTP_USERNAME"),
        password=get("LEADS_SMTP_PASSWORD"),
        security=security,
        include_pii=_flag("LEADS_EMAIL_INCLUDE_PII", get("LEADS_EMAIL_INCLUDE_PII")),
        transport=transport,
        oauth_tenant_id=get("LEADS_SMTP_OAUTH_TENANT_ID"),
        oauth_client_id=get("LEADS_SMTP_OAUTH_CLIENT_ID"),
        oauth_client_secret=get("LEADS_SMTP_OAUTH_CLIENT_SECRET"),
        oauth_client_certificate=get("LEADS_SMTP_OAUTH_CLIENT_CERTIFICATE"),
        authority_host=get("LEADS_AUTHORITY_HOST").rstrip("/"),
        acs_endpoint=check_outbound_url("LEADS_ACS_ENDPOINT", get("LEADS_ACS_ENDPOINT")),
        acs_connection_string=get("LEADS_ACS_CONNECTION_STRING"),
        acs_client_id=storage.client_id,
        acs_wait_seconds=_int("LEADS_ACS_WAIT_SECONDS", get("LEADS_ACS_WAIT_SECONDS"), minimum=0, maximum=600),
    )
    dedupe_hours = _int("LEADS_DEDUPE_HOURS", get("LEADS_DEDUPE_HOURS"))
    retention_days = _int("LEADS_RETENTION_DAYS", get("LEADS_RETENTION_DAYS"), maximum=36_500)
    if retention_days and retention_days * 24 <= dedupe_hours:
        retention_days = _int_default(
            "LEADS_RETENTION_DAYS", f"LEADS_RETENTION_DAYS ({retention_days} days) must be longer than "
            f"LEADS_DEDUPE_HOURS ({dedupe_hours} hours): a lead purged before its de-dup window ends is taken for a "
            "new one when it comes again.", 0)
    return Settings(
        storage=storage,
        table=get("LEADS_TABLE"),
        quarantine_table=get("LEADS_QUARANTINE_TABLE"),
        queue=binding_queue_name(env),
        destinations=destinations,
        forward_test_leads=_flag("LEADS_FORWARD_TEST_LEADS", get("LEADS_FORWARD_TEST_LEADS")),
        retry_delays=delays,
        dedupe_hours=dedupe_hours,
        retention_days=retention_days,
        spool_dir=get("LEADS_SPOOL_DIR"),
        http_timeout=float(_int("LEADS_HTTP_TIMEOUT", get("LEADS_HTTP_TIMEOUT"), minimum=1)),
        email=email,
        webhook=WebhookSettings(
            url=check_outbound_url("LEADS_WEBHOOK_URL", get("LEADS_WEBHOOK_URL")),
            secret=get("LEADS_WEBHOOK_SECRET"),
        ),
        dynamics=DynamicsSettings(
            url=check_outbound_url("LEADS_DYNAMICS_URL", get("LEADS_DYNAMICS_URL")),
            tenant_id=get("LEADS_DYNAMICS_TENANT_ID"),
            # With no secret and no certificate the app's own identity signs in: by default the one that
            # already reaches storage (the Bicep creates a user-assigned identity).
            client_id=get("LEADS_DYNAMICS_CLIENT_ID") or (
                "" if get("LEADS_DYNAMICS_CLIENT_SECRET") or get("LEADS_DYNAMICS_CLIENT_CERTIFICATE")
                else storage.client_id),
            client_secret=get("LEADS_DYNAMICS_CLIENT_SECRET"),
            client_certificate=get("LEADS_DYNAMICS_CLIENT_CERTIFICATE"),
            authority_host=check_outbound_url("LEADS_AUTHORITY_HOST", get("LEADS_AUTHORITY_HOST")),
            field_map=get("LEADS_DYNAMICS_FIELD_MAP"),
        ),
        salesforce=SalesforceSettings(
            mode=get("LEADS_SALESFORCE_MODE").lower(),
            org_id=get("LEADS_SALESFORCE_ORG_ID"),
            web_to_lead_url=check_outbound_url(
                "LEADS_SALESFORCE_WEB_TO_LEAD_URL", get("LEADS_SALESFORCE_WEB_TO_LEAD_URL")
            ),
            url=check_outbound_url("LEADS_SALESFORCE_URL", get("LEADS_SALESFORCE_URL")),
            client_id=get("LEADS_SALESFORCE_CLIENT_ID"),
            client_secret=get("LEADS_SALESFORCE_CLIENT_SECRET"),
            api_version=get("LEADS_SALESFORCE_API_VERSION"),
            external_id_field=get("LEADS_SALESFORCE_EXTERNAL_ID_FIELD"),
            field_map=get("LEADS_SALESFORCE_FIELD_MAP"),
            lead_source=get("LEADS_SALESFORCE_LEAD_SOURCE"),
            offer_field=get("LEADS_SALESFORCE_OFFER_FIELD"),
        ),
        marketo=MarketoSettings(
            url=check_outbound_url("LEADS_MARKETO_URL", get("LEADS_MARKETO_URL")),
            client_id=get("LEADS_MARKETO_CLIENT_ID"),
            client_secret=get("LEADS_MARKETO_CLIENT_SECRET"),
            field_map=get("LEADS_MARKETO_FIELD_MAP"),
            update_existing=_flag("LEADS_MARKETO_UPDATE_EXISTING", get("LEADS_MARKETO_UPDATE_EXISTING")),
            activity_type_id=_optional_int("LEADS_MARKETO_ACTIVITY_TYPE_ID", get("LEADS_MARKETO_ACTIVITY_TYPE_ID")),
        ),
        hubspot=HubSpotSettings(
            url=check_outbound_url("LEADS_HUBSPOT_URL", get("LEADS_HUBSPOT_URL")),
            token=get("LEADS_HUBSPOT_TOKEN"),
            field_map=get("LEADS_HUBSPOT_FIELD_MAP"),
            update_existing=_flag("LEADS_HUBSPOT_UPDATE_EXISTING", get("LEADS_HUBSPOT_UPDATE_EXISTING")),
        ),
        teams=TeamsSettings(url=check_outbound_url("LEADS_TEAMS_WEBHOOK_URL", get("LEADS_TEAMS_WEBHOOK_URL"))),
        slack=SlackSettings(url=check_outbound_url("LEADS_SLACK_WEBHOOK_URL", get("LEADS_SLACK_WEBHOOK_URL"))),
        fallback_storage=fallback_storage(get("LEADS_FALLBACK_STORAGE"), storage),
        delivery_lease_seconds=_int("LEADS_DELIVERY_LEASE_SECONDS", get("LEADS_DELIVERY_LEASE_SECONDS"), minimum=1),
        outbox_grace_seconds=_int("LEADS_OUTBOX_GRACE_SECONDS", get("LEADS_OUTBOX_GRACE_SECONDS"), minimum=1),
        requeue_again_seconds=_int("LEADS_REQUEUE_AGAIN_SECONDS", get("LEADS_REQUEUE_AGAIN_SECONDS"), minimum=1),
        sweep_schedule=binding_sweep_schedule(env),
        console_url=check_outbound_url("LEADS_CONSOLE_URL", get("LEADS_CONSOLE_URL")),
        import_storage=import_storage(get("LEADS_IMPORT_STORAGE"), storage),
        import_table=import_table(get("LEADS_IMPORT_TABLE")),
        ops_email_to=split_list(get("LEADS_OPS_EMAIL_TO")) or email.to,
        ops_chat=_ops_chat(get("LEADS_OPS_CHAT"), destinations),
        silence_alert_days=_int("LEADS_SILENCE_ALERT_DAYS", get("LEADS_SILENCE_ALERT_DAYS"), maximum=3650),
        notice_interval_seconds=_int("LEADS_NOTICE_INTERVAL_SECONDS", get("LEADS_NOTICE_INTERVAL_SECONDS"),
                                     minimum=1),
    )


def fallback_storage(value: str, storage: StorageSettings) -> StorageSettings | None:
    """A table endpoint (the app's identity, as for AzureWebJobsStorage) or a connection string. A bad value
    turns the fallback off with a warning (doctor, status): it must never stop intake."""
    return _other_account(
        "LEADS_FALLBACK_STORAGE", value, storage,
        "must be a table endpoint such as https://<account>.table.core.windows.net or a storage connection string.",
        "Its default (no fallback) is used until it is fixed: while the main table is down, leads get 503.")


def import_storage(value: str, storage: StorageSettings) -> StorageSettings | None:
    """Partner Center's account: a table endpoint (the app's identity) or a connection string. A bad value
    turns the import off with a warning (doctor, status): it never stops anything else."""
    return _other_account(
        "LEADS_IMPORT_STORAGE", value, storage,
        "must be the table endpoint of the account Partner Center writes to, such as "
        "https://<account>.table.core.windows.net, or its connection string.",
        "Its default (no import) is used until it is fixed: no lead is read from Partner Center's table meanwhile.")


def _other_account(name: str, value: str, storage: StorageSettings, expected: str,
                   meanwhile: str) -> StorageSettings | None:
    """Another storage account's tables, from a table endpoint (read with the app's identity) or a connection
    string; a bad value is a warning and turns that feature off (None), never a failure of anything else."""
    if not value:
        return None
    try:
        if value.lower().startswith(("https://", "http://")):
            endpoint = check_outbound_url(name, value)
            return StorageSettings(table_service_uri=endpoint, client_id=storage.client_id)
        if "endpoint" not in value.lower() and "usedevelopmentstorage" not in value.lower():
            raise SettingsError(f"{name} {expected}")
        missing = connection_string_gap(value)
        if missing:
            raise SettingsError(f"{name} is a connection string without {missing}; it {expected}")
    except SettingsError as error:
        found = _found.get()
        if found is None:
            raise
        found.warnings.setdefault(name, f"{error.explanation} {meanwhile}")
        return None
    return StorageSettings(connection_string=value)


def connection_string_gap(value: str) -> str:
    """What a storage connection string lacks for the Tables SDK to build a client from it ("" if nothing):
    the SDK wants AccountName with AccountKey, or a SharedAccessSignature, and an endpoint (a TableEndpoint, or
    an AccountName to build one from); otherwise it raises ValueError when the client is made, which would
    stop every function that builds one (azure-sdk-for-python, sdk/tables/azure-data-tables,
    azure/data/tables/_base_client.py, parse_connection_str)."""
    if value.strip().lower() == "usedevelopmentstorage=true":
        return ""
    pairs = {}
    for part in value.split(";"):
        key, sep, val = part.partition("=")
        if sep and key.strip():
            pairs[key.strip().lower()] = val.strip()
    if not pairs.get("sharedaccesssignature") and not (pairs.get("accountname") and pairs.get("accountkey")):
        return "an AccountName and AccountKey pair or a SharedAccessSignature"
    if not pairs.get("tableendpoint") and not pairs.get("accountname"):
        return "a TableEndpoint or AccountName"
    return ""


_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")


def import_table(value: str) -> str:
    if _TABLE_NAME.match(value):
        return value
    _report("LEADS_IMPORT_TABLE", "LEADS_IMPORT_TABLE must be a table name: 3 to 63 letters and digits, "
            "starting with a letter.")
    return _DEFAULTS["LEADS_IMPORT_TABLE"]


def binding_queue_name(env: Mapping[str, str] | None = None) -> str:
    """The queue the trigger binds to, read when the app is indexed (same rule as LEADS_QUEUE)."""
    env = os.environ if env is None else env
    return (env.get("LEADS_QUEUE") or _DEFAULTS["LEADS_QUEUE"]).strip().lower()


def binding_sweep_schedule(env: Mapping[str, str] | None = None) -> str:
    """The sweeper timer's schedule, read when the app is indexed. Not six fields: the default, with a warning
    (a schedule the host cannot parse would stop the sweeper, and with it every recovery)."""
    env = os.environ if env is None else env
    value = " ".join((env.get("LEADS_SWEEP_SCHEDULE") or "").split())
    if len(value.split()) == 6:
        return value
    default = _DEFAULTS["LEADS_SWEEP_SCHEDULE"]
    if value:
        sentence = (f"LEADS_SWEEP_SCHEDULE must be an NCRONTAB expression of six fields (seconds first), such as "
                    f"`{default}`. Its default is used until it is fixed.")
        found = _found.get()
        if found is not None:
            found.warnings.setdefault("LEADS_SWEEP_SCHEDULE", sentence)
        else:
            log.warning("setting ignored: %s", sentence)
    return default


@functools.cache
def get_settings() -> Settings:
    """The settings of this process, read once (app settings change only with a restart). Each setting that
    fell back to its default is logged here, once; a destination's problem is logged when it is built."""
    settings = load_settings()
    for sentence in settings.warnings.values():
        log.warning("setting ignored: %s", sentence)
    return settings
