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
    with pytest.raises(ProcessLookupError):
        os.kill(http_pid, 0)  # the workers stop with the host
