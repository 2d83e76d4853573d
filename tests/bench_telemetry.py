"""`python -m tests.bench_telemetry`: what telemetry costs a cold start. Prints figures; asserts nothing.

Each figure is the median of 5 fresh interpreters: `import function_app` without and with
APPLICATIONINSIGHTS_CONNECTION_STRING (the same: nothing of OpenTelemetry is imported at import time), then the
first `telemetry()` call, which with the connection string imports and configures azure-monitor-opentelemetry
(what the first invocation of a new instance pays). The ingestion endpoint is a local server answering as
Application Insights does, so exporting costs no network.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.fake_http import FakeServer, Reply

ROOT = Path(__file__).resolve().parents[1]


def median_ms(statement: str, env: dict[str, str], runs: int = 5) -> tuple[float, float]:
    """Wall-clock and CPU milliseconds (CPU time: less disturbed by other work on a shared machine)."""
    code = (f"import time; t, c = time.perf_counter(), time.process_time(); {statement}; "
            "print((time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000)")
    runs_out = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                               check=True).stdout.strip().splitlines()[-1].split() for _ in range(runs)]
    return (statistics.median(float(wall) for wall, _ in runs_out),
            statistics.median(float(cpu) for _, cpu in runs_out))


def main() -> None:
    off = {k: v for k, v in os.environ.items() if k != "APPLICATIONINSIGHTS_CONNECTION_STRING"}
    with FakeServer() as ingestion, tempfile.TemporaryDirectory() as temp:
        ingestion.on("POST", "/v2.1/track", lambda r: Reply(200, {
            "itemsReceived": len(r.json()), "itemsAccepted": len(r.json()), "errors": []}))
        on = {**off, "TMPDIR": temp, "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
              "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
                                                       f"IngestionEndpoint={ingestion.url}"}
        first_use = "import function_app; from leads.telemetry import telemetry; telemetry()"
        rows = [
            ("import function_app, telemetry off", median_ms("import function_app", off)),
            ("import function_app, telemetry on", median_ms("import function_app", on)),
            ("... + first telemetry(), off (no-op)", median_ms(first_use, off)),
            ("... + first telemetry(), on (configures)", median_ms(first_use, on)),
            ("import azure.monitor.opentelemetry alone", median_ms("import azure.monitor.opentelemetry", off)),
        ]
    print(f"{'median of 5 fresh interpreters':45s} {'wall':>7s} {'CPU':>7s}")
    for what, (wall, cpu) in rows:
        print(f"{what:45s} {wall:5.0f} ms {cpu:5.0f} ms")


if __name__ == "__main__":
    main()
