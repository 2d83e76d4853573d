"""Layer: adapters (telemetry); may import only the core. Spans, metrics and the structured log lines behind one
small interface (leads/telemetry/api.py); this module chooses the implementation once per process.

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

from leads.telemetry.api import (
    ATTEMPT_DURATION as ATTEMPT_DURATION,
)
from leads.telemetry.api import (
    CONNECTION_SETTING as CONNECTION_SETTING,
)
from leads.telemetry.api import (
    DELIVERED_LATENCY as DELIVERED_LATENCY,
)
from leads.telemetry.api import (
    DELIVERIES as DELIVERIES,
)
from leads.telemetry.api import (
    DUPLICATES as DUPLICATES,
)
from leads.telemetry.api import (
    NO_SPAN as NO_SPAN,
)
from leads.telemetry.api import (
    RECEIVED as RECEIVED,
)
from leads.telemetry.api import (
    REJECTED as REJECTED,
)
from leads.telemetry.api import (
    Attribute as Attribute,
)
from leads.telemetry.api import (
    Span as Span,
)
from leads.telemetry.api import (
    SpanKind as SpanKind,
)
from leads.telemetry.api import (
    Telemetry as Telemetry,
)
from leads.telemetry.api import (
    elapsed_ms as elapsed_ms,
)
from leads.telemetry.api import (
    log_delivery as log_delivery,
)
from leads.telemetry.api import (
    log_ingest as log_ingest,
)
from leads.telemetry.api import (
    log_sweep as log_sweep,
)

_log = logging.getLogger("leads.telemetry")


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
