"""The telemetry interface the services see: spans, metrics and the structured log lines (leads/telemetry/
__init__.py chooses the implementation; leads/telemetry/otel.py is the OpenTelemetry one)."""

from __future__ import annotations

import logging
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
