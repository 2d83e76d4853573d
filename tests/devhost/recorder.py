"""What the sample app's functions saw. Lives outside sample_app so it survives the app's fresh imports."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from tests.support.waiting import wait_until


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


__all__ = ["RECORDER", "Recorder", "reset", "wait_until"]
