"""Telemetry: a lead's trace from ingest across the queue to each destination, the metrics, the log-line
contract, and that none of it carries personal data; off without a connection string (nothing imported);
on with one, configured as in Azure and exported to an ingestion endpoint (a local fake).

The pipeline is the real one: the local host serving function_app on Azurite, a real SMTP server and a webhook
receiver. Telemetry goes to an in-memory span exporter and metric reader (leads.telemetry.use)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from leads.core.errors import TransientDestinationError
from leads.core.model import DELIVERED
from leads.services.ingest import IngestService
from leads.services.sweeper import Sweeper
from tests.support.fake_http import FakeServer, Reply
from tests.support.http_json import post
from tests.support.pipeline import RecordingDestination, build_pipeline
from tests.support.smtp import SmtpServer
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
PERSONAL = {"FirstName": "Telefirstname", "LastName": "Telelastname", "Email": "tele.person@pii-tele.example",
            "Phone": "+1 555 0142 7788", "Company": "Telecompany GmbH", "Title": "Teletitle"}
PERSONAL_VALUES = [*PERSONAL.values(), "5550142", "pii-tele"]


def _lead() -> bytes:
    return json.dumps({"UserDetails": PERSONAL, "LeadSource": "AzureMarketplace", "ActionCode": "INS",
                       "OfferTitle": "Router", "Description": "Call Telefirstname"}).encode()


def _metrics(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    return {metric.name: list(metric.data.data_points)
            for resource in data.resource_metrics for scope in resource.scope_metrics for metric in scope.metrics}


def _point(points: list[Any], **attributes: object) -> Any:
    wanted = {f"leads.{k}": v for k, v in attributes.items()}
    [point] = [p for p in points if dict(p.attributes) == wanted]
    return point


def _one(spans: list[ReadableSpan], name: str, **attributes: object) -> ReadableSpan:
    found = [s for s in spans if s.name == name and all(
        (s.attributes or {}).get(f"leads.{k}") == v for k, v in attributes.items())]
    assert len(found) == 1, (name, attributes, [(s.name, dict(s.attributes or {})) for s in spans])
    return found[0]


@pytest.mark.e2e
@pytest.mark.azurite
@pytest.mark.timeout(120)
def test_a_lead_is_traced_across_the_queue_to_each_destination_with_metrics_and_no_personal_data(
        local_host_factory, smtp_server: SmtpServer, azurite, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="leads")
    suffix = uuid.uuid4().hex[:8]
    with FakeServer() as webhook:
        # The app's own webhook contract (docs/destinations.md): any 2xx is a delivery.
        webhook.on("POST", "/hooks/leads", Reply(200, {"received": True}))
        host = local_host_factory({
            "LEADS_TABLE": f"tele{suffix}", "LEADS_QUARANTINE_TABLE": f"teleq{suffix}", "LEADS_QUEUE": f"tele-{suffix}",
            "LEADS_DESTINATIONS": "email,webhook", "LEADS_EMAIL_TO": "sales@contoso.example",
            "LEADS_EMAIL_FROM": "leads@contoso.example", "LEADS_SMTP_HOST": smtp_server.host,
            "LEADS_SMTP_PORT": str(smtp_server.port), "LEADS_SMTP_SECURITY": "none", "LEADS_EMAIL_INCLUDE_PII": "true",
            "LEADS_WEBHOOK_URL": f"{webhook.url}/hooks/leads", "LEADS_WEBHOOK_SECRET": "whsec_" + "d" * 40,
            "LEADS_SPOOL_DIR": str(tmp_path), "LEADS_HTTP_TIMEOUT": "5", "APPLICATIONINSIGHTS_CONNECTION_STRING": None,
        })
        # The module the freshly imported app uses (the host imports it anew).
        from leads import telemetry
        from leads.telemetry.otel import OtelTelemetry

        exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        telemetry.use(OtelTelemetry(tracer_provider, MeterProvider(metric_readers=[reader])))
        try:
            status, answer = post(host.url("leads"), _lead())
            assert status == 202, answer
            lead_id = answer["id"]
            status, again = post(host.url("leads"), _lead())
            assert (status, again["duplicate"], again["id"]) == (202, True, lead_id)
            status, _ = post(host.url("leads"), b"{not json")
            assert status == 400
            smtp_server.wait_for(1)
            wait_until(lambda: len(webhook.sent("POST", "/hooks/leads")) == 1, what="the webhook call")
            wait_until(lambda: len([s for s in exporter.get_finished_spans() if s.name == "lead.deliver"]) >= 1,
                       what="the delivery span")
        finally:
            telemetry.use(None)
    spans = list(exporter.get_finished_spans())

    # The trace: ingest -> enqueue (producer) -> across the queue -> deliver (consumer) -> one span per destination.
    ingest = _one(spans, "lead.ingest", lead_id=lead_id, outcome="accepted", status=202)
    _one(spans, "lead.ingest", lead_id=lead_id, outcome="duplicate")
    _one(spans, "lead.ingest", lead_id="-", outcome="rejected", status=400)
    enqueue = _one(spans, "lead.enqueue", lead_id=lead_id)
    deliver = _one(spans, "lead.deliver", lead_id=lead_id)
    assert enqueue.kind == SpanKind.PRODUCER and deliver.kind == SpanKind.CONSUMER
    assert enqueue.parent is not None and enqueue.parent.span_id == ingest.context.span_id
    assert deliver.context.trace_id == ingest.context.trace_id, "the trace did not cross the queue"
    assert deliver.parent is not None and deliver.parent.span_id == enqueue.context.span_id
    for destination in ("email", "webhook"):
        send = _one(spans, f"lead.send {destination}", lead_id=lead_id, destination=destination, outcome=DELIVERED)
        assert send.parent is not None and send.parent.span_id == deliver.context.span_id
        assert send.context.trace_id == ingest.context.trace_id
        assert isinstance((send.attributes or {})["leads.duration_ms"], int)

    # The metrics.
    metrics = _metrics(reader)
    assert _point(metrics["leads.received"], outcome="accepted").value == 1
    assert _point(metrics["leads.received"], outcome="duplicate").value == 1
    assert _point(metrics["leads.duplicates"]).value == 1
    assert _point(metrics["leads.rejected_requests"], status=400, reason="invalid_json").value == 1
    for destination in ("email", "webhook"):
        assert _point(metrics["leads.deliveries"], destination=destination, outcome=DELIVERED).value == 1
        assert _point(metrics["leads.delivery.duration"], destination=destination, outcome=DELIVERED).count == 1
        latency = _point(metrics["leads.delivered_latency"], destination=destination)
        assert latency.count == 1 and latency.sum >= 0

    # The log lines of the contract (docs/operations.md), their fields as `extra`.
    def lines(logger: str) -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == logger and "lead_id=" in r.getMessage()]

    [accepted] = [vars(r) for r in lines("leads.ingest") if f"lead_id={lead_id} outcome=accepted" in r.getMessage()]
    assert accepted["message"] == f"ingest lead_id={lead_id} outcome=accepted duration_ms={accepted['duration_ms']}"
    assert (accepted["lead_id"], accepted["outcome"], accepted["levelno"]) == (lead_id, "accepted", logging.INFO)
    assert [vars(r)["outcome"] for r in lines("leads.ingest") if vars(r)["lead_id"] == "-"] == ["rejected"]
    for destination in ("email", "webhook"):
        [line] = [vars(r) for r in lines("leads.delivery") if vars(r).get("destination") == destination]
        assert line["message"] == (f"delivery lead_id={lead_id} destination={destination} outcome=delivered "
                                   f"duration_ms={line['duration_ms']}")
        assert (line["lead_id"], line["outcome"]) == (lead_id, DELIVERED) and isinstance(line["duration_ms"], int)

    # No personal value anywhere: span names, attributes, events, links; metric attributes; the log lines' fields.
    exported: list[str] = []
    for span in spans:
        exported += [span.name, *map(str, (span.attributes or {}).values())]
        exported += [f"{e.name} {dict(e.attributes or {})}" for e in span.events]
        exported += [str(dict(link.attributes or {})) for link in span.links]
    exported += [str(dict(p.attributes)) for points in metrics.values() for p in points]
    exported += [json.dumps(vars(r), default=str) for r in caplog.records if r.name.startswith("leads.")]
    text = "\n".join(exported).lower()
    for value in PERSONAL_VALUES:
        assert value.lower() not in text, f"{value} is in the telemetry"


def _in_memory() -> tuple[Any, InMemorySpanExporter, InMemoryMetricReader, TracerProvider]:
    from leads.telemetry.otel import OtelTelemetry

    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OtelTelemetry(tracer_provider, MeterProvider(metric_readers=[reader])), exporter, reader, tracer_provider


@pytest.mark.azurite
def test_a_retry_continues_the_trace_a_sweep_starts_one_and_each_delivery_links_its_invocation(
        azurite, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="leads")
    webhook = RecordingDestination("webhook", script=[TransientDestinationError("The receiver answered 503.")])
    pipeline = build_pipeline(azurite.connection_string, str(tmp_path), {"webhook": webhook})
    sweeper = Sweeper(pipeline.table, pipeline.runtime.queue, pipeline.ingest, pipeline.runtime.spool,
                      clock=pipeline.clock)
    # The leads.telemetry these (possibly older) classes were imported with: tests re-import the app's modules.
    use = IngestService.receive.__globals__["telemetry"].__globals__["use"]
    tel, exporter, reader, tracer_provider = _in_memory()
    use(tel)
    try:
        lead_id = pipeline.ingest.receive("POST", _lead()).body["id"]
        [first] = pipeline.queued()
        # What the Functions worker does with PYTHON_ENABLE_OPENTELEMETRY: the host's invocation span is current.
        with tracer_provider.get_tracer("host").start_as_current_span("Invoke deliver_lead") as invocation:
            pipeline.delivery.handle(first)
        messages: list[Any] = []

        def retry_queued() -> bool:
            messages.extend(pipeline.queued())
            return bool(messages)

        wait_until(retry_queued, what="the retry message")
        pipeline.delivery.handle(messages[0])  # no invocation span: nothing to link

        other = pipeline.ingest.receive("POST", body_of(FirstName="Other")).body["id"]
        pipeline.queued()  # its message is lost: the sweeper brings it back once its outbox row is due
        pipeline.clock.offset = 600
        assert sweeper.sweep().requeued == 1
        [swept] = pipeline.queued()
        pipeline.delivery.handle(swept)
    finally:
        use(None)
    spans = list(exporter.get_finished_spans())
    ingest = _one(spans, "lead.ingest", lead_id=lead_id)
    first_try, second_try = sorted((s for s in spans if s.name == "lead.deliver"
                                    and (s.attributes or {}).get("leads.lead_id") == lead_id),
                                   key=lambda s: s.start_time or 0)
    assert first_try.context.trace_id == second_try.context.trace_id == ingest.context.trace_id
    assert second_try.parent is not None and second_try.parent.span_id == first_try.context.span_id
    assert [link.context.span_id for link in first_try.links] == [invocation.get_span_context().span_id]
    assert not second_try.links
    _one(spans, "lead.send webhook", outcome="retrying")
    _one(spans, "lead.send webhook", outcome=DELIVERED, lead_id=lead_id)
    sweep = _one(spans, "leads.sweep", due=1, requeued=1)
    after_sweep = _one(spans, "lead.deliver", lead_id=other)
    assert after_sweep.parent is not None and after_sweep.parent.span_id == sweep.context.span_id
    assert _point(_metrics(reader)["leads.deliveries"], destination="webhook", outcome="retrying").value == 1

    [retrying] = [r for r in caplog.records if r.name == "leads.delivery" and "outcome=retrying" in r.getMessage()]
    assert retrying.levelno == logging.WARNING
    [run] = [r.getMessage() for r in caplog.records if r.name == "leads.sweeper" and r.getMessage().startswith(
        "sweeper run ")]
    assert re.fullmatch(r"sweeper run due=1 requeued=1 duration_ms=\d+", run), run


def body_of(**details: str) -> bytes:
    return json.dumps({"UserDetails": {**PERSONAL, **details}, "LeadSource": "AzureMarketplace",
                       "ActionCode": "INS", "OfferTitle": "Router"}).encode()


def _run(code: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_without_the_connection_string_nothing_of_opentelemetry_is_imported() -> None:
    env = {k: v for k, v in os.environ.items() if k != "APPLICATIONINSIGHTS_CONNECTION_STRING"}
    code = """
import json, sys
import function_app, leads.services.delivery, leads.services.ingest, leads.services.sweeper, leads.runtime
from leads.telemetry import telemetry
tel = telemetry()
with tel.span("lead.ingest", lead_id="x") as span:
    span.set(outcome="accepted")
    tel.count("leads.received", outcome="accepted")
print(json.dumps({"enabled": tel.enabled, "modules": sorted(
    m for m in sys.modules if m.split(".")[0] == "opentelemetry" or m.startswith("azure.monitor")
    or m == "leads.telemetry.otel")}))
"""
    done = _run(code, env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"enabled": False, "modules": []}


def test_with_the_connection_string_azure_monitor_is_configured_once_and_gets_the_contract_fields(
        tmp_path: Path) -> None:
    with FakeServer() as ingestion:
        # Application Insights' Track API answer (learn.microsoft.com/azure/azure-monitor/app/
        # api-custom-events-metrics, "ingestion response": itemsReceived / itemsAccepted / errors).
        ingestion.on("POST", "/v2.1/track", lambda r: Reply(200, {
            "itemsReceived": len(r.json()), "itemsAccepted": len(r.json()), "errors": []}))
        env = {**os.environ, "TMPDIR": str(tmp_path), "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
               "APPLICATIONINSIGHTS_CONNECTION_STRING": (
                   "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
                   f"IngestionEndpoint={ingestion.url}")}
        code = """
import json
from opentelemetry import _logs, metrics, trace
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from leads.telemetry import log_delivery, telemetry, _chosen
tel = telemetry()
_chosen.cache_clear()
with tel.span("lead.deliver", lead_id="L-1"):
    log_delivery("L-1", "email", "delivered", 12)
tel.count("leads.deliveries", destination="email", outcome="delivered")
for provider in (_logs.get_logger_provider(), trace.get_tracer_provider(), metrics.get_meter_provider()):
    provider.force_flush()
print(json.dumps({"enabled": tel.enabled, "once": telemetry() is tel,
                  "requests_instrumented": RequestsInstrumentor().is_instrumented_by_opentelemetry}))
"""
        done = _run(code, env)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.strip().splitlines()[-1]) == {
            "enabled": True, "once": True, "requests_instrumented": False}
        envelopes = [e for r in ingestion.sent("POST", "/v2.1/track") for e in r.json()]
    [line] = [e["data"]["baseData"] for e in envelopes if e["data"]["baseType"] == "MessageData"]
    assert line["message"] == "delivery lead_id=L-1 destination=email outcome=delivered duration_ms=12"
    assert {k: line["properties"][k] for k in ("lead_id", "destination", "outcome", "duration_ms")} == {
        "lead_id": "L-1", "destination": "email", "outcome": "delivered", "duration_ms": "12"}
    [span] = [e["data"]["baseData"] for e in envelopes if e["data"]["baseType"] in ("RequestData",
                                                                                    "RemoteDependencyData")]
    assert span["name"] == "lead.deliver" and span["properties"]["leads.lead_id"] == "L-1"
    metric_names = {m["name"] for e in envelopes if e["data"]["baseType"] == "MetricData"
                    for m in e["data"]["baseData"]["metrics"]}
    assert "leads.deliveries" in metric_names
