"""Dynamics 365 destination against real msal / azure-identity and local fakes of Azure AD and Dataverse.

Each test asserts what the app sent (token form, URL, headers, body) and what it concluded (Delivered
record id, Skipped reason, or the error type and its sentence)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from leads.core.destination import Delivered, Skipped
from leads.core.errors import ConfigurationError, LeadRejectedError, SettingsError, TransientDestinationError
from leads.core.model import Customer, Lead, LeadSource, StoredLead
from leads.core.settings import load_settings
from leads.destinations.dynamics import DynamicsDestination, create, record_id_for
from tests.support import azure_ad
from tests.support.azure_ad import (
    APP_USER_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    AzureWorld,
    FakeManagedIdentity,
    make_client_certificate,
)
from tests.support.fake_http import FakeServer, Reply

LEAD_ID = "20251121T044355123Z-9f3a1c2e"


def stored_lead(lead_id: str = LEAD_ID, **changes: object) -> StoredLead:
    lead = Lead(
        customer=Customer(first_name="Ada", last_name="Lovelace", email="ada@contoso.com", phone="16175555555",
                          country="USA", company="Contoso", title="CTO"),
        lead_source=LeadSource(raw="AzureMarketplace-INS|contoso.analytics", source="AzureMarketplace",
                               action="INS", offer="contoso.analytics"),
        action_code="INS",
        offer_title="Contoso Analytics",
        description="Campaigns: mktcmpid=spring",
        campaign={"mktcmpid": "spring"},
    )
    for name, value in changes.items():
        lead = Lead(**{**lead.__dict__, name: value})
    return StoredLead(lead_id, datetime(2025, 11, 21, 4, 43, 55, tzinfo=UTC), lead)


def destination(world: AzureWorld, **env: str) -> DynamicsDestination:
    return create(load_settings(world.env(**env)))


EXPECTED_BODY = {
    "firstname": "Ada",
    "lastname": "Lovelace",
    "emailaddress1": "ada@contoso.com",
    "telephone1": "16175555555",
    "companyname": "Contoso",
    "jobtitle": "CTO",
    "address1_country": "USA",
    "subject": "Contoso Analytics — Install",
    "description": "Campaigns: mktcmpid=spring\n"
                   "Action: INS — Install: the customer acquired the offer on Azure Marketplace or AppSource\n"
                   "LeadSource: AzureMarketplace-INS|contoso.analytics\n"
                   "Campaign: mktcmpid=spring\n"
                   f"Marketplace lead id: {LEAD_ID}",
    "leadsourcecode": 8,
}


# --- happy path ---------------------------------------------------------------------------------------

def test_creates_the_lead_with_a_client_secret_token_and_returns_the_record_id(world: AzureWorld) -> None:
    result = destination(world).deliver(stored_lead())

    record_id = record_id_for(LEAD_ID)
    assert result == Delivered(record_id)
    assert uuid.UUID(record_id).version == 5

    (token_request,) = world.aad.token_requests()
    form = {k: v[0] for k, v in token_request.form().items()}
    assert form["grant_type"] == "client_credentials"
    assert form["client_id"] == CLIENT_ID
    assert form["client_secret"] == CLIENT_SECRET
    assert form["scope"] == f"{world.dataverse.url}/.default"

    (sent,) = world.dataverse.lead_requests()
    assert sent.path == f"/api/data/v9.2/leads({record_id})"
    assert sent.headers["Authorization"] == f"Bearer {world.aad.access_token}"
    assert sent.headers["OData-Version"] == "4.0"
    assert sent.headers["OData-MaxVersion"] == "4.0"
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["Content-Type"].startswith("application/json")
    assert sent.headers["If-None-Match"] == "*"
    assert sent.json() == EXPECTED_BODY
    assert world.dataverse.records == {record_id: EXPECTED_BODY}


def test_the_token_is_cached_between_leads(world: AzureWorld) -> None:
    dynamics = destination(world)
    dynamics.deliver(stored_lead("20251121T044355123Z-00000001"))
    dynamics.deliver(stored_lead("20251121T044355123Z-00000002"))

    assert len(world.aad.token_requests()) == 1
    assert len(world.dataverse.records) == 2


def test_field_map_setting_drops_adds_and_overrides_columns(world: AzureWorld) -> None:
    field_map = {"jobtitle": None, "new_campaign": "campaign.mktcmpid", "leadsourcecode": "=10",
                 "new_marketplaceleadid": "id"}
    destination(world, LEADS_DYNAMICS_FIELD_MAP=json.dumps(field_map)).deliver(stored_lead())

    body = world.dataverse.lead_requests()[0].json()
    assert "jobtitle" not in body
    assert body["new_campaign"] == "spring"
    assert body["leadsourcecode"] == 10
    assert body["new_marketplaceleadid"] == LEAD_ID
    assert body["firstname"] == "Ada"


def test_a_malformed_field_map_is_a_settings_error(world: AzureWorld) -> None:
    with pytest.raises(SettingsError, match="LEADS_DYNAMICS_FIELD_MAP"):
        destination(world, LEADS_DYNAMICS_FIELD_MAP='{"jobtitle": 3}')


def test_a_redelivered_lead_creates_no_second_record(world: AzureWorld) -> None:
    first = destination(world).deliver(stored_lead())
    # Another worker (a new destination object, a new token) gets the same lead again.
    again = destination(world).deliver(stored_lead())

    assert first == again == Delivered(record_id_for(LEAD_ID))
    assert len(world.dataverse.records) == 1
    sent = world.dataverse.lead_requests()
    assert len(sent) == 2
    assert sent[0].path == sent[1].path
    assert all(r.headers["If-None-Match"] == "*" for r in sent)


def test_different_leads_get_different_record_ids() -> None:
    assert record_id_for("20251121T044355123Z-00000001") != record_id_for("20251121T044355123Z-00000002")
    assert record_id_for(LEAD_ID) == record_id_for(LEAD_ID)


# --- .edu leads without personal data -------------------------------------------------------------------

def test_an_edu_lead_without_personal_data_is_forwarded_with_what_it_has(world: AzureWorld) -> None:
    result = destination(world).deliver(stored_lead(customer=Customer(company="Contoso University"), is_edu=True))

    assert result == Delivered(record_id_for(LEAD_ID))
    body = world.dataverse.lead_requests()[0].json()
    assert not {"firstname", "lastname", "emailaddress1", "telephone1"} & set(body)
    assert body["companyname"] == "Contoso University"
    assert body["subject"] == "Contoso Analytics — Install"


def test_an_edu_lead_the_crm_refuses_for_missing_data_is_skipped_not_retried(world: AzureWorld) -> None:
    # An environment whose rules require a last name.
    world.dataverse.lead_reply = azure_ad.dataverse_error(
        400, "0x80040200", "A validation error occurred. A value for the 'lastname' attribute is required.")

    result = destination(world).deliver(stored_lead(customer=Customer(), is_edu=True))

    assert isinstance(result, Skipped)
    assert "no personal data" in result.reason
    assert ".edu" in result.reason


# --- every Dynamics error of the FAQ ----------------------------------------------------------------------

AAD_ERRORS = {
    "tenant not found (AADSTS90002)": (
        lambda w: w.aad.unknown_tenant("11111111-2222-3333-4444-555555555555",
                                       azure_ad.tenant_not_found("11111111-2222-3333-4444-555555555555")),
        {"LEADS_DYNAMICS_TENANT_ID": "11111111-2222-3333-4444-555555555555"},
        ["AADSTS90002", "Directory (tenant) ID", "Microsoft Entra ID > Overview"],
    ),
    "tenant identifier not valid (AADSTS900023)": (
        lambda w: w.aad.unknown_tenant("contoso", azure_ad.tenant_malformed("contoso")),
        {"LEADS_DYNAMICS_TENANT_ID": "contoso"},
        ["AADSTS900023", "Directory (tenant) ID", "must be a GUID"],
    ),
    "application not found (AADSTS700016)": (
        lambda w: None,
        {"LEADS_DYNAMICS_CLIENT_ID": "99999999-8888-7777-6666-555555555555"},
        ["AADSTS700016", "Application (client) ID", "App registrations"],
    ),
    "invalid client secret (AADSTS7000215)": (
        lambda w: None,
        {"LEADS_DYNAMICS_CLIENT_SECRET": "not-the-secret-value"},
        ["AADSTS7000215", "client secret", "Create a new client secret"],
    ),
    "expired client secret (AADSTS7000222)": (
        lambda w: setattr(w.aad, "token_error", azure_ad.expired_secret(CLIENT_ID)),
        {},
        ["AADSTS7000222", "expired", "Create a new client secret"],
    ),
    "user or password (AADSTS50126)": (
        lambda w: setattr(w.aad, "token_error", azure_ad.bad_password()),
        {},
        ["AADSTS50126", "application user", "client secret"],
    ),
    "instance unknown to the tenant (AADSTS500011)": (
        lambda w: setattr(w.aad, "resource", "https://contoso.crm4.dynamics.com"),
        {},
        ["AADSTS500011", "instance URL", "Power Platform admin center"],
    ),
}


@pytest.mark.parametrize("case", list(AAD_ERRORS))
def test_each_azure_ad_error_is_a_configuration_error_with_its_fix(world: AzureWorld, case: str) -> None:
    arrange, env, expected = AAD_ERRORS[case]
    arrange(world)

    with pytest.raises(ConfigurationError) as raised:
        destination(world, **env).deliver(stored_lead())

    for words in expected:
        assert words in raised.value.explanation
    assert CLIENT_SECRET not in raised.value.explanation
    assert "not-the-secret-value" not in raised.value.explanation
    assert world.dataverse.lead_requests() == []  # nothing reached Dynamics without a token


def test_a_tenant_that_cannot_be_in_a_url_is_refused_before_any_request(world: AzureWorld) -> None:
    with pytest.raises(ConfigurationError, match="AADSTS900023"):
        destination(world, LEADS_DYNAMICS_TENANT_ID="contoso/../x").deliver(stored_lead())
    assert world.aad.server.requests == []


DATAVERSE_ERRORS = {
    "missing prvCreateLead (0x80040220)": (
        azure_ad.missing_create_lead, ["prvCreateLead", "0x80040220", "Create and Read on Lead"]),
    "field-level security on leadsourcecode": (
        azure_ad.secured_leadsourcecode, ["field-level security", "leadsourcecode", "column security profile"]),
    "no roles (0x80042F09)": (
        azure_ad.no_roles, ["no security role", "0x80042F09", "SecLib::RetrievePrivilegeForUser",
                            "Application users"]),
    "no application user (403)": (
        azure_ad.not_application_user, ["application user", "Application users"]),
    "not a Dataverse instance (404 HTML)": (
        lambda: azure_ad.html_page(404), ["does not point to a Dynamics 365 instance", "Environment URL"]),
    "not a Dataverse instance (200 HTML)": (
        lambda: azure_ad.html_page(200), ["does not point to a Dynamics 365 instance", "Environment URL"]),
    "a column the lead table does not have": (
        lambda: azure_ad.invalid_property("new_campaign"), ["new_campaign", "LEADS_DYNAMICS_FIELD_MAP"]),
}


@pytest.mark.parametrize("case", list(DATAVERSE_ERRORS))
def test_each_dataverse_refusal_is_a_configuration_error_with_its_fix(world: AzureWorld, case: str) -> None:
    reply, expected = DATAVERSE_ERRORS[case]
    world.dataverse.lead_reply = reply()

    with pytest.raises(ConfigurationError) as raised:
        destination(world).deliver(stored_lead())

    for words in expected:
        assert words in raised.value.explanation
    assert len(world.dataverse.lead_requests()) == 1


def test_an_instance_url_whose_host_does_not_exist_is_a_configuration_error(world: AzureWorld) -> None:
    # RFC 6761: .invalid never resolves. The token is asked for that resource, so Azure AD must know it.
    world.aad.resource = "https://contoso.invalid"

    with pytest.raises(ConfigurationError) as raised:
        destination(world, LEADS_DYNAMICS_URL="https://contoso.invalid").deliver(stored_lead())

    assert "contoso.invalid" in raised.value.explanation
    assert "does not exist" in raised.value.explanation
    assert "Environment URL" in raised.value.explanation


def test_an_instance_that_does_not_answer_is_retried_with_the_faq_timeout_explained(world: AzureWorld) -> None:
    world.dataverse.lead_reply = Reply(204, None, {"OData-Version": "4.0"}, delay=2.5)

    with pytest.raises(TransientDestinationError) as raised:
        destination(world, LEADS_HTTP_TIMEOUT="1").deliver(stored_lead())

    assert "did not answer within 1 seconds" in raised.value.explanation
    assert "00:02:00" in raised.value.explanation
    assert "LEADS_DYNAMICS_URL" in raised.value.explanation


def test_a_value_the_crm_refuses_rejects_this_lead_without_quoting_the_value(world: AzureWorld) -> None:
    world.dataverse.lead_reply = azure_ad.value_too_long("firstname", "Ada")

    with pytest.raises(LeadRejectedError) as raised:
        destination(world).deliver(stored_lead())

    assert "firstname" in raised.value.explanation
    assert "0x80044331" in raised.value.explanation
    assert "'Ada'" not in raised.value.explanation  # personal data stays out of the error


@pytest.mark.parametrize(("reply", "seconds"), [
    (lambda: azure_ad.throttled(120), 120.0),
    (lambda: azure_ad.dataverse_error(503, "0x80040216", "Service Unavailable", {"Retry-After": "30"}), 30.0),
])
def test_throttling_and_server_errors_are_retried_after_the_delay_asked(world: AzureWorld, reply, seconds) -> None:
    world.dataverse.lead_reply = reply()

    with pytest.raises(TransientDestinationError) as raised:
        destination(world).deliver(stored_lead())

    assert raised.value.retry_after == seconds


# --- certificate and managed identity -----------------------------------------------------------------

@pytest.mark.parametrize("as_file", [False, True])
def test_a_certificate_signs_the_token_request_instead_of_a_secret(world: AzureWorld, tmp_path: Path,
                                                                   as_file: bool) -> None:
    certificate = make_client_certificate()
    world.aad.app.certificate = certificate
    value = certificate.pem
    if as_file:
        (tmp_path / "app.pem").write_text(certificate.pem)
        value = str(tmp_path / "app.pem")

    dynamics = destination(world, LEADS_DYNAMICS_CLIENT_SECRET="", LEADS_DYNAMICS_CLIENT_CERTIFICATE=value)
    result = dynamics.deliver(stored_lead())

    assert result == Delivered(record_id_for(LEAD_ID))
    form = {k: v[0] for k, v in world.aad.token_requests()[0].form().items()}
    assert "client_secret" not in form
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert form["client_assertion"].count(".") == 2  # verified by the fake against the certificate
    assert certificate.thumbprint in dynamics.tokens.describe()


def test_a_certificate_setting_without_a_key_says_what_to_export(world: AzureWorld) -> None:
    certificate = make_client_certificate()
    only_certificate = certificate.pem[certificate.pem.index("-----BEGIN CERTIFICATE-----"):]

    with pytest.raises(ConfigurationError, match="no unencrypted private key"):
        destination(world, LEADS_DYNAMICS_CLIENT_SECRET="",
                    LEADS_DYNAMICS_CLIENT_CERTIFICATE=only_certificate).deliver(stored_lead())


@pytest.mark.parametrize("client_id", ["", "7c1d2e3f-user-assigned"])
def test_the_managed_identity_needs_no_secret(world: AzureWorld, monkeypatch: pytest.MonkeyPatch,
                                              client_id: str) -> None:
    identity = FakeManagedIdentity(world.aad.access_token)
    with identity.server:
        monkeypatch.setenv("IDENTITY_ENDPOINT", identity.endpoint)
        monkeypatch.setenv("IDENTITY_HEADER", identity.header)
        dynamics = destination(world, LEADS_DYNAMICS_CLIENT_SECRET="", LEADS_DYNAMICS_TENANT_ID="",
                               LEADS_DYNAMICS_CLIENT_ID=client_id)
        result = dynamics.deliver(stored_lead())

    assert result == Delivered(record_id_for(LEAD_ID))
    (asked,) = identity.server.requests
    assert asked.query["resource"] == [world.dataverse.url]
    assert asked.query["api-version"] == ["2019-08-01"]
    assert asked.headers["X-IDENTITY-HEADER"] == identity.header
    assert asked.query.get("client_id") == ([client_id] if client_id else None)
    assert world.aad.token_requests() == []  # no app registration, no secret
    assert world.dataverse.lead_requests()[0].headers["Authorization"] == f"Bearer {world.aad.access_token}"


def test_without_secret_certificate_or_identity_the_fix_is_named(world: AzureWorld) -> None:
    with pytest.raises(ConfigurationError) as raised:
        destination(world, LEADS_DYNAMICS_CLIENT_SECRET="").deliver(stored_lead())

    assert "managed identity" in raised.value.explanation
    assert "LEADS_DYNAMICS_CLIENT_SECRET" in raised.value.explanation


def test_an_unreachable_azure_ad_is_retried(world: AzureWorld) -> None:
    closed = FakeServer()
    port_url = closed.url.replace("http://", "https://")  # bound, never started, then closed
    closed._server.server_close()

    with pytest.raises(TransientDestinationError, match="Could not connect to Azure AD"):
        destination(world, LEADS_AUTHORITY_HOST=port_url).deliver(stored_lead())


def test_check_reports_each_step(world: AzureWorld) -> None:
    checks = destination(world).check()

    assert [(c.name, c.ok) for c in checks] == [("token", True), ("instance", True), ("create privilege", True)]
    assert APP_USER_ID in checks[1].message
    assert all(CLIENT_SECRET not in c.message for c in checks)
    assert world.dataverse.records == {}  # the check creates nothing
