"""Counts the HTTP requests the storage SDKs really send (a transaction is one request)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


class _Everything:
    """Every storage request this process sends, by service and operation (`count_every_storage_call`)."""

    def __init__(self, queue_endpoint: str) -> None:
        self.queue_endpoint = queue_endpoint.rstrip("/")
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, request: Any) -> None:
        url = request.url.split("?")[0]
        last = url.rsplit("/", 1)[-1].split("(")[0]
        if url.startswith(self.queue_endpoint):
            operation = "queue " + {"GET": "receive", "POST": "send", "DELETE": "delete"}.get(request.method,
                                                                                               request.method)
        else:
            operation = "table " + ("transaction" if last == "$batch" else f"{request.method} {last}")
        with self._lock:
            self.calls[operation] += 1

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.calls)


@contextmanager
def watch_storage_requests(on_request: Callable[[Any], None]) -> Iterator[None]:
    """Calls `on_request` with every request of every storage client in this process (the app's and the local
    host's), by patching the transport class they all use."""
    original = RequestsTransport.send

    def send(self: RequestsTransport, request: Any, **kwargs: Any) -> Any:
        on_request(request)
        return original(self, request, **kwargs)

    RequestsTransport.send = send
    try:
        yield
    finally:
        RequestsTransport.send = original


@contextmanager
def count_every_storage_call(queue_endpoint: str) -> Iterator[_Everything]:
    """Counts every request of every storage client in this process (dequeues, deletes, polling, the sweeper)."""
    seen = _Everything(queue_endpoint)
    with watch_storage_requests(seen.add):
        yield seen
