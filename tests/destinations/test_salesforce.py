"""Salesforce destination against a fake Salesforce (a real loopback HTTP server with canned answers).

Canned answers copy these documents:
- [TOKEN] "Step Three: Connect to Connect REST API Using OAuth" (client credentials flow, token answer),
  https://developer.salesforce.com/docs/atlas.en-us.262.0.chatterapi.meta/chatterapi/quickstart_connecting.htm
- [CREATE] "Create a Record", https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api/dome_sobject_create.htm
- [UPSERT] "Insert or Update (Upsert) a Record Using an External ID",
  https://developer.salesforce.com/docs/platform/api-rest/guide/dome-upsert.html
- [ERRORS] "Status Codes and Error Responses": an error is a JSON array of {message, errorCode, fields} (401
  INVALID_SESSION_ID; 403 REQUEST_LIMIT_EXCEEDED; 300 for an External ID held by several records, whose body is
  the list of matching records, without errorCode),
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm ; the codes
  (REQUIRED_FIELD_MISSING, INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST, FIELD_CUSTOM_VALIDATION_EXCEPTION,
  INVALID_FIELD, FIELD_INTEGRITY_EXCEPTION, ...) are the StatusCode values of the SOAP API's "Core Data Types
  Used in API Calls" (StatusCode), https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_concepts_core_data_objects.htm
- [LEADSOURCE] Lead Source is a standard picklist (Lead object reference, LeadSource: "picklist",
  https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_lead.htm);
  a new org's values, as the Metadata API retrieves its LeadSource StandardValueSet: Web, Phone Inquiry, Partner
  Referral, Purchased List, Other (https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/standardvalueset_names.htm
  names the value set). Salesforce's documentation names no list of the values themselves.
- [OAUTH-ERRORS] "OAuth 2.0 Authorization Errors" ({"error", "error_description"} with HTTP 400),
  https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_flow_errors.htm ; the descriptions
  "client identifier invalid", "invalid client credentials" and "no client credentials user enabled" as
  seen in public integrations' troubleshooting notes (e.g. Sumo Logic's Salesforce source docs).
- [W2L] docs/marketplace-leads.md §5 (Partner Center's Web-to-Lead fields) and Salesforce knowledge article
  000171026 ("[not provided]" placeholders), https://help.salesforce.com/apex/HTViewSolution?id=000171026
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from leads.core.destination import Delivered, Skipped
from leads.core.errors import ConfigurationError, LeadRejectedError, TransientDestinationError
from leads.core.model import Customer
from leads.destinations import build_destination
from leads.destinations.salesforce import SalesforceRest, SalesforceWebToLead
from tests.destinations.sample import LEAD_ID, edu_lead, settings, stored_lead
from tests.support.fake_http import FakeServer, Reply

SECRET = "8A4BE698BCA216718ECB0B1DCA294C69732EAD9472A1790F8FED38DD2E02B5FA"
CLIENT_ID = "3MVG9VwZxxW3bBQjhE6m21CG2nSS4WC.GNbZCtKeQxFH7218ns6xOLCNnJVKnZFTZWKzt2qwSFqt2taMt5mcr"
ACCESS_TOKEN = "00DS7000000oxzo!AR8AQPXAhJNveaXDdPzbrtXqPykdVxBxtbLycpiyPmKyJm0Ku8gKKztulObJ1dhJU8Jt9W8k7FySsPAk"
LEADS = "/services/data/v62.0/sobjects/Lead"
TOKEN = "/services/oauth2/token"


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as fake:
        # [TOKEN]
        fake.on("POST", TOKEN, lambda _r: Reply(200, {
            "access_token": ACCESS_TOKEN, "signature": "nUFHwtfIGLKDTHcLWmDBG8frv0t+HQGl/iCZFIQUarE=",
            "token_format": "opaque", "instance_url": fake.url,
            "id": "https://login.salesforce.com/id/00Dd000000XXXXXXX/005d000000XXXXX", "token_type": "Bearer",
            "issued_at": "1678984327372"}))
        yield fake


def rest(server: FakeServer, **env: str) -> SalesforceRest:
    destination = build_destination("salesforce", settings(
        LEADS_DESTINATIONS="salesforce", LEADS_SALESFORCE_MODE="rest", LEADS_SALESFORCE_URL=server.url,
        LEADS_SALESFORCE_CLIENT_ID=CLIENT_ID, LEADS_SALESFORCE_CLIENT_SECRET=SECRET, **env))
    assert isinstance(destination, SalesforceRest)
    return destination


CREATED = Reply(201, {"id": "00Q5e00000ABCDEFGH", "errors": [], "success": True})  # [CREATE]


def test_rest_creates_a_lead_with_the_client_credentials_token_and_the_default_mapping(server: FakeServer) -> None:
    server.on("POST", LEADS, CREATED)
    destination = rest(server)
    assert (destination.name, destination.is_crm) == ("salesforce", True)

    assert destination.deliver(stored_lead()) == Delivered("00Q5e00000ABCDEFGH")

    [token] = server.sent("POST", TOKEN)
    assert token.form() == {"grant_type": ["client_credentials"], "client_id": [CLIENT_ID],
                            "client_secret": [SECRET]}
    [create] = server.sent("POST", LEADS)
    assert create.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert create.headers["Content-Type"] == "application/json"
    assert create.json() == {
        "FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@contoso.example", "Phone": "16175555555",
        "Company": "Contoso", "Title": "CTO", "Country": "US", "Description": "Please call me about pricing.",
        "LeadSource": "Web",  # [LEADSOURCE] a standard value: an org whose picklist is restricted takes it
    }


def test_the_token_is_reused_across_leads(server: FakeServer) -> None:
    server.on("POST", LEADS, CREATED)
    destination = rest(server)
    destination.deliver(stored_lead())
    destination.deliver(stored_lead(lead_id="20261121T120500000Z-99999999"))
    assert len(server.sent("POST", TOKEN)) == 1
    assert len(server.sent("POST", LEADS)) == 2


def test_the_field_map_setting_adds_and_removes_fields(server: FakeServer) -> None:
    server.on("POST", LEADS, CREATED)
    rest(server, LEADS_SALESFORCE_FIELD_MAP='{"Title": null, "Campaign_Code__c": "campaign.mktcmpid"}').deliver(
        stored_lead())
    body = server.sent("POST", LEADS)[0].json()
    assert "Title" not in body
    assert body["Campaign_Code__c"] == "spring-launch"


def test_with_an_external_id_field_a_redelivered_lead_updates_the_same_record(server: FakeServer) -> None:
    path = f"{LEADS}/Marketplace_Lead_Id__c/{LEAD_ID}"
    answers = iter([
        Reply(201, {"id": "00Q5e00000ABCDEFGH", "errors": [], "success": True, "created": True}),  # [UPSERT]
        Reply(200, {"id": "00Q5e00000ABCDEFGH", "errors": [], "success": True, "created": False}),
    ])
    server.on("PATCH", path, lambda _r: next(answers))
    destination = rest(server, LEADS_SALESFORCE_EXTERNAL_ID_FIELD="Marketplace_Lead_Id__c",
                       LEADS_SALESFORCE_FIELD_MAP='{"Marketplace_Lead_Id__c": "id"}')

    first = destination.deliver(stored_lead())
    second = destination.deliver(stored_lead())

    assert first == second == Delivered("00Q5e00000ABCDEFGH")
    assert server.sent("POST", LEADS) == []
    upserts = server.sent("PATCH", path)
    assert len(upserts) == 2
    assert "Marketplace_Lead_Id__c" not in upserts[0].json()  # the key is in the URL, not the body
    assert upserts[0].json()["LastName"] == "Lovelace"


def test_an_expired_session_gets_a_new_token_once(server: FakeServer) -> None:
    answers = iter([Reply(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]),
                    CREATED])  # [ERRORS]
    server.on("POST", LEADS, lambda _r: next(answers))
    destination = rest(server)
    assert destination.deliver(stored_lead()) == Delivered("00Q5e00000ABCDEFGH")
    assert len(server.sent("POST", TOKEN)) == 2


def test_a_session_refused_twice_is_a_configuration_error(server: FakeServer) -> None:
    server.on("POST", LEADS, Reply(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]))
    with pytest.raises(ConfigurationError) as error:
        rest(server).deliver(stored_lead())
    assert "IP Relaxation" in error.value.explanation
    assert len(server.sent("POST", LEADS)) == 2  # one retry, not a loop


@pytest.mark.parametrize(("error", "description", "expected"), [
    ("invalid_client_id", "client identifier invalid", "LEADS_SALESFORCE_CLIENT_ID"),
    ("invalid_client", "invalid client credentials", "LEADS_SALESFORCE_CLIENT_SECRET"),
    ("invalid_grant", "no client credentials user enabled", "Run As"),
    ("invalid_grant", "request not supported on this domain", "My Domain"),
])
def test_token_refusals_name_the_setting_or_the_connected_app_policy_to_fix(
        server: FakeServer, error: str, description: str, expected: str) -> None:
    server.on("POST", TOKEN, Reply(400, {"error": error, "error_description": description}))  # [OAUTH-ERRORS]
    with pytest.raises(ConfigurationError) as raised:
        rest(server).deliver(stored_lead())
    assert expected in raised.value.explanation
    assert SECRET not in raised.value.explanation
    assert server.sent("POST", LEADS) == []


def errors(code: str, message: str, fields: list[str]) -> Reply:
    return Reply(400, [{"message": message, "errorCode": code, "fields": fields}])  # [ERRORS]


def test_a_required_field_the_mapping_does_not_fill_is_a_configuration_error(server: FakeServer) -> None:
    server.on("POST", LEADS, errors("REQUIRED_FIELD_MISSING", "Required fields are missing: [Industry]", ["Industry"]))
    with pytest.raises(ConfigurationError) as raised:
        rest(server).deliver(stored_lead())
    assert "Industry" in raised.value.explanation
    assert "LEADS_SALESFORCE_FIELD_MAP" in raised.value.explanation


def test_a_required_field_this_lead_has_no_value_for_rejects_the_lead(server: FakeServer) -> None:
    server.on("POST", LEADS, errors("REQUIRED_FIELD_MISSING", "Required fields are missing: [Phone]", ["Phone"]))
    with pytest.raises(LeadRejectedError) as raised:
        rest(server).deliver(stored_lead(Customer(last_name="Lovelace", company="Contoso")))
    assert "Phone" in raised.value.explanation
    assert f"python -m leads replay {LEAD_ID}" in raised.value.explanation


def test_a_value_a_restricted_picklist_refuses_rejects_the_lead_without_echoing_the_value(server: FakeServer) -> None:
    server.on("POST", LEADS, errors("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                    "bad value for restricted picklist field: AzureMarketplace-INS|contoso.analytics",
                                    ["LeadSource"]))
    with pytest.raises(LeadRejectedError) as raised:
        rest(server).deliver(stored_lead())
    assert "LeadSource" in raised.value.explanation
    assert "picklist" in raised.value.explanation
    assert "contoso.analytics" not in raised.value.explanation


def test_a_validation_rule_rejects_the_lead_with_the_rules_own_message(server: FakeServer) -> None:
    server.on("POST", LEADS, errors("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Enter the phone number in E.164 format.",
                                    []))
    with pytest.raises(LeadRejectedError) as raised:
        rest(server).deliver(stored_lead())
    assert "Enter the phone number in E.164 format." in raised.value.explanation
    assert "Validation Rules" in raised.value.explanation


def test_an_unknown_field_in_the_mapping_is_a_configuration_error(server: FakeServer) -> None:
    server.on("POST", LEADS, errors("INVALID_FIELD", "No such column 'Campaign_Code__c' on sobject of type Lead", []))
    with pytest.raises(ConfigurationError) as raised:
        rest(server, LEADS_SALESFORCE_FIELD_MAP='{"Campaign_Code__c": "campaign.mktcmpid"}').deliver(stored_lead())
    assert "Campaign_Code__c" in raised.value.explanation
    assert "LEADS_SALESFORCE_FIELD_MAP" in raised.value.explanation


def test_the_daily_api_limit_is_retried_an_hour_later(server: FakeServer) -> None:
    server.on("POST", LEADS, Reply(403, [{"message": "TotalRequests Limit exceeded.",
                                          "errorCode": "REQUEST_LIMIT_EXCEEDED"}]))  # [ERRORS]
    with pytest.raises(TransientDestinationError) as raised:
        rest(server).deliver(stored_lead())
    assert raised.value.retry_after == 3600
    assert "REQUEST_LIMIT_EXCEEDED" in raised.value.explanation


def test_429_is_retried_after_the_delay_salesforce_asks_for(server: FakeServer) -> None:
    server.on("POST", LEADS, Reply(429, "Too Many Requests", headers={"Retry-After": "30"}))
    with pytest.raises(TransientDestinationError) as raised:
        rest(server).deliver(stored_lead())
    assert raised.value.retry_after == 30


def test_an_edu_lead_without_personal_data_is_skipped_with_the_reason(server: FakeServer) -> None:
    outcome = rest(server).deliver(edu_lead())
    assert isinstance(outcome, Skipped)
    assert ".edu" in outcome.reason
    assert server.requests == []


def test_a_lead_without_last_name_or_company_gets_salesforces_own_placeholder(server: FakeServer) -> None:
    server.on("POST", LEADS, CREATED)
    rest(server).deliver(stored_lead(Customer(email="ada@contoso.example")))
    body = server.sent("POST", LEADS)[0].json()
    assert (body["LastName"], body["Company"], body["Email"]) == ("[not provided]", "[not provided]",
                                                                  "ada@contoso.example")


def test_missing_credentials_are_a_configuration_error_without_any_request(server: FakeServer) -> None:
    destination = build_destination("salesforce", settings(LEADS_SALESFORCE_MODE="rest",
                                                           LEADS_SALESFORCE_URL=server.url))
    with pytest.raises(ConfigurationError) as raised:
        destination.deliver(stored_lead())
    assert "LEADS_SALESFORCE_CLIENT_ID" in raised.value.explanation
    assert server.requests == []


DESCRIBE = {  # "sObject Describe" (createable, fields[].name/createable/nillable/defaultedOnCreate/externalId)
    "name": "Lead", "createable": True,
    "fields": [{"name": n, "createable": True, "nillable": n not in ("LastName", "Company"),
                "defaultedOnCreate": False, "externalId": False, "type": "string"}
               for n in ("FirstName", "LastName", "Email", "Phone", "Company", "Title", "Country", "Description",
                         "LeadSource")]
    + [{"name": "Id", "createable": False, "nillable": False, "defaultedOnCreate": True, "type": "id"},
       {"name": "Industry", "createable": True, "nillable": False, "defaultedOnCreate": False, "type": "picklist"}],
}


def test_check_gets_a_token_and_reads_the_lead_describe(server: FakeServer) -> None:
    server.on("GET", f"{LEADS}/describe", lambda r: Reply(200, DESCRIBE) if r.headers.get("Authorization") ==
              f"Bearer {ACCESS_TOKEN}" else Reply(401, []))
    lines = {c.name: c for c in rest(server).check()}
    assert lines["settings"].ok and lines["token"].ok and lines["Lead object"].ok and lines["mapped fields"].ok
    assert not lines["required fields"].ok
    assert "Industry" in lines["required fields"].message
    assert all(SECRET not in c.message and ACCESS_TOKEN not in c.message for c in lines.values())


def test_check_reports_a_refused_token(server: FakeServer) -> None:
    server.on("POST", TOKEN, Reply(400, {"error": "invalid_client", "error_description": "invalid client credentials"}))
    lines = {c.name: c for c in rest(server).check()}
    assert not lines["token"].ok
    assert "LEADS_SALESFORCE_CLIENT_SECRET" in lines["token"].message


# --- Web-to-Lead -------------------------------------------------------------------------------------------

ORG_ID = "00D5e000000AbCd"
W2L = "/servlet/servlet.WebToLead"


def web_to_lead(server: FakeServer, **env: str) -> SalesforceWebToLead:
    destination = build_destination("salesforce", settings(**{
        "LEADS_SALESFORCE_ORG_ID": ORG_ID, "LEADS_SALESFORCE_WEB_TO_LEAD_URL": f"{server.url}{W2L}?encoding=UTF-8",
        **env}))
    assert isinstance(destination, SalesforceWebToLead)
    return destination


def test_web_to_lead_posts_partner_centers_form_fields_and_reports_no_record_id(server: FakeServer) -> None:
    server.on("POST", W2L, Reply(200, ""))  # Web-to-Lead answers 200 with an empty page, whatever happens
    assert web_to_lead(server).deliver(stored_lead()) == Delivered("")
    [post] = server.sent("POST", W2L)
    assert post.query == {"encoding": ["UTF-8"]}
    assert post.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert {k: v[0] for k, v in post.form().items()} == {
        "oid": ORG_ID, "encoding": "UTF-8", "first_name": "Ada", "last_name": "Lovelace",
        "email": "ada@contoso.example", "phone": "16175555555", "company": "Contoso", "title": "CTO",
        "country": "US", "description": "Please call me about pricing.", "lead_source": "Web",
    }


def test_web_to_lead_that_does_not_exist_is_a_configuration_error(server: FakeServer) -> None:
    with pytest.raises(ConfigurationError) as raised:
        web_to_lead(server).deliver(stored_lead())  # no route: the fake answers 404
    assert "LEADS_SALESFORCE_WEB_TO_LEAD_URL" in raised.value.explanation


def test_web_to_lead_check_validates_the_org_id_and_says_errors_are_invisible(server: FakeServer) -> None:
    server.on("GET", W2L, Reply(200, ""))
    lines = {c.name: c for c in web_to_lead(server).check()}
    assert lines["settings"].ok and lines["endpoint"].ok
    assert lines["errors visible"].ok
    assert lines["errors visible"].message.startswith("OK (but Web-to-Lead hides errors")
    assert server.sent("POST", W2L) == []  # no made-up lead

    bad = {c.name: c for c in web_to_lead(server, LEADS_SALESFORCE_ORG_ID="005e000000AbCdE").check()}
    assert not bad["settings"].ok
    assert "00D" in bad["settings"].message


def test_an_unknown_mode_is_reported(server: FakeServer) -> None:
    destination = build_destination("salesforce", settings(LEADS_SALESFORCE_MODE="soap",
                                                           LEADS_SALESFORCE_ORG_ID=ORG_ID))
    with pytest.raises(ConfigurationError, match="LEADS_SALESFORCE_MODE"):
        destination.deliver(stored_lead())


# --- defect 12: every refusal names Salesforce's errorCode; LeadSource a standard value, the offer a field ------
@pytest.mark.parametrize(("code", "message", "fields", "refusal"), [
    ("REQUIRED_FIELD_MISSING", "Required fields are missing: [Industry]", ["Industry"], ConfigurationError),
    ("REQUIRED_FIELD_MISSING", "Required fields are missing: [Phone]", ["Phone"], LeadRejectedError),
    ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "Lead Source: bad value for restricted picklist field: Web",
     ["LeadSource"], LeadRejectedError),
    ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Enter the phone number in E.164 format.", [], LeadRejectedError),
    ("INVALID_FIELD", "No such column 'Campaign_Code__c' on sobject of type Lead", [], ConfigurationError),
    ("FIELD_INTEGRITY_EXCEPTION", "Country/Territory: invalid country", ["Country"], LeadRejectedError),
    ("STRING_TOO_LONG", "Title: data value too large", ["Title"], LeadRejectedError),
])
def test_defect_12_every_refusal_names_salesforces_error_code(server: FakeServer, code: str, message: str,
                                                             fields: list[str], refusal: type[Exception]) -> None:
    """Defect 12: the REQUIRED_FIELD_MISSING and INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST sentences did not name the
    code, which is what Salesforce's own help and an admin search for."""
    server.on("POST", LEADS, errors(code, message, fields))  # [ERRORS]
    customer = Customer(last_name="Lovelace", company="Contoso") if fields == ["Phone"] else None
    with pytest.raises(refusal) as raised:
        rest(server).deliver(stored_lead(customer) if customer else stored_lead())
    assert f"({code}" in str(getattr(raised.value, "explanation", raised.value))


@pytest.mark.parametrize(("status", "body", "code"), [
    (401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], "INVALID_SESSION_ID"),
    (403, [{"message": "Insufficient access", "errorCode": "INSUFFICIENT_ACCESS"}], "INSUFFICIENT_ACCESS"),
    (404, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}], "NOT_FOUND"),
    (300, ["/services/data/v62.0/sobjects/Lead/00Q5e00000AAAAAAAA",
           "/services/data/v62.0/sobjects/Lead/00Q5e00000BBBBBBBB"], "HTTP 300"),
])
def test_refusals_by_status_name_the_code_too(server: FakeServer, status: int, body: object, code: str) -> None:
    server.on("POST", LEADS, Reply(status, body))  # [ERRORS]
    server.on("PATCH", f"{LEADS}/Marketplace_Lead_Id__c/{LEAD_ID}", Reply(status, body))
    options = {"LEADS_SALESFORCE_EXTERNAL_ID_FIELD": "Marketplace_Lead_Id__c"} if status == 300 else {}
    with pytest.raises((ConfigurationError, LeadRejectedError)) as raised:
        rest(server, **options).deliver(stored_lead())
    assert code in str(getattr(raised.value, "explanation", raised.value))


def test_lead_source_is_a_setting_and_the_offer_goes_to_a_field_of_its_own(server: FakeServer) -> None:
    server.on("POST", LEADS, CREATED)
    rest(server, LEADS_SALESFORCE_LEAD_SOURCE="Partner Referral",
         LEADS_SALESFORCE_OFFER_FIELD="Marketplace_Offer__c").deliver(stored_lead())
    rest(server).deliver(stored_lead())
    rest(server, LEADS_SALESFORCE_FIELD_MAP='{"LeadSource": "partner_center_source"}').deliver(stored_lead())
    first, default, mapped = (sent.json() for sent in server.sent("POST", LEADS))
    assert first["LeadSource"] == "Partner Referral" and first["Marketplace_Offer__c"] == stored_lead().lead.offer_name
    assert default["LeadSource"] == "Web" and not any(name.endswith("__c") for name in default)  # off by default
    assert mapped["LeadSource"] == "AzureMarketplace-INS|contoso.analytics"  # the field map still wins


def test_an_offer_field_that_is_not_an_api_name_is_a_settings_problem(server: FakeServer) -> None:
    with pytest.raises(ConfigurationError, match="LEADS_SALESFORCE_OFFER_FIELD"):
        rest(server, LEADS_SALESFORCE_OFFER_FIELD="Offer name; DROP").deliver(stored_lead())
    assert server.sent("POST", LEADS) == []
