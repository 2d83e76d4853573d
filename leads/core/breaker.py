"""A circuit breaker per destination: after a configuration error (wrong secret, missing role), stop
calling that destination for a while instead of failing the same way for every new lead."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Breaker:
    destination: str
    reason: str
    open_until: datetime


class CircuitBreakers:
    def __init__(self, period: timedelta = timedelta(minutes=5),
                 on_change: Callable[[str, Breaker | None], None] | None = None) -> None:
        self.period = period
        self._open: dict[str, Breaker] = {}
        self._lock = threading.Lock()
        self._on_change = on_change  # persists the state so operators can see it (status, doctor)

    def open_reason(self, destination: str, now: datetime) -> str | None:
        with self._lock:
            breaker = self._open.get(destination)
        return breaker.reason if breaker and breaker.open_until > now else None

    def trip(self, destination: str, reason: str, now: datetime) -> None:
        breaker = Breaker(destination, reason, now + self.period)
        with self._lock:
            self._open[destination] = breaker
        if self._on_change:
            self._on_change(destination, breaker)

    def reset(self, destination: str) -> None:
        with self._lock:
            was_open = self._open.pop(destination, None) is not None
        if was_open and self._on_change:
            self._on_change(destination, None)

    def snapshot(self) -> list[Breaker]:
        with self._lock:
            return list(self._open.values())
