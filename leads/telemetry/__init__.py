"""Telemetry as the core sees it: spans, metrics and the structured log lines, behind one small interface.

Off (no `APPLICATIONINSIGHTS_CONNECTION_STRING`): `telemetry()` is a no-op object and nothing of
OpenTelemetry is imported. On: leads/telemetry/otel.py (the only module that knows OpenTelemetry) configures
azure-monitor-opentelemetry on first use, once per process. Whatever happens there, a lead never waits for
telemetry and never fails because of it.

Only ids, destination names, outcomes and numbers go into a span, a metric or one of these log lines: never
a lead's personal data, never a secret. The log lines are a contract with the Azure alert rules (KQL over
Application Insights `traces`): same message text, same `extra` fields.
"""

from __future__ import annotations

import functools
import logging
import os
from contextlib import AbstractContextManager, nullcontext
from typing import Literal

Attribute = str | int | float | bool
SpanKind = Literal["internal", "server", "producer", "consumer"]

CONNECTION_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"

# Metrics (names as exported; attributes in brackets).
RECEIVED = "leads.received"  # a request that carried a lead [outcome: accepted|duplicate|held|spooled|unavailable]
DUPLICATES = "leads.duplicates"  # a lead received again within LEADS_DEDUPE_HOURS
REJECTED = "leads.rejected_requests"  # refused and quarantined [status, reason]
DELIVERIES = "leads.deliveries"  # one per destination attempt [destination, outcome]
ATTEMPT_DURATION = "leads.delivery.duration"  # milliseconds one attempt took [destination, outcome]
DELIVERED_LATENCY = "leads.delivered_latency"  # seconds from arrival to delivered [destination]

_ingest_log = logging.getLogger("leads.ingest")
_delivery_log = logging.getLogger("leads.delivery")
_sweeper_log = logging.getLogger("leads.sweeper")
_log = logging.getLogger("leads.telemetry")


class Span:
    """A span the core may add attributes to. This one, the no-op, records nothing."""

    def set(self, **attributes: Attribute) -> None:
        pass


NO_SPAN = Span()


class Telemetry:
    """Telemetry off: every call does nothing."""

    enabled = False

    def span(self, name: str, *, parent: str = "", kind: SpanKind = "internal",
             **attributes: Attribute) -> AbstractContextManager[Span]:
        """A span, current within the `with` block. `parent`: a W3C traceparent carried across the queue (the
        span continues that trace and links the invocation it runs in); empty: a child of the current span."""
        return nullcontext(NO_SPAN)

    def traceparent(self) -> str:
        """The current span as a W3C traceparent header, to carry in a queue message ("" when off)."""
        return ""

    def count(self, metric: str, value: int = 1, **attributes: Attribute) -> None:
        pass

    def measure(self, metric: str, value: float, **attributes: Attribute) -> None:
        pass


_override: list[Telemetry] = []


def telemetry() -> Telemetry:
    """The process's telemetry: chosen once from the environment (or set by `use`)."""
    return _override[-1] if _override else _chosen()


@functools.cache
def _chosen() -> Telemetry:
    if not os.environ.get(CONNECTION_SETTING, "").strip():
        return Telemetry()
    try:
        from leads.telemetry.otel import configured

        return configured()
    except Exception as error:  # noqa: BLE001 - telemetry must never stop a lead
        _log.warning("telemetry is off: Azure Monitor could not be configured (%s)", type(error).__name__)
        return Telemetry()


def use(chosen: Telemetry | None) -> None:
    """Tests: send telemetry to `chosen` (None: back to the environment's choice)."""
    _override.clear()
    if chosen is not None:
        _override.append(chosen)


def elapsed_ms(started: float, now: float) -> int:
    return max(0, round((now - started) * 1000))


# ---------------------------------------------------------------- the log lines (docs/operations.md)

_INGEST_LEVELS = {"held": logging.WARNING, "spooled": logging.ERROR, "unavailable": logging.ERROR}
_DELIVERY_LEVELS = {"retrying": logging.WARNING, "blocked": logging.WARNING, "failed": logging.ERROR}


def log_ingest(lead_id: str, outcome: str, duration_ms: int) -> None:
    """After each ingest request. `lead_id` "-" when the request got no id (rejected, not stored)."""
    _ingest_log.log(_INGEST_LEVELS.get(outcome, logging.INFO),
                    "ingest lead_id=%s outcome=%s duration_ms=%d", lead_id or "-", outcome, duration_ms,
                    extra={"lead_id": lead_id or "-", "outcome": outcome, "duration_ms": duration_ms})


def log_delivery(lead_id: str, destination: str, outcome: str, duration_ms: int) -> None:
    """After each delivery attempt; `outcome` is the destination's state it led to."""
    _delivery_log.log(_DELIVERY_LEVELS.get(outcome, logging.INFO),
                      "delivery lead_id=%s destination=%s outcome=%s duration_ms=%d",
                      lead_id, destination, outcome, duration_ms,
                      extra={"lead_id": lead_id, "destination": destination, "outcome": outcome,
                             "duration_ms": duration_ms})


def log_sweep(due: int, requeued: int, duration_ms: int) -> None:
    _sweeper_log.info("sweeper run due=%d requeued=%d duration_ms=%d", due, requeued, duration_ms,
                      extra={"due": due, "requeued": requeued, "duration_ms": duration_ms})
