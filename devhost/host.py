"""LocalHost: the app's HTTP, queue and timer functions, served the way the Functions host does.

Reads the bindings from the app itself (`app.get_functions()` / `get_function_json()`), so the same
function_app.py runs unchanged here and under `func start`. Use `start()`/`stop()` in tests (everything
runs on threads) or `serve_forever()`. `only` runs the triggers of a subset of the functions: one Flex mode
instance (devhost/flex.py) is a LocalHost running its group's triggers; the admin API runs any timer
function of the app on the instance that received the call, as in Azure. `keys` (devhost/keys.py): function
keys are checked, as in Azure; None: not checked, as with Core Tools. host.json functionTimeout and the Python
worker's thread pool apply in every mode (devhost/invoke.py); `on_timeout` restarts the process (Flex mode).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Collection, Mapping
from typing import Any, Protocol

import azure.functions as func
from azure.storage.queue import QueueServiceClient

from devhost.hostjson import HostOptions, read_host_options, with_app_setting_overrides
from devhost.http_server import HttpFrontend
from devhost.invoke import IndexedFunction, configure_invocations, index_functions
from devhost.keys import HostKeys, auth_level
from devhost.queue_listener import QueueListener
from devhost.routes import Route, build_routes
from devhost.timer import TimerListener

log = logging.getLogger("devhost")
SUPPORTED_TRIGGERS = ("httpTrigger", "queueTrigger", "timerTrigger")
# Short timeouts and few retries: a stopped Azurite must not stall polling or shutdown for minutes.
_STORAGE_CLIENT_OPTIONS: dict[str, Any] = {"retry_total": 1, "connection_timeout": 5, "read_timeout": 20}


class _Listener(Protocol):
    def start(self) -> None: ...
    def join(self) -> None: ...


def storage_connection_string(connection: str, env: Mapping[str, str]) -> str:
    """The value of a binding's `connection` setting (the host also tries the `AzureWebJobs` prefix)."""
    name = connection or "AzureWebJobsStorage"
    value = env.get(name) or env.get(f"AzureWebJobs{name}")
    if not value:
        raise RuntimeError(
            f"the queue trigger's connection {name!r} is not set: devhost needs a connection string "
            f"there (identity-based `{name}__queueServiceUri` connections are not supported locally)"
        )
    return value


def is_disabled(function_name: str, env: Mapping[str, str]) -> bool:
    return env.get(f"AzureWebJobs.{function_name}.Disabled", "").strip().lower() in ("true", "1")


class LocalHost:
    def __init__(self, app: func.FunctionApp, host_json: Mapping[str, Any] | None = None,
                 env: Mapping[str, str] | None = None, *, port: int = 7071, bind: str = "127.0.0.1",
                 only: Collection[str] | None = None, keys: HostKeys | None = None,
                 on_timeout: Callable[[], None] | None = None) -> None:
        self.env: Mapping[str, str] = os.environ if env is None else env
        # The local host's own signal (leads/core/hosting.py LOCAL_SIGNALS), set in this process's environment
        # where the app reads its settings; `DEVHOST_LOCAL_MODE=false` runs the app as if in Azure. Any Azure
        # hosting variable still wins over it.
        os.environ.setdefault("DEVHOST_LOCAL_MODE", "true")
        self.options: HostOptions = read_host_options(with_app_setting_overrides(host_json or {}, self.env))
        # `AzureWebJobs.<name>.Disabled=true` turns a function off, as in the host (functions-how-to-disable).
        self.all_functions: list[IndexedFunction] = [f for f in index_functions(app)
                                                     if not is_disabled(f.name, self.env)]
        self.functions: list[IndexedFunction] = [f for f in self.all_functions if only is None or f.name in only]
        self.keys = keys
        self._on_timeout = on_timeout
        unsupported = [f"{f.name} ({f.trigger.get('type')})" for f in self.functions
                       if f.trigger.get("type") not in SUPPORTED_TRIGGERS
                       or any(b.get("direction") == "OUT" and b.get("type") != "http" for b in f.bindings)]
        if unsupported:
            raise RuntimeError(f"devhost runs HTTP, queue and timer triggers without output bindings; "
                               f"not: {', '.join(unsupported)}")
        self.routes: list[Route] = build_routes(self.functions, self.options.route_prefix)
        self._stopping = threading.Event()
        self._http = HttpFrontend(self.routes, bind, port, keys)
        self._bind = bind
        self._listeners: list[_Listener] = []
        self._started = False

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def base_url(self) -> str:
        return f"http://{self._bind}:{self.port}"

    def url(self, route: str) -> str:
        """The address of an HTTP route, e.g. url("leads") -> http://127.0.0.1:7071/api/leads."""
        prefix = f"/{self.options.route_prefix}" if self.options.route_prefix else ""
        return f"{self.base_url}{prefix}/{route.lstrip('/')}"

    @property
    def route_levels(self) -> list[tuple[re.Pattern[str], str, str]]:
        """(route pattern, function name, authLevel) of each HTTP route (devhost/keys.py key_for_path)."""
        return [(r.pattern, r.function.name, auth_level(r.function.trigger)) for r in self.routes]

    def _build_listeners(self) -> list[_Listener]:
        listeners: list[_Listener] = []
        services: dict[str, QueueServiceClient] = {}
        for function in self.functions:
            trigger = function.trigger
            if trigger["type"] == "queueTrigger":
                connection = storage_connection_string(str(trigger.get("connection") or ""), self.env)
                if connection not in services:
                    services[connection] = QueueServiceClient.from_connection_string(
                        connection, **_STORAGE_CLIENT_OPTIONS)
                listeners.append(QueueListener(function, services[connection], self.options.queues,
                                               self._stopping))
            elif trigger["type"] == "timerTrigger":
                listeners.append(TimerListener(function, self.env, self._stopping))
        # The admin API runs a timer function on the instance that received the call, whether or not its
        # schedule runs here (FunctionsController.Invoke calls the local script host), beside a scheduled run.
        for function in self.all_functions:
            if function.trigger["type"] == "timerTrigger":
                here = next((t for t in listeners if isinstance(t, TimerListener) and t.function is function), None)
                self._http.admin[function.name] = (here or TimerListener(function, self.env,
                                                                         self._stopping)).run_manually
        return listeners

    def start(self) -> None:
        if self._started:
            raise RuntimeError("this LocalHost was started already; build a new one")
        self._started = True
        configure_invocations(self.options.function_timeout, self.env, self._on_timeout)
        self._listeners = self._build_listeners()
        for listener in self._listeners:
            listener.start()
        self._http.start()
        log.info("devhost: %d functions on %s", len(self.functions), self.base_url)

    def stop(self) -> None:
        """Stops polling and timers, waits for running invocations, then closes the HTTP server."""
        self._stopping.set()
        for listener in self._listeners:
            listener.join()
        self._http.stop()

    def close(self) -> None:
        """Release the port of a host that was never started."""
        self._http.stop()

    def serve_forever(self) -> None:
        """Start, block until Ctrl-C (KeyboardInterrupt) or stop() from another thread, then stop."""
        self.start()
        try:
            self._stopping.wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
