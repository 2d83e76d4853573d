"""`python -m leads verify`: against the local host in an Azure-like mode (real Azurite, a real SMTP server), and
against hostile or broken answers from a fake app (a key echoed back, a route that leaks data, a lead that never
reaches e-mail, az present or not)."""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from leads.cli.app import main
from leads.services import verify as checks
from tests.conftest import StartedHost
from tests.support.smtp import SmtpServer

KEY = "verify-key-" + uuid.uuid4().hex  # never to be printed
# What makes the app treat itself as running in Azure on Flex Consumption, with the variables the platform sets
# (WEBSITE_INSTANCE_ID: leads/manage/auth.py today; WEBSITE_SITE_NAME, CONTAINER_NAME, WEBSITE_SKU,
# WEBSITE_POD_NAME: what Flex Consumption sets, issue 15), and Core Tools' own local markers unset. The `security`
# branch (issue 15 point 1) changes the detection; these cover both the old and the new variables.
AZURE_LIKE = {
    "WEBSITE_INSTANCE_ID": "a" * 64, "WEBSITE_SITE_NAME": "func-leads-verify", "CONTAINER_NAME": "func-leads-verify",
    "WEBSITE_SKU": "FlexConsumption", "WEBSITE_POD_NAME": "func-leads-verify-pod", "WEBSITE_AUTH_ENABLED": None,
    "FUNCTIONS_CORETOOLS_ENVIRONMENT": None, "AZURE_FUNCTIONS_ENVIRONMENT": "Production",
}
# The routes the Functions host itself closes (auth level FUNCTION); the local host checks keys as it does.
HOST_KEY_ROUTES = ("GET /api/status", "GET /api/manage-key/leads", "POST /api/manage-key/forget")


def app_env(smtp: SmtpServer, **extra: str | None) -> dict[str, str | None]:
    suffix = uuid.uuid4().hex[:8]
    return {"LEADS_TABLE": f"verify{suffix}", "LEADS_QUARANTINE_TABLE": f"verifyq{suffix}",
            "LEADS_QUEUE": f"verify-{suffix}", "LEADS_DESTINATIONS": "email",
            "LEADS_EMAIL_TO": "sales@contoso.example", "LEADS_EMAIL_FROM": "leads@contoso.example",
            "LEADS_SMTP_HOST": smtp.host, "LEADS_SMTP_PORT": str(smtp.port), "LEADS_SMTP_SECURITY": "none",
            **extra}


def no_az(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(empty))


def verify_output(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["verify", *args])
    out, err = capsys.readouterr()
    return code, out + err


def lines_of(output: str) -> dict[str, str]:
    """check name -> its mark ("[ok]", "[FAIL]", "[--]" for skipped)."""
    found = {}
    for line in output.splitlines():
        if line.startswith("["):
            mark, _, rest = line.partition(" ")
            found[rest.split(":", 1)[0].strip()] = mark.strip()
    return found


def test_verify_against_the_local_host_in_an_azure_like_mode(
        local_host_factory: Callable[..., StartedHost], smtp_server: SmtpServer,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The local host checks function keys as the Functions host does (devhost/keys.py): KEY is its host key.
    host = local_host_factory(app_env(smtp_server, **AZURE_LIKE, DEVHOST_HOST_KEY=KEY))
    no_az(monkeypatch, tmp_path)
    code, output = verify_output(capsys, host.base_url, "--key", KEY, "--wait", "60")
    print(output)  # the report quotes it
    assert KEY not in output
    marks = lines_of(output)
    assert marks["health answers 200"] == "[ok]"
    for route in ("GET /api/console", "GET /api/manage/leads", "GET /api/manage/status", "POST /api/manage/replay",
                  "POST /api/manage/forget", "POST /api/manage/test-lead", "POST /api/manage/doctor"):
        assert marks[f"{route} closed without credentials"] == "[ok]", route
    assert marks["a Partner Center test lead gets 202"] == "[ok]"
    assert marks["the test lead reaches e-mail"] == "[ok]"
    assert "destination email: delivered" in output
    assert marks["the alert rules exist"] == marks["the action group exists"] == "[--]"
    assert "the alert rules exist: skipped: az not found" in output
    assert {marks[f"{route} closed without credentials"] for route in HOST_KEY_ROUTES} == {"[ok]"}
    assert code == 0
    assert any(b"MSFT_TEST" in message for message in smtp_server.raw_messages), "the e-mail was sent"


def test_verify_fails_every_management_route_of_an_app_in_local_mode(
        local_host_factory: Callable[..., StartedHost], smtp_server: SmtpServer,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    local = dict.fromkeys(AZURE_LIKE)
    host = local_host_factory(app_env(smtp_server, **local))
    no_az(monkeypatch, tmp_path)
    code, output = verify_output(capsys, host.base_url)
    marks = lines_of(output)
    assert code == 1
    assert marks["GET /api/manage/leads closed without credentials"] == "[FAIL]"
    assert marks["a Partner Center test lead gets 202"] == "[--]"  # no key given
    assert "LEADS_VERIFY_KEY" in output


# ---------------------------------------------------------------- a fake app: hostile and broken answers


class Answer:
    def __init__(self, status: int, body: Any = "", headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.text = body if isinstance(body, str) else json.dumps(body)
        self.headers = headers or {}


def fake_app(lead_state: str = "delivered", echo_key: bool = False,
             open_route: str = "") -> Callable[..., Answer]:
    def fetch(method: str, url: str, headers: dict[str, str], **_: Any) -> Answer:
        route = url.split("/api/", 1)[1]
        key = headers.get("x-functions-key", "")
        if route == "health":
            return Answer(200, {"status": "ok"})
        if route == open_route:
            return Answer(200, {"items": [{"email": "a@b.example", "received_at": "x"}]})
        if route == "leads" and method == "POST":
            return Answer(202, {"id": "20261206T120000000Z-00000001", "echo": key if echo_key else ""})
        if route.startswith("manage-key/leads/") and key:
            return Answer(200, {"deliveries": {"email": {"state": lead_state, "attempts": 2,
                                                         "last_error": f"535 auth failed for {key}"}}})
        if route.startswith("manage/"):
            return Answer(302, "", {"Location": "https://app/.auth/login/aad?post_login_redirect_uri=/"})
        return Answer(401, "")
    return fetch


def run_fake(fetch: Callable[..., Answer], **options: Any) -> checks.Report:
    return checks.verify(checks.Target("https://func-leads-x.azurewebsites.net", key=KEY), b"{}",
                         deliver_within=0.2, poll_every=0.05, fetch=fetch, which=lambda _: None, **options)


def test_a_key_the_app_echoes_back_is_never_in_the_report() -> None:
    report = run_fake(fake_app(lead_state="retrying", echo_key=True))
    text = json.dumps(report.as_dict())
    assert KEY not in text and "[redacted]" in text
    assert not report.ok  # retrying after the wait: not delivered
    [delivery] = [c for c in report.checks if c.name == "the test lead reaches e-mail"]
    assert delivery.outcome == checks.FAILED and "doctor" in delivery.detail


def test_a_redirect_to_sign_in_counts_as_closed_and_a_route_that_answers_data_fails() -> None:
    report = run_fake(fake_app())
    assert report.ok, report.as_dict()
    leaky = run_fake(fake_app(open_route="manage/leads"))
    [check] = [c for c in leaky.checks if c.name == "GET /api/manage/leads closed without credentials"]
    assert check.outcome == checks.FAILED and "with data" in check.detail


def test_no_answer_at_all_is_a_failure_with_a_sentence_not_a_crash() -> None:
    def refuse(*_: Any, **__: Any) -> Answer:
        raise ConnectionError("refused")
    report = run_fake(refuse)
    assert not report.ok
    assert all(c.outcome in (checks.FAILED, checks.SKIPPED) for c in report.checks)
    assert "no answer from func-leads-x.azurewebsites.net" in report.checks[0].detail


def fake_az(tmp_path: Path, rules: list[str], groups: list[str]) -> str:
    script = tmp_path / "az"
    script.write_text("#!/bin/sh\n"
                      'case "$*" in\n'
                      f"  *Microsoft.Web/sites*) echo '\"rg-leads\"' ;;\n"
                      f"  *scheduledQueryRules*) echo '{json.dumps(rules)}' ;;\n"
                      f"  *actionGroups*) echo '{json.dumps(groups)}' ;;\n"
                      "  *) exit 1 ;;\nesac\n", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


@pytest.mark.skipif(os.name != "posix", reason="a shell script stands in for az")
def test_with_az_the_alert_rules_and_action_group_are_listed(tmp_path: Path) -> None:
    prefix = "leads-abc"
    rules = [f"{prefix}{suffix}" for suffix in checks.ALERT_RULES]
    az = fake_az(tmp_path, rules, [f"{prefix}-alerts"])
    report = checks.verify(checks.Target("https://func-leads-x.azurewebsites.net"), b"{}", fetch=fake_app(),
                           which=lambda _: az)
    alerts = {c.name: c for c in report.checks if "alert" in c.name or "action group" in c.name}
    assert {c.outcome for c in alerts.values()} == {checks.PASSED}
    assert "rg-leads" in alerts["the alert rules exist"].detail
    missing = fake_az(tmp_path, rules[:2], [])
    report = checks.verify(checks.Target("https://func-leads-x.azurewebsites.net"), b"{}", fetch=fake_app(),
                           which=lambda _: missing)
    alerts = {c.name: c for c in report.checks if "alert" in c.name or "action group" in c.name}
    assert alerts["the alert rules exist"].outcome == checks.FAILED
    assert "-sweeper-not-running" in alerts["the alert rules exist"].detail
    assert alerts["the action group exists"].outcome == checks.FAILED


def test_a_key_in_the_url_is_refused_before_anything_is_sent(capsys: pytest.CaptureFixture[str]) -> None:
    code, output = verify_output(capsys, f"https://func-leads-x.azurewebsites.net/api/leads?code={KEY}")
    assert code == 3 and KEY not in output


def test_with_a_token_the_lead_is_read_as_a_signed_in_operator_and_the_token_never_shown() -> None:
    token = "eyJ" + uuid.uuid4().hex
    seen: list[tuple[str, dict[str, str]]] = []

    def fetch(method: str, url: str, headers: dict[str, str], **_: Any) -> Answer:
        route = url.split("/api/", 1)[1]
        seen.append((route, headers))
        if route == "health":
            return Answer(200, {"status": "ok"})
        if route == "leads" and method == "POST":
            return Answer(202, {"id": "20261206T120000000Z-00000002"})
        if route.startswith("manage/leads/") and headers.get("Authorization") == f"Bearer {token}":
            return Answer(200, {"deliveries": {"email": {"state": "delivered", "attempts": 1, "last_error": token}}})
        return Answer(401, "")

    report = checks.verify(checks.Target("https://func-leads-x.azurewebsites.net", key=KEY, token=token), b"{}",
                           fetch=fetch, which=lambda _: None, deliver_within=1, poll_every=0.05)
    assert report.ok, report.as_dict()
    assert token not in json.dumps(report.as_dict())
    assert all("?" not in route for route, _ in seen), "no secret in a URL"
    assert not any(route.startswith("manage-key/") and "Authorization" in h for route, h in seen)
