"""After the app has run (the local host, as `make run` serves it, on Azurite with a real SMTP server),
`python -m leads forget ADDRESS` leaves no trace of the address anywhere the app writes: the leads table (lead
rows with the body as received, markers, outbox and attention rows), the quarantine, both queues and the spool.
(The mail the SMTP server received is the destination's, not the app's.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from leads.core.settings import load_settings
from leads.storage.azure_clients import queue_service
from tests.cli.test_cli import run_cli
from tests.end_to_end.test_end_to_end import app_env, lead_table
from tests.support.http_json import post
from tests.support.samples import sample_bytes
from tests.support.smtp import SmtpServer

pytestmark = [pytest.mark.e2e, pytest.mark.azurite, pytest.mark.timeout(120)]
ADDRESS = "someone@contoso.com"  # samples/partner-center-doc-sample.json


def everything_the_app_wrote(env: dict[str, str], azurite: Any) -> str:
    """Every property of every row of both tables, every message of both queues and every spool file, as text."""
    table = lead_table(env, azurite)
    parts = [repr(dict(row)) + b"".join(v for v in row.values() if isinstance(v, bytes)).decode("utf-8", "replace")
             for client in (table.leads, table.quarantine_table) for row in client.list_entities()]
    settings = load_settings({**env, "AzureWebJobsStorage": azurite.connection_string})
    service = queue_service(settings.storage)
    for name in (settings.queue, settings.poison_queue):
        parts += [str(m.content) for m in service.get_queue_client(name).peek_messages(max_messages=32)]
    parts += [path.read_text("utf-8", "replace") for path in Path(env["LEADS_SPOOL_DIR"]).rglob("*") if path.is_file()]
    return "\n".join(parts).casefold()


def test_forget_after_the_app_ran_leaves_no_trace(local_host_factory: Any, smtp_server: SmtpServer, azurite: Any,
                                                   tmp_path: Path) -> None:
    env = app_env(smtp_server, tmp_path / "spool")
    host = local_host_factory(env)
    sample = sample_bytes("partner-center-doc-sample.json")
    assert post(host.url("leads"), sample)[0] == 202
    assert post(host.url("leads"), sample)[0] == 202  # a repeat: counted on the first
    assert post(host.url("leads"), sample[:-3])[0] == 400  # cut short: quarantined with its body
    assert post(host.url("leads"), sample_bytes("camelcase-wire.json"))[0] == 202
    smtp_server.wait_for(2, timeout=30)
    (tmp_path / "spool").mkdir(exist_ok=True)
    (tmp_path / "spool" / "20261130T000000000000-0badf00d.json.failed").write_bytes(sample)  # set aside by a drain
    assert ADDRESS in everything_the_app_wrote(env, azurite)

    cli_env = {**env, "AzureWebJobsStorage": azurite.connection_string}
    done = run_cli(cli_env, "forget", ADDRESS.upper(), "--json")
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout)
    assert (counts["leads"], counts["markers"], counts["quarantined"], counts["spool_files"]) == (1, 1, 1, 1)

    left = everything_the_app_wrote(env, azurite)
    assert ADDRESS not in left and "16175555555" not in left  # the address, and the phone of its lead
    assert "ana.lopez@fabrikam.example" in left  # the other person's lead is kept
    again = run_cli(cli_env, "forget", ADDRESS, "--json")
    assert json.loads(again.stdout) == dict.fromkeys(counts, 0)
