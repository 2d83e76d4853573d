"""Telemetry through OpenTelemetry, exported by azure-monitor-opentelemetry. Imported only when
`APPLICATIONINSIGHTS_CONNECTION_STRING` is set (leads/telemetry/__init__.py): the only module that knows OpenTelemetry.

In Azure the Functions host runs in OpenTelemetry mode (host.json `telemetryMode`) and the Python worker, with
`PYTHON_ENABLE_OPENTELEMETRY=true`, makes the host's invocation span (`context.trace_context`) current before
the function runs: the spans here are its children. The worker then also tells the host that it exports its
own logs, so the `leads` loggers are exported here (the host stops forwarding them).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from leads.telemetry import api

_KINDS = {"internal": trace.SpanKind.INTERNAL, "server": trace.SpanKind.SERVER,
          "producer": trace.SpanKind.PRODUCER, "consumer": trace.SpanKind.CONSUMER}
_COUNTERS = {
    api.RECEIVED: ("{lead}", "Requests that carried a lead, by outcome."),
    api.DUPLICATES: ("{lead}", "Leads received again within the de-duplication window."),
    api.REJECTED: ("{request}", "Requests refused and quarantined, by status and reason."),
    api.DELIVERIES: ("{attempt}", "Delivery attempts, by destination and the state they led to."),
}
_HISTOGRAMS = {
    api.ATTEMPT_DURATION: ("ms", "How long one delivery attempt took."),
    api.DELIVERED_LATENCY: ("s", "From a lead's arrival to its delivery, per destination."),
}
# HTTP client instrumentations stay off: a CRM URL can hold personal data (HubSpot's contact path is the
# e-mail address) or a key (a webhook's `sig`). Each destination call is the `lead.send` span instead.
_INSTRUMENTATIONS_OFF = ("requests", "urllib", "urllib3", "httpx", "django", "fastapi", "flask", "psycopg2")
_propagator = TraceContextTextMapPropagator()
_configure_lock = threading.Lock()
_configured: list[OtelTelemetry] = []


class OtelSpan(api.Span):
    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def set(self, **attributes: api.Attribute) -> None:
        self._span.set_attributes({_key(k): v for k, v in attributes.items()})


def _key(name: str) -> str:
    return f"leads.{name}"


class OtelTelemetry(api.Telemetry):
    enabled = True

    def __init__(self, tracer_provider: trace.TracerProvider, meter_provider: metrics.MeterProvider) -> None:
        self._tracer = tracer_provider.get_tracer("leads")
        self._meter = meter_provider.get_meter("leads")
        self._instruments: dict[str, Any] = {}
        self._lock = threading.Lock()

    def span(self, name: str, *, parent: str = "", kind: api.SpanKind = "internal",
             **attributes: api.Attribute) -> AbstractContextManager[api.Span]:
        return self._span(name, parent, kind, attributes)

    @contextmanager
    def _span(self, name: str, parent: str, kind: api.SpanKind,
              attributes: dict[str, api.Attribute]) -> Iterator[api.Span]:
        context: Context | None = None
        links = []
        if parent:
            context = _propagator.extract({"traceparent": parent})
            if not trace.get_current_span(context).get_span_context().is_valid:
                context = None  # not a traceparent: a child of the invocation instead
            else:
                invocation = trace.get_current_span().get_span_context()
                if invocation.is_valid:
                    links.append(trace.Link(invocation))
        with self._tracer.start_as_current_span(name, context=context, kind=_KINDS[kind], links=links,
                                                attributes={_key(k): v for k, v in attributes.items()}) as span:
            yield OtelSpan(span)

    def traceparent(self) -> str:
        carrier: dict[str, str] = {}
        _propagator.inject(carrier)
        return carrier.get("traceparent", "")

    def count(self, metric: str, value: int = 1, **attributes: api.Attribute) -> None:
        self._instrument(metric).add(value, {_key(k): v for k, v in attributes.items()})

    def measure(self, metric: str, value: float, **attributes: api.Attribute) -> None:
        self._instrument(metric).record(value, {_key(k): v for k, v in attributes.items()})

    def _instrument(self, metric: str) -> Any:
        instrument = self._instruments.get(metric)
        if instrument is None:
            with self._lock:
                instrument = self._instruments.get(metric)
                if instrument is None:
                    if metric in _COUNTERS:
                        unit, description = _COUNTERS[metric]
                        instrument = self._meter.create_counter(metric, unit=unit, description=description)
                    else:
                        unit, description = _HISTOGRAMS[metric]
                        instrument = self._meter.create_histogram(metric, unit=unit, description=description)
                    self._instruments[metric] = instrument
        return instrument


def configured() -> OtelTelemetry:
    """Configure Azure Monitor once per process (it reads APPLICATIONINSIGHTS_CONNECTION_STRING and, for the
    managed identity, APPLICATIONINSIGHTS_AUTHENTICATION_STRING) and answer telemetry that uses it."""
    with _configure_lock:
        if not _configured:
            from azure.monitor.opentelemetry import configure_azure_monitor

            app_logger = logging.getLogger("leads")
            if app_logger.level == logging.NOTSET:  # the contract lines are INFO (and Python's default is WARNING)
                app_logger.setLevel(logging.INFO)
            # Every trace kept (a few leads a day; the distro's default rate limiter drops the first spans of a
            # fresh instance, and Flex starts many), unless OTEL_TRACES_SAMPLER says otherwise.
            sampling = {} if os.environ.get("OTEL_TRACES_SAMPLER") else {"sampling_ratio": 1.0}
            configure_azure_monitor(
                logger_name="leads",  # the app's own lines, written free of personal data; not the SDKs' debug
                instrumentation_options={name: {"enabled": False} for name in _INSTRUMENTATIONS_OFF},
                enable_live_metrics=False,  # the host reports live metrics; this would poll from every instance
                **sampling,
            )
            _configured.append(OtelTelemetry(trace.get_tracer_provider(), metrics.get_meter_provider()))
        return _configured[0]
