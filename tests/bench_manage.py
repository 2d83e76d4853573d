"""`python -m tests.bench_manage`: the management API's list over 10,000 leads on Azurite. Prints figures;
asserts nothing.

10,000 leads are seeded as the app writes them (leads/storage/table_store.py lead_entity, 100 per transaction), one
every 5 minutes back from now (about 35 days), mixed actions, offers, test leads and states
(tests/support/seeding.py). Each figure is the median of 5 runs of ManageService.list_leads (limit 50) and,
for the first, of the same request through the local host's HTTP route."""

from __future__ import annotations

import statistics
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LEADS = 10_000
RUNS = 5


def median_ms(action: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(RUNS):
        started = time.perf_counter()
        result = action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from leads.core.model import utcnow
    from leads.manage.filters import LeadFilter
    from leads.manage.service import ManageService
    from tests.support.pipeline import pipeline_on_own_azurite
    from tests.support.seeding import seed, varied_lead

    with pipeline_on_own_azurite() as (pipeline, azurite, work):
        now = utcnow()
        started = time.perf_counter()
        seed(pipeline.table, (varied_lead(n, now) for n in range(LEADS)))
        print(f"seeded {LEADS} leads in {time.perf_counter() - started:.1f} s (100 per transaction)")
        service = ManageService(pipeline.runtime)
        cases: list[tuple[str, dict[str, str]]] = [
            ("newest 50, no filter", {}),
            ("status=failed (column)", {"status": "failed"}),
            ("test=true (column)", {"test": "true"}),
            ("action=PLT (column)", {"action": "PLT"}),
            ("from/to: one day, 20 days ago (key range)", {
                "from": (now - timedelta(days=21)).isoformat(), "to": (now - timedelta(days=20)).isoformat()}),
            ("status=delivered (column + Python)", {"status": "delivered"}),
            ("destination=email&destination_state=blocked (Python)", {"destination": "email",
                                                                      "destination_state": "blocked"}),
            ("offer=offer 3 (Python)", {"offer": "offer 3"}),
            ("q=company 17 (text, 1 lead in 36 matches)", {"q": "company 17"}),
            ("q=nobody (text, no match: full scan)", {"q": "nobody-matches-this"}),
            ("status=failed&q=example3.com (column + text)", {"status": "failed", "q": "example3.com"}),
        ]
        print(f"\n{'list page (limit 50)':<58} {'median ms':>10} {'leads':>6}")
        for name, query in cases:
            filters = LeadFilter.from_query(query)

            def page_of(chosen: LeadFilter = filters) -> dict[str, Any]:
                return service.list_leads(chosen, 50)

            ms, page = median_ms(page_of)
            print(f"{name:<58} {ms:>10.0f} {len(page['leads']):>6}")
        ms, _ = median_ms(service.status)
        print(f"{'status (counts over 30 days, health over 1,000 leads)':<58} {ms:>10.0f}")
        _through_http(pipeline.settings, azurite.connection_string, work)


def _through_http(settings: Any, connection: str, work: str) -> None:
    import json
    import os

    from devhost.host import LocalHost
    from tests.conftest import import_app_afresh

    os.environ.update({"AzureWebJobsStorage": connection, "LEADS_TABLE": settings.table,
                       "LEADS_QUARANTINE_TABLE": settings.quarantine_table,
                       "LEADS_QUEUE": f"bench-{uuid.uuid4().hex[:8]}", "LEADS_SPOOL_DIR": str(Path(work) / "spool2")})
    host = LocalHost(import_app_afresh("function_app"), json.loads((ROOT / "host.json").read_text()), os.environ,
                     port=0)
    host.start()
    try:
        for name, path in (("HTTP GET /api/manage/leads?status=failed", "manage/leads?status=failed"),
                           ("HTTP GET /api/manage/leads?q=nobody (full scan)", "manage/leads?q=nobody-matches")):
            def get(p: str = path) -> int:
                with urllib.request.urlopen(host.url(p), timeout=60) as response:
                    return len(response.read())
            get()  # the first request builds the runtime
            ms, size = median_ms(get)
            print(f"{name:<58} {ms:>10.0f} {size:>6} bytes")
    finally:
        host.stop()


if __name__ == "__main__":
    main()
