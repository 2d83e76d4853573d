"""What the in-memory storage (tests/support/memory_storage.py) shares: the fault hook's vocabulary, a process
crash, and Azure's errors built as the SDK builds them (status, error code, message)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.support.azure_limits_enforcer import ENFORCER, AzureLimitExceeded

T = TypeVar("T")


class ProcessCrash(BaseException):
    """The process died in the middle of a storage call (a BaseException: `except Exception` cannot keep it)."""


@dataclass(frozen=True)
class StorageCall:
    service: str  # "table" | "queue"
    target: str  # table or queue name
    operation: str
    writes: bool


# What a fault hook answers: go on; refuse before the write (503 or no connection); write then lose the
# answer; crash before or after the write.
OK, REFUSE, UNREACHABLE, LOST, CRASH_BEFORE, CRASH_AFTER = "ok", "refuse", "unreachable", "lost", "crash", "crash_after"
Faults = Callable[[StorageCall], str]


class _Response:
    """Just enough of an HTTP response for azure-core's HttpResponseError (status, reason, headers)."""

    def __init__(self, status: int, code: str) -> None:
        self.status_code = status
        self.reason = code
        self.headers = {"x-ms-error-code": code}
        self.content_type = "application/json"

    def text(self, encoding: str | None = None) -> str:
        return ""

    def body(self) -> bytes:
        return b""


def azure_error(kind: type[HttpResponseError], status: int, code: str, message: str, **kwargs: Any) -> Any:
    error = kind(message=f"{message}\nErrorCode:{code}", response=_Response(status, code), **kwargs)  # type: ignore[arg-type]
    error.error_code = code  # type: ignore[attr-defined]
    return error


def not_found(code: str = "ResourceNotFound") -> ResourceNotFoundError:
    return azure_error(ResourceNotFoundError, 404, code, "The specified resource does not exist.")  # type: ignore[no-any-return]


def too_large(found: str) -> AzureLimitExceeded:
    ENFORCER.violations.append(found)
    return AzureLimitExceeded(f"Azure would refuse this request: {found}")


