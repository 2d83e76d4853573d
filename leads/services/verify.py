"""The checks of `python -m leads verify https://<app>`: what a newcomer (or the deployment workflow) runs after a
deployment. Each check is one line of a checklist: passed, failed (with a sentence saying what to do) or skipped
(with why). The function key and any bearer token travel in headers only (`x-functions-key`, `Authorization`), never
in a URL, and no sentence carries them: `scrub` replaces them wherever an answer might echo them.

The Functions host checks `x-functions-key` exactly as `?code=` (Learn, "Azure Functions HTTP trigger", API key
authorization: https://learn.microsoft.com/azure/azure-functions/functions-bindings-http-webhook-trigger#api-key-authorization),
and unlike `code` the header is not passed to the function as a query parameter.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

PASSED, FAILED, SKIPPED = "ok", "FAIL", "skipped"
# Routes that must answer nobody without credentials: the management API (the app refuses), the console, and the
# FUNCTION-level routes (the host refuses). POSTs carry `[]`: not an object, so even an open route acts on nothing.
CLOSED_ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", "console"), ("GET", "manage/leads"), ("GET", "manage/status"), ("GET", "manage/quarantine"),
    ("POST", "manage/replay"), ("POST", "manage/forget"), ("POST", "manage/test-lead"), ("POST", "manage/doctor"),
    ("GET", "status"), ("GET", "manage-key/leads"), ("POST", "manage-key/forget"),
)
# Of those, the ones the host closes (auth level FUNCTION, leads/triggers): the app never sees a keyless call.
HOST_KEY_ROUTES = frozenset({"status"})
# Words of a lead or a list of leads in an answer: a closed route's body never has them.
DATA_MARKERS = ('"received_at"', '"deliveries"', '"items"', "MSFT_TEST", '"email"')
# The alert rules and action group infra/modules/alerts.bicep creates (names end so).
ALERT_RULES = ("-function-failures", "-ingest-5xx", "-sweeper-not-running", "-no-delivery")
TERMINAL = ("delivered", "skipped", "failed")


@dataclass
class Check:
    name: str
    outcome: str
    detail: str = ""


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    destinations: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(check.outcome != FAILED for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks], "destinations": self.destinations}


@dataclass(frozen=True)
class Target:
    base_url: str  # https://<app>.azurewebsites.net
    key: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    route_prefix: str = "api"
    timeout: float = 20.0

    def url(self, route: str) -> str:
        return f"{self.base_url.rstrip('/')}/{self.route_prefix}/{route}"

    def scrub(self, text: str) -> str:
        for secret in (self.key, self.token):
            if secret:
                text = text.replace(secret, "[redacted]")
        return text


Fetch = Callable[..., Any]  # requests.request's signature


def verify(target: Target, test_lead_body: bytes, *, deliver_within: float = 120.0, resource_group: str = "",
           fetch: Fetch | None = None, run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
           which: Callable[[str], str | None] | None = None, poll_every: float = 2.0) -> Report:
    if fetch is None:
        import requests

        fetch = requests.request
    report = Report()
    report.checks.append(_health(target, fetch))
    report.checks += [_closed(target, fetch, method, route) for method, route in CLOSED_ROUTES]
    lead_id = _test_lead(target, fetch, test_lead_body, report)
    if lead_id:
        _delivery(target, fetch, lead_id, deliver_within, poll_every, report)
    report.checks += _alerts(target, resource_group, run, which or shutil.which)
    for check in report.checks:
        check.detail = target.scrub(check.detail)
    return report


def _request(target: Target, fetch: Fetch, method: str, route: str, headers: dict[str, str] | None = None,
             data: bytes | None = None) -> tuple[int | None, str, dict[str, str]]:
    """(status or None, body text (at most 4 KiB), headers); a connection failure is (None, its sentence, {})."""
    try:
        response = fetch(method, target.url(route), headers=headers or {}, data=data, timeout=target.timeout,
                         allow_redirects=False)
    except Exception as error:  # noqa: BLE001 - any transport failure is the check's answer, said plainly
        return None, f"no answer from {urlsplit(target.base_url).netloc} ({type(error).__name__})", {}
    return int(response.status_code), str(response.text)[:4096], dict(response.headers)


def _health(target: Target, fetch: Fetch) -> Check:
    status, text, _ = _request(target, fetch, "GET", "health")
    name = "health answers 200"
    if status == 200:
        return Check(name, PASSED, text.strip()[:200])
    return Check(name, FAILED, f"/{target.route_prefix}/health answered {status if status else text}: the app is "
                               "not running or cannot reach its storage (docs/troubleshooting.md); the first call "
                               "after a deployment can take 20 s, and role assignments a few minutes.")


def _closed(target: Target, fetch: Fetch, method: str, route: str) -> Check:
    data = b"[]" if method == "POST" else None
    headers = {"Content-Type": "application/json"} if data else {}
    status, text, answer_headers = _request(target, fetch, method, route, headers, data)
    name = f"{method} /{target.route_prefix}/{route} closed without credentials"
    leaked = [marker for marker in DATA_MARKERS if marker in text]
    to_sign_in = status in (301, 302, 307) and any(
        part in answer_headers.get("Location", answer_headers.get("location", ""))
        for part in ("/.auth/login", "login.microsoftonline"))
    if (status in (401, 403) or to_sign_in) and not leaked:
        return Check(name, PASSED, f"{status}")
    if status is None:
        return Check(name, FAILED, text)
    answered = f"answered {status}{' with data' if leaked else ''} to a request without credentials: anyone can use it."
    if route in HOST_KEY_ROUTES or route.startswith("manage-key/"):
        return Check(name, FAILED, f"{answered} The Functions host lets a FUNCTION-level route through only with a "
                                   "key: is this the Functions host (the local host of `make run` checks no key)?")
    return Check(name, FAILED, f"{answered} Turn on operator sign-in (enableOperatorSignIn, docs/deploy.md) and "
                               "check the app is not in local mode.")


def _test_lead(target: Target, fetch: Fetch, body: bytes, report: Report) -> str:
    name = "a Partner Center test lead gets 202"
    if not target.key:
        report.checks.append(Check(name, SKIPPED, "no function key: give --key or LEADS_VERIFY_KEY"))
        return ""
    status, text, _ = _request(target, fetch, "POST", "leads",
                               {"Content-Type": "application/json", "x-functions-key": target.key}, body)
    try:
        answer = json.loads(text) if status else {}
    except ValueError:
        answer = {}
    if status == 202 and isinstance(answer, dict) and answer.get("id"):
        report.checks.append(Check(name, PASSED, f"202, lead {answer['id']}"))
        return str(answer["id"])
    meaning = {401: "the key was refused: use a host key or ingest_lead's own key",
               404: "no /api/leads here: is this the app's address?",
               503: "storage is unreachable (docs/troubleshooting.md, Storage down)"}.get(status or 0,
                                                                                          "see the app's logs")
    report.checks.append(Check(name, FAILED, f"answered {status if status else text}: {meaning}."))
    return ""


def _delivery(target: Target, fetch: Fetch, lead_id: str, within: float, every: float, report: Report) -> None:
    name = "the test lead reaches e-mail"
    if target.token:
        route, headers = f"manage/leads/{lead_id}", {"Authorization": f"Bearer {target.token}"}
    else:
        route, headers = f"manage-key/leads/{lead_id}", {"x-functions-key": target.key}
    deadline = time.monotonic() + within
    deliveries: dict[str, Any] = {}
    status: int | None = None
    while True:
        status, text, _ = _request(target, fetch, "GET", route, headers)
        if status == 200:
            try:
                deliveries = dict(json.loads(text).get("deliveries") or {})
            except (ValueError, AttributeError):
                deliveries = {}
        email = {n: d for n, d in deliveries.items() if n == "email" or n.startswith("email:")}
        if email and all(d.get("state") in TERMINAL for d in email.values()):
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(every)
    report.destinations = {n: {"state": d.get("state"), "attempts": d.get("attempts"),
                               "last_error": target.scrub(str(d.get("last_error") or ""))}
                           for n, d in deliveries.items()}
    if status != 200:
        report.checks.append(Check(name, FAILED, f"reading lead {lead_id} answered {status}: the management API "
                                                  "refused the key or token (docs/operations.md)."))
        return
    email = {n: d for n, d in deliveries.items() if n == "email" or n.startswith("email:")}
    if not email:
        report.checks.append(Check(name, FAILED, "the lead has no e-mail destination: add email to "
                                                  "LEADS_DESTINATIONS (docs/destinations.md)."))
    elif all(d.get("state") == "delivered" for d in email.values()):
        report.checks.append(Check(name, PASSED, f"lead {lead_id}"))
    else:
        states = ", ".join(f"{n} {d.get('state')}: {d.get('last_error') or 'no error yet'}" for n, d in email.items())
        report.checks.append(Check(name, FAILED, f"not delivered within {within:g} s ({states}); "
                                                  "`python -m leads doctor` checks the e-mail settings live."))


def _alerts(target: Target, resource_group: str, run: Callable[..., subprocess.CompletedProcess[str]],
            which: Callable[[str], str | None]) -> list[Check]:
    names = ("the alert rules exist", "the action group exists")
    az = which("az")
    if not az:
        return [Check(name, SKIPPED, "az not found") for name in names]
    app = urlsplit(target.base_url).hostname or ""
    app = app.split(".", 1)[0]

    def az_json(*args: str) -> Any:
        done = run([az, *args, "-o", "json"], capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError((done.stderr or "").strip().splitlines()[-1:] or ["az failed"])
        return json.loads(done.stdout or "null")

    try:
        group = resource_group or str(az_json("resource", "list", "--name", app, "--resource-type",
                                              "Microsoft.Web/sites", "--query", "[0].resourceGroup") or "")
        if not group:
            return [Check(name, FAILED, f"no function app {app} in the signed-in subscription (`az account show`); "
                                        "give --resource-group") for name in names]
        rules = az_json("resource", "list", "-g", group, "--resource-type",
                        "Microsoft.Insights/scheduledQueryRules", "--query", "[].name") or []
        groups = az_json("resource", "list", "-g", group, "--resource-type", "Microsoft.Insights/actionGroups",
                         "--query", "[].name") or []
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as error:
        return [Check(name, FAILED, f"az could not list them ({error}); `az login` first") for name in names]
    missing = [suffix for suffix in ALERT_RULES if not any(str(r).endswith(suffix) for r in rules)]
    return [Check(names[0], FAILED if missing else PASSED,
                  f"missing in {group}: {', '.join(missing)} (deploy infra/ again)" if missing
                  else f"{len(ALERT_RULES)} rules in {group}"),
            Check(names[1], PASSED if groups else FAILED,
                  ", ".join(map(str, groups)) if groups else f"none in {group} (deploy infra/ again)")]
