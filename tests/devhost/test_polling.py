"""How often the local host reads an empty queue: the Functions host's back-off up to maxPollingInterval,
and the app setting that overrides host.json (what the idle-cost measurement in tests/bench_idle.py rests on)."""

from __future__ import annotations

import pytest

from devhost.hostjson import read_host_options, with_app_setting_overrides
from devhost.queue_listener import MIN_POLLING_INTERVAL, PollingBackoff
from tests.devhost.conftest import fast_host_json

OVERRIDE = "AzureFunctionsJobHost__extensions__queues__maxPollingInterval"


def test_an_empty_queue_is_read_ever_less_often_up_to_max_polling_interval_and_at_once_after_a_find() -> None:
    backoff = PollingBackoff(MIN_POLLING_INTERVAL, 10.0)
    delays = [backoff.next_delay(found=False) for _ in range(16)]  # x1.6 at worst: the maximum by the 10th
    assert delays[0] < 0.3  # starts near 100 ms (QueuePollingIntervals.Minimum), about doubling
    assert delays == sorted(delays)
    assert delays[-4:] == [10.0] * 4  # then stays at the maximum: 360 reads an hour at 10 s
    assert backoff.next_delay(found=True) == MIN_POLLING_INTERVAL


def test_the_app_setting_overrides_host_json_whatever_the_case_of_its_path() -> None:
    host_json = fast_host_json(maxPollingInterval="00:00:02")
    for name in (OVERRIDE, OVERRIDE.lower()):
        options = read_host_options(with_app_setting_overrides(host_json, {name: "00:00:30"}))
        assert options.queues.max_polling_interval == 30.0
        assert options.queues.batch_size == 16  # the rest of host.json stands
    assert host_json["extensions"]["queues"]["maxPollingInterval"] == "00:00:02"  # the file is not changed


def test_the_override_creates_a_section_host_json_lacks() -> None:
    options = read_host_options(with_app_setting_overrides({"version": "2.0"}, {OVERRIDE: "00:00:05"}))
    assert options.queues.max_polling_interval == 5.0
    assert read_host_options({"version": "2.0"}).queues.max_polling_interval == 60.0  # the host's default


@pytest.mark.azurite
def test_the_local_host_polls_with_the_overridden_interval(sample_host) -> None:
    host = sample_host(**{OVERRIDE: "00:00:07"})
    assert host.local_host.options.queues.max_polling_interval == 7.0
