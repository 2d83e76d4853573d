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
- [IDENTITY-401] the identity error body {"error": "invalid_client", "error_description": "Bad client credentials"}
  as seen in public Marketo REST clients' tests (e.g. the mkto_rest Ruby gem).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from leads.destinations import build_destination
from leads.destinations.base import Delivered, Skipped
from leads.destinations.marketo import Marketo, seconds_until_quota_reset
from leads.errors import ConfigurationError, LeadRejectedError, TransientDestinationError
from leads.model import Customer
from tests.destinations.sample import edu_lead, settings, stored_lead
from tests.support.fake_http import FakeServer, Reply

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


def test_sync_leads_create_or_update_on_email_with_the_bearer_token(server: FakeServer) -> None:
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
    assert sync.json() == {"action": "createOrUpdate", "lookupField": "email", "input": [{
        "firstName": "Ada", "lastName": "Lovelace", "email": "ada@contoso.example", "phone": "16175555555",
        "company": "Contoso", "title": "CTO", "country": "US", "leadSource": "AzureMarketplace-INS|contoso.analytics",
    }]}


def test_a_redelivered_lead_updates_the_same_person(server: FakeServer) -> None:
    answers = iter([synced("created"), synced("updated")])
    server.on("POST", SYNC, lambda _r: next(answers))
    destination = marketo(server)
    assert destination.deliver(stored_lead()) == destination.deliver(stored_lead()) == Delivered("318581")
    assert [r.json()["action"] for r in server.sent("POST", SYNC)] == ["createOrUpdate", "createOrUpdate"]
    assert len(server.sent("POST", TOKEN)) == 1  # cached for its lifetime


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

