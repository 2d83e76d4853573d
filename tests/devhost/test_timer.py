"""Timer triggers through the local host: the schedule fires, %SETTING% schedules, runOnStartup."""

from __future__ import annotations

import pytest

from tests.devhost.recorder import wait_until

pytestmark = pytest.mark.timeout(60)


def test_timer_fires_on_its_schedule(sample_host, record):
    sample_host(SAMPLE_SCHEDULE="* * * * * *")  # every second, read from the app setting (%SAMPLE_SCHEDULE%)

    wait_until(lambda: len(record.timer_calls) >= 2, timeout=10, what="two timer runs")
    assert record.timer_calls[:2] == [False, False]


def test_run_on_startup_runs_once_at_start(sample_host, record):
    sample_host(SAMPLE_RUN_ON_STARTUP="true")  # the schedule itself is yearly

    wait_until(lambda: len(record.timer_calls) == 1, timeout=10, what="the startup run")


def test_yearly_timer_does_not_run_at_start(sample_host, record):
    host = sample_host()
    host.local_host.stop()  # stop() waits for the timer thread: anything it ran is recorded by now

    assert record.timer_calls == []
