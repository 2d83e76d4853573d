"""The composition root builds each service once per process, even under a concurrent cold start."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from leads import runtime as runtime_module
from leads.runtime import built_once


def test_concurrent_first_calls_build_the_service_once() -> None:
    builds: list[int] = []
    start = threading.Barrier(8)

    def build() -> object:
        builds.append(1)
        time.sleep(0.05)  # long enough for every other first call to arrive meanwhile
        return object()

    service = built_once(build)

    def first_call(_: int) -> object:
        start.wait()
        return service()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(first_call, range(8)))
    assert len(builds) == 1
    assert all(result is results[0] for result in results)
    service.cache_clear()
    assert service() is not results[0]


def test_the_runtime_services_are_built_once() -> None:
    for name in ("runtime", "delivery", "sweeper"):
        assert isinstance(getattr(runtime_module, name), built_once), name
