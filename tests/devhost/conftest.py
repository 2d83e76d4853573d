"""The sample app on the local host, with fast host.json settings and a queue of its own per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import StartedHost
from tests.devhost import recorder

YEARLY = "0 0 0 1 1 *"


def fast_host_json(**queues: Any) -> dict[str, Any]:
    options = {"maxPollingInterval": "00:00:00.200", "visibilityTimeout": "00:00:00", "maxDequeueCount": 3,
               "batchSize": 16, "newBatchThreshold": 8, "messageEncoding": "base64", **queues}
    return {"version": "2.0", "extensions": {"http": {"routePrefix": "api"}, "queues": options}}


@pytest.fixture
def record() -> recorder.Recorder:
    return recorder.reset()


@pytest.fixture
def queue_name() -> str:
    return f"devhost-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def sample_host(local_host_factory: Callable[..., StartedHost], queue_name: str,
                record: recorder.Recorder) -> Callable[..., StartedHost]:
    def start(host_json: dict[str, Any] | None = None, **env: str) -> StartedHost:
        values = {"SAMPLE_QUEUE": queue_name, "SAMPLE_SCHEDULE": YEARLY, "SAMPLE_RUN_ON_STARTUP": "false", **env}
        return local_host_factory(values, app_module="tests.devhost.sample_app",
                                  host_json=host_json or fast_host_json())

    return start
