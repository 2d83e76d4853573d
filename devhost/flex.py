"""Flex mode: the app run the way Flex Consumption scales it, one worker process per scaling group.

Flex Consumption scales per function: the HTTP functions share the `http` group, and every other function
(queue, timer) runs on instances of its own, `function:<name>` (docs/stack.md; learn.microsoft.com
azure-functions/flex-consumption-plan "Per-function scaling"). An instance's local disk is its own. So
here each group is a separate process with its own TMPDIR, HOME and LEADS_SPOOL_DIR: what one function
writes to disk, the others do not see, as in Azure. Each worker enforces host.json functionTimeout and is
restarted when an invocation exceeds it (devhost/invoke.py). The HTTP worker serves the routes on `port`
and forwards `POST /admin/functions/<name>` to the worker that owns that function.

Use: `DEVHOST_FLEX=true python -m devhost` (or `python -m devhost --flex`), or FlexHost in tests
(fixture `flex_host_factory`).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devhost.flex_worker import READY, RESTART_EXIT_CODE, SPEC_ENV
from devhost.hostjson import read_host_options, with_app_setting_overrides
from devhost.mailcatcher import free_port

log = logging.getLogger("devhost.flex")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
HTTP_GROUP = "http"
_STARTUP_SECONDS = 60
_STOP_SECONDS = 15


def scaling_groups(functions: list[dict[str, str]]) -> dict[str, list[str]]:
    """Group name -> function names: `http` for the HTTP triggers, `function:<name>` for each other."""
    groups: dict[str, list[str]] = {HTTP_GROUP: []}
    for function in functions:
        if function["trigger"] == "httpTrigger":
            groups[HTTP_GROUP].append(function["name"])
        else:
            groups[f"function:{function['name']}"] = [function["name"]]
    return groups


@dataclass
class Worker:
    """One group's process, restarted whenever it exits while the host runs."""

    group: str
    functions: list[str]
    port: int
    folder: Path
    pids: list[int] = field(default_factory=list)  # every process this group has had, oldest first
    restarts: int = 0
    process: subprocess.Popen[str] | None = None

    @property
    def spool(self) -> Path:
        return self.folder / "spool"


class FlexHost:
    def __init__(self, app_module: str, host_json: Mapping[str, Any], env: Mapping[str, str], *,
                 port: int = 7071, bind: str = "127.0.0.1", root: Path | None = None) -> None:
        self.app_module = app_module
        self.host_json = dict(host_json)
        self.env = dict(env)
        self.bind = bind
        self.route_prefix = read_host_options(with_app_setting_overrides(host_json, env)).route_prefix
        self.root = root or Path(tempfile.mkdtemp(prefix="devhost-flex-"))
        self.workers: dict[str, Worker] = {}
        for group, names in scaling_groups(self._list_functions()).items():
            folder = self.root / group.replace(":", "-")
            worker_port = (port or free_port()) if group == HTTP_GROUP else free_port()
            self.workers[group] = Worker(group, names, worker_port, folder)
        self._stopping = threading.Event()
        self._monitors: list[threading.Thread] = []

    @property
    def port(self) -> int:
        return self.workers[HTTP_GROUP].port

    @property
    def base_url(self) -> str:
        return f"http://{self.bind}:{self.port}"

    def url(self, route: str) -> str:
        prefix = f"/{self.route_prefix}" if self.route_prefix else ""
        return f"{self.base_url}{prefix}/{route.lstrip('/')}"

    def worker_of(self, function_name: str) -> Worker:
        return next(w for w in self.workers.values() if function_name in w.functions)

    def _list_functions(self) -> list[dict[str, str]]:
        listed = subprocess.run([sys.executable, "-m", "devhost.flex_worker", "--list", self.app_module],
                                cwd=PROJECT_ROOT, env=self.env, capture_output=True, text=True, check=False,
                                timeout=_STARTUP_SECONDS)
        if listed.returncode != 0:
            raise RuntimeError(f"devhost: could not index {self.app_module}:\n{listed.stderr[-2000:]}")
        functions: list[dict[str, str]] = json.loads(listed.stdout.strip().splitlines()[-1])
        return functions

    def _spec(self, worker: Worker) -> dict[str, Any]:
        forward = {} if worker.group != HTTP_GROUP else {
            name: f"http://{self.bind}:{w.port}" for w in self.workers.values() if w.group != HTTP_GROUP
            for name in w.functions}
        return {"app": self.app_module, "group": worker.group, "functions": worker.functions, "port": worker.port,
                "host_json": self.host_json, "admin_forward": forward}

    def _spawn(self, worker: Worker) -> None:
        for name in ("tmp", "home", "spool"):
            (worker.folder / name).mkdir(parents=True, exist_ok=True)
        tmp = str(worker.folder / "tmp")
        env = {**self.env, SPEC_ENV: json.dumps(self._spec(worker)), "TMPDIR": tmp, "TEMP": tmp, "TMP": tmp,
               "HOME": str(worker.folder / "home"), "LEADS_SPOOL_DIR": str(worker.spool),
               "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen([sys.executable, "-m", "devhost.flex_worker"], cwd=PROJECT_ROOT, env=env,
                                   stdout=subprocess.PIPE, text=True)
        ready = threading.Event()
        threading.Thread(target=self._forward_output, args=(process, ready), daemon=True).start()
        if not ready.wait(_STARTUP_SECONDS) or process.poll() is not None:
            if process.poll() is None:
                process.kill()
            process.wait()
            raise RuntimeError(f"devhost: the {worker.group} worker did not start (exit code {process.returncode}); "
                               f"see its log above")
        worker.process = process
        worker.pids.append(process.pid)

    @staticmethod
    def _forward_output(process: subprocess.Popen[str], ready: threading.Event) -> None:
        """stderr (the logs) is inherited; stdout carries the READY line, then whatever the functions print."""
        assert process.stdout is not None
        for line in process.stdout:
            if not ready.is_set() and line.startswith(READY):
                ready.set()
            else:
                sys.stdout.write(line)
        if not ready.is_set():  # exited before it was ready: do not wait for the startup timeout
            ready.set()

    def _monitor(self, worker: Worker) -> None:
        while not self._stopping.is_set():
            assert worker.process is not None
            code = worker.process.wait()
            if self._stopping.is_set():
                return
            reason = "a function timed out" if code == RESTART_EXIT_CODE else f"it exited with code {code}"
            if code != RESTART_EXIT_CODE and self._stopping.wait(1.0):  # a crash loop must not spin
                return
            log.warning("devhost: restarting the %s worker (pid %d): %s", worker.group, worker.process.pid, reason)
            worker.restarts += 1
            try:
                self._spawn(worker)
            except RuntimeError:
                log.exception("devhost: the %s worker could not be restarted", worker.group)
                return

    def start(self) -> None:
        # Non-HTTP workers first: the HTTP worker forwards admin calls to them.
        for worker in sorted(self.workers.values(), key=lambda w: w.group == HTTP_GROUP):
            self._spawn(worker)
        for worker in self.workers.values():
            monitor = threading.Thread(target=self._monitor, args=(worker,), name=f"devhost-flex-{worker.group}",
                                       daemon=True)
            monitor.start()
            self._monitors.append(monitor)
        log.info("devhost flex mode: %s", ", ".join(f"{w.group} (pid {w.pids[-1]})" for w in self.workers.values()))

    def stop(self) -> None:
        self._stopping.set()
        for worker in self.workers.values():
            if worker.process is not None and worker.process.poll() is None:
                worker.process.terminate()
        for worker in self.workers.values():
            if worker.process is None:
                continue
            try:
                worker.process.wait(_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        for monitor in self._monitors:
            monitor.join(_STOP_SECONDS)

    def describe(self) -> list[str]:
        return [f"  {w.group}: pid {w.pids[-1] if w.pids else '-'}, disk {w.folder} ({', '.join(w.functions)})"
                for w in self.workers.values()]
