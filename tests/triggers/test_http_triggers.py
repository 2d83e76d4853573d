"""The HTTP triggers as the host calls them: translate the request, answer JSON, never a 500 or a trace."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leads import runtime as runtime_module
from leads.core.settings import get_settings
from leads.triggers import http
from tests.services.test_pipeline import dead_connection_string
from tests.support.samples import SAMPLES


def call(function: object, method: str = "POST", body: bytes = b"", route: str = "leads") -> func.HttpResponse:
    request = func.HttpRequest(method=method, url=f"http://localhost/api/{route}", body=body,
                               headers={"content-type": "application/json"})
    handler: Any = getattr(function, "get_user_function", lambda: function)()
    response = handler(request)
    assert isinstance(response, func.HttpResponse)
    return response


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, azurite, tmp_path: Path) -> Iterator[Path]:
    suffix = uuid.uuid4().hex[:8]
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("LEADS_TABLE", f"http{suffix}")
    monkeypatch.setenv("LEADS_QUARANTINE_TABLE", f"httpq{suffix}")
    monkeypatch.setenv("LEADS_QUEUE", f"http-{suffix}")
    monkeypatch.setenv("LEADS_SPOOL_DIR", str(tmp_path))
    get_settings.cache_clear()
    runtime_module.runtime.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
    runtime_module.runtime.cache_clear()


@pytest.mark.azurite
@pytest.mark.parametrize("name", ["partner-center-doc-sample.json", "camelcase-wire.json", "faq-test-lead.json",
                                  "azure-table-destination-row.json"])
def test_each_sample_is_accepted(app_env: Path, name: str) -> None:
    response = call(http.ingest_lead, body=(SAMPLES / name).read_bytes())
    assert response.status_code == 202
    assert response.mimetype == "application/json"
    answer = json.loads(response.get_body())
    assert answer["duplicate"] is False
    assert answer["test"] is (name == "faq-test-lead.json")
    again = json.loads(call(http.ingest_lead, body=(SAMPLES / name).read_bytes()).get_body())
    assert again == {**answer, "duplicate": True}


@pytest.mark.azurite
def test_the_faq_sample_as_printed_gets_400_with_line_and_column(app_env: Path) -> None:
    response = call(http.ingest_lead, body=(SAMPLES / "faq-test-lead-as-printed.txt").read_bytes())
    assert response.status_code == 400
    answer = json.loads(response.get_body())
    assert answer["error"] == "invalid_json"
    assert answer["where"] == "line 14, column 5"


@pytest.mark.azurite
@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_wrong_method_gets_405_with_allow(app_env: Path, method: str) -> None:
    response = call(http.ingest_lead, method=method)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert "POST" in json.loads(response.get_body())["message"]


@pytest.mark.azurite
def test_health_is_200_when_storage_answers(app_env: Path) -> None:
    response = call(http.health, method="GET", route="health")
    assert response.status_code == 200
    assert json.loads(response.get_body()) == {"status": "ok"}


@pytest.mark.azurite
def test_storage_down_gives_503_and_keeps_the_lead(app_env: Path, monkeypatch: pytest.MonkeyPatch, azurite) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", dead_connection_string(azurite.connection_string))
    get_settings.cache_clear()
    runtime_module.runtime.cache_clear()
    response = call(http.ingest_lead, body=(SAMPLES / "camelcase-wire.json").read_bytes())
    assert response.status_code == 503
    assert "retry" in json.loads(response.get_body())["message"]
    assert len(list(app_env.glob("*.json"))) == 1
    health = call(http.health, method="GET", route="health")
    assert health.status_code == 503
    assert json.loads(health.get_body()) == {"status": "unavailable"}


def test_misconfigured_app_answers_503_keeps_the_lead_and_reveals_nothing(monkeypatch: pytest.MonkeyPatch,
                                                                           tmp_path: Path) -> None:
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    monkeypatch.delenv("AzureWebJobsStorage__tableServiceUri", raising=False)
    monkeypatch.setenv("LEADS_SPOOL_DIR", str(tmp_path))
    get_settings.cache_clear()
    runtime_module.runtime.cache_clear()
    try:
        response = call(http.ingest_lead, body=b'{"OfferTitle": "x"}')
    finally:
        get_settings.cache_clear()
        runtime_module.runtime.cache_clear()
    assert response.status_code == 503
    text = response.get_body().decode()
    assert "python -m leads doctor" in text
    assert "AzureWebJobsStorage" not in text  # no configuration details to the caller
    assert [p.read_bytes() for p in tmp_path.glob("*.json")] == [b'{"OfferTitle": "x"}']


@pytest.mark.azurite
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["POST", "GET", "PUT", "OPTIONS"]), body=st.binary(max_size=200) | st.just(b"{}"))
def test_no_input_yields_a_500_or_a_trace(app_env: Path, method: str, body: bytes) -> None:
    response = call(http.ingest_lead, method=method, body=body)
    assert response.status_code in (202, 400, 405, 413)
    text = response.get_body().decode()
    assert "Traceback" not in text
    assert isinstance(json.loads(text)["id" if response.status_code == 202 else "message"], str)


@pytest.mark.azurite
def test_queue_down_still_answers_202_because_the_lead_is_stored(app_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  azurite) -> None:
    dead = dead_connection_string(azurite.connection_string)
    dead_queue = dead.split("QueueEndpoint=")[1]
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string.replace(
        azurite.connection_string.split("QueueEndpoint=")[1].split(";")[0], dead_queue))
    get_settings.cache_clear()
    runtime_module.runtime.cache_clear()
    response = call(http.ingest_lead, body=(SAMPLES / "camelcase-wire.json").read_bytes())
    assert response.status_code == 202
    lead_id = json.loads(response.get_body())["id"]
    assert runtime_module.runtime().table.load(lead_id) is not None  # stored, with its outbox row


@pytest.mark.azurite
def test_status_lists_recent_leads_and_open_breakers_without_personal_data(app_env: Path) -> None:
    from leads.core.breaker import Breaker
    from leads.core.model import utcnow

    lead_id = json.loads(call(http.ingest_lead, body=(SAMPLES / "camelcase-wire.json").read_bytes()).get_body())["id"]
    again = json.loads(call(http.ingest_lead, body=(SAMPLES / "camelcase-wire.json").read_bytes()).get_body())
    assert (again["id"], again["duplicate"]) == (lead_id, True)
    runtime_module.runtime().table.record_breaker(
        Breaker("hubspot", "HubSpot refused the token: set LEADS_HUBSPOT_TOKEN.", utcnow() + timedelta(minutes=5)),
        "hubspot")
    response = call(http.status, method="GET", route="status")
    assert response.status_code == 200
    report = json.loads(response.get_body())
    assert [lead["id"] for lead in report["recent_leads"]] == [lead_id]
    assert report["recent_leads"][0]["deliveries"]["email"]["state"] == "pending"
    assert report["recent_leads"][0]["duplicate_arrivals"] == 1  # the repeat is accounted for on the lead
    assert report["open_breakers"][0]["destination"] == "hubspot"
    text = response.get_body().decode()
    assert "Ana" not in text and "ana.lopez" not in text and "600 000" not in text
