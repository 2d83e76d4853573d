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
from urllib.parse import urlsplit

from leads.errors import SettingsError


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
    Setting("LEADS_TABLE", "leads", "Table holding every lead, its delivery state and the de-duplication "
            "markers."),
    Setting("LEADS_QUARANTINE_TABLE", "leadsquarantine", "Table holding every rejected request "
            "(reason and the first 64 KiB of the body)."),
    Setting("LEADS_QUEUE", "leads-delivery", "Queue of delivery work; `<name>-poison` is watched too."),
    Setting("LEADS_DESTINATIONS", "email", "Where each lead goes, comma-separated: "
            "`email`, `webhook`, `dynamics`, `salesforce`, `marketo`, `hubspot`."),
    Setting("LEADS_FORWARD_TEST_LEADS", "false", "`true` sends Partner Center's MSFT_TEST leads to CRMs "
            "too (they always go to e-mail and webhook)."),
    Setting("LEADS_RETRY_DELAYS", "30,120,600,1800,3600,7200,14400,28800,43200",
            "Seconds to wait before each retry of a destination that failed transiently "
            "(default: 9 retries over about 28 hours)."),
    Setting("LEADS_DEDUPE_HOURS", "24", "The same payload received again within this many hours is the "
            "same lead."),
    Setting("LEADS_RETENTION_DAYS", "730", "Days a lead is kept (with its delivery history, markers, rejected "
            "requests and held or spooled copies): a daily run deletes what arrived longer ago. `0` keeps "
            "everything."),
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
    Setting("LEADS_EMAIL_INCLUDE_PII", "false", "`true` puts the customer's name, e-mail and phone in "
            "the e-mail. Off by default: lead data should not travel by unsecured e-mail.",
            group="email"),
    # Webhook
    Setting("LEADS_WEBHOOK_URL", "", "HTTPS URL that receives each lead as signed JSON.", group="webhook"),
    Setting("LEADS_WEBHOOK_SECRET", "", "Key of the HMAC-SHA256 signature (32 characters or more, random).",
            secret=True, group="webhook"),
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
    # Marketo
    Setting("LEADS_MARKETO_URL", "", "REST endpoint from Admin > Integration > Web Services, e.g. "
            "`https://123-ABC-456.mktorest.com`.", group="marketo"),
    Setting("LEADS_MARKETO_CLIENT_ID", "", "Client ID of the LaunchPoint custom service.", group="marketo"),
    Setting("LEADS_MARKETO_CLIENT_SECRET", "", "Client Secret of the LaunchPoint custom service.",
            secret=True, group="marketo"),
    Setting("LEADS_MARKETO_FIELD_MAP", "", "JSON object that changes or extends the lead mapping.",
            group="marketo"),
    # HubSpot
    Setting("LEADS_HUBSPOT_URL", "https://api.hubapi.com", "HubSpot API base URL.", group="hubspot"),
    Setting("LEADS_HUBSPOT_TOKEN", "", "Private app access token (scopes crm.objects.contacts.read and "
            ".write).", secret=True, group="hubspot"),
    Setting("LEADS_HUBSPOT_FIELD_MAP", "", "JSON object that changes or extends the contact property "
            "mapping.", group="hubspot"),
    # Delivery timing (tests shorten them; the defaults suit Azure)
    Setting("LEADS_DELIVERY_LEASE_SECONDS", "600", "How long a worker holds a destination it is sending to. "
            "A worker that dies is replaced after this; keep it at least the host's functionTimeout."),
    Setting("LEADS_OUTBOX_GRACE_SECONDS", "120", "How late a lead's next step may be before the sweeper "
            "enqueues it again."),
    Setting("LEADS_REQUEUE_AGAIN_SECONDS", "300", "After the sweeper (or the poison handler) enqueues a lead "
            "again, how long before it does so once more if the lead is still unfinished."),
    Setting("LEADS_CONSOLE_URL", "", "Address of the lead console, e.g. `https://<app>.azurewebsites.net/api/console` "
            "(locally `http://127.0.0.1:7071/api/console`): the notification e-mail links to each lead there. "
            "Empty: no link."),
)

DESTINATION_NAMES = ("email", "webhook", "dynamics", "salesforce", "marketo", "hubspot")
# CRMs do not get Partner Center's MSFT_TEST leads unless LEADS_FORWARD_TEST_LEADS=true.
CRM_DESTINATIONS = frozenset({"dynamics", "salesforce", "marketo", "hubspot"})
_DEFAULTS = {s.name: s.default for s in SETTINGS}
_GROUPS = {s.name: s.group for s in SETTINGS}
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


@dataclass(frozen=True)
class WebhookSettings:
    url: str = field(default="", repr=False)  # a Power Automate or Zapier URL carries its own key (`sig=`)
    secret: str = field(default="", repr=False)


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


@dataclass(frozen=True)
class MarketoSettings:
    url: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    field_map: str = ""


@dataclass(frozen=True)
class HubSpotSettings:
    url: str = "https://api.hubapi.com"
    token: str = field(default="", repr=False)
    field_map: str = ""


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
    fallback_storage: StorageSettings | None = None  # LEADS_FALLBACK_STORAGE (its table endpoint only)
    delivery_lease_seconds: int = 600
    outbox_grace_seconds: int = 120
    requeue_again_seconds: int = 300
    console_url: str = ""  # LEADS_CONSOLE_URL: the notification e-mail links to `<it>#/leads/<id>`

    @property
    def poison_queue(self) -> str:
        return f"{self.queue}-poison"

    @property
    def crm_flags(self) -> dict[str, bool]:
        """Each configured destination and whether it is a CRM (the test-lead policy)."""
        return {name: name in CRM_DESTINATIONS for name in self.destinations}


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
    names = tuple(dict.fromkeys(re.sub(r"[^a-z0-9_.-]+", "-", d.lower())[:40] for d in split_list(value)))
    found = _found.get()
    for name in names:
        if name in DESTINATION_NAMES:
            continue
        close = difflib.get_close_matches(name, DESTINATION_NAMES, n=1)
        hint = f"did you mean {close[0]}?" if close else f"use any of {', '.join(DESTINATION_NAMES)}."
        sentence = f"LEADS_DESTINATIONS names {name}, which is not a destination: {hint}"
        if found is None:
            raise SettingsError(sentence)
        found.problems.setdefault(name, sentence)
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
    with _collecting() as found:
        settings = _read(os.environ if env is None else env)
    return replace(settings, problems=found.problems, warnings=found.warnings)


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
    email = EmailSettings(
        to=split_list(get("LEADS_EMAIL_TO")),
        sender=get("LEADS_EMAIL_FROM"),
        host=get("LEADS_SMTP_HOST"),
        port=_int("LEADS_SMTP_PORT", get("LEADS_SMTP_PORT") or default_port, minimum=1, maximum=65535),
        username=get("LEADS_SMTP_USERNAME"),
        password=get("LEADS_SMTP_PASSWORD"),
        security=security,
        include_pii=_flag("LEADS_EMAIL_INCLUDE_PII", get("LEADS_EMAIL_INCLUDE_PII")),
    )
    return Settings(
        storage=storage,
        table=get("LEADS_TABLE"),
        quarantine_table=get("LEADS_QUARANTINE_TABLE"),
        queue=binding_queue_name(env),
        destinations=destinations,
        forward_test_leads=_flag("LEADS_FORWARD_TEST_LEADS", get("LEADS_FORWARD_TEST_LEADS")),
        retry_delays=delays,
        dedupe_hours=_int("LEADS_DEDUPE_HOURS", get("LEADS_DEDUPE_HOURS")),
        retention_days=_int("LEADS_RETENTION_DAYS", get("LEADS_RETENTION_DAYS"), maximum=36_500),
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
        ),
        marketo=MarketoSettings(
            url=check_outbound_url("LEADS_MARKETO_URL", get("LEADS_MARKETO_URL")),
            client_id=get("LEADS_MARKETO_CLIENT_ID"),
            client_secret=get("LEADS_MARKETO_CLIENT_SECRET"),
            field_map=get("LEADS_MARKETO_FIELD_MAP"),
        ),
        hubspot=HubSpotSettings(
            url=check_outbound_url("LEADS_HUBSPOT_URL", get("LEADS_HUBSPOT_URL")),
            token=get("LEADS_HUBSPOT_TOKEN"),
            field_map=get("LEADS_HUBSPOT_FIELD_MAP"),
        ),
        fallback_storage=fallback_storage(get("LEADS_FALLBACK_STORAGE"), storage),
        delivery_lease_seconds=_int("LEADS_DELIVERY_LEASE_SECONDS", get("LEADS_DELIVERY_LEASE_SECONDS"), minimum=1),
        outbox_grace_seconds=_int("LEADS_OUTBOX_GRACE_SECONDS", get("LEADS_OUTBOX_GRACE_SECONDS"), minimum=1),
        requeue_again_seconds=_int("LEADS_REQUEUE_AGAIN_SECONDS", get("LEADS_REQUEUE_AGAIN_SECONDS"), minimum=1),
        console_url=check_outbound_url("LEADS_CONSOLE_URL", get("LEADS_CONSOLE_URL")),
    )


def fallback_storage(value: str, storage: StorageSettings) -> StorageSettings | None:
    """A table endpoint (the app's identity, as for AzureWebJobsStorage) or a connection string. A bad value
    turns the fallback off with a warning (doctor, status): it must never stop intake."""
    if not value:
        return None
    try:
        if value.lower().startswith(("https://", "http://")):
            endpoint = check_outbound_url("LEADS_FALLBACK_STORAGE", value)
            return StorageSettings(table_service_uri=endpoint, client_id=storage.client_id)
        if "endpoint" not in value.lower() and "usedevelopmentstorage" not in value.lower():
            raise SettingsError("LEADS_FALLBACK_STORAGE must be a table endpoint such as "
                                "https://<account>.table.core.windows.net or a storage connection string.")
    except SettingsError as error:
        found = _found.get()
        if found is None:
            raise
        found.warnings.setdefault("LEADS_FALLBACK_STORAGE", f"{error.explanation} Its default (no fallback) "
                                  "is used until it is fixed: while the main table is down, leads get 503.")
        return None
    return StorageSettings(connection_string=value)


def binding_queue_name(env: Mapping[str, str] | None = None) -> str:
    """The queue the trigger binds to, read when the app is indexed (same rule as LEADS_QUEUE)."""
    env = os.environ if env is None else env
    return (env.get("LEADS_QUEUE") or _DEFAULTS["LEADS_QUEUE"]).strip().lower()


@functools.cache
def get_settings() -> Settings:
    """The settings of this process, read once (app settings change only with a restart). Each setting that
    fell back to its default is logged here, once; a destination's problem is logged when it is built."""
    settings = load_settings()
    for sentence in settings.warnings.values():
        log.warning("setting ignored: %s", sentence)
    return settings
