"""HubSpot destination against a fake HubSpot (a real loopback HTTP server with canned answers).

Canned answers copy these documents:
- [CONTACTS] HubSpot "Contacts" guide (POST /crm/v3/objects/contacts with a properties object),
  https://developers.hubspot.com/docs/api-reference/latest/crm/objects/contacts/guide
- [UPDATE] "Update a contact" (PATCH /crm/v3/objects/contacts/{email}?idProperty=email),
  https://developers.hubspot.com/docs/api-reference/2026-03/crm/objects/contacts/update-contact
- [ERRORS] "Error handling" (401, 403; error body {status, message, correlationId, category, errors}),
  https://developers.hubspot.com/docs/api-reference/error-handling
- [CONFLICT] the 409 body {"status":"error","message":"Contact already exists. Existing ID: ...","category":"CONFLICT"},
  as reported in HubSpot/hubspot-api-nodejs issue #545 (https://github.com/HubSpot/hubspot-api-nodejs/issues/545)
- [SCOPES] the MISSING_SCOPES body with errors[].context.requiredScopes, HubSpot/hubspot-api-nodejs issue #268
  (https://github.com/HubSpot/hubspot-api-nodejs/issues/268)
- [VALIDATION] "Property values were not valid: [{...,\"error\":\"PROPERTY_DOESNT_EXIST\",\"name\":...}]" with
  category VALIDATION_ERROR, as returned by HubSpot and quoted in public integrations (e.g. INVALID_EMAIL).
- [READ] "Retrieve a contact" (GET /crm/v3/objects/contacts/{email}?idProperty=email&properties=...; answers
  {id, properties, createdAt, updatedAt, archived}; 404 OBJECT_NOT_FOUND when there is none),
  https://developers.hubspot.com/docs/api-reference/latest/crm/objects/contacts/guide
- [NOTES] "Activities | Notes" (POST /crm/v3/objects/notes with hs_timestamp, hs_note_body and an association of
  type 202 note-to-contact; scopes crm.objects.contacts.read/.write; answers 201 with the note),
  https://developers.hubspot.com/docs/api-reference/latest/crm/activities/notes/guide.md
- [TOKEN-INFO] "Private apps" (POST /oauth/v2/private-apps/get/access-token-info lists a token's scopes),
  https://developers.hubspot.com/docs/api/private-apps
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from leads.core.destination import Delivered, Skipped
from leads.core.errors import ConfigurationError, LeadRejectedError, TransientDestinationError
from leads.core.model import Customer
from leads.destinations import build_destination
from leads.destinations.hubspot import HubSpot
from tests.destinations.sample import edu_lead, settings, stored_lead
from tests.support.fake_http import FakeServer, Reply

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
CONTACTS = "/crm/v3/objects/contacts"
BY_EMAIL = f"{CONTACTS}/ada@contoso.example"


def contact(contact_id: str = "512") -> dict[str, object]:
    return {"id": contact_id, "properties": {"email": "ada@contoso.example"}, "createdAt": "2026-11-21T12:00:00Z",
            "updatedAt": "2026-11-21T12:00:00Z", "archived": False}  # [CONTACTS]


def error(status: int, category: str, message: str, **more: object) -> Reply:
    return Reply(status, {"status": "error", "message": message, "correlationId": "c1010b3d-3453-4fe8-a0cd",
                          "category": category, **more})  # [ERRORS]


def missing_scopes() -> Reply:
    return error(403, "MISSING_SCOPES", "This app hasn't been granted all required scopes to make this call.",
                 errors=[{"message": "One or more of the following scopes are required.",
                          "context": {"requiredScopes": ["crm.objects.contacts.write"]}}])  # [SCOPES]


def validation(*problems: tuple[str, str]) -> Reply:
    items = [{"isValid": False, "message": f"problem with {name}: ada@contoso", "error": code, "name": name}
             for code, name in problems]
    return error(400, "VALIDATION_ERROR", f"Property values were not valid: {json.dumps(items)}")  # [VALIDATION]


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as fake:
        yield fake


def hubspot(server: FakeServer, **env: str) -> HubSpot:
    destination = build_destination("hubspot", settings(LEADS_HUBSPOT_URL=server.url, LEADS_HUBSPOT_TOKEN=TOKEN, **env))
    assert isinstance(destination, HubSpot)
    return destination


def test_creates_a_contact_with_the_private_app_token_and_standard_properties(server: FakeServer) -> None:
    server.on("POST", CONTACTS, Reply(201, contact()))
    destination = hubspot(server)
    assert (destination.name, destination.is_crm) == ("hubspot", True)

    assert destination.deliver(stored_lead()) == Delivered("512")

    [create] = server.sent("POST", CONTACTS)
    assert create.headers["Authorization"] == f"Bearer {TOKEN}"
    properties = create.json()["properties"]
    assert {k: v for k, v in properties.items() if k != "message"} == {
        "firstname": "Ada", "lastname": "Lovelace", "email": "ada@contoso.example", "phone": "16175555555",
        "company": "Contoso", "jobtitle": "CTO", "country": "US"}
    assert properties["message"].splitlines() == [
        "Microsoft commercial marketplace lead: Install: the customer acquired the offer on Azure Marketplace "
        "or AppSource.", "Offer: Contoso Analytics.", "Lead source: AzureMarketplace-INS|contoso.analytics.",
        "Please call me about pricing."]


def known_contact(**properties: object) -> Reply:
    """[READ]: what sales already wrote on the contact; HubSpot returns null or "" for empty properties."""
    return Reply(200, {"id": "512", "properties": {"email": "ada@contoso.example", **properties},
                       "createdAt": "2025-03-02T09:00:00Z", "updatedAt": "2026-10-01T16:20:00Z", "archived": False})


NOTE_CREATED = Reply(201, {"id": "90017", "properties": {"hs_createdate": "2026-11-21T12:00:01.000Z"},
                     "createdAt": "2026-11-21T12:00:01.000Z", "archived": False})  # [NOTES]


def a_known_contact(server: FakeServer, read: Reply | None = None, note: Reply | None = None) -> None:
    """HubSpot as it answers for a contact it already has: 409 on create [CONFLICT], the contact [READ], the
    update [UPDATE], the note [NOTES]."""
    server.on("POST", CONTACTS, error(409, "CONFLICT", "Contact already exists. Existing ID: 512"))
    server.on("GET", BY_EMAIL, read or known_contact())
    server.on("PATCH", BY_EMAIL, Reply(200, contact()))
    server.on("POST", "/crm/v3/objects/notes", note or NOTE_CREATED)


def test_a_known_contact_gets_only_its_empty_properties_and_the_lead_as_a_note(server: FakeServer) -> None:
    a_known_contact(server, known_contact(firstname="Augusta Ada", lastname="King", jobtitle="Countess", phone="",
                                          company=None))

    assert hubspot(server).deliver(stored_lead()) == Delivered("512")

    [read] = server.sent("GET", BY_EMAIL)
    assert read.query["idProperty"] == ["email"]
    assert set(read.query["properties"][0].split(",")) >= {"firstname", "lastname", "jobtitle", "company"}
    [update] = server.sent("PATCH", BY_EMAIL)
    assert update.query == {"idProperty": ["email"]}
    changed = update.json()["properties"]
    assert set(changed) == {"phone", "company", "country", "message"}  # sales' name and title stay
    assert changed["company"] == "Contoso"
    [note] = server.sent("POST", "/crm/v3/objects/notes")
    body = note.json()
    assert body["associations"] == [{"to": {"id": "512"}, "types": [
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}]}]
    assert body["properties"]["hs_timestamp"] == "2026-11-21T12:00:00.000Z"
    assert "Offer: Contoso Analytics." in body["properties"]["hs_note_body"]
    assert "20261121T120000000Z-0a1b2c3d" in body["properties"]["hs_note_body"]


def test_a_known_contact_with_every_property_filled_is_not_written_only_noted(server: FakeServer) -> None:
    a_known_contact(server, known_contact(**dict.fromkeys((
        "firstname", "lastname", "phone", "company", "jobtitle", "country", "message"), "sales wrote this")))
    assert hubspot(server).deliver(stored_lead()) == Delivered("512")
    assert server.sent("PATCH", BY_EMAIL) == []
    assert len(server.sent("POST", "/crm/v3/objects/notes")) == 1


def test_update_existing_overwrites_the_contact_as_before_and_still_notes_it(server: FakeServer) -> None:
    a_known_contact(server)
    assert hubspot(server, LEADS_HUBSPOT_UPDATE_EXISTING="true").deliver(stored_lead()) == Delivered("512")
    assert server.sent("GET", BY_EMAIL) == []
    [update] = server.sent("PATCH", BY_EMAIL)
    assert update.json()["properties"]["lastname"] == "Lovelace"
    assert server.sent("POST", "/crm/v3/objects/notes")[0].json()["associations"][0]["to"] == {"id": "512"}


def test_a_new_contact_gets_no_note_its_message_property_holds_the_lead(server: FakeServer) -> None:
    server.on("POST", CONTACTS, Reply(201, contact()))
    hubspot(server).deliver(stored_lead())
    assert server.sent("POST", "/crm/v3/objects/notes") == []


def test_the_note_escapes_the_leads_markup(server: FakeServer) -> None:
    a_known_contact(server)
    hubspot(server).deliver(stored_lead(description='<img src=x onerror="alert(1)"> & more'))
    body = server.sent("POST", "/crm/v3/objects/notes")[0].json()["properties"]["hs_note_body"]
    assert "<img" not in body
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; more" in body
    assert "<br>" in body


def test_a_note_refused_for_a_missing_scope_names_it(server: FakeServer) -> None:
    a_known_contact(server, note=missing_scopes())
    with pytest.raises(ConfigurationError) as raised:
        hubspot(server).deliver(stored_lead())
    assert "crm.objects.contacts.write" in raised.value.explanation


def test_the_field_map_setting_changes_properties(server: FakeServer) -> None:
    server.on("POST", CONTACTS, Reply(201, contact()))
    hubspot(server, LEADS_HUBSPOT_FIELD_MAP='{"message": null, "hs_lead_status": "action_code"}').deliver(stored_lead())
    properties = server.sent("POST", CONTACTS)[0].json()["properties"]
    assert "message" not in properties
    assert properties["hs_lead_status"] == "INS"


def test_a_bad_token_names_the_setting_and_how_to_rotate_it(server: FakeServer) -> None:
    server.on("POST", CONTACTS, error(401, "INVALID_AUTHENTICATION", "Authentication credentials not found."))
    with pytest.raises(ConfigurationError) as raised:
        hubspot(server).deliver(stored_lead())
    assert "LEADS_HUBSPOT_TOKEN" in raised.value.explanation
    assert "Private Apps" in raised.value.explanation and "Rotate" in raised.value.explanation
    assert TOKEN not in raised.value.explanation


def test_missing_scopes_name_the_write_scope(server: FakeServer) -> None:
    server.on("POST", CONTACTS, missing_scopes())
    with pytest.raises(ConfigurationError) as raised:
        hubspot(server).deliver(stored_lead())
    assert "crm.objects.contacts.write" in raised.value.explanation


def test_a_property_that_does_not_exist_is_a_configuration_error_naming_it(server: FakeServer) -> None:
    server.on("POST", CONTACTS, validation(("PROPERTY_DOESNT_EXIST", "campaign_code")))
    with pytest.raises(ConfigurationError) as raised:
        hubspot(server, LEADS_HUBSPOT_FIELD_MAP='{"campaign_code": "campaign.mktcmpid"}').deliver(stored_lead())
    assert "campaign_code" in raised.value.explanation
    assert "LEADS_HUBSPOT_FIELD_MAP" in raised.value.explanation


def test_an_invalid_email_rejects_the_lead_without_echoing_it(server: FakeServer) -> None:
    server.on("POST", CONTACTS, validation(("INVALID_EMAIL", "email")))
    with pytest.raises(LeadRejectedError) as raised:
        hubspot(server).deliver(stored_lead())
    assert "INVALID_EMAIL" in raised.value.explanation
    assert "ada@contoso" not in raised.value.explanation


def test_an_option_the_property_does_not_have_rejects_the_lead(server: FakeServer) -> None:
    server.on("POST", CONTACTS, validation(("INVALID_OPTION", "hs_lead_status")))
    with pytest.raises(LeadRejectedError) as raised:
        hubspot(server, LEADS_HUBSPOT_FIELD_MAP='{"hs_lead_status": "action_code"}').deliver(stored_lead())
    assert "hs_lead_status" in raised.value.explanation


def test_429_is_retried_after_hubspots_delay(server: FakeServer) -> None:
    server.on("POST", CONTACTS, Reply(429, {"status": "error", "message": "You have reached your secondly limit.",
                                            "category": "RATE_LIMITS"}, headers={"Retry-After": "10"}))
    with pytest.raises(TransientDestinationError) as raised:
        hubspot(server).deliver(stored_lead())
    assert raised.value.retry_after == 10


def test_a_contact_gone_between_conflict_and_update_is_retried(server: FakeServer) -> None:
    server.on("POST", CONTACTS, error(409, "CONFLICT", "Contact already exists. Existing ID: 512"))
    server.on("GET", BY_EMAIL, error(404, "OBJECT_NOT_FOUND", "resource not found"))
    with pytest.raises(TransientDestinationError):
        hubspot(server).deliver(stored_lead())
    server.on("PATCH", BY_EMAIL, error(404, "OBJECT_NOT_FOUND", "resource not found"))
    with pytest.raises(TransientDestinationError):
        hubspot(server, LEADS_HUBSPOT_UPDATE_EXISTING="true").deliver(stored_lead())


def test_a_lead_without_email_is_skipped(server: FakeServer) -> None:
    for lead in (edu_lead(), stored_lead(Customer(first_name="Ada", company="Contoso"))):
        outcome = hubspot(server).deliver(lead)
        assert isinstance(outcome, Skipped)
        assert "e-mail" in outcome.reason
    assert server.requests == []


def test_check_reads_a_contact_the_token_scopes_and_the_properties(server: FakeServer) -> None:
    server.on("GET", CONTACTS, Reply(200, {"results": [contact()]}))
    server.on("POST", "/oauth/v2/private-apps/get/access-token-info", Reply(200, {
        "userId": 1, "hubId": 62515, "appId": 7, "scopes": ["crm.objects.contacts.read"]}))  # [TOKEN-INFO]
    server.on("GET", "/crm/v3/properties/contacts", Reply(200, {"results": [
        {"name": n, "modificationMetadata": {"readOnlyValue": False}}
        for n in ("firstname", "lastname", "email", "phone", "company", "jobtitle", "country", "message")]}))
    lines = {c.name: c for c in hubspot(server).check()}
    assert lines["read contacts"].ok
    assert server.sent("GET", CONTACTS)[0].query == {"limit": ["1"]}
    assert lines["mapped properties"].ok
    assert not lines["scopes"].ok
    assert "crm.objects.contacts.write" in lines["scopes"].message
    assert all(TOKEN not in c.message for c in lines.values())


def test_check_names_a_mapped_property_hubspot_lacks(server: FakeServer) -> None:
    server.on("GET", CONTACTS, Reply(200, {"results": []}))
    server.on("GET", "/crm/v3/properties/contacts", Reply(200, {"results": [{"name": "email"}]}))
    lines = {c.name: c for c in hubspot(server).check()}
    assert lines["scopes"].ok  # the token-info endpoint did not answer: not verifiable, not a failure
    assert not lines["mapped properties"].ok
    assert "jobtitle" in lines["mapped properties"].message
