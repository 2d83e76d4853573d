"""Flex mode: the app run the way Flex Consumption runs it, as instances (processes with disks of their own).

Flex Consumption scales per function: the HTTP functions share the `http` group, and every other function
(queue, timer) runs on instances of its own, `function:<name>` (docs/stack.md; learn.microsoft.com
azure-functions/flex-consumption-plan "Per-function scaling"). An instance's local disk is its own and goes
with it when the platform scales in. So here each instance is a separate process with its own TMPDIR, HOME
and LEADS_SPOOL_DIR: what one writes to disk, the others do not see. The `http` group has `http_instances`
instances (2 by default) behind a round-robin front end on `port` (devhost/frontend.py); a test can remove one
(`scale_in`: killed, its folder deleted) or add one (`scale_out`). The admin API (`POST /admin/functions/<name>`)
runs the function on the HTTP instance that received it. Function keys are checked (devhost/keys.py; the
keys are printed at start, fixed by DEVHOST_MASTER_KEY ...). Each instance enforces host.json functionTimeout
and its process is restarted, on the same disk, when an invocation exceeds it (devhost/invoke.py).

Use: `DEVHOST_FLEX=true python -m devhost` (or `python -m devhost --flex`), or FlexHost in tests
(fixture `flex_host_factory`).
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devhost.flex_worker import READY, RESTART_EXIT_CODE, SPEC_ENV
from devhost.frontend import FrontEnd
from devhost.hostjson import read_host_options, with_app_setting_overrides
from devhost.keys import HostKeys
from devhost.mailcatcher import free_port
from devhost.routes import compile_template

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
    """One instance's process, restarted (same disk) whenever it exits while the host runs, until scaled in."""

    name: str  # `http-1`, `http-2`, ... or the group name of a non-HTTP group
    group: str
    functions: list[str]
    port: int
    folder: Path
    pids: list[int] = field(default_factory=list)  # every process this group has had, oldest first
    restarts: int = 0
    process: subprocess.Popen[str] | None = None
    removed: bool = False

    @property
    def spool(self) -> Path:
        return self.folder / "spool"


class FlexHost:
    def __init__(self, app_module: str, host_json: Mapping[str, Any], env: Mapping[str, str], *,
                 port: int = 7071, bind: str = "127.0.0.1", root: Path | None = None, http_instances: int = 2,
                 check_keys: bool = True) -> None:
        self.app_module = app_module
        self.host_json = dict(host_json)
        self.env = dict(env)
        self.bind = bind
        self.route_prefix = read_host_options(with_app_setting_overrides(host_json, env)).route_prefix
        self.root = root or Path(tempfile.mkdtemp(prefix="devhost-flex-"))
        functions = self._list_functions()
        self.keys: HostKeys | None = (HostKeys.from_settings(self.env, [f["name"] for f in functions]) if check_keys
                                      else None)
        self.workers: dict[str, Worker] = {}
        self._lock = threading.Lock()
        self._http_count = 0
        groups = scaling_groups(functions)
        for group, names in groups.items():
            if group != HTTP_GROUP:
                self.workers[group] = Worker(group, group, names, free_port(), self.root / group.replace(":", "-"))
        self._http_functions = groups[HTTP_GROUP]
        self.route_levels = [(compile_template(self.route_prefix, str(f["route"]).strip("/")), f["name"],
                              f["authLevel"]) for f in functions if f["trigger"] == "httpTrigger"]
        for _ in range(max(1, http_instances)):
            self._add_http_worker()
        self._front = FrontEnd(self.http_ports, bind, port)
        self._stopping = threading.Event()
        self._monitors: list[threading.Thread] = []

    def _add_http_worker(self) -> Worker:
        self._http_count += 1
        name = f"{HTTP_GROUP}-{self._http_count}"
        worker = Worker(name, HTTP_GROUP, self._http_functions, free_port(), self.root / name)
        self.workers[name] = worker
        return worker

    def http_ports(self) -> list[int]:
        with self._lock:
            return [w.port for w in self.workers.values() if w.group == HTTP_GROUP and not w.removed]

    @property
    def http_workers(self) -> list[Worker]:
        return [w for w in self.workers.values() if w.group == HTTP_GROUP and not w.removed]

    @property
    def port(self) -> int:
        return self._front.port

    @property
    def base_url(self) -> str:
        return f"http://{self.bind}:{self.port}"

    def url(self, route: str) -> str:
        prefix = f"/{self.route_prefix}" if self.route_prefix else ""
        return f"{self.base_url}{prefix}/{route.lstrip('/')}"

    def worker_of(self, function_name: str) -> Worker:
        return next(w for w in self.workers.values() if function_name in w.functions and not w.removed)

    def _list_functions(self) -> list[dict[str, str]]:
        listed = subprocess.run([sys.executable, "-m", "devhost.flex_worker", "--list", self.app_module],
                                cwd=PROJECT_ROOT, env=self.env, capture_output=True, text=True, check=False,
                                timeout=_STARTUP_SECONDS)
        if listed.returncode != 0:
            raise RuntimeError(f"devhost: could not index {self.app_module}:\n{listed.stderr[-2000:]}")
        functions: list[dict[str, str]] = json.loads(listed.stdout.strip().splitlines()[-1])
        return functions

    def _spec(self, worker: Worker) -> dict[str, Any]:
        return {"app": self.app_module, "group": worker.name, "functions": worker.functions, "port": worker.port,
                "host_json": self.host_json, "check_keys": self.keys is not None}

    def _spawn(self, worker: Worker) -> None:
        for name in ("tmp", "home", "spool"):
            (worker.folder / name).mkdir(parents=True, exist_ok=True)
        tmp = str(worker.folder / "tmp")
        env = {**self.env, **(self.keys.as_settings() if self.keys else {}),
               SPEC_ENV: json.dumps(self._spec(worker)), "TMPDIR": tmp, "TEMP": tmp, "TMP": tmp,
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
            raise RuntimeError(f"devhost: the {worker.name} worker did not start (exit code {process.returncode}); "
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
            if self._stopping.is_set() or worker.removed:
                return
            reason = "a function timed out" if code == RESTART_EXIT_CODE else f"it exited with code {code}"
            if code != RESTART_EXIT_CODE and self._stopping.wait(1.0):  # a crash loop must not spin
                return
            log.warning("devhost: restarting the %s worker (pid %d): %s", worker.name, worker.process.pid, reason)
            worker.restarts += 1
            try:
                self._spawn(worker)
            except RuntimeError:
                log.exception("devhost: the %s worker could not be restarted", worker.name)
                return

    def _watch(self, worker: Worker) -> None:
        monitor = threading.Thread(target=self._monitor, args=(worker,), name=f"devhost-flex-{worker.name}",
                                   daemon=True)
        monitor.start()
        self._monitors.append(monitor)

    def start(self) -> None:
        for worker in self.workers.values():
            self._spawn(worker)
        for worker in self.workers.values():
            self._watch(worker)
        self._front.start()
        log.info("devhost flex mode: %s", ", ".join(f"{w.name} (pid {w.pids[-1]})" for w in self.workers.values()))

    def scale_in(self, name: str) -> None:
        """The platform removes an HTTP instance: no more requests go there, its process is killed (no drain)
        and its local disk (TMPDIR, HOME, LEADS_SPOOL_DIR) is gone."""
        worker = self.workers[name]
        if worker.group != HTTP_GROUP or len(self.http_workers) < 2:
            raise ValueError("scale_in removes one of two or more HTTP instances")
        with self._lock:
            worker.removed = True
        if worker.process is not None and worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()
        shutil.rmtree(worker.folder, ignore_errors=True)
        log.info("devhost: scaled in %s (its disk is deleted)", name)

    def scale_out(self) -> Worker:
        """The platform adds an HTTP instance, with an empty disk; the front end sends it requests at once."""
        with self._lock:
            worker = self._add_http_worker()
            worker.removed = True  # not in rotation until it listens
        self._spawn(worker)
        with self._lock:
            worker.removed = False
        self._watch(worker)
        return worker

    def stop(self) -> None:
        self._stopping.set()
        self._front.stop()
        live = [w for w in self.workers.values() if w.process is not None and not w.removed]
        for worker in live:
            if worker.process is not None and worker.process.poll() is None:
                worker.process.terminate()
        for worker in live:
            assert worker.process is not None
            try:
                worker.process.wait(_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        for monitor in self._monitors:
            monitor.join(_STOP_SECONDS)

    def describe(self) -> list[str]:
        lines = [f"  {w.name}: pid {w.pids[-1] if w.pids else '-'}, disk {w.folder} ({', '.join(w.functions)})"
                 for w in self.workers.values() if not w.removed]
        return lines + (self.keys.describe(self._http_functions) if self.keys else [])
