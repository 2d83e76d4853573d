"""Policy checks on the Azure Monitor alerts (infra/modules/alerts.bicep, alert-rule.bicep), read with pycep.

The alerts must fire when the app itself is broken, so they read what exists without it: the host's
`requests` records (the function names here are checked against the code: a renamed function would silence
its alert) and the app's log lines, whose shape is the log-line contract (docs/operations.md, Alerts in Azure).
"""

from __future__ import annotations

import re
from typing import Any

from tests.infra.test_bicep_policy import ROOT, accessor, body, main, module, module_path, parse

# The log-line contract shared with the telemetry lines (docs/operations.md): prefixes and outcome words.
INGEST_LINE, DELIVERY_LINE = 'message startswith "ingest "', 'message startswith "delivery "'
ARRIVED = ("accepted", "held", "spooled")
HANDLED = ("delivered", "skipped")
RULES = {"functionFailures", "ingest5xx", "sweeperNotRunning", "noDelivery"}
DURATION = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?)?$")


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


def defined_function(name: str, trigger_file: str) -> bool:
    source = (ROOT / "leads" / "triggers" / trigger_file).read_text(encoding="utf-8")
    return re.search(rf"^def {name}\(", source, re.MULTILINE) is not None


def test_main_deploys_the_alerts_on_application_insights_with_the_alert_parameters() -> None:
    condition, _ = body(main()["modules"]["alerts"])
    assert condition is None
    params = module("alerts")["params"]
    assert module_path("alerts") == "modules/alerts.bicep"
    assert accessor(params["applicationInsightsId"]) == "monitoring.outputs.applicationInsightsId"
    assert (params["alertEmail"], params["noDeliveryPeriod"]) == ("alertEmail", "alertNoDeliveryPeriod")
    declared = main()["parameters"]
    assert declared["alertEmail"]["default"] == ""
    allowed = next(d["argument"] for d in alerts()["parameters"]["noDeliveryPeriod"]["decorators"]
                   if d["type"] == "allowed")
    assert declared["alertNoDeliveryPeriod"]["default"] in allowed
    assert all(minutes(period) <= 2 * 1440 for period in allowed), "a log alert's window is at most two days"


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
        assert module_path_of(name) == "alert-rule.bicep"
        assert params["applicationInsightsId"] == "applicationInsightsId"
        assert accessor(params["actionGroupId"]) == "actionGroup.id"
        window = "P2D" if params["windowSize"] == "noDeliveryPeriod" else params["windowSize"]
        assert minutes(params["evaluationFrequency"]) <= minutes(window), name
        assert minutes(params["evaluationFrequency"]) >= 15 or name == "noDelivery", \
            f"{name}: more often than every 15 minutes costs more (docs/operations.md)"
        assert "docs/operations.md" in params["description"]
        query = params["query"]
        assert query.count("(") == query.count(")") and query.count('"') % 2 == 0, name
    [resource] = parse("modules/alert-rule.bicep")["resources"].values()
    assert resource["type"] == "Microsoft.Insights/scheduledQueryRules"
    properties = resource["config"]["properties"]
    assert resource["config"]["kind"] == "LogAlert"
    assert properties["scopes"] == ["applicationInsightsId"]
    assert properties["actions"]["actionGroups"] == ["actionGroupId"]
    assert (properties["enabled"], properties["autoMitigate"]) == (True, True)
    [criterion] = properties["criteria"]["allOf"]
    assert (criterion["timeAggregation"], criterion["operator"], criterion["threshold"]) == ("Count", "GreaterThan", 0)


def module_path_of(name: str) -> str:
    return str(alerts()["modules"][name]["detail"]["path"])


def test_failures_and_5xx_come_from_the_hosts_own_records() -> None:
    failures = rule("functionFailures")["query"]
    assert "requests" in failures and "success == false" in failures and "exceptions" in failures
    ingest = rule("ingest5xx")["query"]
    assert defined_function("ingest_lead", "http.py")
    assert 'operation_Name == "ingest_lead"' in ingest and "toint(resultCode) >= 500" in ingest


def test_the_sweeper_rule_fires_on_no_run_of_the_timer_function() -> None:
    params = rule("sweeperNotRunning")
    assert defined_function("sweep_outbox", "timer.py")
    from leads.core.settings import SETTINGS

    [schedule] = [s.default for s in SETTINGS if s.name == "LEADS_SWEEP_SCHEDULE"]
    every = schedule.split()[1]  # the minutes field of the default NCRONTAB, e.g. */5
    assert every.startswith("*/"), "the window below assumes a run every few minutes"
    assert minutes(params["windowSize"]) >= 3 * int(every[2:]), "several missed runs, not one late one"
    query = params["query"]
    assert query.startswith("requests ") and 'operation_Name == "sweep_outbox"' in query
    assert query.endswith("| summarize runs = count() | where runs == 0")  # no rows at all still fires


def test_the_no_delivery_rule_matches_the_log_line_contract() -> None:
    params = rule("noDelivery")
    assert params["windowSize"] == "noDeliveryPeriod"
    query = params["query"]
    assert query.startswith("traces ") and INGEST_LINE in query and DELIVERY_LINE in query
    for outcome in (*ARRIVED, *HANDLED):
        assert f'message has "outcome={outcome}"' in query
    assert "timestamp < ago(30m)" in query, "a lead that just arrived is not yet overdue"
    assert query.endswith("| where arrived > 0 and handled == 0")
