"""`python -m devhost` as `make run` starts it: settings into the environment, the app served on PORT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from devhost.mailcatcher import free_port
from tests.devhost.conftest import YEARLY
from tests.devhost.http_client import call
from tests.support.azurite import PROJECT_ROOT

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(60)]


def first_answer(process: subprocess.Popen[str], url: str) -> Any:
    """The first answer of a devhost just started (it binds its port within seconds)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return call("GET", url)
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"devhost did not answer:\n{process.communicate()[0]}") from None
            time.sleep(0.1)


def test_python_m_devhost_serves_the_app_and_stops_on_sigterm(azurite, queue_name):
    port = free_port()
    env = {**os.environ, "PORT": str(port), "DEVHOST_APP": "tests.devhost.sample_app",
           "AzureWebJobsStorage": azurite.connection_string, "LEADS_SMTP_HOST": "127.0.0.1",
           "SAMPLE_QUEUE": queue_name, "SAMPLE_SCHEDULE": YEARLY}
    process = subprocess.Popen([sys.executable, "-m", "devhost"], cwd=PROJECT_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        answer = first_answer(process, f"http://127.0.0.1:{port}/api/hello")
        assert (answer.status, answer.body) == (200, b"hello")
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert f"http://127.0.0.1:{port}/api/hello" in output  # the banner lists the routes
    assert "Azurite (data in" not in output  # AzureWebJobsStorage was given: no Azurite of its own
    assert "one .eml file per message" not in output  # LEADS_SMTP_HOST was given: no mail catcher


def test_python_m_devhost_flex_serves_each_group_from_its_own_process_and_stops_them_all(azurite, tmp_path):
    port = free_port()
    env = {**os.environ, "PORT": str(port), "DEVHOST_APP": "tests.devhost.flex_app", "DEVHOST_FLEX": "true",
           "AzureWebJobsStorage": azurite.connection_string, "LEADS_SMTP_HOST": "127.0.0.1",
           "FLEX_QUEUE": f"flex-main-{port}", "FLEX_RECORD_DIR": str(tmp_path)}
    process = subprocess.Popen([sys.executable, "-m", "devhost"], cwd=PROJECT_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        answer = first_answer(process, f"http://127.0.0.1:{port}/api/whoami")
        assert answer.status == 200
        http_pid = json.loads(answer.body)["pid"]
        assert http_pid != process.pid  # served by the http group's worker process
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "Flex mode" in output and "function:work: pid" in output and "function:tick: pid" in output
    assert "http-1: pid" in output and "http-2: pid" in output
    with pytest.raises(ProcessLookupError):
        os.kill(http_pid, 0)  # the workers stop with the host


def start_real_app(port: int, azurite: Any, tmp_path: Any, **extra: str) -> subprocess.Popen[str]:
    suffix = f"main{port}"
    env = {**os.environ, "PORT": str(port), "AzureWebJobsStorage": azurite.connection_string,
           "LEADS_SMTP_HOST": "127.0.0.1", "LEADS_SMTP_PORT": "9", "LEADS_TABLE": f"t{suffix}",
           "LEADS_QUARANTINE_TABLE": f"q{suffix}", "LEADS_QUEUE": f"q-{suffix}", "LEADS_SPOOL_DIR": str(tmp_path),
           **extra}
    for name in ("DEVHOST_FLEX", "DEVHOST_CHECK_KEYS", "DEVHOST_APP", "WEBSITE_INSTANCE_ID", "WEBSITE_AUTH_ENABLED"):
        if name not in extra:
            env.pop(name, None)
    return subprocess.Popen([sys.executable, "-m", "devhost"], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    return output


def test_make_run_answers_the_readme_curl_lines_without_a_key_and_passes_code_on(azurite, tmp_path):
    port = free_port()
    process = start_real_app(port, azurite, tmp_path)
    base = f"http://127.0.0.1:{port}/api"
    try:
        assert first_answer(process, f"{base}/health").status == 200
        sample = (PROJECT_ROOT / "samples" / "camelcase-wire.json").read_bytes()
        first = call("POST", f"{base}/leads", sample, {"Content-Type": "application/json"})
        again = call("POST", f"{base}/leads", sample)
        assert (first.status, json.loads(first.body)["duplicate"]) == (202, False)
        assert (again.status, json.loads(again.body)["duplicate"]) == (202, True)
        assert call("GET", f"{base}/manage-key/leads?code=anything").status == 200  # not 400 "Unknown parameter"
        assert call("GET", f"{base}/manage-key/quarantine?code=anything").status == 200
    finally:
        output = stop(process)
    assert "Function keys are not checked locally" in output


@pytest.mark.timeout(120)
def test_flex_mode_checks_keys_as_azure_does(azurite, tmp_path):
    port = free_port()
    keys = {"DEVHOST_MASTER_KEY": "master-" + "m" * 20, "DEVHOST_FUNCTION_KEY_MANAGE_KEY": "manage-" + "k" * 20,
            "DEVHOST_FUNCTION_KEY_INGEST_LEAD": "ingest-" + "i" * 20}
    process = start_real_app(port, azurite, tmp_path, DEVHOST_FLEX="true", **keys)
    base = f"http://127.0.0.1:{port}/api"
    try:
        assert first_answer(process, f"{base}/health").status == 200
        listing = f"{base}/manage-key/leads"
        assert call("GET", f"{listing}?code={keys['DEVHOST_FUNCTION_KEY_MANAGE_KEY']}").status == 200
        assert call("GET", f"{listing}?code={keys['DEVHOST_MASTER_KEY']}").status == 200
        assert (call("GET", listing).status, call("GET", listing).body) == (401, b"")
        assert call("GET", f"{listing}?code={keys['DEVHOST_FUNCTION_KEY_INGEST_LEAD']}").status == 401
    finally:
        output = stop(process)
    assert keys["DEVHOST_MASTER_KEY"] in output and "Keys are checked" in output  # printed at start
    assert "http-1: pid" in output and "http-2: pid" in output
