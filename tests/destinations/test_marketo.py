"""Marketo destination against a fake Marketo (a real loopback HTTP server with canned answers).

Canned answers copy these documents (Adobe's Marketo developer docs, repository AdobeDocs/marketo-developer.en):
- [AUTH] "Authentication", https://experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/authentication
  ("Create an access token using an HTTP GET (or POST) request" to <Identity URL>/oauth/token with grant_type=
  client_credentials, client_id, client_secret; answer {access_token, token_type, expires_in, scope}). The app
  POSTs them as an application/x-www-form-urlencoded body, as Segment's Marketo destination does
  (segmentio/action-destinations, marketo-static-lists: POST .../identity/oauth/token with a URLSearchParams
  body); the fake refuses them in a query string (tests/support/fake_http.py).
- [LEADS] "Leads" (Sync Leads: POST /rest/v1/leads.json, action/lookupField/input; result[].id/status;
  Describe: GET /rest/v1/leads/describe.json), https://experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/leads
- [ERRORS] "Error Codes" (HTTP 200 with success=false and errors[] {code, message}; record-level status
  "skipped" with reasons[]; codes 601, 602, 603, 606, 607, 1003, 1006, 1007; identity 401 for a bad client id or
  secret), https://experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/error-codes
- [QUERY] "Leads" > Query: Get Leads by Filter Type (filterType, filterValues, fields; "POST with _method=GET" and a
  form body for long queries; answers result[] with the requested fields, null for empty ones), same page as
  [LEADS]; Sync Leads actions createOnly (an existing person → record status "skipped", reason 1005 "Lead already
  exists" [ERRORS]) and updateOnly with lookupField id.
- [ACTIVITIES] "Activities" > Add Custom Activities (POST /rest/v1/activities/external.json, input[] {leadId,
  activityDate, activityTypeId, primaryAttributeValue}; result[] {id, status "added"}; permission Read-Write
  Activity) and Get Custom Activity Types (GET /rest/v1/activities/external/types.json),
  https://experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/lead-database/activities
- [IDENTITY-401] the identity error body {"error": "invalid_client", "error_description": "Bad client credentials"}
  as seen in public Marketo REST clients' tests (e.g. the mkto_rest Ruby gem).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from leads.core.destination import Delivered, Skipped
from leads.core.errors import ConfigurationError, LeadRejectedError, TransientDestinationError
from leads.core.model import Customer
from leads.destinations import build_destination
from leads.destinations.marketo import Marketo, seconds_until_quota_reset
from tests.destinations.sample import edu_lead, settings, stored_lead
from tests.support.fake_http import FakeServer, Recorded, Reply

SECRET = "kZ3x9vQp2LmN8rT4wY6uB1cD5fG7hJ0a"
CLIENT_ID = "b417d98f-9289-47d1-a61f-db141bf0267f"
TOKEN = "/identity/oauth/token"
SYNC = "/rest/v1/leads.json"
DESCRIBE = "/rest/v1/leads/describe.json"


def token_reply(value: str = "cdf01657-110d-4155-99a7-f986b2ff13a0:int", expires_in: int = 3599) -> Reply:
    return Reply(200, {"access_token": value, "token_type": "bearer", "expires_in": expires_in,
                       "scope": "apis@acmeinc.com"})  # [AUTH]


def synced(status: str = "created", lead_id: int = 318581) -> Reply:
    return Reply(200, {"requestId": "e42b#14272d07d78", "success": True,
                       "result": [{"id": lead_id, "status": status}]})  # [LEADS]


def failed(code: str, message: str) -> Reply:
    return Reply(200, {"requestId": "e42b#14272d07d78", "success": False,
                       "errors": [{"code": code, "message": message}]})  # [ERRORS] response level


def skipped(code: str, message: str) -> Reply:
    return Reply(200, {"requestId": "e42b#14272d07d78", "success": True,
                       "result": [{"status": "skipped", "reasons": [{"code": code, "message": message}]}]})


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as fake:
        fake.on("POST", TOKEN, token_reply())
        yield fake


def marketo(server: FakeServer, url_suffix: str = "", **env: str) -> Marketo:
    destination = build_destination("marketo", settings(
        LEADS_MARKETO_URL=server.url + url_suffix, LEADS_MARKETO_CLIENT_ID=CLIENT_ID,
        LEADS_MARKETO_CLIENT_SECRET=SECRET, **env))
    assert isinstance(destination, Marketo)
    return destination


class MarketoPeople:
    """The lead database behind Sync Leads and Get Leads by Filter Type, answering as [LEADS]/[QUERY] show,
    so a test can look at what a person holds afterwards."""

    def __init__(self, server: FakeServer, known: dict[str, object] | None = None) -> None:
        """`known`: the fields of a person Marketo already has under the sample lead's e-mail."""
        self.people: dict[int, dict[str, object]] = {}
        if known is not None:
            self.people[318581] = {"email": "ada@contoso.example", **known}
        server.on("POST", SYNC, self.answer)

    def by_email(self, email: str) -> list[tuple[int, dict[str, object]]]:
        return [(i, p) for i, p in self.people.items() if p.get("email") == email]

    def answer(self, request: Recorded) -> Reply:
        if request.query.get("_method") == ["GET"]:
            form = {k: v[0] for k, v in request.form().items()}
            assert form["filterType"] == "email"
            names = form["fields"].split(",")
            found = [{"id": i, **{n: person.get(n) for n in names if n != "id"}}
                     for i, person in self.by_email(form["filterValues"])]
            return Reply(200, {"requestId": "a9ae#148add1e53d", "success": True, "result": found})  # [QUERY]
        body = request.json()
        [record] = body["input"]
        if body["lookupField"] == "id":
            person_id = int(record.pop("id"))
            self.people[person_id].update(record)
            return synced("updated", person_id)  # [LEADS] updateOnly
        matches = self.by_email(record["email"])
        if matches and body["action"] == "createOnly":
            return skipped("1005", "Lead already exists")  # [ERRORS]
        if matches:
            matches[0][1].update(record)
            return synced("updated", matches[0][0])
        person_id = 318581 + len(self.people)
        self.people[person_id] = dict(record)
        return synced("created", person_id)


def test_sync_leads_create_only_on_email_with_the_bearer_token(server: FakeServer) -> None:
    server.on("POST", SYNC, synced())
    destination = marketo(server, url_suffix="/rest")  # the endpoint as Admin > Web Services shows it
    assert (destination.name, destination.is_crm) == ("marketo", True)

    assert destination.deliver(stored_lead()) == Delivered("318581")

    [token] = server.sent("POST", TOKEN)
    assert token.query == {}  # never in the URL
    assert token.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert token.form() == {"grant_type": ["client_credentials"], "client_id": [CLIENT_ID], "client_secret": [SECRET]}
    [sync] = server.sent("POST", SYNC)
    assert sync.headers["Authorization"] == "Bearer cdf01657-110d-4155-99a7-f986b2ff13a0:int"
    assert sync.json() == {"action": "createOnly", "lookupField": "email", "input": [{
        "firstName": "Ada", "lastName": "Lovelace", "email": "ada@contoso.example", "phone": "16175555555",
        "company": "Contoso", "title": "CTO", "country": "US", "leadSource": "AzureMarketplace-INS|contoso.analytics",
    }]}


def test_a_redelivered_lead_finds_the_same_person(server: FakeServer) -> None:
    people = MarketoPeople(server)
    destination = marketo(server)
    assert destination.deliver(stored_lead()) == destination.deliver(stored_lead()) == Delivered("318581")
    assert len(people.people) == 1
    assert [r.json()["action"] for r in server.sent("POST", SYNC) if not r.query] == ["createOnly", "createOnly"]
    assert len(server.sent("POST", TOKEN)) == 1  # cached for its lifetime


def test_a_known_person_gets_only_their_empty_fields(server: FakeServer) -> None:
    people = MarketoPeople(server, {"firstName": "Augusta Ada", "lastName": "King",
                                                           "title": "Countess", "phone": None, "company": ""})
    assert marketo(server).deliver(stored_lead(Customer(
        first_name="Ada", last_name="Lovelace", email="ada@contoso.example", phone="16175555555", country="US",
        company="Contoso", title="CTO"))) == Delivered("318581")
    person = people.people[318581]
    assert (person["firstName"], person["lastName"], person["title"]) == ("Augusta Ada", "King", "Countess")
    assert (person["phone"], person["company"], person["country"]) == ("16175555555", "Contoso", "US")
    [lookup] = [r for r in server.sent("POST", SYNC) if r.query]
    assert lookup.query == {"_method": ["GET"]}  # the e-mail address travels in the body, not the URL
    assert "ada@contoso.example" in lookup.form()["filterValues"]
    [update] = [r.json() for r in server.sent("POST", SYNC) if not r.query and r.json()["action"] == "updateOnly"]
    assert update["lookupField"] == "id"
    assert set(update["input"][0]) == {"id", "phone", "company", "country", "leadSource"}


def test_a_known_person_with_every_field_filled_is_not_written(server: FakeServer) -> None:
    MarketoPeople(server, dict.fromkeys((
        "firstName", "lastName", "phone", "company", "title", "country", "leadSource"), "sales wrote this"))
    assert marketo(server).deliver(stored_lead()) == Delivered("318581")
    assert [r.json()["action"] for r in server.sent("POST", SYNC) if not r.query] == ["createOnly"]


def test_update_existing_overwrites_the_known_person_as_before(server: FakeServer) -> None:
    people = MarketoPeople(server, {"firstName": "Augusta Ada", "title": "Countess"})
    assert marketo(server, LEADS_MARKETO_UPDATE_EXISTING="true").deliver(stored_lead()) == Delivered("318581")
    assert (people.people[318581]["firstName"], people.people[318581]["title"]) == ("Ada", "CTO")
    assert [r.json()["action"] for r in server.sent("POST", SYNC)] == ["createOrUpdate"]


def test_a_person_gone_between_create_and_lookup_is_retried(server: FakeServer) -> None:
    answers = iter([skipped("1005", "Lead already exists"),
                    Reply(200, {"requestId": "a9ae#1", "success": True, "result": []})])  # [QUERY]
    server.on("POST", SYNC, lambda _r: next(answers))
    with pytest.raises(TransientDestinationError):
        marketo(server).deliver(stored_lead())


ACTIVITIES = "/rest/v1/activities/external.json"


def test_each_lead_is_recorded_as_a_custom_activity_on_the_person(server: FakeServer) -> None:
    MarketoPeople(server, {"firstName": "Augusta Ada"})
    server.on("POST", ACTIVITIES, Reply(200, {"requestId": "10d8#1", "success": True,
                                              "result": [{"id": 2398, "status": "added"}]}))  # [ACTIVITIES]
    destination = marketo(server, LEADS_MARKETO_ACTIVITY_TYPE_ID="100001")
    assert destination.deliver(stored_lead()) == Delivered("318581")
    assert destination.deliver(stored_lead(Customer(email="grace@fabrikam.example"))) == Delivered("318582")
    inputs = [r.json()["input"][0] for r in server.sent("POST", ACTIVITIES)]
    assert inputs[0] == {"leadId": 318581, "activityDate": "2026-11-21T12:00:00Z", "activityTypeId": 100001,
                         "primaryAttributeValue": "Contoso Analytics"}
    assert inputs[1]["leadId"] == 318582  # a new person too


def test_an_activity_marketo_refuses_names_the_setting_and_the_permission(server: FakeServer) -> None:
    MarketoPeople(server)
    server.on("POST", ACTIVITIES, Reply(200, {"requestId": "10d8#1", "success": True, "result": [
        {"status": "skipped", "reasons": [{"code": "1004", "message": "Activity type not found"}]}]}))  # [ERRORS]
    with pytest.raises(ConfigurationError) as raised:
        marketo(server, LEADS_MARKETO_ACTIVITY_TYPE_ID="999").deliver(stored_lead())
    assert "LEADS_MARKETO_ACTIVITY_TYPE_ID" in raised.value.explanation
    server.on("POST", ACTIVITIES, failed("603", "Access denied"))
    with pytest.raises(ConfigurationError) as raised:
        marketo(server, LEADS_MARKETO_ACTIVITY_TYPE_ID="999").deliver(stored_lead())
    assert "Read-Write Activity" in raised.value.explanation


def test_a_bad_activity_type_id_blocks_only_marketo_with_a_sentence() -> None:
    loaded = settings(LEADS_MARKETO_ACTIVITY_TYPE_ID="marketplace lead")
    assert "LEADS_MARKETO_ACTIVITY_TYPE_ID must be a positive whole number" in loaded.problems["marketo"]


def test_check_finds_the_activity_type(server: FakeServer) -> None:
    server.on("GET", DESCRIBE, describe("firstName", "lastName", "email", "phone", "company", "title", "country",
                                        "leadSource"))
    server.on("GET", "/rest/v1/activities/external/types.json", Reply(200, {"requestId": "5c3#1", "success": True,
              "result": [{"id": 100001, "apiName": "marketplaceLead_c", "name": "Marketplace lead",
                          "status": "approved", "primaryAttribute": {"name": "Offer", "dataType": "string"}}]}))
    lines = {c.name: c for c in marketo(server, LEADS_MARKETO_ACTIVITY_TYPE_ID="100001").check()}
    assert lines["activity type"].ok and "Marketplace lead" in lines["activity type"].message
    lines = {c.name: c for c in marketo(server, LEADS_MARKETO_ACTIVITY_TYPE_ID="7").check()}
    assert not lines["activity type"].ok and "LEADS_MARKETO_ACTIVITY_TYPE_ID" in lines["activity type"].message


def test_the_field_map_setting_adds_campaign_fields(server: FakeServer) -> None:
    server.on("POST", SYNC, synced())
    marketo(server, LEADS_MARKETO_FIELD_MAP='{"mktcmpid": "campaign.mktcmpid", "title": null}').deliver(stored_lead())
    record = server.sent("POST", SYNC)[0].json()["input"][0]
    assert record["mktcmpid"] == "spring-launch"
    assert "title" not in record


def test_a_token_about_to_expire_is_renewed_before_use(server: FakeServer) -> None:
    server.on("POST", TOKEN, token_reply(expires_in=30))  # less than the one-minute margin
    server.on("POST", SYNC, synced())
    destination = marketo(server)
    destination.deliver(stored_lead())
    destination.deliver(stored_lead())
    assert len(server.sent("POST", TOKEN)) == 2


@pytest.mark.parametrize("code", ["601", "602"])
def test_an_invalid_or_expired_token_is_renewed_once(server: FakeServer, code: str) -> None:
    answers = iter([failed(code, "Access token expired"), synced()])
    server.on("POST", SYNC, lambda _r: next(answers))
    assert marketo(server).deliver(stored_lead()) == Delivered("318581")
    assert len(server.sent("POST", TOKEN)) == 2
    assert len(server.sent("POST", SYNC)) == 2


def test_bad_launchpoint_credentials_are_a_configuration_error(server: FakeServer) -> None:
    server.on("POST", TOKEN, Reply(401, {"error": "invalid_client", "error_description": "Bad client credentials"}))
    with pytest.raises(ConfigurationError) as raised:
        marketo(server).deliver(stored_lead())
    assert "LEADS_MARKETO_CLIENT_SECRET" in raised.value.explanation
    assert "LaunchPoint" in raised.value.explanation
    assert SECRET not in raised.value.explanation
    assert server.sent("POST", SYNC) == []


def test_access_denied_names_the_api_role_permission(server: FakeServer) -> None:
    server.on("POST", SYNC, failed("603", "Access denied"))
    with pytest.raises(ConfigurationError) as raised:
        marketo(server).deliver(stored_lead())
    assert "Read-Write Person" in raised.value.explanation
    assert SECRET not in raised.value.explanation


def test_the_rate_limit_is_retried_after_the_20_second_window(server: FakeServer) -> None:
    server.on("POST", SYNC, failed("606", "Max rate limit '100' exceeded with in '20' secs"))
    with pytest.raises(TransientDestinationError) as raised:
        marketo(server).deliver(stored_lead())
    assert raised.value.retry_after == 20


def test_the_daily_quota_is_retried_after_midnight_cst(server: FakeServer) -> None:
    server.on("POST", SYNC, failed("607", "Daily quota reached"))
    with pytest.raises(TransientDestinationError) as raised:
        marketo(server).deliver(stored_lead())
    assert raised.value.retry_after is not None and 60 <= raised.value.retry_after <= 86400
    # 05:00 UTC is 23:00 CST: one hour to the reset.
    assert seconds_until_quota_reset(datetime(2026, 11, 21, 5, 0, tzinfo=UTC)) == 3600


@pytest.mark.parametrize("code", ["604", "608", "611", "713"])
def test_temporary_marketo_errors_are_retried(server: FakeServer, code: str) -> None:
    server.on("POST", SYNC, failed(code, "Request time-out"))
    with pytest.raises(TransientDestinationError, match=code):
        marketo(server).deliver(stored_lead())


def test_a_field_marketo_does_not_have_is_a_configuration_error_naming_it(server: FakeServer) -> None:
    server.on("POST", SYNC, skipped("1006", "Field 'mktcmpid' not found"))
    with pytest.raises(ConfigurationError) as raised:
        marketo(server, LEADS_MARKETO_FIELD_MAP='{"mktcmpid": "campaign.mktcmpid"}').deliver(stored_lead())
    assert "mktcmpid" in raised.value.explanation
    assert "LEADS_MARKETO_FIELD_MAP" in raised.value.explanation


def test_invalid_data_rejects_the_lead(server: FakeServer) -> None:
    server.on("POST", SYNC, skipped("1003", "Invalid data"))
    with pytest.raises(LeadRejectedError, match="1003"):
        marketo(server).deliver(stored_lead())


def test_several_people_with_the_same_email_reject_the_lead(server: FakeServer) -> None:
    server.on("POST", SYNC, skipped("1007", "Multiple leads match the lookup criteria"))
    with pytest.raises(LeadRejectedError) as raised:
        marketo(server).deliver(stored_lead())
    assert "Possible Duplicates" in raised.value.explanation


def test_a_lead_without_email_is_skipped_because_marketo_looks_people_up_by_email(server: FakeServer) -> None:
    for lead in (edu_lead(), stored_lead(Customer(first_name="Ada", last_name="Lovelace"))):
        outcome = marketo(server).deliver(lead)
        assert isinstance(outcome, Skipped)
        assert "e-mail" in outcome.reason
    assert server.requests == []


def test_429_from_a_proxy_is_retried_after_its_delay(server: FakeServer) -> None:
    server.on("POST", SYNC, Reply(429, "", headers={"Retry-After": "7"}))
    with pytest.raises(TransientDestinationError) as raised:
        marketo(server).deliver(stored_lead())
    assert raised.value.retry_after == 7


def describe(*names: str, read_only: tuple[str, ...] = ()) -> Reply:
    return Reply(200, {"requestId": "37ca#1475b74e276", "success": True, "result": [
        {"id": i, "displayName": n, "dataType": "string", "rest": {"name": n, "readOnly": n in read_only}}
        for i, n in enumerate(names)]})  # [LEADS] Describe


def test_check_confirms_the_token_and_the_mapped_fields(server: FakeServer) -> None:
    server.on("GET", DESCRIBE, describe("firstName", "lastName", "email", "phone", "company", "title", "country",
                                        "leadSource", "createdAt", read_only=("createdAt",)))
    lines = {c.name: c for c in marketo(server).check()}
    assert lines["token"].ok and lines["mapped fields"].ok


def test_check_names_a_mapped_field_marketo_lacks(server: FakeServer) -> None:
    server.on("GET", DESCRIBE, describe("firstName", "lastName", "email"))
    lines = {c.name: c for c in marketo(server).check()}
    assert not lines["mapped fields"].ok
    assert "leadSource" in lines["mapped fields"].message
    assert all(SECRET not in c.message for c in lines.values())

