"""Azurite, the Azure Storage emulator, as a child process (pinned in package.json; `npm ci` installs it).

Flags from docs/stack.md: `--skipApiVersionCheck` (the current SDKs send an API version Azurite rejects),
`--loose`, `--disableTelemetry`. Ports 0 pick free ports, read back from Azurite's
"... service is successfully listening at http://127.0.0.1:NNNNN" lines.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# The well-known development account, copied from Azurite's README ("Default Storage Account") in
# node_modules/azurite/README.md; the same key is DEVSTORE_ACCOUNT_KEY in azure-storage-queue.
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEFAULT_PORTS = {"blob": 10000, "queue": 10001, "table": 10002}
_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at (http://\S+)")
_STARTUP_SECONDS = 30


class AzuriteError(RuntimeError):
    pass


def connection_string(endpoints: dict[str, str]) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={endpoints['blob']}/{ACCOUNT_NAME};QueueEndpoint={endpoints['queue']}/{ACCOUNT_NAME};"
            f"TableEndpoint={endpoints['table']}/{ACCOUNT_NAME};")


@dataclass
class Azurite:
    """A running Azurite: `.connection_string`, `.endpoints` (service -> base URL), `.stop()`."""

    process: subprocess.Popen[str]
    endpoints: dict[str, str]

    @property
    def connection_string(self) -> str:
        return connection_string(self.endpoints)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def azurite_executable(project_root: Path) -> Path:
    executable = project_root / "node_modules" / ".bin" / "azurite"
    if not executable.exists():
        raise AzuriteError(f"Azurite is not installed ({executable} is missing): run `npm ci` in {project_root}.")
    return executable


def start_azurite(project_root: Path, location: Path, *, free_ports: bool = False,
                  in_memory: bool = False, startup_seconds: float = _STARTUP_SECONDS) -> Azurite:
    """Start Azurite with its data in `location` (or in memory); free ports, or 10000-10002. `startup_seconds`:
    how long it may take to listen (it loads its databases first)."""
    location.mkdir(parents=True, exist_ok=True)
    ports = dict.fromkeys(DEFAULT_PORTS, 0) if free_ports else DEFAULT_PORTS
    command = [str(azurite_executable(project_root)), "--silent", "--skipApiVersionCheck", "--loose",
               "--disableTelemetry"]
    for service, port in ports.items():
        command += [f"--{service}Host", "127.0.0.1", f"--{service}Port", str(port)]
    # Azurite refuses --location together with --inMemoryPersistence; cwd keeps any stray file in `location`.
    command += ["--inMemoryPersistence", "--extentMemoryLimit", "256"] if in_memory else ["--location", str(location)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               cwd=location)
    endpoints: dict[str, str] = {}
    output: list[str] = []
    ready = threading.Event()

    def read_output() -> None:
        assert process.stdout is not None
        for line in process.stdout:  # keeps draining after startup so Azurite never blocks on a full pipe
            if not ready.is_set():
                output.append(line.rstrip())
                found = _LISTENING.search(line)
                if found:
                    endpoints[found.group(1).lower()] = found.group(2).rstrip("/")
                    if len(endpoints) == 3:
                        ready.set()

    threading.Thread(target=read_output, name="azurite-output", daemon=True).start()
    deadline = time.monotonic() + startup_seconds
    while not ready.wait(0.05):
        if process.poll() is not None or time.monotonic() > deadline:
            Azurite(process, endpoints).stop()
            hint = " Is another Azurite already using ports 10000-10002?" if not free_ports else ""
            raise AzuriteError("Azurite did not start." + hint + "\n" + "\n".join(output[-20:]))
    return Azurite(process, endpoints)
