"""Azure's storage size limits, enforced on the client side: Azurite (--loose) does not enforce them.

Every request an azure-core `RequestsTransport` sends is inspected before it leaves: table inserts,
updates, merges and batches (each entity: string ≤ 64 KiB of UTF-16, binary ≤ 64 KiB, entity ≤ 1 MiB,
≤ 252 properties; batch ≤ 100 entities and ≤ 4 MiB) and queue Put Message (≤ 64 KiB as sent). A request
Azure would refuse raises `AzureLimitExceeded` (named after Azure's error code) instead of reaching
Azurite, and is recorded: tests/conftest.py fails any test that produced one, even if the app caught the
exception. The arithmetic is the app's own (leads/core/azure_limits.py); the wire format parsing is here.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from xml.etree import ElementTree

from azure.core.pipeline.transport import RequestsTransport

from leads.core.azure_limits import (
    MAX_BATCH_BYTES,
    MAX_BATCH_ENTITIES,
    MAX_QUEUE_MESSAGE_BYTES,
    entity_problem,
)

_ENTITY_METHODS = frozenset({"POST", "PUT", "PATCH", "MERGE"})
_ODATA_TYPE = "@odata.type"


class AzureLimitExceeded(AssertionError):
    """Azure would answer 400 (or 413) to this request. Not an AzureError on purpose: the app must never
    mistake a request it built wrongly for an outage."""


def _body(request: Any) -> bytes:
    body = getattr(request, "body", None)
    if body is None:
        body = getattr(request, "content", None)
    if body is None:
        return b""
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _entity_and_types(document: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    types = {k[: -len(_ODATA_TYPE)]: str(v) for k, v in document.items() if k.endswith(_ODATA_TYPE)}
    entity: dict[str, Any] = {}
    for name, value in document.items():
        if name.endswith(_ODATA_TYPE) or name.startswith("odata."):
            continue
        binary = types.get(name) == "Edm.Binary" and isinstance(value, str)
        entity[name] = base64.b64decode(value) if binary else value
    types = {k: v for k, v in types.items() if v != "Edm.String"}
    return entity, types


def problem(method: str, url: str, body: bytes) -> str:
    """Why Azure would refuse this request, or ""."""
    path = url.split("?", 1)[0]
    last = path.rsplit("/", 1)[-1]
    if (last == "messages" or "/messages/" in path) and body:  # queue Put Message, Update Message
        text = ElementTree.fromstring(body).findtext("MessageText") or ""  # our own request
        size = len(text.encode("utf-8"))
        return f"RequestBodyTooLarge: queue message of {size} bytes" if size > MAX_QUEUE_MESSAGE_BYTES else ""
    if last == "$batch":
        if len(body) > MAX_BATCH_BYTES:
            return f"RequestBodyTooLarge: batch of {len(body)} bytes"
        text = body.decode("utf-8")
        operations = text.count("Content-Type: application/http")
        if operations > MAX_BATCH_ENTITIES:
            return f"InvalidInput: batch of {operations} operations (at most {MAX_BATCH_ENTITIES})"
        for line in re.findall(r"^\{.*\}\s*$", text, flags=re.MULTILINE):
            found = _entity_problem(json.loads(line))
            if found:
                return found
        return ""
    if method in _ENTITY_METHODS and body and last != "Tables" and "/Tables(" not in path:
        document = json.loads(body)
        if isinstance(document, dict) and "TableName" not in document:
            return _entity_problem(document)
    return ""


def _entity_problem(document: dict[str, Any]) -> str:
    entity, types = _entity_and_types(document)
    return entity_problem(entity, types)


class LimitEnforcer:
    """Installed on `RequestsTransport.send` for the whole test session (`install`), so every storage
    client in the process is covered: the pipeline fixture's, the local host's, the app's own."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self._lock = threading.Lock()
        self._allowing = 0
        self._original: Any = None

    def check(self, request: Any) -> None:
        if self._allowing:
            return
        found = problem(str(request.method).upper(), str(request.url), _body(request))
        if found:
            with self._lock:
                self.violations.append(found)
            raise AzureLimitExceeded(f"Azure would refuse this request: {found}")

    def take_violations(self) -> list[str]:
        with self._lock:
            found, self.violations = self.violations, []
        return found

    @contextmanager
    def allowing(self) -> Iterator[None]:
        """Let over-limit requests through (to show what Azurite alone accepts)."""
        self._allowing += 1
        try:
            yield
        finally:
            self._allowing -= 1

    def install(self) -> None:
        original = self._original = RequestsTransport.send
        enforcer = self

        def send(transport: RequestsTransport, request: Any, **kwargs: Any) -> Any:
            enforcer.check(request)
            return original(transport, request, **kwargs)

        RequestsTransport.send = send

    def uninstall(self) -> None:
        if self._original is not None:
            RequestsTransport.send = self._original
            self._original = None


ENFORCER = LimitEnforcer()
