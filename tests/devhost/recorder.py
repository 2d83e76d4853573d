"""What the sample app's functions saw. Lives outside sample_app so it survives the app's fresh imports."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Recorder:
    queue_calls: list[tuple[bytes, int | None]] = field(default_factory=list)  # (body, dequeue_count)
    timer_calls: list[bool] = field(default_factory=list)  # past_due of each run
    barrier: threading.Barrier | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


RECORDER = Recorder()


def reset() -> Recorder:
    global RECORDER  # noqa: PLW0603 - one recorder per test, read by the sample app at call time
    RECORDER = Recorder()
    return RECORDER


def wait_until(condition: Callable[[], bool], timeout: float = 10, what: str = "the condition") -> None:
    """Poll `condition` until true; fail with `what` after `timeout` seconds (no timed assertions)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
