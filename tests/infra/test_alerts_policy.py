"""The Azure Monitor alerts (infra/modules/alerts.bicep, alert-rule.bicep) fire when they should, and only then.

Each rule's query runs (tests/infra/kql.py) over Application Insights rows in exactly the shape the app's telemetry
takes there. The rows are produced, not written by hand: the app's own log calls (leads/telemetry/api.py log_ingest,
log_delivery, log_sweep) go through the LoggingHandler that azure-monitor-opentelemetry attaches to the "leads"
logger when leads/telemetry/otel.py configures it (azure/monitor/opentelemetry/_configure.py `_setup_logging`), and
the Azure Monitor exporter's own envelope mapping (azure-monitor-opentelemetry-exporter,
azure/monitor/opentelemetry/exporter/export/logs/_exporter.py `_convert_log_to_envelope`: MessageData with the
log body as `message`, `_get_severity_level`, the record's attributes as `properties`). The envelope becomes the
`traces` row Application Insights stores (Learn, "Application Insights telemetry data model", Trace:
https://learn.microsoft.com/azure/azure-monitor/app/data-model-complete#trace: message, severityLevel,
customDimensions = properties, timestamp = the envelope's time).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leads.telemetry import api
from tests.infra import kql
from tests.infra.test_bicep_policy import accessor, body, main, module, module_path, parse

RULES = {"functionFailures", "ingest5xx", "sweeperNotRunning", "noDelivery"}
DURATION = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?)?$")
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def minutes(duration: str) -> int:
    match = DURATION.fullmatch(duration)
    assert match, f"{duration} is not an ISO 8601 duration"
    return int(match["d"] or 0) * 1440 + int(match["h"] or 0) * 60 + int(match["m"] or 0)


def alerts() -> dict[str, Any]:
    return parse("modules/alerts.bicep")


def rule(name: str) -> dict[str, Any]:
    condition, config = body(alerts()["modules"][name])
    assert condition is None, f"alert rule {name} must not be conditional"
    params: dict[str, Any] = config["params"]
    return params


# ---------------------------------------------------------------- the app's records, as Application Insights has them


@contextmanager
def exported_rows() -> Iterator[Callable[[datetime, Callable[[], None]], None]]:
    """`emit(at, call)` runs one of the app's log calls as if at `at`; on exit, `ROWS` holds the `traces` and
    `exceptions` rows the exporter's mapping produces."""
    from azure.monitor.opentelemetry.exporter.export.logs._exporter import _convert_log_to_envelope
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = LoggingHandler(logger_provider=provider)
    when: list[datetime] = []

    class At(logging.Filter):  # the record's creation time, which the handler turns into the log timestamp
        def filter(self, record: logging.LogRecord) -> bool:
            record.created = when[-1].timestamp()
            record.msecs = 0
            return True

    handler.addFilter(At())
    app_logger = logging.getLogger("leads")  # as otel.py: configure_azure_monitor(logger_name="leads"), INFO
    saved_level = app_logger.level
    app_logger.addHandler(handler)
    app_logger.setLevel(logging.INFO)

    def emit(at: datetime, call: Callable[[], None]) -> None:
        when.append(at)
        call()

    for rows in ROWS.values():
        rows.clear()
    try:
        yield emit
    finally:
        app_logger.removeHandler(handler)
        app_logger.setLevel(saved_level)
    for record in exporter.get_finished_logs():
        envelope = _convert_log_to_envelope(record)
        assert envelope.data is not None
        data: Any = envelope.data.base_data  # MessageData or TelemetryExceptionData
        row = {"timestamp": envelope.time if envelope.time.tzinfo else envelope.time.replace(tzinfo=UTC),
               "severityLevel": int(data.severity_level or 0),
               "customDimensions": dict(data.properties or {})}
        if envelope.data.base_type == "MessageData":
            ROWS["traces"].append({**row, "message": data.message, "itemType": "trace"})
        else:
            ROWS["exceptions"].append({**row, "type": data.exceptions[0].type_name, "itemType": "exception"})


ROWS: dict[str, list[dict[str, Any]]] = {"traces": [], "exceptions": []}


def fires(name: str, scenario: Callable[[Callable[[datetime, Callable[[], None]], None]], None]) -> bool:
    params = rule(name)
    window = params["windowSize"]
    if window == "noDeliveryPeriod":
        window = main()["parameters"]["alertNoDeliveryPeriod"]["default"]
    with exported_rows() as emit:
        scenario(emit)
    # Count > 0 (alert-rule.bicep's only criterion) over the rule's window, evaluated now.
    return len(kql.run(params["query"], ROWS, NOW, timedelta(minutes=minutes(window)))) > 0


def ago(**delta: int) -> datetime:
    return NOW - timedelta(**delta)


def healthy(emit: Callable[[datetime, Callable[[], None]], None]) -> None:
    """A normal day: sweeps every 5 minutes, a lead accepted an hour ago and delivered, a duplicate, a rejected
    request, a retry that later succeeded, a lead that just arrived and is not delivered yet."""
    for minute in range(0, 360, 5):
        emit(ago(minutes=minute), lambda: api.log_sweep(0, 0, 12))
    emit(ago(minutes=60), lambda: api.log_ingest("lead-1", "accepted", 40))
    emit(ago(minutes=59), lambda: api.log_delivery("lead-1", "email", "retrying", 20000))
    emit(ago(minutes=55), lambda: api.log_delivery("lead-1", "email", "delivered", 300))
    emit(ago(minutes=50), lambda: api.log_ingest("lead-1", "duplicate", 12))
    emit(ago(minutes=40), lambda: api.log_ingest("-", "rejected", 3))
    emit(ago(minutes=5), lambda: api.log_ingest("lead-2", "accepted", 35))


# ---------------------------------------------------------------- the records the app emits


def test_the_rows_are_the_exporters_mapping_of_the_apps_log_calls() -> None:
    with exported_rows() as emit:
        emit(ago(minutes=1), lambda: api.log_ingest("", "unavailable", 7))
        emit(ago(minutes=1), lambda: api.log_delivery("lead-9", "webhook", "failed", 20))
    ingest, delivery = ROWS["traces"]
    assert ingest["message"] == "ingest lead_id=- outcome=unavailable duration_ms=7"
    assert ingest["severityLevel"] == 3  # logging.ERROR -> SeverityNumber 17 -> Application Insights Error
    assert ingest["customDimensions"]["outcome"] == "unavailable"
    assert ingest["customDimensions"]["logger_name"] == "leads.ingest"
    assert ingest["timestamp"] == ago(minutes=1)
    assert delivery["customDimensions"]["destination"] == "webhook" and delivery["severityLevel"] == 3


# ---------------------------------------------------------------- each rule: fires when it should, only then


def test_nothing_fires_on_a_healthy_day() -> None:
    fired = [name for name in RULES if fires(name, healthy)]
    assert not fired, f"rules that fire while nothing is wrong: {fired}"


@pytest.mark.parametrize("outcome", ["spooled", "unavailable"])
def test_ingest_5xx_fires_on_a_503_line(outcome: str) -> None:
    def scenario(emit: Callable[[datetime, Callable[[], None]], None]) -> None:
        healthy(emit)
        emit(ago(minutes=3), lambda: api.log_ingest("", outcome, 9))
    assert fires("ingest5xx", scenario)


@pytest.mark.parametrize("outcome", ["accepted", "duplicate", "rejected", "held"])
def test_ingest_5xx_stays_quiet_on_answers_below_500(outcome: str) -> None:
    assert not fires("ingest5xx", lambda emit: emit(ago(minutes=3), lambda: api.log_ingest("x", outcome, 9)))


def test_ingest_5xx_forgets_a_503_older_than_its_window() -> None:
    assert not fires("ingest5xx", lambda emit: emit(ago(minutes=20), lambda: api.log_ingest("", "spooled", 9)))


def test_the_sweeper_rule_fires_on_silence_and_only_then() -> None:
    assert fires("sweeperNotRunning", lambda emit: None), "no sweeper line at all must fire"
    # The last run 35 minutes ago: several missed runs.
    assert fires("sweeperNotRunning", lambda emit: emit(ago(minutes=35), lambda: api.log_sweep(0, 0, 5)))
    assert not fires("sweeperNotRunning", lambda emit: emit(ago(minutes=24), lambda: api.log_sweep(3, 1, 5)))
    # Other lines do not count as a run.
    assert fires("sweeperNotRunning", lambda emit: emit(ago(minutes=2), lambda: api.log_ingest("x", "accepted", 1)))


def test_the_sweeper_window_covers_several_runs_of_the_default_schedule() -> None:
    from leads.core.settings import SETTINGS

    [schedule] = [s.default for s in SETTINGS if s.name == "LEADS_SWEEP_SCHEDULE"]
    every = schedule.split()[1]
    assert every.startswith("*/")
    assert minutes(rule("sweeperNotRunning")["windowSize"]) >= 3 * int(every[2:])


def test_no_delivery_fires_when_leads_wait_and_nothing_is_delivered() -> None:
    def stuck(emit: Callable[[datetime, Callable[[], None]], None]) -> None:
        emit(ago(minutes=90), lambda: api.log_ingest("lead-1", "accepted", 40))
        emit(ago(minutes=80), lambda: api.log_delivery("lead-1", "email", "retrying", 20000))
        emit(ago(minutes=20), lambda: api.log_delivery("lead-1", "email", "blocked", 3))
    assert fires("noDelivery", stuck)
    # A lead held in the fallback table counts as arrived too.
    assert fires("noDelivery", lambda emit: emit(ago(minutes=45), lambda: api.log_ingest("l", "held", 40)))


def test_no_delivery_stays_quiet_for_a_fresh_lead_a_skipped_one_or_no_lead() -> None:
    assert not fires("noDelivery", lambda emit: emit(ago(minutes=10), lambda: api.log_ingest("l", "accepted", 4)))
    assert not fires("noDelivery", lambda emit: None)

    def skipped(emit: Callable[[datetime, Callable[[], None]], None]) -> None:
        emit(ago(minutes=90), lambda: api.log_ingest("lead-1", "accepted", 40))
        emit(ago(minutes=89), lambda: api.log_delivery("lead-1", "salesforce", "skipped", 1))
    assert not fires("noDelivery", skipped)


def test_the_error_rule_fires_on_an_app_error_or_exception_not_on_warnings() -> None:
    def failed(emit: Callable[[datetime, Callable[[], None]], None]) -> None:
        emit(ago(minutes=2), lambda: api.log_delivery("lead-1", "webhook", "failed", 20))
    assert fires("functionFailures", failed)

    def crashed(emit: Callable[[datetime, Callable[[], None]], None]) -> None:
        def log_exception() -> None:
            try:
                raise RuntimeError("boom")
            except RuntimeError:
                logging.getLogger("leads.services.delivery").exception("delivery crashed")
        emit(ago(minutes=2), log_exception)
    assert fires("functionFailures", crashed)
    assert ROWS["exceptions"], "an exception log is exported as an exception, not a trace"

    def warned(emit: Callable[[datetime, Callable[[], None]], None]) -> None:
        emit(ago(minutes=2), lambda: api.log_delivery("lead-1", "webhook", "retrying", 20))
        emit(ago(minutes=2), lambda: api.log_delivery("lead-1", "webhook", "blocked", 20))
        emit(ago(minutes=2), lambda: api.log_ingest("lead-2", "held", 20))
    assert not fires("functionFailures", warned)
    # Ingest's own 503 line is the 5xx rule's, not counted twice.
    assert not fires("functionFailures", lambda emit: emit(ago(minutes=2), lambda: api.log_ingest("", "spooled", 9)))


def test_no_rule_reads_the_hosts_request_records() -> None:
    # Under telemetryMode OpenTelemetry the host's requests are not named after the function, and a timer run may
    # leave none (issue 15): a rule on them fires all the time or never.
    for name in RULES:
        query = rule(name)["query"]
        assert "requests" not in query and "operation_Name" not in query, name
        with pytest.raises(kql.KqlError):
            kql.run(query.replace("traces", "requests", 1), {"traces": []}, NOW, timedelta(hours=1))


# ---------------------------------------------------------------- the resources


def test_main_deploys_the_alerts_on_application_insights_with_the_alert_parameters() -> None:
    condition, _ = body(main()["modules"]["alerts"])
    assert condition is None
    params = module("alerts")["params"]
    assert module_path("alerts") == "modules/alerts.bicep"
    assert accessor(params["applicationInsightsId"]) == "monitoring.outputs.applicationInsightsId"
    assert (params["alertEmail"], params["noDeliveryPeriod"]) == ("alertEmail", "alertNoDeliveryPeriod")
    assert main()["parameters"]["alertEmail"]["default"] == ""


def test_the_action_group_e_mails_the_alert_address() -> None:
    group = alerts()["resources"]["actionGroup"]
    assert group["type"] == "Microsoft.Insights/actionGroups"
    config = group["config"]
    assert config["location"] == "Global"
    assert len(config["properties"]["groupShortName"]) <= 12
    receivers = config["properties"]["emailReceivers"]["operator"]["operands"]
    assert receivers["condition"]["function"]["parameters"]["item_to_test"] == "alertEmail"
    [receiver] = receivers["false_value"]
    assert receiver["emailAddress"] == "alertEmail"


def test_each_rule_is_a_log_alert_on_application_insights_that_notifies_the_action_group() -> None:
    assert set(alerts()["modules"]) == RULES
    for name in RULES:
        params = rule(name)
        assert str(alerts()["modules"][name]["detail"]["path"]) == "alert-rule.bicep"
        assert params["applicationInsightsId"] == "applicationInsightsId"
        assert accessor(params["actionGroupId"]) == "actionGroup.id"
        window = "P2D" if params["windowSize"] == "noDeliveryPeriod" else params["windowSize"]
        assert minutes(params["evaluationFrequency"]) <= minutes(window), name
        assert minutes(params["evaluationFrequency"]) >= 15, f"{name}: more often costs more (docs/operations.md)"
        assert "docs/operations.md" in params["description"]
    [resource] = parse("modules/alert-rule.bicep")["resources"].values()
    assert resource["type"] == "Microsoft.Insights/scheduledQueryRules"
    properties = resource["config"]["properties"]
    assert resource["config"]["kind"] == "LogAlert"
    assert properties["scopes"] == ["applicationInsightsId"]
    assert properties["actions"]["actionGroups"] == ["actionGroupId"]
    assert (properties["enabled"], properties["autoMitigate"]) == (True, True)
    [criterion] = properties["criteria"]["allOf"]
    assert (criterion["timeAggregation"], criterion["operator"], criterion["threshold"]) == ("Count", "GreaterThan", 0)
