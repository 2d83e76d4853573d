"""`python -m leads`: every command against real Azurite, run as a process where the process matters (exit
codes, what is printed, settings read like `make run`) and in this process for the many filter cases."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from leads.core.destination import Skipped
from leads.core.errors import LeadRejectedError
from leads.core.keys import new_lead_id
from leads.core.messages import DeliveryMessage
from leads.core.model import Customer, Lead, StoredLead
from tests.conftest import clear_cached_functions
from tests.support.azurite import PROJECT_ROOT
from tests.support.pipeline import Pipeline, RecordingDestination, build_pipeline

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(120)]

SUMMARY_KEYS = {"id", "received_at", "status", "test", "edu", "action", "action_meaning", "offer", "company",
                "country", "name", "email", "duplicate_arrivals", "deliveries"}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def lead_body(company: str, email: str, first: str = "Ana", last: str = "Lopez", action: str = "INS",
              offer: str = "Lead Router", test: bool = False, **more: str) -> bytes:
    marker = "MSFT_TEST_636573304831318844" if test else ""
    return json.dumps({
        "userDetails": {"FirstName": marker or first, "LastName": marker or last, "Email": email,
                        "Phone": more.get("phone", "600000000"), "Country": more.get("country", "ES"),
                        "Company": marker or company, "Title": more.get("title", "CTO")},
        "LeadSource": "AzureMarketplace", "ActionCode": action, "OfferTitle": offer,
        "Description": more.get("description", "hello"),
    }).encode("utf-8")


@dataclass
class Seeded:
    pipeline: Pipeline
    env: dict[str, str]
    ids: dict[str, str]  # name -> lead id
    rejected_id: str


@pytest.fixture(scope="module")
def seeded(azurite: Any, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """Five leads: a delivered one, one the webhook refused (failed), a Partner Center test lead, a Contoso
    lead from 40 days ago, and one whose every value starts like a spreadsheet formula; plus one rejected
    request (a PUT: its body is a good lead, so re-ingesting it takes it in)."""
    spool = str(tmp_path_factory.mktemp("spool"))
    webhook = RecordingDestination("webhook")
    pipeline = build_pipeline(azurite.connection_string, spool,  # the webhook takes the DNC lead, to refuse it
                              {"email": RecordingDestination("email"), "webhook": webhook},
                              env={"LEADS_ROUTES": "webhook dnc=include"})
    ids: dict[str, str] = {}

    def add(name: str, body: bytes, webhook_answer: Any = None) -> None:
        answer = pipeline.ingest.receive("POST", body, "application/json")
        assert answer.status == 202, answer.body
        ids[name] = answer.body["id"]
        if webhook_answer is not None:
            webhook.script.append(webhook_answer)
        pipeline.delivery.handle(DeliveryMessage(ids[name]))

    pipeline.clock.offset = -40 * 86400
    add("old", lead_body("Contoso Old", "old@contoso.example", offer="Archive Offer", action="PLT"))
    pipeline.clock.offset = 0
    add("delivered", lead_body("Fabrikam", "ana@fabrikam.example"))
    add("failed", lead_body("Northwind", "bo@northwind.example", first="Bo", last="Berg", action="DNC"),
        LeadRejectedError("The webhook answered 422: field company is required."))
    add("test", lead_body("", "MSFT_TEST_636573304831318844@test.com", test=True), Skipped("test lead"))
    add("formula", lead_body("=HYPERLINK(\"http://evil.example\")", "@evil.example", first="+SUM(1)",
                             last="-2+3", phone="+1 555 0100", country="=1"))
    # Parsing trims values, so a tab or CR cannot lead a value that arrives today: stored directly, so that
    # the export's guard is held to them all the same.
    now = pipeline.clock()
    tabbed = StoredLead(new_lead_id(now), now, Lead(Customer(company="\tcmd", title="\rtitle", email="t@t.example"),
                                                    description="\t=1+1"))
    pipeline.table.add(tabbed, None, timedelta(0), now)
    ids["tabbed"] = tabbed.id
    rejected = pipeline.ingest.receive("PUT", lead_body("Tailspin", "tia@tailspin.example"), "application/json")
    assert rejected.status == 405
    rows = pipeline.table.rejected()
    env = {"AzureWebJobsStorage": azurite.connection_string, "LEADS_TABLE": pipeline.settings.table,
           "LEADS_QUARANTINE_TABLE": pipeline.settings.quarantine_table, "LEADS_QUEUE": pipeline.settings.queue,
           "LEADS_DESTINATIONS": "email,webhook", "LEADS_WEBHOOK_URL": "http://127.0.0.1:9/hook",
           "LEADS_ROUTES": "webhook dnc=include", "LEADS_SPOOL_DIR": spool}
    return Seeded(pipeline, env, ids, str(rows[0]["id"] if "id" in rows[0] else rows[0]["RowKey"]))


def run_cli(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m leads ARGS` in a process of its own, with only these settings (no LEADS_* inherited)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LEADS_", "AzureWebJobs"))}
    base.update(env, PYTHONPATH=str(PROJECT_ROOT))
    return subprocess.run([sys.executable, "-m", "leads", *args], cwd=cwd or PROJECT_ROOT / "tests", env=base,
                          capture_output=True, text=True, timeout=90, check=False)


@pytest.fixture
def cli(seeded: Seeded, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """`cli(*args) -> (exit code, stdout, stderr)` in this process, with the seeded settings."""
    from leads.cli.app import main

    monkeypatch.chdir(tmp_path)  # no local.settings*.json here: only the environment counts
    for name, value in seeded.env.items():
        monkeypatch.setenv(name, value)
    clear_cached_functions()

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    yield run
    clear_cached_functions()


def listed(cli: Any, *args: str) -> set[str]:
    code, out, err = cli("list", "--json", "--all", *args)
    assert code == 0, err
    return {lead["id"] for lead in json.loads(out)["leads"]}


# --- help, usage and settings ---------------------------------------------------------------------------
def test_help_documents_the_exit_codes_and_a_bad_option_is_usage() -> None:
    done = run_cli({}, "--help")
    assert done.returncode == 0
    for line in ("0  done", "1  a check failed", "2  a settings or storage problem", "3  usage"):
        assert line in done.stdout
    bad = run_cli({}, "list", "--colour")
    assert bad.returncode == 3
    assert "unrecognized arguments: --colour" in bad.stderr


def test_a_missing_storage_setting_is_exit_2_with_the_sentence(tmp_path: Path) -> None:
    done = run_cli({}, "list", cwd=tmp_path)  # no settings file, no AzureWebJobsStorage
    assert done.returncode == 2
    assert "AzureWebJobsStorage" in done.stderr


def test_storage_that_does_not_answer_is_exit_2(tmp_path: Path) -> None:
    dead = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
            "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
            "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;")
    done = run_cli({"AzureWebJobsStorage": dead}, "status", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip()


# --- list and show --------------------------------------------------------------------------------------
def test_list_prints_a_table_and_json_with_the_api_shape(seeded: Seeded) -> None:
    table = run_cli(seeded.env, "list")
    assert table.returncode == 0, table.stderr
    assert "Northwind" in table.stdout and "webhook:failed" in table.stdout
    assert "6 lead(s)." in table.stdout
    every = run_cli(seeded.env, "list", "--all", "--limit", "2", "--progress")
    assert "6 lead(s)." in every.stdout and "reading leads" in every.stderr  # the bar, on stderr

    done = run_cli(seeded.env, "list", "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert set(answer) == {"leads", "continuation"}
    assert [lead["id"] for lead in answer["leads"]][-1] == seeded.ids["old"]  # newest first
    assert all(set(lead) >= SUMMARY_KEYS for lead in answer["leads"])


def test_each_filter_narrows_the_list(cli: Any, seeded: Seeded) -> None:
    ids = seeded.ids
    assert listed(cli) == set(ids.values())
    assert listed(cli, "--test") == {ids["test"]}
    assert ids["test"] not in listed(cli, "--real")
    assert listed(cli, "--status", "failed") == {ids["failed"]}
    assert listed(cli, "--destination", "webhook", "--destination-state", "failed") == {ids["failed"]}
    assert listed(cli, "--offer", "archive") == {ids["old"]}
    assert listed(cli, "--action", "DNC") == {ids["failed"]}
    assert listed(cli, "--search", "NORTHWIND") == {ids["failed"]}
    assert listed(cli, "--search", "bo berg") == {ids["failed"]}
    recent = (seeded.pipeline.clock() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ids["old"] not in listed(cli, "--from", recent)
    assert listed(cli, "--to", recent) == {ids["old"]}


def test_limit_pages_and_all_follows_the_tokens(cli: Any, seeded: Seeded) -> None:
    code, out, _ = cli("list", "--json", "--limit", "2")
    first = json.loads(out)
    assert code == 0 and len(first["leads"]) == 2 and first["continuation"]
    code, out, _ = cli("list", "--json", "--limit", "2", "--continuation", first["continuation"])
    second = json.loads(out)
    assert {lead["id"] for lead in second["leads"]}.isdisjoint({lead["id"] for lead in first["leads"]})
    code, out, _ = cli("list", "--json", "--limit", "2", "--all")
    assert {lead["id"] for lead in json.loads(out)["leads"]} == set(seeded.ids.values())
    assert json.loads(out)["continuation"] is None


def test_a_bad_filter_is_usage_with_the_sentence_naming_it(cli: Any) -> None:
    code, _, err = cli("list", "--status", "lost")
    assert code == 3
    assert "status must be one of" in err
    code, _, err = cli("list", "--limit", "500")
    assert code == 3 and "--limit" in err


def test_show_prints_the_lead_and_its_attempts(seeded: Seeded) -> None:
    done = run_cli(seeded.env, "show", seeded.ids["failed"])
    assert done.returncode == 0, done.stderr
    assert "bo@northwind.example" in done.stdout
    assert "field company is required" in done.stdout  # the webhook's attempt, with its sentence

    as_json = json.loads(run_cli(seeded.env, "show", seeded.ids["failed"], "--json").stdout)
    assert SUMMARY_KEYS | {"lead", "raw_body", "raw_body_bytes", "campaign"} <= set(as_json)
    assert as_json["deliveries"]["webhook"]["history"][0]["outcome"] == "failed"


def test_show_of_an_unknown_lead_is_exit_1(cli: Any) -> None:
    code, _, err = cli("show", "20261121T044355123Z-9f3a1c2e")
    assert code == 1
    assert "No lead 20261121T044355123Z-9f3a1c2e" in err


def test_terminal_control_characters_in_a_lead_are_shown_escaped() -> None:
    from leads.cli.output import printable

    assert printable("Contoso\x1b[2J\u202eevil") == "Contoso\\x1b[2J\\u202eevil"


# --- export ---------------------------------------------------------------------------------------------
def test_export_csv_has_every_lead_and_no_cell_can_become_a_formula(seeded: Seeded, tmp_path: Path) -> None:
    target = tmp_path / "leads.csv"
    done = run_cli(seeded.env, "export", "--format", "csv", "--output", str(target))
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(target.read_bytes().decode("utf-8"), newline="")))
    assert {row["id"] for row in rows} == set(seeded.ids.values())
    formula = next(row for row in rows if row["id"] == seeded.ids["formula"])
    # Each OWASP trigger character, typed into Partner Center's form, comes out behind a quote.
    assert formula["company"] == "'=HYPERLINK(\"http://evil.example\")"
    assert formula["first_name"] == "'+SUM(1)"
    assert formula["last_name"] == "'-2+3"
    assert formula["email"] == "'@evil.example"
    tabbed = next(row for row in rows if row["id"] == seeded.ids["tabbed"])
    assert (tabbed["company"], tabbed["title"], tabbed["description"]) == ("'\tcmd", "'\rtitle", "'\t=1+1")
    assert not [(row["id"], name) for row in rows for name, cell in row.items() if cell.startswith(FORMULA_STARTS)]
    ordinary = next(row for row in rows if row["id"] == seeded.ids["delivered"])
    assert ordinary["company"] == "Fabrikam" and ordinary["email"] == "ana@fabrikam.example"


def test_safe_cell_prefixes_each_trigger_and_nothing_else() -> None:
    from leads.cli.export import safe_cell

    for start in FORMULA_STARTS:
        assert safe_cell(f"{start}1+1") == f"'{start}1+1"
    assert safe_cell("Contoso =1") == "Contoso =1"
    assert safe_cell(None) == ""


def test_export_jsonl_since_a_date_with_a_progress_bar(seeded: Seeded) -> None:
    since = (seeded.pipeline.clock() - timedelta(days=1)).date().isoformat()
    done = run_cli(seeded.env, "export", "--format", "jsonl", "--since", since, "--progress")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert {r["id"] for r in records} == set(seeded.ids.values()) - {seeded.ids["old"]}
    failed = next(r for r in records if r["id"] == seeded.ids["failed"])
    assert failed["lead"]["customer"]["email"] == "bo@northwind.example"
    assert failed["deliveries"]["webhook"]["state"] == "failed"
    assert "exporting leads" in done.stderr  # the bar, on stderr: stdout stays the data
    quiet = run_cli(seeded.env, "export", "--format", "jsonl")  # not a terminal: no bar unless asked
    assert quiet.returncode == 0 and quiet.stderr == ""
    bad = run_cli(seeded.env, "export", "--format", "jsonl", "--since", "last week")
    assert bad.returncode == 3 and "--since 'last week' is not an ISO-8601 date" in bad.stderr


# --- status and doctor ----------------------------------------------------------------------------------
def test_status_answers_why_no_leads(seeded: Seeded) -> None:
    done = run_cli(seeded.env, "status", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert {"last_lead", "last_test_lead", "why_no_leads", "counts", "destinations"} <= set(report)
    assert report["last_test_lead"]["id"] == seeded.ids["test"]
    assert {d["name"] for d in report["destinations"]} == {"email", "webhook"}

    human = run_cli(seeded.env, "status")
    assert human.returncode == 0, human.stderr
    assert f"Last test lead: {report['last_test_lead']['received_at']}  {seeded.ids['test']}" in human.stdout
    assert "Destinations" in human.stdout and "webhook" in human.stdout
