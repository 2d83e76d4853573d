"""Settings: read once into one typed object, every one documented, every mistake a sentence. Only missing
storage stops the app; any other mistake blocks its destination or falls back to the default."""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from leads.cli.settings_doc import render_document, render_tables
from leads.core.errors import SettingsError
from leads.core.settings import SETTINGS, Setting, load_settings

ROOT = Path(__file__).resolve().parents[2]
BASE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_documented_in_the_settings_page_and_the_sample(setting) -> None:
    page = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    sample = json.loads((ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
    assert f"| `{setting.name}` | {f'`{setting.default}`' if setting.default else ''} |" in page
    assert setting.name in sample


def test_the_settings_page_tables_are_the_registry_regenerated() -> None:
    # Out of date? `python -m leads.cli.settings_doc` rewrites the tables from leads/core/settings.py.
    page = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert render_document(page) == page
    documented = re.findall(r"^\| `([^`]+)` \|", page, flags=re.MULTILINE)
    assert sorted(documented) == sorted(s.name for s in SETTINGS)


def test_a_new_group_gets_its_own_table_and_a_pipe_cannot_break_a_row() -> None:
    tables = render_tables((Setting("LEADS_X", "a|b", "One | two.", secret=True, group="console"),))
    assert tables.splitlines() == ["**Console**", "", "| Setting | Default | What it does |", "|---|---|---|",
                                   "| `LEADS_X` | `a\\|b` | One \\| two. *(secret)* |"]


def test_defaults() -> None:
    settings = load_settings(BASE)
    assert (settings.table, settings.queue) == ("leads", "leads-delivery")
    assert settings.poison_queue == "leads-delivery-poison"
    assert settings.destinations == ("email",)
    assert settings.email.include_pii is False
    assert settings.dynamics.authority_host == "https://login.microsoftonline.com"


def test_recipients_split_on_semicolons_and_commas_like_partner_center() -> None:
    settings = load_settings({**BASE, "LEADS_EMAIL_TO": "a@x.example; b@x.example,c@x.example ;"})
    assert settings.email.to == ("a@x.example", "b@x.example", "c@x.example")


def test_smtp_port_follows_security_by_default() -> None:
    assert load_settings({**BASE, "LEADS_SMTP_SECURITY": "ssl"}).email.port == 465
    assert load_settings({**BASE, "LEADS_SMTP_SECURITY": "starttls"}).email.port == 587
    assert load_settings({**BASE, "LEADS_SMTP_SECURITY": "none", "LEADS_SMTP_PORT": "1025"}).email.port == 1025


def test_missing_storage_is_the_one_mistake_that_stops_the_app() -> None:
    with pytest.raises(SettingsError, match="Storage is not configured"):
        load_settings({"LEADS_DESTINATIONS": "salesforse", "LEADS_RETRY_DELAYS": "x"})


def test_identity_based_storage_needs_both_endpoints() -> None:
    settings = load_settings({"AzureWebJobsStorage__tableServiceUri": "https://a.table.core.windows.net",
                              "AzureWebJobsStorage__queueServiceUri": "https://a.queue.core.windows.net"})
    assert settings.storage.uses_identity
    with pytest.raises(SettingsError, match="AzureWebJobsStorage__queueServiceUri"):
        load_settings({"AzureWebJobsStorage__tableServiceUri": "https://a.table.core.windows.net"})


@pytest.mark.parametrize(("env", "destination", "words"), [
    ({"LEADS_DESTINATIONS": "email,pipedrive"}, "pipedrive", "pipedrive, which is not a destination: use any of"),
    ({"LEADS_DESTINATIONS": "email,salesforse"}, "salesforse", "salesforse, which is not a destination: did you "
                                                               "mean salesforce?"),
    ({"LEADS_EMAIL_INCLUDE_PII": "maybe"}, "email", "LEADS_EMAIL_INCLUDE_PII must be true or false"),
    ({"LEADS_SMTP_SECURITY": "tls"}, "email", "none, starttls or ssl"),
    ({"LEADS_SMTP_PORT": "smtp"}, "email", "LEADS_SMTP_PORT must be a whole number"),
    ({"LEADS_SMTP_PORT": "70000"}, "email", "LEADS_SMTP_PORT must be at most 65535"),
    ({"LEADS_WEBHOOK_URL": "http://hooks.example.com/x"}, "webhook", "LEADS_WEBHOOK_URL must start with https://"),
    ({"LEADS_DYNAMICS_URL": "contoso.crm.dynamics.com"}, "dynamics", "LEADS_DYNAMICS_URL must be a full URL"),
    ({"LEADS_AUTHORITY_HOST": "login"}, "dynamics", "LEADS_AUTHORITY_HOST must be a full URL"),
    ({"LEADS_HUBSPOT_URL": "https://[api.hubapi.com"}, "hubspot", "LEADS_HUBSPOT_URL must be a full URL"),
])
def test_a_destination_setting_mistake_is_kept_against_that_destination(
        env: dict[str, str], destination: str, words: str) -> None:
    settings = load_settings({**BASE, **env})
    assert list(settings.problems) == [destination]
    assert words in settings.problems[destination]
    assert settings.warnings == {}


def test_an_unknown_destination_stays_listed_as_a_non_crm() -> None:
    settings = load_settings({**BASE, "LEADS_DESTINATIONS": "email, SalesForse"})
    assert settings.destinations == ("email", "salesforse")
    assert settings.crm_flags == {"email": False, "salesforse": False}


@pytest.mark.parametrize(("env", "setting", "words", "fallback"), [
    ({"LEADS_RETRY_DELAYS": "30,-1"}, "LEADS_RETRY_DELAYS", "whole numbers of seconds (0 or more)",
     ("retry_delays", (30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200))),
    ({"LEADS_DEDUPE_HOURS": "a day"}, "LEADS_DEDUPE_HOURS", "must be a whole number", ("dedupe_hours", 24)),
    ({"LEADS_HTTP_TIMEOUT": "0"}, "LEADS_HTTP_TIMEOUT", "must be at least 1", ("http_timeout", 20.0)),
    ({"LEADS_FORWARD_TEST_LEADS": "si"}, "LEADS_FORWARD_TEST_LEADS", "must be true or false",
     ("forward_test_leads", False)),
])
def test_a_global_setting_mistake_falls_back_to_the_default_and_says_so(
        env: dict[str, str], setting: str, words: str, fallback: tuple[str, object]) -> None:
    settings = load_settings({**BASE, **env})
    assert list(settings.warnings) == [setting]
    assert words in settings.warnings[setting] and "default" in settings.warnings[setting]
    assert getattr(settings, fallback[0]) == fallback[1]
    assert settings.problems == {}


def test_a_url_mistake_does_not_quote_the_url() -> None:
    # A webhook URL carries its own key (Power Automate's sig=...).
    settings = load_settings({**BASE, "LEADS_WEBHOOK_URL": "http://prod.example.com/hook?sig=SECRET-canary-sig"})
    assert "SECRET-canary-sig" not in settings.problems["webhook"]
    assert "SECRET-canary-sig" not in repr(settings)


def test_plain_http_is_allowed_to_loopback_only() -> None:
    assert load_settings({**BASE, "LEADS_WEBHOOK_URL": "http://127.0.0.1:8080/hook"}).webhook.url.startswith("http://")
    assert load_settings({**BASE, "LEADS_WEBHOOK_URL": "http://localhost:8080/hook"}).webhook.url


def test_secrets_do_not_appear_in_the_settings_repr() -> None:
    canaries = {
        "AzureWebJobsStorage": "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=SECRET-canary-storage-key;",
        "LEADS_SMTP_PASSWORD": "SECRET-canary-smtp",
        "LEADS_SMTP_OAUTH_CLIENT_SECRET": "SECRET-canary-smtp-oauth",
        "LEADS_SMTP_OAUTH_CLIENT_CERTIFICATE": "-----BEGIN PRIVATE KEY-----SECRET-canary-smtp-oauth-pem",
        "LEADS_ACS_CONNECTION_STRING": "endpoint=https://x.communication.azure.com/;accesskey=SECRET-canary-acs",
        "LEADS_WEBHOOK_SECRET": "SECRET-canary-webhook-key-0123456789abcdef",
        "LEADS_TEAMS_WEBHOOK_URL": "https://prod-01.westeurope.logic.azure.com/workflows/y?sig=SECRET-canary-teams",
        "LEADS_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/SECRET-canary-slack",
        "LEADS_WEBHOOK_URL": "https://prod-00.westeurope.logic.azure.com/workflows/x?sig=SECRET-canary-sig",
        "LEADS_DYNAMICS_CLIENT_SECRET": "SECRET-canary-dynamics",
        "LEADS_DYNAMICS_CLIENT_CERTIFICATE": "-----BEGIN PRIVATE KEY-----SECRET-canary-pem",
        "LEADS_SALESFORCE_CLIENT_SECRET": "SECRET-canary-salesforce",
        "LEADS_MARKETO_CLIENT_SECRET": "SECRET-canary-marketo",
        "LEADS_HUBSPOT_TOKEN": "SECRET-canary-hubspot",
        "LEADS_FALLBACK_STORAGE": "DefaultEndpointsProtocol=https;AccountName=b;AccountKey=SECRET-canary-fallback;",
        "LEADS_IMPORT_STORAGE": "DefaultEndpointsProtocol=https;AccountName=c;AccountKey=SECRET-canary-import;",
    }
    assert {s.name for s in SETTINGS if s.secret} <= set(canaries)  # a new secret setting joins this test
    text = repr(load_settings(canaries))
    assert "SECRET-canary" not in text


def test_an_unresolved_key_vault_reference_counts_as_unset() -> None:
    # App Service hands the app the reference text itself when it cannot resolve it.
    settings = load_settings({**BASE, "LEADS_DYNAMICS_CLIENT_SECRET": "@Microsoft.KeyVault(SecretUri=https://v/s/x)",
                              "LEADS_SMTP_PASSWORD": "@Microsoft.KeyVault(VaultName=v;SecretName=smtp)"})
    assert settings.dynamics.client_secret == ""
    assert settings.email.password == ""


def test_dynamics_managed_identity_defaults_to_the_storage_identity() -> None:
    identity = {**BASE, "AzureWebJobsStorage__clientId": "5a1b-identity"}
    assert load_settings(identity).dynamics.client_id == "5a1b-identity"
    with_secret = {**identity, "LEADS_DYNAMICS_CLIENT_ID": "", "LEADS_DYNAMICS_CLIENT_SECRET": "s"}
    assert load_settings(with_secret).dynamics.client_id == ""  # a secret belongs to an app registration


def test_fallback_storage_is_a_table_endpoint_reached_with_the_app_identity_or_a_connection_string() -> None:
    assert load_settings(BASE).fallback_storage is None
    by_identity = load_settings({**BASE, "AzureWebJobsStorage__clientId": "1234",
                                 "LEADS_FALLBACK_STORAGE": "https://stb.table.core.windows.net/"}).fallback_storage
    assert by_identity is not None and by_identity.uses_identity
    assert (by_identity.table_service_uri, by_identity.client_id) == ("https://stb.table.core.windows.net", "1234")
    by_key = load_settings({**BASE, "LEADS_FALLBACK_STORAGE": "UseDevelopmentStorage=true"}).fallback_storage
    assert by_key is not None and by_key.connection_string == "UseDevelopmentStorage=true"
    # A bad value turns the fallback off with a warning; intake goes on (it depends on the main storage only).
    for value, words in (("stb", "LEADS_FALLBACK_STORAGE must be a table endpoint"),
                         ("http://stb.table.core.windows.net", "LEADS_FALLBACK_STORAGE must start with https://")):
        settings = load_settings({**BASE, "LEADS_FALLBACK_STORAGE": value})
        assert settings.fallback_storage is None
        assert words in settings.warnings["LEADS_FALLBACK_STORAGE"]
        assert "stb" not in settings.warnings["LEADS_FALLBACK_STORAGE"]  # a connection string is never quoted


def test_import_storage_is_a_table_endpoint_or_a_connection_string_and_a_bad_one_turns_the_import_off() -> None:
    assert load_settings(BASE).import_storage is None
    by_identity = load_settings({**BASE, "AzureWebJobsStorage__clientId": "1234",
                                 "LEADS_IMPORT_STORAGE": "https://stpc.table.core.windows.net/"}).import_storage
    assert by_identity is not None and by_identity.uses_identity
    assert (by_identity.table_service_uri, by_identity.client_id) == ("https://stpc.table.core.windows.net", "1234")
    by_key = load_settings({**BASE, "LEADS_IMPORT_STORAGE": "UseDevelopmentStorage=true"}).import_storage
    assert by_key is not None and by_key.connection_string == "UseDevelopmentStorage=true"
    for value, words in (("AccountKey=stpc-secret", "LEADS_IMPORT_STORAGE must be the table endpoint"),
                         ("http://stpc.table.core.windows.net", "LEADS_IMPORT_STORAGE must start with https://")):
        settings = load_settings({**BASE, "LEADS_IMPORT_STORAGE": value})
        assert settings.import_storage is None
        assert words in settings.warnings["LEADS_IMPORT_STORAGE"]
        assert "no lead is read from Partner Center's table" in settings.warnings["LEADS_IMPORT_STORAGE"]
        assert "stpc" not in settings.warnings["LEADS_IMPORT_STORAGE"]  # a connection string is never quoted
    bad_table = load_settings({**BASE, "LEADS_IMPORT_TABLE": "Marketplace-Leads"})
    assert bad_table.import_table == "MarketplaceLeads"
    assert "LEADS_IMPORT_TABLE must be a table name" in bad_table.warnings["LEADS_IMPORT_TABLE"]


def test_a_retention_no_longer_than_the_dedupe_window_is_refused_with_a_sentence() -> None:
    settings = load_settings({**BASE, "LEADS_RETENTION_DAYS": "1", "LEADS_DEDUPE_HOURS": "24"})
    assert settings.retention_days == 730
    assert "must be longer than LEADS_DEDUPE_HOURS (24 hours)" in settings.warnings["LEADS_RETENTION_DAYS"]
    kept = load_settings({**BASE, "LEADS_RETENTION_DAYS": "2", "LEADS_DEDUPE_HOURS": "24"})
    assert kept.retention_days == 2 and not kept.warnings
    assert load_settings({**BASE, "LEADS_RETENTION_DAYS": "0", "LEADS_DEDUPE_HOURS": "48"}).retention_days == 0


@given(days=st.integers(1, 3650), hours=st.integers(0, 24 * 3650), now=st.datetimes(timezones=st.just(UTC)),
       after=st.timedeltas(timedelta(0), timedelta(days=4000)), gap=st.floats(-1, 1))
def test_every_copy_of_a_row_the_importer_takes_is_still_kept(days: int, hours: int, now: datetime,
                                                             after: timedelta, gap: float) -> None:
    """Settings.import_horizon: a row Partner Center stored at or after it has every copy received by POST within
    the de-dup window still in storage (not past retention), so the copy is found and the row is not sent again."""
    assume(days * 24 > hours)
    settings = load_settings({**BASE, "LEADS_RETENTION_DAYS": str(days), "LEADS_DEDUPE_HOURS": str(hours)})
    assume(not settings.warnings)
    with contextlib.suppress(OverflowError):
        horizon = settings.import_horizon(now)
        assert horizon is not None
        row_time = horizon + after
        posted = row_time + gap * timedelta(hours=hours)  # a copy within the window, before or after the row
        assert posted >= now - timedelta(days=days)  # the purge's cutoff: the copy (and its marker) is kept
