"""`make bench`: the figures the README and issue notes quote. Prints numbers; asserts nothing.

- import time of function_app (fresh interpreter, median of 5) beside the storage SDKs alone;
- storage calls per lead on the happy path (HTTP requests counted at the SDK transport);
- POST-to-inbox time through the local host on Azurite with a real SMTP server (median, p95);
- leads per second through the local host (concurrent POSTs until every e-mail has arrived), and the
  storage floor: the same table transactions and queue sends issued directly from one process;
- storage calls per lead counted honestly: every request of every storage client in the process (the
  app, and the local host's dequeues, deletes, polling and sweeper), for e-mail only and for e-mail +
  one CRM (HubSpot, against a fake answering as HubSpot documents), and the idle calls per hour.
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
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devhost.azurite import Azurite
    from devhost.host import LocalHost
    from tests.support.smtp import SmtpServer

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


def _new_host(azurite_connection: str, work: Path, env: dict[str, str]) -> tuple[LocalHost, str]:
    from devhost.host import LocalHost
    from tests.conftest import import_app_afresh

    suffix = uuid.uuid4().hex[:8]
    os.environ.update({
        "AzureWebJobsStorage": azurite_connection, "LEADS_TABLE": f"bench{suffix}",
        "LEADS_QUARANTINE_TABLE": f"benchq{suffix}", "LEADS_QUEUE": f"bench-{suffix}",
        "LEADS_SPOOL_DIR": str(work / "spool"), **env})
    host = LocalHost(import_app_afresh("function_app"), json.loads((ROOT / "host.json").read_text()),
                     os.environ, port=0)
    host.start()
    return host, host.url("leads")


def honest_storage_calls(azurite: Azurite, smtp: SmtpServer, work: Path, label: str, env: dict[str, str],
                         count: int = 40) -> None:
    """Every storage request in the process while `count` leads go from POST to every destination."""
    from tests.support.counting import count_every_storage_call

    endpoints = azurite.endpoints
    host, url = _new_host(azurite.connection_string, work, env)
    try:
        time.sleep(3)  # let the listeners settle into idle polling
        with count_every_storage_call(endpoints["queue"]) as seen:
            idle_started = time.perf_counter()
            time.sleep(65)  # the idle polling to subtract below (idle cost itself: tests/bench_idle.py)
            idle = seen.snapshot()
            idle_seconds = time.perf_counter() - idle_started
            before = len(smtp.messages)
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=4) as pool:
                list(pool.map(lambda n: post(url, json.dumps({"OfferTitle": f"calls {n}", "UserDetails": {
                    "Email": f"lead{n}@contoso.example", "Company": "C"}}).encode()), range(count)))
            smtp.wait_for(before + count, timeout=120)
            time.sleep(3)  # the last deletes and records
            busy_seconds = time.perf_counter() - started
            busy = seen.snapshot() - idle
        idle_per_second = sum(idle.values()) / idle_seconds
        polling_during_busy = idle_per_second * busy_seconds
        per_lead = (sum(busy.values()) - polling_during_busy) / count
        print(f"storage calls per lead, {label}: {per_lead:.1f} (all clients in the process, {count} leads; "
              f"idle polling of {polling_during_busy:.0f} calls over {busy_seconds:.0f} s subtracted)")
        for operation, calls in sorted(busy.items()):
            print(f"    {operation:<28} {calls:5d}  ({calls / count:.2f} per lead, idle polling included)")
        print(f"    idle: {idle_per_second * 3600:.0f} calls per hour (the delivery queue's polling at "
              f"maxPollingInterval, and a sweep if one fell in the window): {dict(idle)} in {idle_seconds:.0f} s")
    finally:
        host.stop()


def storage_floor(connection_string: str, count: int, clients: int) -> float:
    """Leads/s for the ingest's own storage work alone: one transaction (lead + marker + outbox) and one
    enqueue per lead, issued directly from this process with the same concurrency as the HTTP clients."""
    from leads.core.keys import new_lead_id
    from leads.core.messages import DeliveryMessage
    from leads.core.model import StoredLead, utcnow
    from leads.core.parsing import parse_lead
    from leads.core.settings import load_settings
    from leads.services.ingest import ENQUEUE_GRACE
    from leads.storage.azure_clients import queue_service, table_service
    from leads.storage.table_store import LeadTable
    from leads.storage.work_queue import WorkQueue

    suffix = uuid.uuid4().hex[:8]
    settings = load_settings({"AzureWebJobsStorage": connection_string, "LEADS_TABLE": f"floor{suffix}",
                              "LEADS_QUEUE": f"floor-{suffix}"})
    table = LeadTable(table_service(settings.storage), settings.table, settings.quarantine_table)
    queue = WorkQueue(queue_service(settings.storage), settings.queue)
    table.create_tables()
    queue.create_queues()
    now = utcnow()
    leads = [StoredLead(new_lead_id(now), now, parse_lead(json.dumps({"OfferTitle": f"load {n}"}).encode()))
             for n in range(count)]

    def store(stored: StoredLead) -> None:
        added = table.add(stored, stored.lead.fingerprint(), timedelta(hours=24),
                          outbox_due=now + ENQUEUE_GRACE)
        queue.send(DeliveryMessage(stored.id, added.etag, stored))

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(store, leads))
    return count / (time.perf_counter() - started)


def main() -> None:
    from devhost.azurite import start_azurite
    from tests.conftest import import_app_afresh
    from tests.support.smtp import SmtpServer

    print(f"import function_app:                     {import_ms('import function_app'):6.0f} ms (median of 5)")
    print(f"import azure.functions + storage SDKs:   "
          f"{import_ms('import azure.functions, azure.data.tables, azure.storage.queue'):6.0f} ms")
    REQUEST_PATH = "import function_app, leads.runtime, leads.services.ingest, leads.storage.table_store"
    print(f"import function_app + request path:      "
          f"{import_ms(REQUEST_PATH):6.0f} ms")

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
            floor = storage_floor(azurite.connection_string, count, clients=8)
            print(f"storage floor (same transactions + sends, one process, 8 threads): {floor:.0f} leads/s; "
                  f"ingest through the local host = {count / accepted / floor:.2f} of the floor")
        finally:
            host.stop()
        honest_storage_calls(azurite, smtp, work, "e-mail only", {"LEADS_DESTINATIONS": "email"})
        from tests.support.fake_http import FakeServer, Reply

        with FakeServer() as hubspot:
            # HubSpot's create-contact answer (developers.hubspot.com, CRM API | Contacts, "Create contacts").
            hubspot.on("POST", "/crm/v3/objects/contacts", Reply(201, {
                "id": "512", "properties": {}, "createdAt": "2026-11-21T12:00:00Z",
                "updatedAt": "2026-11-21T12:00:00Z", "archived": False}))
            honest_storage_calls(azurite, smtp, work, "e-mail + HubSpot", {
                "LEADS_DESTINATIONS": "email,hubspot", "LEADS_HUBSPOT_URL": hubspot.url,
                "LEADS_HUBSPOT_TOKEN": "pat-na1-bench"})
    finally:
        smtp.stop()
        azurite.stop()


if __name__ == "__main__":
    main()
