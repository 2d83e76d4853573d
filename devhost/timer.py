"""The timer trigger: NCRONTAB schedules, evaluated in UTC.

Copied from azure-webjobs-sdk-extensions Timers/Listener/TimerListener.cs: `runOnStartup` invokes once at
start; invocations of one timer never overlap; after each run the next occurrence is computed from the
time the run started (or from its scheduled time if the timer fired early), and if that moment has already
passed the function runs again at once. The host reads the machine's local time, which is UTC in Azure
unless WEBSITE_TIME_ZONE is set: this host always uses UTC. A schedule written as `%SETTING%` is read from
that app setting, as the host resolves it.
Not copied: the schedule monitor (`useMonitor`), which persists the schedule in storage and sets
`past_due` for an occurrence missed while the host was down; here `past_due` is always False.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import UTC, datetime

from azure.functions.timer import TimerRequest

from devhost.invoke import IndexedFunction, invoke, trigger_scope
from devhost.ncrontab import Schedule, parse_schedule

log = logging.getLogger("devhost.timer")


def resolve_schedule(expression: str, env: Mapping[str, str]) -> Schedule:
    if expression.startswith("%") and expression.endswith("%"):
        expression = env[expression.strip("%")]
    return parse_schedule(expression)


class TimerListener:
    def __init__(self, function: IndexedFunction, env: Mapping[str, str], stopping: threading.Event) -> None:
        self.function = function
        trigger = function.trigger
        self.schedule = resolve_schedule(str(trigger["schedule"]), env)
        self.run_on_startup = bool(trigger.get("runOnStartup", False))
        self._stopping = stopping
        self._running = threading.Lock()
        self._thread = threading.Thread(target=self._run_forever, name=f"devhost-timer-{function.name}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def _fire(self, reason: str) -> None:
        with self._running, trigger_scope():  # one run at a time, a manual one (admin API) included
            invoke(self.function, TimerRequest(past_due=False),
                   lambda _ok, _result: f"schedule='{self.schedule.expression}' reason={reason}")

    def run_manually(self) -> None:
        """POST /admin/functions/<name> (the host's "run a non HTTP-triggered function"), answered 202 first."""
        threading.Thread(target=self._fire, args=("Manual",), name=f"devhost-manual-{self.function.name}",
                         daemon=True).start()

    def _run_forever(self) -> None:
        if self.run_on_startup:
            self._fire("RunOnStartup")
        due = self.schedule.next_after(datetime.now(UTC))
        while not self._stopping.wait(max((due - datetime.now(UTC)).total_seconds(), 0)):
            started = datetime.now(UTC)
            self._fire("Schedule")
            due = self.schedule.next_after(max(started, due))
