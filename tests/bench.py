"""`make bench`: the figures the README and issue notes quote. Prints numbers; asserts nothing.

- import time of function_app (fresh interpreter, median of 5) beside the storage SDKs alone;
- storage calls per lead on the happy path (HTTP requests counted at the SDK transport);
- POST-to-inbox time through the local host on Azurite with a real SMTP server (median, p95);
- leads per second through the local host (concurrent POSTs until every e-mail has arrived).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def import_ms(statement: str, runs: int = 5) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print((time.perf_counter() - t) * 1000)"
    times = [float(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                                  check=True).stdout) for _ in range(runs)]
    return statistics.median(times)


def storage_calls(connection_string: str, spool: str) -> tuple[int, int]:
    from tests.support.pipeline import RecordingDestination, build_pipeline

    pipeline = build_pipeline(connection_string, spool, {"email": RecordingDestination("email")})
    calls = []
    for n in range(10):
        pipeline.transport.reset()
        pipeline.ingest.receive("POST", json.dumps({"OfferTitle": f"bench {n}"}).encode())
        ingest = pipeline.transport.total
        [message] = pipeline.queued()
        pipeline.transport.reset()
        pipeline.delivery.handle(message)
        calls.append((ingest, pipeline.transport.total))
    return max(c[0] for c in calls), max(c[1] for c in calls)


def post(url: str, body: bytes) -> str:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.loads(response.read())["id"])


def main() -> None:
    from devhost.azurite import start_azurite
    from tests.conftest import import_app_afresh
    from tests.support.smtp import SmtpServer

    print(f"import function_app:                     {import_ms('import function_app'):6.0f} ms (median of 5)")
    print(f"import azure.functions + storage SDKs:   "
          f"{import_ms('import azure.functions, azure.data.tables, azure.storage.queue'):6.0f} ms")
    print(f"import function_app + request path:      "
          f"{import_ms('import function_app, leads.runtime, leads.ingest, leads.table_store'):6.0f} ms")

    work = Path(tempfile.mkdtemp(prefix="leads-bench-"))
    azurite = start_azurite(ROOT, work / "azurite", free_ports=True, in_memory=True)
    smtp = SmtpServer().start()
    try:
        ingest, delivery = storage_calls(azurite.connection_string, str(work / "spool"))
        print(f"storage calls per lead (happy path):     {ingest} ingest + {delivery} delivery = {ingest + delivery}")

        suffix = uuid.uuid4().hex[:8]
        os.environ.update({
            "AzureWebJobsStorage": azurite.connection_string, "LEADS_TABLE": f"bench{suffix}",
            "LEADS_QUARANTINE_TABLE": f"benchq{suffix}", "LEADS_QUEUE": f"bench-{suffix}",
            "LEADS_DESTINATIONS": "email", "LEADS_EMAIL_TO": "sales@contoso.example",
            "LEADS_EMAIL_FROM": "leads@contoso.example", "LEADS_SMTP_HOST": smtp.host,
            "LEADS_SMTP_PORT": str(smtp.port), "LEADS_SMTP_SECURITY": "none", "LEADS_SPOOL_DIR": str(work / "spool"),
        })
        from devhost.host import LocalHost

        host = LocalHost(import_app_afresh("function_app"), json.loads((ROOT / "host.json").read_text()),
                         os.environ, port=0)
        host.start()
        url = host.url("leads")
        try:
            latencies = []
            for n in range(20):
                started = time.perf_counter()
                post(url, json.dumps({"OfferTitle": f"latency {n}", "UserDetails": {"Company": "C"}}).encode())
                smtp.wait_for(n + 1, timeout=30)
                latencies.append((time.perf_counter() - started) * 1000)
            latencies.sort()
            print(f"POST-to-inbox (20 sequential leads):     median {statistics.median(latencies):.0f} ms, "
                  f"p95 {latencies[18]:.0f} ms, max {latencies[-1]:.0f} ms")

            count, before = 200, len(smtp.messages)
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(lambda n: post(url, json.dumps({"OfferTitle": f"load {n}"}).encode()), range(count)))
            accepted = time.perf_counter() - started
            smtp.wait_for(before + count, timeout=300)
            finished = time.perf_counter() - started
            print(f"throughput ({count} leads, 8 clients):     {count / accepted:.0f} leads/s accepted (202), "
                  f"{count / finished:.0f} leads/s all the way to the inbox")
        finally:
            host.stop()
    finally:
        smtp.stop()
        azurite.stop()


if __name__ == "__main__":
    main()
