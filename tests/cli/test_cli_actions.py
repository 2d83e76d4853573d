"""`python -m leads` commands that change something or reach out: replay, quarantine reingest,
send-test-lead, doctor; and that the app's request path never loads the CLI's table library."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from leads.core.errors import LeadRejectedError
from leads.core.messages import DeliveryMessage
from tests.cli.test_cli import lead_body, run_cli
from tests.conftest import StartedHost
from tests.support.azurite import PROJECT_ROOT
from tests.support.pipeline import Pipeline, RecordingDestination, build_pipeline
from tests.support.smtp import SmtpServer

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(120)]


@pytest.fixture
def failing(azurite: Any, tmp_path: Path) -> tuple[Pipeline, dict[str, str], list[str]]:
    """Two leads the webhook refused (e-mail delivered them), and the settings that point at them."""
    webhook = RecordingDestination("webhook", script=[LeadRejectedError("The webhook answered 422."),
                                                      LeadRejectedError("The webhook answered 422.")])
    pipeline = build_pipeline(azurite.connection_string, str(tmp_path / "spool"),
                              {"email": RecordingDestination("email"), "webhook": webhook})
    ids = []
    for company in ("Northwind", "Tailspin"):
        answer = pipeline.ingest.receive("POST", lead_body(company, f"x@{company.lower()}.example"), "application/json")
        ids.append(answer.body["id"])
        pipeline.delivery.handle(DeliveryMessage(answer.body["id"]))
    pipeline.queued()  # nothing waiting: what a replay queues is all there is afterwards
    env = {"AzureWebJobsStorage": azurite.connection_string, "LEADS_TABLE": pipeline.settings.table,
           "LEADS_QUARANTINE_TABLE": pipeline.settings.quarantine_table, "LEADS_QUEUE": pipeline.settings.queue,
           "LEADS_DESTINATIONS": "email,webhook", "LEADS_WEBHOOK_URL": "http://127.0.0.1:9/hook",
           "LEADS_SPOOL_DIR": str(tmp_path / "spool")}
    return pipeline, env, ids


def state_of(pipeline: Pipeline, lead_id: str, destination: str) -> str:
    current = pipeline.table.load(lead_id)
    assert current is not None
    return current.stored.deliveries[destination].state


# --- replay ---------------------------------------------------------------------------------------------
def test_replay_one_lead_to_one_destination(failing: tuple[Pipeline, dict[str, str], list[str]]) -> None:
    pipeline, env, (first, second) = failing
    done = run_cli(env, "replay", first, "--destination", "webhook")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{first}: Queued again for webhook."
    assert state_of(pipeline, first, "webhook") == "pending"
    assert state_of(pipeline, second, "webhook") == "failed"
    assert [m.lead_id for m in pipeline.queued()] == [first]


def test_replay_failed_with_json_and_a_progress_bar(failing: tuple[Pipeline, dict[str, str], list[str]]) -> None:
    pipeline, env, ids = failing
    done = run_cli(env, "replay", "--failed", "--json", "--progress")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["queued"] == 2
    assert {r["id"] for r in answer["results"]} == set(ids)
    assert all(set(r) == {"id", "result", "queued"} for r in answer["results"])
    assert "replaying" in done.stderr
    assert sorted(m.lead_id for m in pipeline.queued()) == sorted(ids)


def test_replay_of_an_unknown_lead_says_so_and_exits_1(failing: tuple[Pipeline, dict[str, str], list[str]]) -> None:
    _, env, (first, _second) = failing
    done = run_cli(env, "replay", "20261121T044355123Z-9f3a1c2e", first)
    assert done.returncode == 1
    assert "20261121T044355123Z-9f3a1c2e: No lead 20261121T044355123Z-9f3a1c2e" in done.stdout
    assert f"{first}: Queued again for webhook." in done.stdout  # the other lead was still replayed
    assert run_cli(env, "replay").returncode == 3  # nothing named


def test_replay_all_keeps_todays_behaviour(failing: tuple[Pipeline, dict[str, str], list[str]]) -> None:
    pipeline, env, (first, _second) = failing
    done = run_cli(env, "replay", "--all", first)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{first}: queued again"
    assert state_of(pipeline, first, "webhook") == "pending"


# --- quarantine -----------------------------------------------------------------------------------------
def test_quarantine_list_show_and_reingest(failing: tuple[Pipeline, dict[str, str], list[str]]) -> None:
    pipeline, env, _ = failing
    refused = pipeline.ingest.receive("PUT", lead_body("Wingtip", "wu@wingtip.example"), "application/json")
    assert refused.status == 405

    listing = json.loads(run_cli(env, "quarantine", "list", "--json").stdout)
    assert set(listing) == {"requests", "continuation"}
    (request,) = listing["requests"]
    assert request["method"] == "PUT" and request["status"] == 405
    table = run_cli(env, "quarantine", "list")
    assert request["id"] in table.stdout and "1 request(s)." in table.stdout
    refused_limit = run_cli(env, "quarantine", "list", "--limit", "0")
    assert refused_limit.returncode == 3 and "--limit must be between 1 and 100; it was 0." in refused_limit.stderr

    shown = run_cli(env, "quarantine", "show", request["id"])
    assert shown.returncode == 0, shown.stderr
    assert "wu@wingtip.example" in shown.stdout  # the body as received
    assert json.loads(run_cli(env, "quarantine", "show", request["id"], "--json").stdout)["body"].startswith("{")

    again = run_cli(env, "quarantine", "reingest", request["id"], "--json")
    assert again.returncode == 0, again.stderr
    outcome = json.loads(again.stdout)
    assert outcome["status"] == 202
    assert pipeline.table.load(outcome["answer"]["id"]) is not None

    missing = run_cli(env, "quarantine", "show", "8203956559255:55a4a64c")
    assert missing.returncode == 1 and "No rejected request" in missing.stderr


# --- send-test-lead -------------------------------------------------------------------------------------
def test_send_test_lead_to_the_local_host(local_host_factory: Callable[..., StartedHost],
                                          failing: tuple[Pipeline, dict[str, str], list[str]]) -> None:
    pipeline, env, _ = failing
    host = local_host_factory(env)
    keyed = host.url("leads")  # with ingest_lead's own key as ?code=, as the portal's "Get function URL" gives it
    done = run_cli({}, "send-test-lead", keyed, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) == {"url", "ok", "status", "answer", "elapsed_ms", "sentence"}
    assert report["status"] == 202 and report["answer"]["test"] is True
    assert keyed.split("code=")[1] not in done.stdout + done.stderr
    stored = pipeline.table.load(report["answer"]["id"])
    assert stored is not None and stored.stored.lead.is_test

    human = run_cli({}, "send-test-lead", host.url("leads"))
    assert human.returncode == 0, human.stderr
    assert "status:   202" in human.stdout and "recognised as a test lead" in human.stdout
    tls_to_plain = run_cli({}, "send-test-lead", host.url("leads").replace("http://", "https://"))
    assert tls_to_plain.returncode == 1
    assert "does not speak TLS on this port; use http:// instead" in tls_to_plain.stdout
    wrong_route = run_cli({}, "send-test-lead", host.url("lead"))
    assert wrong_route.returncode == 1
    assert "no function answers at this route" in wrong_route.stdout


def test_send_test_lead_to_a_dead_port_says_nothing_listens() -> None:
    with socket.socket() as probe:  # a port nothing listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        done = run_cli({}, "send-test-lead", f"http://127.0.0.1:{port}/api/leads")
    assert done.returncode == 1
    assert f"Nothing is listening at 127.0.0.1:{port} (connection refused)" in done.stdout
    assert run_cli({}, "send-test-lead", "ftp://example/leads").returncode == 3


def test_send_test_lead_sentences_for_keys_and_failures() -> None:
    from leads.cli.test_lead import meaning, tls_sentence

    assert "certificate is not trusted" in tls_sentence("app.example", "SSLError(... CERTIFICATE_VERIFY_FAILED ...)")

    assert "Add ?code=" in meaning(401, "", "https://app.azurewebsites.net/api/leads")
    assert "not this function's" in meaning(401, "", "https://app.azurewebsites.net/api/leads?code=x")
    assert "failed (HTTP 503): Storage is down." in meaning(503, {"message": "Storage is down."}, "http://h/api/leads")


# --- doctor ---------------------------------------------------------------------------------------------
def test_doctor_json_shape_and_exit_codes(azurite: Any, smtp_server: SmtpServer, tmp_path: Path) -> None:
    made = build_pipeline(azurite.connection_string, str(tmp_path), {"email": RecordingDestination("email")})
    env = {"AzureWebJobsStorage": azurite.connection_string, "LEADS_DESTINATIONS": "email",
           "LEADS_TABLE": made.settings.table, "LEADS_QUEUE": made.settings.queue,
           "LEADS_SMTP_HOST": smtp_server.host, "LEADS_SMTP_PORT": str(smtp_server.port),
           "LEADS_SMTP_SECURITY": "none", "LEADS_EMAIL_TO": "sales@contoso.example",
           "LEADS_EMAIL_FROM": "leads@contoso.example", "LEADS_SMTP_PASSWORD": "the-smtp-password"}
    done = run_cli(env, "doctor", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert {"email", "storage"} <= {c["destination"] for c in report["checks"]}
    assert all(set(c) == {"destination", "name", "ok", "message"} for c in report["checks"])

    smtp_server.stop()
    down = run_cli(env, "doctor", "--json")
    assert down.returncode == 1
    assert json.loads(down.stdout)["ok"] is False
    assert "the-smtp-password" not in down.stdout
    assert run_cli(env, "doctor").stdout.startswith("FAIL email")  # the lines it has always printed


# --- the request path stays free of rich ----------------------------------------------------------------
RICH_FREE = """
import json, os, pkgutil, sys, urllib.error, urllib.request
import function_app
import leads.triggers
from devhost.host import LocalHost
for module in pkgutil.iter_modules(leads.triggers.__path__):  # every trigger module, the management one too
    __import__("leads.triggers." + module.name)
host = LocalHost(function_app.app, json.load(open("host.json")), os.environ, port=0)
host.start()
try:
    body = open("samples/faq-test-lead.json", "rb").read()
    request = urllib.request.Request(host.url("leads"), data=body, method="POST")
    assert urllib.request.urlopen(request).status == 202
    for route in host.routes:  # every HTTP function with a fixed route answers once
        if "{" not in route.template and route.allows("GET"):
            try:
                urllib.request.urlopen(host.url(route.template)).read()
            except urllib.error.HTTPError:
                pass
finally:
    host.stop()
print(sorted(name for name in sys.modules if name == "rich" or name.startswith("rich.")))
"""


def test_the_app_serving_requests_never_imports_rich(azurite: Any) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADS_", "AzureWebJobs"))}
    suffix = uuid.uuid4().hex[:10]  # tables of its own: other tests count the default table's leads
    env.update(AzureWebJobsStorage=azurite.connection_string, PYTHONPATH=str(PROJECT_ROOT),
               LEADS_TABLE=f"leads{suffix}", LEADS_QUARANTINE_TABLE=f"rejected{suffix}", LEADS_QUEUE=f"work-{suffix}")
    done = subprocess.run([sys.executable, "-c", RICH_FREE], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "rich" in subprocess.run([sys.executable, "-c", "import leads.cli.output as o, io, sys; "
                                     "o.print_table(None, ['a'], [['b']], io.StringIO()); print(*sys.modules)"],
                                    cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60,
                                    check=False).stdout.split()  # the check can see rich when it is imported
