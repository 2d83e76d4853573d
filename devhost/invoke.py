"""Calling a user function and logging one line per invocation, as the host does.

The line copies the host's "Executed 'Functions.<name>' (Succeeded|Failed, Id=..., Duration=...ms)" and
never includes a request body or a message body: they hold personal data.

host.json `functionTimeout` (enforced only where `enforce_function_timeout()` was called: the Flex mode's
worker processes, devhost/flex.py). An invocation that runs longer fails with the host's message ("Timeout
value of ... exceeded by function ..."); its trigger handles the failure as any other (HTTP 500, the queue
message made visible again after visibilityTimeout); then the worker process is restarted, which abandons
the invocation and every other one running in that process, as the host does for out-of-process languages
(Azure/azure-functions-host#5794 "Worker restart on function timeout", #8720; learn.microsoft.com
azure-functions/functions-host-json#functiontimeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func

log = logging.getLogger("devhost")

_indexed: dict[int, tuple[func.FunctionApp, list[IndexedFunction]]] = {}
_timeout: dict[str, Any] = {"seconds": None, "on_timeout": None}
_scope = threading.local()  # whether an invocation of this trigger call timed out


def enforce_function_timeout(seconds: float | None, on_timeout: Callable[[], None]) -> None:
    """Invocations running over `seconds` fail; `on_timeout()` runs once the trigger has handled that
    failure (the Flex worker exits there, so that its supervisor restarts it)."""
    _timeout.update(seconds=seconds, on_timeout=on_timeout)


@contextlib.contextmanager
def trigger_scope() -> Iterator[None]:
    """Wraps one trigger call: invoke() plus what the trigger does with the outcome (send the HTTP answer,
    delete or release the queue message). A timeout restarts the worker only after that."""
    _scope.timed_out = False
    try:
        yield
    finally:
        if getattr(_scope, "timed_out", False) and _timeout["on_timeout"] is not None:
            _timeout["on_timeout"]()


def _format_timespan(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


@dataclass(frozen=True)
class IndexedFunction:
    """One function as the host indexes it: its name, its function.json and the Python callable."""

    name: str
    bindings: list[dict[str, Any]]
    user_function: Callable[..., Any] = field(repr=False)

    @property
    def trigger(self) -> dict[str, Any]:
        return next(b for b in self.bindings if str(b.get("type", "")).endswith("Trigger"))


def index_functions(app: func.FunctionApp) -> list[IndexedFunction]:
    """`app.get_functions()` raises when called twice on one app, so each app is indexed once here."""
    cached = _indexed.get(id(app))
    if cached is not None and cached[0] is app:
        return cached[1]
    try:
        functions = app.get_functions()
    except ValueError as error:
        raise RuntimeError(
            f"the app was already indexed elsewhere ({error}); import the app module afresh"
        ) from error
    indexed = []
    for function in functions:
        metadata = json.loads(function.get_function_json())
        indexed.append(IndexedFunction(str(function.get_function_name()), metadata["bindings"],
                                       function.get_user_function()))
    _indexed[id(app)] = (app, indexed)  # keeps the app alive, so its id is never reused
    return indexed


def call_with_timeout(function: IndexedFunction, argument: Any, seconds: float) -> Any:
    """Run on its own thread and stop waiting after `seconds` (the thread cannot be killed: the worker
    process is, by on_timeout)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call_user_function(function, argument)
        except BaseException as error:  # noqa: BLE001 - handed over to the invoking thread
            outcome["error"] = error

    worker = threading.Thread(target=run, name=f"devhost-invocation-{function.name}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        _scope.timed_out = True
        raise TimeoutError(f"Timeout value of {_format_timespan(seconds)} was exceeded by function: "
                           f"Functions.{function.name}")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


def call_user_function(function: IndexedFunction, argument: Any) -> Any:
    """Pass the trigger as its binding's parameter name; run `async def` functions to completion."""
    result = function.user_function(**{function.trigger["name"]: argument})
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    return result


def invoke(function: IndexedFunction, argument: Any,
           describe: Callable[[bool, Any], str] | None = None) -> tuple[bool, Any]:
    """Run the function and log one line; return (succeeded, result). Exceptions are logged, not raised.

    `describe(succeeded, result)` adds a detail to the line (e.g. the HTTP status)."""
    invocation_id = uuid.uuid4()
    started = time.monotonic()
    try:
        seconds = _timeout["seconds"]
        result = (call_user_function(function, argument) if seconds is None
                  else call_with_timeout(function, argument, seconds))
        succeeded = True
    except Exception as error:  # the host records any failure of the function and carries on
        if getattr(_scope, "timed_out", False):
            log.error("%s (Id=%s). Initiating cancellation: the worker process will be restarted.", error,
                      invocation_id)
        else:
            log.exception("Function 'Functions.%s' raised (Id=%s)", function.name, invocation_id)
        result, succeeded = None, False
    elapsed = (time.monotonic() - started) * 1000
    detail = describe(succeeded, result) if describe else ""
    log.log(logging.INFO if succeeded else logging.WARNING, "Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)%s",
            function.name, "Succeeded" if succeeded else "Failed", invocation_id, elapsed,
            f" {detail}" if detail else "")
    return succeeded, result


def load_app(module_name: str) -> func.FunctionApp:
    module = importlib.import_module(module_name)
    apps = [v for v in vars(module).values() if isinstance(v, func.FunctionApp)]
    if len(apps) != 1:
        raise SystemExit(f"{module_name} must define exactly one func.FunctionApp (found {len(apps)}).")
    return apps[0]
