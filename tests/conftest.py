"""Shared fixtures: real Azurite, a real SMTP server, and the app served by the local host.

- Every test runs under Azure's storage size limits (`azure_limits`, autouse): a request Azure would
  refuse fails the test even where Azurite accepts it.

- `azurite` (session): `.connection_string` of an in-memory Azurite on free ports.
- `smtp_server`: a started plain SmtpServer (tests/support/smtp.py); `smtp_server_factory(**options)`
  for AUTH / STARTTLS / SSL. Both are stopped after the test.
- `local_host_factory(env=None, app_module="function_app", host_json=None, check_keys=True) -> StartedHost`:
  sets `env` (values of None unset a variable; AzureWebJobsStorage defaults to the `azurite` fixture), imports
  the app module afresh, serves it on a free port with function keys checked as in Azure (devhost/keys.py) and
  host.json functionTimeout enforced; `.url("leads")` is the address a caller is given (with the route's
  function key as `?code=`, as the portal's "Get function URL" gives it), `.bare_url(...)` without a key,
  `.admin_headers` (the master key and a JSON content type, for `/admin/functions/<name>`), `.keys`,
  `.base_url`, `.local_host`. Stopped afterwards.
- `flex_host_factory(env=None, app_module="function_app", host_json=None, http_instances=2) -> StartedFlexHost`:
  the same app in devhost's Flex mode (devhost/flex.py): HTTP instances behind a round-robin front end, one
  process and one temporary folder per instance, keys checked, functionTimeout enforced; the same `.url`,
  `.bare_url`, `.admin_headers`, and `.flex_host` (`.workers[name].pids`, `.spool`, `.scale_in(name)`,
  `.scale_out()`). `env` is given to the worker processes only (this process's environment is left alone).
- `figure(line)`: a figure a test measured (cases run, steps, storage calls), printed at the end of the run
  under "figures measured by the tests", also when pytest-xdist runs the tests in worker processes (whose own
  output it does not show).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import azure.functions as func
import pytest

from devhost.azurite import Azurite
from devhost.flex import FlexHost
from devhost.host import LocalHost
from devhost.invoke import index_functions
from devhost.keys import HostKeys, key_for_path, with_key
from leads.core.hosting import AZURE_SIGNS
from tests.support.azure_limits_enforcer import ENFORCER
from tests.support.azurite import PROJECT_ROOT, start_test_azurite
from tests.support.smtp import SmtpServer

# The fake Azure AD's `tls` and `world` fixtures (tests/destinations/test_dynamics.py, tests/services/test_doctor.py).
pytest_plugins = ("tests.support.azure_ad",)

# Modules whose import-time values depend on the environment (the trigger's queue name): imported afresh.
FRESH_MODULE_PREFIXES: tuple[str, ...] = ("leads.triggers",)


FIGURES_FILE = "LEADS_TEST_FIGURES_FILE"  # set by the controlling process, inherited by xdist's workers


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and FIGURES_FILE not in os.environ:
        handle, path = tempfile.mkstemp(prefix="leads-figures-", suffix=".txt")
        os.close(handle)
        os.environ[FIGURES_FILE] = path


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    path = os.environ.get(FIGURES_FILE, "")
    if hasattr(config, "workerinput") or not path or not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as lines:
        figures = lines.read().splitlines()
    os.unlink(path)
    if figures:
        terminalreporter.write_sep("-", "figures measured by the tests")
        for line in figures:
            terminalreporter.write_line(line)


# The two longest tests (about 3½ minutes each on a quiet 2-core machine, twice that on a busy one).
LONGEST = ("tests/triggers/test_fuzz_ingest.py::", "tests/services/test_simulation.py::")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`make test` runs pytest-xdist's `worksteal` on two workers, which hands each worker one half of this list,
    in order, then moves tests from the end of a busy worker's queue to an idle one. The ingest fuzz leads the
    first half and the simulation's module the second, so the two start at once and neither runs alone at the
    end; the simulation's tests stay together, so its module fixture runs once."""
    fuzz = [item for item in items if item.nodeid.startswith(LONGEST[0])]
    simulation = [item for item in items if item.nodeid.startswith(LONGEST[1])]
    rest = [item for item in items if not item.nodeid.startswith(LONGEST)]
    middle = max(0, len(items) // 2 - len(fuzz))
    items[:] = fuzz + rest[:middle] + simulation + rest[middle:]


@pytest.fixture
def figure() -> Callable[[str], None]:
    def record(line: str) -> None:
        with open(os.environ[FIGURES_FILE], "a", encoding="utf-8") as figures:
            figures.write(line.strip() + "\n")
    return record


@pytest.fixture(scope="session", autouse=True)
def azure_limits() -> Iterator[None]:
    """Every storage request in the session is held to Azure's size limits (Azurite does not enforce them):
    see tests/support/azure_limits_enforcer.py."""
    ENFORCER.install()
    yield
    ENFORCER.uninstall()


@pytest.fixture(autouse=True)
def no_request_over_azure_limits(azure_limits: None) -> Iterator[None]:
    """Fail a test in which any storage request would have been refused by Azure, even if the app caught
    the error (the HTTP trigger turns any exception into a 503)."""
    ENFORCER.take_violations()
    yield
    violations = ENFORCER.take_violations()
    assert not violations, f"requests Azure would refuse: {violations}"


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    emulator = start_test_azurite(tmp_path_factory.mktemp("azurite"))
    yield emulator
    emulator.stop()


@pytest.fixture
def smtp_server_factory() -> Iterator[Callable[..., SmtpServer]]:
    servers: list[SmtpServer] = []

    def start(**options: Any) -> SmtpServer:
        server = SmtpServer(**options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def smtp_server(smtp_server_factory: Callable[..., SmtpServer]) -> SmtpServer:
    return smtp_server_factory()


class _KeyedUrls:
    """`url(route)`: the route's address with the key its callers are given; `bare_url(route)`: without."""

    keys: HostKeys | None
    route_levels: list[tuple[re.Pattern[str], str, str]]

    def bare_url(self, route: str) -> str:
        raise NotImplementedError

    def url(self, route: str) -> str:
        bare = self.bare_url(route)
        if self.keys is None:
            return bare
        path = bare.split("://", 1)[1].split("/", 1)[1].split("?")[0].split("#")[0]
        return with_key(bare, key_for_path(self.keys, self.route_levels, "/" + path))

    @property
    def admin_headers(self) -> dict[str, str]:
        """FunctionsController.Invoke: the master key, and a JSON body."""
        return {"Content-Type": "application/json", **({"x-functions-key": self.keys.master} if self.keys else {})}


@dataclass(frozen=True)
class StartedHost(_KeyedUrls):
    local_host: LocalHost

    @property
    def keys(self) -> HostKeys | None:  # type: ignore[override]
        return self.local_host.keys

    @property
    def route_levels(self) -> list[tuple[re.Pattern[str], str, str]]:  # type: ignore[override]
        return self.local_host.route_levels

    @property
    def base_url(self) -> str:
        return self.local_host.base_url

    def bare_url(self, route: str) -> str:
        return self.local_host.url(route)


def clear_cached_functions(package: str = "leads") -> None:
    """Forget every cached service in `package` (functools.cache'd get_settings, built_once runtime, ...): the
    environment changed."""
    for name, module in list(sys.modules.items()):
        if module is None or not (name == package or name.startswith(f"{package}.")):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, type):  # the built_once class itself, not one of its instances
                continue
            if callable(getattr(value, "cache_clear", None)) and getattr(value, "__module__", None) == name:
                value.cache_clear()


def import_app_afresh(app_module: str, fresh_prefixes: Sequence[str] = FRESH_MODULE_PREFIXES) -> func.FunctionApp:
    for name in list(sys.modules):
        if name == app_module or any(name == p or name.startswith(f"{p}.") for p in fresh_prefixes):
            del sys.modules[name]
    clear_cached_functions()
    module = importlib.import_module(app_module)
    apps = [value for value in vars(module).values() if isinstance(value, func.FunctionApp)]
    assert len(apps) == 1, f"{app_module} must define exactly one func.FunctionApp"
    return apps[0]


@pytest.fixture
def local_host_factory(request: pytest.FixtureRequest,
                       monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., StartedHost]]:
    started: list[LocalHost] = []

    def start(env: Mapping[str, str | None] | None = None, app_module: str = "function_app",
              host_json: Mapping[str, Any] | None = None, check_keys: bool = True) -> StartedHost:
        # What LocalHost sets, restored after the test; and no Azure hosting sign from the machine running the
        # tests (a container may set CONTAINER_NAME, which the Functions host reads as Linux Consumption): a test
        # that wants Azure names the variables in `env`.
        values: dict[str, str | None] = {"DEVHOST_LOCAL_MODE": "true", **dict.fromkeys(AZURE_SIGNS), **(env or {})}
        if "AzureWebJobsStorage" not in values:
            values["AzureWebJobsStorage"] = request.getfixturevalue("azurite").connection_string
        for name, value in values.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        app = import_app_afresh(app_module)
        if host_json is None:
            host_json = json.loads((PROJECT_ROOT / "host.json").read_text(encoding="utf-8"))
        keys = HostKeys.from_settings(os.environ, [f.name for f in index_functions(app)]) if check_keys else None
        host = LocalHost(app, host_json, os.environ, port=0, keys=keys)
        host.start()
        started.append(host)
        return StartedHost(host)

    yield start
    for host in reversed(started):
        host.stop()
    clear_cached_functions()  # the app's caches hold this test's settings and clients


@dataclass(frozen=True)
class StartedFlexHost(_KeyedUrls):
    flex_host: FlexHost

    @property
    def keys(self) -> HostKeys | None:  # type: ignore[override]
        return self.flex_host.keys

    @property
    def route_levels(self) -> list[tuple[re.Pattern[str], str, str]]:  # type: ignore[override]
        return self.flex_host.route_levels

    @property
    def base_url(self) -> str:
        return self.flex_host.base_url

    def bare_url(self, route: str) -> str:
        return self.flex_host.url(route)


@pytest.fixture
def flex_host_factory(request: pytest.FixtureRequest,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., StartedFlexHost]]:
    started: list[FlexHost] = []

    def start(env: Mapping[str, str | None] | None = None, app_module: str = "function_app",
              host_json: Mapping[str, Any] | None = None, http_instances: int = 2) -> StartedFlexHost:
        values = {name: value for name, value in os.environ.items() if name not in AZURE_SIGNS}
        if not (env or {}).get("AzureWebJobsStorage"):
            values["AzureWebJobsStorage"] = request.getfixturevalue("azurite").connection_string
        for name, value in (env or {}).items():
            if value is None:
                values.pop(name, None)
            else:
                values[name] = value
        if host_json is None:
            host_json = json.loads((PROJECT_ROOT / "host.json").read_text(encoding="utf-8"))
        host = FlexHost(app_module, host_json, values, port=0, root=tmp_path_factory.mktemp("flex"),
                        http_instances=http_instances)
        host.start()
        started.append(host)
        return StartedFlexHost(host)

    yield start
    for host in reversed(started):
        host.stop()
