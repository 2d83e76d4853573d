"""The checkov gate itself: the custom allowBlobPublicAccess check fires, and infra/check.sh fails on parse errors.

checkov lives in its own virtualenv (.venv-checkov, created by `bash infra/check.sh`); these tests use it and
skip only when it has not been created yet.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

pytestmark = pytest.mark.skipif(
    not CHECKOV.exists(), reason="no .venv-checkov yet: run `bash infra/check.sh` (make test does) to create it"
)


def checkov_results(directory: Path) -> dict[str, Any]:
    completed = subprocess.run(
        [str(CHECKOV), "-d", str(directory), "--framework", "bicep", "--skip-download", "-o", "json",
         "--external-checks-dir", str(ROOT / "infra" / "checkov_checks"), "--check", "CKV_LEADS_1"],
        capture_output=True, text=True, timeout=240, check=False,
    )
    report = json.loads(completed.stdout)
    results: dict[str, Any] = report["results"]
    return results


def outcomes(results: dict[str, Any]) -> dict[str, str]:
    """Resource name -> passed/failed for CKV_LEADS_1."""
    found: dict[str, str] = {}
    for outcome in ("passed", "failed"):
        for check in results[f"{outcome}_checks"]:
            assert check["check_id"] == "CKV_LEADS_1"
            found[check["resource"].rsplit(".", 1)[-1]] = outcome
    return found


def test_custom_check_fails_public_blob_access_and_passes_only_an_explicit_false() -> None:
    results = checkov_results(FIXTURES / "blob_access")
    assert results["parsing_errors"] == []
    assert outcomes(results) == {"public": "failed", "unset": "failed", "private": "passed"}


def test_check_script_fails_on_a_parsing_error_although_checkov_exits_0() -> None:
    completed = subprocess.run(
        ["bash", str(ROOT / "infra" / "check.sh"), str(FIXTURES / "unparsable")],
        capture_output=True, text=True, timeout=240, cwd=ROOT, check=False,
    )
    assert completed.returncode != 0, completed.stdout
    assert "parsing_errors=1" in completed.stdout
