"""Calling a user function and logging one line per invocation, as the host does.

The line copies the host's "Executed 'Functions.<name>' (Succeeded|Failed, Id=..., Duration=...ms)" and
never includes a request body or a message body: they hold personal data.

host.json `functionTimeout`, enforced in every mode (`configure_invocations()`, called by LocalHost.start).
The clock starts when the host dispatches the invocation, not when a Python thread picks it up: the host's
timeout wraps the whole invocation (azure-webjobs-sdk src/Microsoft.Azure.WebJobs.Host/Executors/
FunctionExecutor.cs, ExecuteWithWatchersAsync / StartFunctionTimeout), and the Python worker runs sync
functions on one thread pool per worker process of PYTHON_THREADPOOL_THREAD_COUNT threads, else Python's
ThreadPoolExecutor default min(32, cpu + 4) (azure-functions-python-worker azure_functions_worker/
dispatcher.py, Dispatcher._get_sync_tp_max_workers / _create_sync_call_tp: `None` on Python >= 3.9), so an
invocation waiting for a thread is already on the clock. An invocation that runs longer fails with the
host's message ("Timeout value of ... exceeded by function ..."); its trigger handles the failure as any
other (HTTP 500, the queue message made visible again after visibilityTimeout); then, in Flex mode, the worker
process is restarted, as the host does for out-of-process languages (Azure/azure-functions-host#5794;
src/WebJobs.Script/Workers/Rpc/FunctionRegistration/RpcFunctionInvocationDispatcher.cs,
RestartWorkerWithInvocationIdAsync; learn.microsoft.com azure-functions/functions-host-json#functiontimeout).
In-process mode (`make run`, most tests) cannot restart the process it runs in: the invocation fails and
its thread is left to finish, and the log says so.

HTTP invocations are answered 502 after 230 s whatever functionTimeout says: the front end's limit
(learn.microsoft.com azure-functions/functions-scale#timeout, "Function app timeout duration": "230 seconds is
the maximum amount of time that an HTTP triggered function can take to respond"). The function keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func

log = logging.getLogger("devhost")

_indexed: dict[int, tuple[func.FunctionApp, list[IndexedFunction]]] = {}
HTTP_RESPONSE_LIMIT_SECONDS = 230.0  # the front end's limit (functions-scale#timeout)
_timeout: dict[str, Any] = {"seconds": None, "on_timeout": None}
_pool: dict[str, ThreadPoolExecutor] = {}
_scope = threading.local()  # whether an invocation of this trigger call timed out


class ResponseCut(Exception):
    """An HTTP invocation still running when the front end stops waiting (HTTP_RESPONSE_LIMIT_SECONDS)."""


def python_worker_threads(env: Mapping[str, str]) -> int:
    """Dispatcher._get_sync_tp_max_workers: PYTHON_THREADPOOL_THREAD_COUNT (an integer >= 1; anything else
    is ignored with a warning), else ThreadPoolExecutor's own default min(32, cpu + 4)."""
    value = env.get("PYTHON_THREADPOOL_THREAD_COUNT", "").strip()
    if value:
        try:
            if int(value) >= 1:
                return int(value)
        except ValueError:
            pass
        log.warning("PYTHON_THREADPOOL_THREAD_COUNT must be an integer of at least 1; using the default")
    return min(32, (os.cpu_count() or 1) + 4)


def configure_invocations(seconds: float | None, env: Mapping[str, str],
                          on_timeout: Callable[[], None] | None = None) -> None:
    """functionTimeout (None: none) and this process's Python worker thread pool. `on_timeout()` runs once
    the trigger has handled a timed-out invocation (the Flex worker exits there, so that it is restarted)."""
    _timeout.update(seconds=seconds, on_timeout=on_timeout)
    old = _pool.get("sync")
    _pool["sync"] = ThreadPoolExecutor(python_worker_threads(env), thread_name_prefix="devhost-worker")
    if old is not None:
        old.shutdown(wait=False)


def enforce_function_timeout(seconds: float | None, on_timeout: Callable[[], None]) -> None:
    """Kept for callers of the earlier interface: configure_invocations with this process's environment."""
    configure_invocations(seconds, os.environ, on_timeout)


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


def _submit(function: IndexedFunction, argument: Any) -> Future[Any]:
    """Sync functions wait for a thread of the worker's pool; `async def` ones run on their own thread (the
    worker runs them on its event loop, not on the pool)."""
    pool = _pool.get("sync")
    if pool is None:
        configure_invocations(_timeout["seconds"], os.environ, _timeout["on_timeout"])
        pool = _pool["sync"]
    if inspect.iscoroutinefunction(function.user_function):
        future: Future[Any] = Future()

        def run() -> None:
            try:
                future.set_result(call_user_function(function, argument))
            except BaseException as error:  # noqa: BLE001 - handed over through the future
                future.set_exception(error)

        threading.Thread(target=run, name=f"devhost-async-{function.name}", daemon=True).start()
        return future
    return pool.submit(call_user_function, function, argument)


def call_with_timeout(function: IndexedFunction, argument: Any, seconds: float | None,
                      respond_within: float | None = None) -> Any:
    """Dispatch now and wait until `seconds` after now (functionTimeout), or `respond_within` (the HTTP front
    end's limit) if that is sooner. A thread cannot be killed: in Flex mode the worker process is, by
    on_timeout."""
    future = _submit(function, argument)
    limits = [limit for limit in (seconds, respond_within) if limit is not None]
    wait = min(limits) if limits else None
    try:
        return future.result(timeout=wait)
    except FutureTimeout:
        pass
    if seconds is not None and wait == seconds:
        future.cancel()  # still waiting for a thread: it never starts (the restarted worker never had it)
        _scope.timed_out = True
        raise TimeoutError(f"Timeout value of {_format_timespan(seconds)} was exceeded by function: "
                           f"Functions.{function.name}")
    raise ResponseCut(f"the front end stopped waiting after {respond_within:.0f} s")


def call_user_function(function: IndexedFunction, argument: Any) -> Any:
    """Pass the trigger as its binding's parameter name; run `async def` functions to completion."""
    result = function.user_function(**{function.trigger["name"]: argument})
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    return result


def invoke(function: IndexedFunction, argument: Any, describe: Callable[[bool, Any], str] | None = None,
           respond_within: float | None = None) -> tuple[bool, Any]:
    """Run the function and log one line; return (succeeded, result). Exceptions are logged, not raised
    (a ResponseCut is the result of a cut HTTP call).

    `describe(succeeded, result)` adds a detail to the line (e.g. the HTTP status)."""
    invocation_id = uuid.uuid4()
    started = time.monotonic()
    try:
        result = call_with_timeout(function, argument, _timeout["seconds"], respond_within)
        succeeded = True
    except ResponseCut as cut:
        log.warning("Functions.%s (Id=%s): %s; the function goes on running", function.name, invocation_id, cut)
        result, succeeded = cut, False
    except Exception as error:  # the host records any failure of the function and carries on
        if getattr(_scope, "timed_out", False):
            restart = ("the worker process will be restarted" if _timeout["on_timeout"] is not None else
                       "Azure restarts the worker process here; devhost in-process mode leaves the thread running")
            log.error("%s (Id=%s). Initiating cancellation: %s.", error, invocation_id, restart)
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
