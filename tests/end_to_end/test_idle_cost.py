"""What keeps the app cheap while no lead arrives (docs/deploy.md, cost; measured by tests/bench_idle.py):
one polled queue, at the documented interval; a sweeper whose schedule is a setting."""

from __future__ import annotations

import json
from pathlib import Path

from devhost.hostjson import parse_timespan
from devhost.invoke import index_functions
from leads.core.settings import SETTINGS, binding_sweep_schedule, load_settings
from tests.conftest import import_app_afresh

ROOT = Path(__file__).resolve().parents[2]
OVERRIDE = "AzureFunctionsJobHost__extensions__queues__maxPollingInterval"


def test_only_the_delivery_queue_is_polled_the_poison_queue_is_read_by_the_sweeper() -> None:
    functions = index_functions(import_app_afresh("function_app"))
    queues = [f.trigger["queueName"] for f in functions if f.trigger.get("type") == "queueTrigger"]
    assert queues == ["leads-delivery"]


def test_host_json_and_the_documented_app_setting_agree_on_the_polling_interval() -> None:
    [setting] = [s for s in SETTINGS if s.name == OVERRIDE]
    host_json = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    in_file = host_json["extensions"]["queues"]["maxPollingInterval"]
    assert in_file == setting.default
    assert parse_timespan(in_file) <= 10  # worst case on a running instance: 10 s + the delivery, under 30 s


def test_the_sweeper_runs_every_five_minutes_unless_told_otherwise() -> None:
    assert binding_sweep_schedule({}) == "0 */5 * * * *"
    assert binding_sweep_schedule({"LEADS_SWEEP_SCHEDULE": " */10  * * * * * "}) == "*/10 * * * * *"


def test_a_sweep_schedule_that_is_not_ncrontab_falls_back_to_the_default_with_a_sentence() -> None:
    settings = load_settings({"AzureWebJobsStorage": "UseDevelopmentStorage=true",
                              "LEADS_SWEEP_SCHEDULE": "*/5 * * * *"})  # a Unix cron line: five fields
    assert settings.sweep_schedule == "0 */5 * * * *"
    assert "six fields" in settings.warnings["LEADS_SWEEP_SCHEDULE"]


def test_the_timer_binds_the_schedule_setting(monkeypatch) -> None:
    monkeypatch.setenv("LEADS_SWEEP_SCHEDULE", "0 0 * * * *")
    [timer] = [f for f in index_functions(import_app_afresh("function_app"))
               if f.trigger.get("type") == "timerTrigger" and f.name == "sweep_outbox"]
    assert timer.trigger["schedule"] == "0 0 * * * *"


def test_the_import_timer_exists_only_where_partner_centers_table_is_configured(monkeypatch) -> None:
    monkeypatch.delenv("LEADS_IMPORT_STORAGE", raising=False)
    assert "import_leads" not in [f.name for f in index_functions(import_app_afresh("function_app"))]
    monkeypatch.setenv("LEADS_IMPORT_STORAGE", "UseDevelopmentStorage=true")
    assert "import_leads" in [f.name for f in index_functions(import_app_afresh("function_app"))]
