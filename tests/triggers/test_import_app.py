"""The importer inside the app: the timer through the local host (the e-mail arrives at a real SMTP server), the
backfill command, the doctor's sentences, and an app without LEADS_IMPORT_STORAGE making no storage call."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest
from azure.functions.timer import TimerRequest

from leads.services import doctor
from tests.cli.test_cli import run_cli
from tests.conftest import clear_cached_functions
from tests.devhost.http_client import call
from tests.end_to_end.test_end_to_end import app_env
from tests.support.partner_center_table import source_table, write_rows
from tests.support.smtp import SmtpServer

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(120)]


def run_import_timer(host: Any) -> None:
    """The import timer, now (the host's admin API; it also runs every minute, at second 30)."""
    answer = call("POST", f"{host.base_url}/admin/functions/import_leads", b'{"input": ""}', host.admin_headers)
    assert answer.status == 202


@pytest.mark.e2e
def test_a_row_partner_center_writes_is_mailed_once(local_host_factory: Any, smtp_server: SmtpServer, azurite: Any,
                                                    tmp_path: Path) -> None:
    source = source_table(azurite.connection_string)
    env = app_env(smtp_server, tmp_path, LEADS_IMPORT_STORAGE=azurite.connection_string,
                  LEADS_IMPORT_TABLE=source.table_name)
    host = local_host_factory(env)
    [row] = write_rows(source, ["jo.kim@contoso.example"])
    run_import_timer(host)
    [message] = smtp_server.wait_for(1, timeout=30)
    assert "Widget SaaS" in message["Subject"]
    run_import_timer(host)
    run_import_timer(host)
    time.sleep(3)  # longer than the queue's polling interval: a second e-mail would have arrived
    assert len(smtp_server.messages) == 1, row["RowKey"]


def test_without_import_storage_the_timer_makes_no_storage_call(azurite: Any, monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    from leads.triggers import timer
    from tests.support.counting import count_every_storage_call

    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.delenv("LEADS_IMPORT_STORAGE", raising=False)
    clear_cached_functions()
    handler: Any = getattr(timer.import_leads, "get_user_function", lambda: timer.import_leads)()
    try:
        with count_every_storage_call(azurite.endpoints["queue"]) as seen:
            handler(TimerRequest(past_due=False))
        assert seen.snapshot() == {}
        monkeypatch.setenv("LEADS_IMPORT_STORAGE", azurite.connection_string)  # the same timer, switched on
        clear_cached_functions()
        with count_every_storage_call(azurite.endpoints["queue"]) as seen:
            handler(TimerRequest(past_due=False))
        assert seen.snapshot()["table GET " + "MarketplaceLeads"] == 1  # it reads Partner Center's table
        # ... which does not exist here: a sentence in the log, not a failed function.
        assert "import: The table MarketplaceLeads does not exist in the account" in caplog.text
    finally:
        clear_cached_functions()


def test_backfill_since_a_date_imports_the_rows_written_from_then_with_a_progress_bar(
        azurite: Any, smtp_server: SmtpServer, tmp_path: Path) -> None:
    source = source_table(azurite.connection_string)
    env = {**app_env(smtp_server, tmp_path), "AzureWebJobsStorage": azurite.connection_string,
           "LEADS_IMPORT_STORAGE": azurite.connection_string, "LEADS_IMPORT_TABLE": source.table_name}
    write_rows(source, ["before@contoso.example"])
    time.sleep(1.1)
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    time.sleep(1.1)
    write_rows(source, ["after1@contoso.example", "after2@contoso.example"])
    backfill = run_cli(env, "import", "--since", since, "--progress")
    assert backfill.returncode == 0, backfill.stderr
    assert backfill.stdout.startswith("2 row(s) read: 2 new lead(s), 0 already imported, 0 quarantined")
    assert "importing rows" in backfill.stderr  # rich's bar, on stderr
    again = run_cli(env, "import", "--json")
    assert again.returncode == 0, again.stderr
    assert '"imported": 0' in again.stdout and '"read": 2' in again.stdout  # the row before --since stays out
    listed = run_cli(env, "list", "--json")
    assert sorted(lead["email"] for lead in __import__("json").loads(listed.stdout)["leads"]) == [
        "after1@contoso.example", "after2@contoso.example"]


def test_import_without_the_setting_says_what_to_set(azurite: Any) -> None:
    answer = run_cli({"AzureWebJobsStorage": azurite.connection_string}, "import")
    assert answer.returncode == 2
    assert answer.stdout.startswith("LEADS_IMPORT_STORAGE is not set: name the storage account Partner Center")


def run_doctor(env: dict[str, str]) -> tuple[int, str]:
    out = io.StringIO()
    status = doctor.main(["--destination=none"], env=env, out=out, extra_checks=[doctor.import_checks])
    return status, " ".join(out.getvalue().split())  # columns are padded to the longest name


def test_doctor_names_a_bad_value_a_missing_table_and_a_readable_one(azurite: Any) -> None:
    base = {"AzureWebJobsStorage": azurite.connection_string}
    status, output = run_doctor({**base, "LEADS_IMPORT_STORAGE": "AccountName=pc;AccountKey=c2VjcmV0"})
    assert status == 1
    assert "FAIL settings LEADS_IMPORT_STORAGE: LEADS_IMPORT_STORAGE must be the table endpoint" in output
    assert "c2VjcmV0" not in output
    status, output = run_doctor({**base, "LEADS_IMPORT_STORAGE": azurite.connection_string,
                                 "LEADS_IMPORT_TABLE": "NoSuchTable"})
    assert status == 1
    assert ("FAIL import source table: The table NoSuchTable does not exist in the account LEADS_IMPORT_STORAGE "
            "names") in output
    source = source_table(azurite.connection_string)
    status, output = run_doctor({**base, "LEADS_IMPORT_STORAGE": azurite.connection_string,
                                 "LEADS_IMPORT_TABLE": source.table_name})
    assert (status, output) == (0, f"OK import source table: Partner Center's table {source.table_name} "
                                           "may be read.")
