"""Replay, quarantine, status, doctor and the test lead through ManageService, on Azurite with recording
destinations; and the attempt history the detail shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from leads.core.errors import BadRequestError, LeadRejectedError, NotFoundError, TransientDestinationError
from leads.core.model import DELIVERED, FAILED
from leads.manage.health import VALIDATE_SENTENCE
from leads.manage.service import ManageService
from tests.support.pipeline import Pipeline, RecordingDestination, build_pipeline

pytestmark = pytest.mark.timeout(60)
LEAD = b'{"UserDetails": {"Email": "ann@contoso.example", "Company": "Contoso"}, "OfferTitle": "Widget"}'


def pipeline_with(azurite: Any, tmp_path: Path, **scripts: list[Any]) -> Pipeline:
    destinations = {name: RecordingDestination(name, script=list(script)) for name, script in scripts.items()}
    return build_pipeline(azurite.connection_string, str(tmp_path), destinations)


def deliver_all(pipeline: Pipeline) -> None:
    for message in pipeline.queued():
        pipeline.delivery.handle(message)


def test_history_then_replay_delivers_a_failed_lead(azurite: Any, tmp_path: Path) -> None:
    pipeline = pipeline_with(azurite, tmp_path, email=[], webhook=[LeadRejectedError("The webhook said 422: bad.")])
    service = ManageService(pipeline.runtime)
    lead_id = pipeline.ingest.receive("POST", LEAD).body["id"]
    deliver_all(pipeline)
    detail = service.get_lead(lead_id)
    assert detail["status"] == FAILED
    [attempt] = detail["deliveries"]["webhook"]["history"]
    assert attempt["outcome"] == FAILED and attempt["sentence"] == "The webhook said 422: bad."
    assert detail["deliveries"]["email"]["history"][0]["record_id"] == "email-1"

    assert service.list_leads(service_filter(status="failed"))["leads"][0]["id"] == lead_id
    answer = service.replay_lead(lead_id)
    assert answer == {"id": lead_id, "result": "Queued again for webhook.", "queued": True}
    deliver_all(pipeline)
    detail = service.get_lead(lead_id)
    assert detail["status"] == DELIVERED
    assert [a["outcome"] for a in detail["deliveries"]["webhook"]["history"]] == [FAILED, DELIVERED]
    assert pipeline.destinations["email"].received == [lead_id]  # delivered once, not replayed
    assert service.replay_lead(lead_id)["queued"] is False

    again = service.replay_lead(lead_id, "email")  # named: nothing to do, it is delivered
    assert again["queued"] is False and "Nothing to replay" in again["result"]
    with pytest.raises(BadRequestError, match="no destination 'hubspot'"):
        service.replay_lead(lead_id, "hubspot")
    with pytest.raises(NotFoundError):
        service.replay_lead("20200101T000000000Z-00000000")


def service_filter(**query: str) -> Any:
    from leads.manage.filters import LeadFilter

    return LeadFilter.from_query(query)


def test_replay_many_by_destination_and_state(azurite: Any, tmp_path: Path) -> None:
    down = [TransientDestinationError("timed out")] * 20
    pipeline = pipeline_with(azurite, tmp_path, email=[], webhook=down)
    service = ManageService(pipeline.runtime)
    ids = [pipeline.ingest.receive("POST", LEAD.replace(b"ann", f"ann{n}".encode())).body["id"] for n in range(3)]
    deliver_all(pipeline)
    assert service.replay_many("webhook", ("failed",)) == {"queued": 0, "results": []}
    retrying = service.replay_many("webhook", ("retrying",))
    assert retrying["queued"] == 3 and sorted(r["id"] for r in retrying["results"]) == sorted(ids)
    assert len(pipeline.queued()) == 3
    with pytest.raises(BadRequestError, match="states"):
        service.replay_many(None, ("delivered",))
    with pytest.raises(BadRequestError, match="not a configured destination"):
        service.replay_many("hubspot")


def test_quarantine_list_show_and_reingest(azurite: Any, tmp_path: Path) -> None:
    pipeline = pipeline_with(azurite, tmp_path, email=[])
    service = ManageService(pipeline.runtime)
    broken = b'{"UserDetails": {"Email": "x@y.example"}'
    assert pipeline.ingest.receive("POST", broken, "application/json").status == 400
    assert pipeline.ingest.receive("GET", b"", "").status == 405
    listed = service.list_quarantine(limit=1)
    assert [r["method"] for r in listed["requests"]] == ["GET"] and listed["continuation"]
    second = service.list_quarantine(limit=1, continuation=listed["continuation"])
    rejected = second["requests"][0]
    assert rejected["reason"] == "invalid_json" and second["continuation"] is None
    shown = service.get_quarantined(rejected["id"])
    assert shown["body"] == '{"UserDetails": {"Email": "x@y.example"}' and ":" not in shown["id"]
    again = service.reingest(rejected["id"])  # still broken: answered 400 again, and kept again
    assert again["status"] == 400 and again["answer"]["error"] == "invalid_json"
    assert service.get_quarantined(rejected["id"])["reingested"].endswith("400 invalid_json")
    with pytest.raises(NotFoundError):
        service.get_quarantined("1234")
    with pytest.raises(BadRequestError):
        service.list_quarantine(continuation="bm9wZQ==")


def test_status_says_why_no_leads_then_counts(azurite: Any, tmp_path: Path) -> None:
    pipeline = pipeline_with(azurite, tmp_path, email=[], webhook=[LeadRejectedError("Refused: rule 7.")])
    service = ManageService(pipeline.runtime)
    empty = service.status()
    assert empty["last_lead"] is None and empty["last_test_lead"] is None
    assert VALIDATE_SENTENCE in empty["why_no_leads"]
    sent = service.send_test_lead()
    assert sent["test"] is True and sent["duplicate"] is False
    lead_id = pipeline.ingest.receive("POST", LEAD).body["id"]
    deliver_all(pipeline)
    status = service.status()
    assert status["last_lead"]["id"] == lead_id and status["last_test_lead"]["id"] == sent["id"]
    assert VALIDATE_SENTENCE not in status["why_no_leads"]
    assert status["counts"]["24h"] == {"delivered": 1, "failed": 1} == status["counts"]["30d"]
    webhook = next(d for d in status["destinations"] if d["name"] == "webhook")
    assert webhook["last_failure"]["sentence"] == "Refused: rule 7." and webhook["circuit"] == "closed"
    email = next(d for d in status["destinations"] if d["name"] == "email")
    assert email["last_success"] and email["last_failure"] is None


def test_doctor_reports_every_check(azurite: Any, tmp_path: Path) -> None:
    pipeline = pipeline_with(azurite, tmp_path, email=[])
    report = ManageService(pipeline.runtime).doctor()
    assert {"destination", "name", "ok", "message"} <= set(report["checks"][0])
    # The recording e-mail double is not what doctor builds: it checks the real e-mail settings (none here).
    assert report["ok"] is False and any(c["destination"] == "email" and not c["ok"] for c in report["checks"])
    assert any(c["destination"] == "storage" and c["ok"] for c in report["checks"])


def test_a_test_lead_storage_refuses_is_an_error_not_an_answer(azurite: Any, tmp_path: Path) -> None:
    import re

    from leads.core.errors import StorageUnavailableError

    dead = re.sub(r"TableEndpoint=http://[^/;]+", "TableEndpoint=http://127.0.0.1:9", azurite.connection_string)
    assert dead != azurite.connection_string
    pipeline = build_pipeline(azurite.connection_string, str(tmp_path), {"email": RecordingDestination("email")},
                              table_connection=dead)
    with pytest.raises(StorageUnavailableError, match="storage is unavailable"):
        ManageService(pipeline.runtime).send_test_lead()
