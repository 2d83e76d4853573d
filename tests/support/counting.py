"""Counts the HTTP requests the storage SDKs really send (a transaction is one request)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from azure.core.pipeline.transport import RequestsTransport


class CountingTransport(RequestsTransport):  # type: ignore[misc]
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def send(self, request: Any, **kwargs: Any) -> Any:
        path = request.url.split("?")[0].rsplit("/", 1)[-1]
        with self._lock:
            self.calls[f"{request.method} {path.split('(')[0]}"] += 1
        return super().send(request, **kwargs)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
