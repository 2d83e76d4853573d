"""Settings: read once into one typed object, every one documented, every mistake a sentence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leads.errors import SettingsError
from leads.settings import SETTINGS, load_settings

ROOT = Path(__file__).resolve().parents[1]
BASE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_documented_in_readme_and_the_sample(setting) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sample = json.loads((ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
    assert f"`{setting.name}`" in readme
    assert setting.name in sample


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


def test_identity_based_storage_needs_both_endpoints() -> None:
    settings = load_settings({"AzureWebJobsStorage__tableServiceUri": "https://a.table.core.windows.net",
                              "AzureWebJobsStorage__queueServiceUri": "https://a.queue.core.windows.net"})
    assert settings.storage.uses_identity
    with pytest.raises(SettingsError, match="AzureWebJobsStorage__queueServiceUri"):
        load_settings({"AzureWebJobsStorage__tableServiceUri": "https://a.table.core.windows.net"})


@pytest.mark.parametrize(("env", "words"), [
    ({"LEADS_DESTINATIONS": "email,pipedrive"}, "pipedrive, which is not a destination"),
    ({"LEADS_EMAIL_INCLUDE_PII": "maybe"}, "LEADS_EMAIL_INCLUDE_PII must be true or false"),
    ({"LEADS_SMTP_SECURITY": "tls"}, "none, starttls or ssl"),
    ({"LEADS_SMTP_PORT": "smtp"}, "LEADS_SMTP_PORT must be a whole number"),
    ({"LEADS_WEBHOOK_URL": "http://hooks.example.com/x"}, "LEADS_WEBHOOK_URL must start with https://"),
    ({"LEADS_DYNAMICS_URL": "contoso.crm.dynamics.com"}, "LEADS_DYNAMICS_URL must be a full URL"),
    ({"LEADS_RETRY_DELAYS": "30,-1"}, "LEADS_RETRY_DELAYS must be at least 0"),
])
def test_mistakes_are_explained(env: dict[str, str], words: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, **env})
    assert words in caught.value.explanation


def test_plain_http_is_allowed_to_loopback_only() -> None:
    assert load_settings({**BASE, "LEADS_WEBHOOK_URL": "http://127.0.0.1:8080/hook"}).webhook.url.startswith("http://")
    assert load_settings({**BASE, "LEADS_WEBHOOK_URL": "http://localhost:8080/hook"}).webhook.url


def test_secrets_do_not_appear_in_the_settings_repr() -> None:
    settings = load_settings({**BASE, "LEADS_SMTP_PASSWORD": "hunter2-secret", "LEADS_HUBSPOT_TOKEN": "pat-na1-xyz",
                              "LEADS_DYNAMICS_CLIENT_SECRET": "dyn-secret-value"})
    text = repr(settings)
    assert "hunter2-secret" not in text and "pat-na1-xyz" not in text and "dyn-secret-value" not in text


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
    with pytest.raises(SettingsError, match="LEADS_FALLBACK_STORAGE must be a table endpoint"):
        load_settings({**BASE, "LEADS_FALLBACK_STORAGE": "stb"})
    with pytest.raises(SettingsError, match="LEADS_FALLBACK_STORAGE must start with https://"):
        load_settings({**BASE, "LEADS_FALLBACK_STORAGE": "http://stb.table.core.windows.net"})
