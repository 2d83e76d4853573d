"""The operator CLI reads settings exactly as `make run` does: environment, local.settings.json, sample."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from leads.cli.local_settings import apply_local_settings, read_local_settings
from tests.support.azurite import PROJECT_ROOT


def _write(folder: Path, name: str, values: dict[str, str]) -> None:
    (folder / name).write_text(json.dumps({"IsEncrypted": False, "Values": values}), encoding="utf-8")


def test_local_settings_json_wins_over_the_sample_and_the_environment_wins_over_both(tmp_path: Path) -> None:
    _write(tmp_path, "local.settings.sample.json", {"A": "sample", "B": "sample"})
    assert read_local_settings(tmp_path) == {"A": "sample", "B": "sample"}
    _write(tmp_path, "local.settings.json", {"A": "local"})
    env = {"C": "environment", "A": "environment"}
    apply_local_settings(tmp_path, env)
    assert env == {"A": "environment", "C": "environment"}  # the sample is not read once local.settings.json exists
    env = {}
    apply_local_settings(tmp_path, env)
    assert env == {"A": "local"}


@pytest.mark.azurite
@pytest.mark.timeout(60)
def test_python_m_leads_status_works_with_only_the_sample_settings(azurite, tmp_path: Path) -> None:
    """Right after `make run`, `python -m leads status` needs no extra set-up: it reads the sample file."""
    sample = json.loads((PROJECT_ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
    sample["AzureWebJobsStorage"] = azurite.connection_string  # the test's Azurite listens on free ports
    _write(tmp_path, "local.settings.sample.json", sample)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADS_", "AzureWebJobs"))}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    done = subprocess.run([sys.executable, "-m", "leads", "status", "--json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=50, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [d["name"] for d in report["destinations"]] == ["email"]  # LEADS_DESTINATIONS as the sample says
    assert "why_no_leads" in report  # (the session's Azurite default table may hold other tests' leads)
