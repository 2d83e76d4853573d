"""The lead list and detail on real Azurite: filters by column, by key range and in Python, and paging."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from leads.core.errors import BadRequestError, NotFoundError
from leads.core.model import utcnow
from leads.manage.filters import LeadFilter, parse_limit
from leads.manage.service import ManageService
from tests.support.pipeline import Pipeline, RecordingDestination, build_pipeline
from tests.support.seeding import seed, varied_lead

NOW = utcnow()
COUNT = 140
LEADS = [varied_lead(n, NOW) for n in range(COUNT)]  # ids are random: made once


@pytest.fixture(scope="module")
def seeded(azurite: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Pipeline, ManageService]:
    pipeline = build_pipeline(azurite.connection_string, str(tmp_path_factory.mktemp("spool")),
                              {"email": RecordingDestination("email")})
    seed(pipeline.table, LEADS)
    return pipeline, ManageService(pipeline.runtime)


def every(service: ManageService, filters: LeadFilter, limit: int = 50) -> list[dict[str, Any]]:
    leads, token = [], None
    while True:
        page = service.list_leads(filters, limit, token)
        leads += page["leads"]
        token = page["continuation"]
        if token is None:
            return leads


def expected(predicate: Any) -> list[str]:
    return [LEADS[n].id for n in range(COUNT) if predicate(n)]


def test_newest_first_and_paging_resumes_exactly(seeded: tuple[Pipeline, ManageService]) -> None:
    _, service = seeded
    first = service.list_leads(LeadFilter(), 30)
    assert [lead["id"] for lead in first["leads"]] == expected(lambda n: n < 30)
    assert [lead["id"] for lead in every(service, LeadFilter(), 30)] == expected(lambda n: True)


def test_column_filters(seeded: tuple[Pipeline, ManageService]) -> None:
    _, service = seeded
    tests = every(service, LeadFilter.from_query({"test": "true"}), 7)
    assert [lead["id"] for lead in tests] == expected(lambda n: n % 10 == 0)
    assert all(lead["test"] for lead in tests)
    failed = every(service, LeadFilter.from_query({"status": "failed"}), 10)
    assert [lead["id"] for lead in failed] == expected(lambda n: n % 7 == 3)
    plt = every(service, LeadFilter.from_query({"action": "PLT"}))
    assert [lead["id"] for lead in plt] == expected(lambda n: n % 5 == 1)
    assert plt[0]["action_meaning"].startswith("Partner-led trial")


def test_skipped_is_every_destination_skipped(seeded: tuple[Pipeline, ManageService]) -> None:
    _, service = seeded
    skipped = every(service, LeadFilter.from_query({"status": "skipped"}))
    assert [lead["id"] for lead in skipped] == expected(lambda n: n % 7 == 6)
    delivered = every(service, LeadFilter.from_query({"status": "delivered"}))
    assert [lead["id"] for lead in delivered] == expected(lambda n: n % 7 in (0, 1, 2))


def test_date_range_is_inclusive(seeded: tuple[Pipeline, ManageService]) -> None:
    _, service = seeded
    since, until = LEADS[20].received_at, LEADS[10].received_at
    found = every(service, LeadFilter(since=since, until=until), 4)
    assert [lead["id"] for lead in found] == expected(lambda n: 10 <= n <= 20)


def test_python_filters(seeded: tuple[Pipeline, ManageService]) -> None:
    _, service = seeded
    by_text = every(service, LeadFilter.from_query({"q": "COMPANY 17 "}))
    assert [lead["id"] for lead in by_text] == expected(lambda n: n % 400 == 17)
    by_mail = every(service, LeadFilter.from_query({"q": "@example3.com"}), 2)
    assert [lead["id"] for lead in by_mail] == expected(lambda n: n % 50 == 3)
    by_name = every(service, LeadFilter.from_query({"q": "first5 last5"}))
    assert [lead["id"] for lead in by_name] == expected(lambda n: n == 5)
    by_offer = every(service, LeadFilter.from_query({"offer": "offer 4", "test": "false"}), 5)
    assert [lead["id"] for lead in by_offer] == expected(lambda n: n % 7 == 4 and n % 10 != 0)
    by_state = every(service, LeadFilter.from_query({"destination": "email", "destination_state": "blocked"}))
    assert [lead["id"] for lead in by_state] == expected(lambda n: n % 7 == 4)
    assert every(service, LeadFilter.from_query({"destination": "hubspot"})) == []
    any_blocked = every(service, LeadFilter.from_query({"destination_state": "blocked"}))
    assert any_blocked == by_state


def test_detail_has_the_whole_lead_and_history(seeded: tuple[Pipeline, ManageService], azurite: Any,
                                              tmp_path: Any) -> None:
    _, service = seeded
    pipeline = build_pipeline(azurite.connection_string, str(tmp_path), {"email": RecordingDestination("email")})
    answer = pipeline.ingest.receive("POST", b'{"UserDetails": {"Email": "a@b.example", "FirstName": "Ann"},'
                                             b' "OfferTitle": "Detail \\u00e9", "Description": "hello"}')
    detail = ManageService(pipeline.runtime).get_lead(answer.body["id"])
    assert detail["email"] == "a@b.example" and detail["name"] == "Ann"
    assert detail["lead"]["customer"]["email"] == "a@b.example"
    assert '"Detail \\u00e9"' in detail["raw_body"] and detail["raw_body_bytes"] > 50
    assert detail["deliveries"]["email"]["state"] == "pending" and detail["deliveries"]["email"]["history"] == []
    seeded_detail = service.get_lead(LEADS[3].id)
    [attempt] = seeded_detail["deliveries"]["email"]["history"]
    assert attempt["outcome"] == "failed" and attempt["sentence"] == "Seeded failed answer 3."


def test_errors_name_the_problem(seeded: tuple[Pipeline, ManageService]) -> None:
    _, service = seeded
    with pytest.raises(NotFoundError, match="not a lead id"):
        service.get_lead("nope")
    with pytest.raises(NotFoundError, match="No lead"):
        service.get_lead(varied_lead(0, NOW - timedelta(days=900)).id)
    for query, name in [({"status": "lost"}, "status"), ({"test": "yes"}, "test"), ({"from": "monday"}, "from"),
                        ({"destination_state": "lost"}, "destination_state"), ({"colour": "red"}, "colour")]:
        with pytest.raises(BadRequestError) as caught:
            LeadFilter.from_query(query)
        assert caught.value.parameter == name and name in caught.value.explanation
    for limit in ("0", "101", "ten"):
        with pytest.raises(BadRequestError, match="limit must be"):
            parse_limit(limit)
    with pytest.raises(BadRequestError, match="continuation"):
        service.list_leads(LeadFilter(), 5, "bm90LWEta2V5")


def test_one_request_reads_a_bounded_number_of_rows_and_continues(seeded: tuple[Pipeline, ManageService],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A search no column answers stops after MAX_ROWS_READ rows with a continuation; following the tokens
    finds exactly what one unbounded scan would."""
    from leads.manage import service as service_module

    pipeline, service = seeded
    monkeypatch.setattr(service_module, "MAX_ROWS_READ", 25)
    read: list[int] = []
    original = pipeline.table.lead_rows

    def counted(*args: Any, **kwargs: Any) -> Any:
        read.append(0)
        for row in original(*args, **kwargs):
            read[-1] += 1
            yield row

    monkeypatch.setattr(pipeline.table, "lead_rows", counted)
    nothing = service.list_leads(LeadFilter.from_query({"q": "matches-no-lead"}), 50)
    assert nothing == {"leads": [], "continuation": nothing["continuation"]} and nothing["continuation"]
    pages = 1
    token = nothing["continuation"]
    while token:
        token = service.list_leads(LeadFilter.from_query({"q": "matches-no-lead"}), 50, token)["continuation"]
        pages += 1
    assert pages == -(-COUNT // 25) and max(read) <= 26  # one look past the bound tells a next page exists
    found = every(service, LeadFilter.from_query({"q": "@example3.com"}), 50)
    assert [lead["id"] for lead in found] == [lead["id"] for lead in every(
        ManageService(pipeline.runtime), LeadFilter.from_query({"q": "@example3.com"}), 50)]
    assert found


def test_search_text_travels_only_in_the_body(seeded: tuple[Pipeline, ManageService]) -> None:
    from leads.manage.routes import dispatch

    _, service = seeded

    def call(method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        status, answer, _ = dispatch(method, path, query, body, {"Host": "localhost", "Content-Type":
                                     "application/json"}, {"DEVHOST_LOCAL_MODE": "true"}, False, lambda: service)
        return status, answer

    status, refused = call("GET", "/leads", {"q": "example3"}, b"")
    assert status == 400 and "POST /api/manage/leads/search" in refused["message"]
    status, page = call("POST", "/leads/search", {}, b'{"q": "@example3.com", "limit": 100, "test": false}')
    assert status == 200
    assert {lead["id"] for lead in page["leads"]} == {lead["id"] for lead in every(
        service, LeadFilter.from_query({"q": "@example3.com", "test": "false"}), 100)}
    for bad in (b'{"limit": "x"}', b'{"q": null}', b'{"q": ["a"]}', b'{"nope": "1"}', b'{"limit": 1000}'):
        assert call("POST", "/leads/search", {}, bad)[0] == 400, bad
