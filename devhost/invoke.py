"""Calling a user function and logging one line per invocation, as the host does.

The line copies the host's "Executed 'Functions.<name>' (Succeeded|Failed, Id=..., Duration=...ms)" and
never includes a request body or a message body: they hold personal data.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func

log = logging.getLogger("devhost")

_indexed: dict[int, tuple[func.FunctionApp, list[IndexedFunction]]] = {}


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
        result = call_user_function(function, argument)
        succeeded = True
    except Exception:  # the host records any failure of the function and carries on
        log.exception("Function 'Functions.%s' raised (Id=%s)", function.name, invocation_id)
        result, succeeded = None, False
    elapsed = (time.monotonic() - started) * 1000
    detail = describe(succeeded, result) if describe else ""
    log.log(logging.INFO if succeeded else logging.WARNING, "Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)%s",
            function.name, "Succeeded" if succeeded else "Failed", invocation_id, elapsed,
            f" {detail}" if detail else "")
    return succeeded, result
