"""`python -m tests.bench_flat_cost [--sizes 10000,200000] [--source-rows 10000,200000]`: what forget, subject-export,
the retention purge with nothing due and "last test lead" cost on a table of N leads, and what the importer's
minute costs with Partner Center's table holding M rows. Prints storage requests, rows read and ms for each size;
asserts nothing (docs/measurements.md keeps the figures).

Leads are seeded as an older version wrote them (tests/support/seeding.py: no index rows, no test lead, one every 5
minutes back from now), then indexed by the one-time backfill (`python -m leads reindex`), whose time is printed:
it is the upgrade's cost. Requests and rows are counted at the storage SDK's transport (every request of every
client in the process: tests/support/counting.py); a row is an entity in a query's answer or a point read's.

`--preload` (for 200,000 leads): Azurite keeps its data on disk; per size the first 100 leads go in through the API,
the rest are written into Azurite's database file while it is stopped (tests/support/azurite_preload.py: seeding
through the API is quadratic in Azurite, whose duplicate check scans the one `leads` partition), then read back.

Partner Center's older rows are written 200 a day back from yesterday, each day its own partition (the
PartitionKey is the creation date), as a table that grew over years is: the new rows go in today's partition."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Cost:
    requests: int = 0
    rows: int = 0
    ms: float = 0.0


@contextmanager
def counted() -> Iterator[Cost]:
    """Requests and rows of every storage call in the process while the block runs."""
    from azure.core.pipeline.transport import RequestsTransport

    cost, lock, original = Cost(), threading.Lock(), RequestsTransport.send

    def send(self: RequestsTransport, request: Any, **kwargs: Any) -> Any:
        response = original(self, request, **kwargs)
        rows = 0
        if request.method == "GET" and response.status_code == 200:
            try:
                body = json.loads(response.text())
            except ValueError:
                body = {}
            rows = len(body["value"]) if isinstance(body, dict) and isinstance(body.get("value"), list) else 1
        with lock:
            cost.requests += 1
            cost.rows += rows
        return response

    RequestsTransport.send = send
    started = time.perf_counter()
    try:
        yield cost
    finally:
        cost.ms = (time.perf_counter() - started) * 1000
        RequestsTransport.send = original


def measure(action: Callable[[], Any], repeat: int = 3) -> tuple[Cost, Any]:
    """The median (by ms) of `repeat` runs."""
    runs = []
    for _ in range(repeat):
        with counted() as cost:
            result = action()
        runs.append((cost, result))
    runs.sort(key=lambda run: run[0].ms)
    return runs[len(runs) // 2]


def line(what: str, size: int, cost: Cost, note: str = "") -> None:
    print(f"{what:<58} {size:>9,} {cost.requests:>8} {cost.rows:>8} {cost.ms:>9.0f}  {note}", flush=True)


def privacy_costs(sizes: list[int], seed_indexed: bool = False, preload: bool = False) -> None:
    from leads.core.model import utcnow
    from leads.manage.health import status_report
    from leads.services.privacy import Privacy
    from leads.storage.subject_index import SubjectIndex
    from tests.support.azurite_preload import DiskAzurite, disk_azurite, sampled
    from tests.support.pipeline import pipeline_on_own_azurite
    from tests.support.seeding import seed, varied_lead

    def not_test(n: int, now: Any) -> Any:
        stored = varied_lead(n, now)
        return replace(stored, lead=replace(stored.lead, is_test=False))

    def figures(pipeline: Any, size: int) -> None:
        if not SubjectIndex(pipeline.table).ready():
            cost, _ = measure(lambda: Privacy(pipeline.runtime).export("person7@example7.com"), repeat=1)
            line("subject-export before the backfill (reads every lead)", size, cost)
            with counted() as cost:
                indexed = Privacy(pipeline.runtime).reindex()
            line("one-time backfill (python -m leads reindex)", size, cost, str(indexed))
        cost, document = measure(lambda: Privacy(pipeline.runtime).export("person7@example7.com"))
        line("subject-export (1 lead of the person)", size, cost, f"{len(document['leads'])} lead(s)")
        cost, counts = measure(lambda: Privacy(pipeline.runtime).forget("nobody@example.com"))
        line("forget (nobody: nothing held)", size, cost, f"{counts['leads']} lead(s)")
        last_person = f"person{size}@example{size % 50}.com"
        cost, counts = measure(lambda: Privacy(pipeline.runtime).forget(last_person), repeat=1)
        line("forget (1 lead of the person)", size, cost, f"{counts['leads']} lead(s)")
        cost, counts = measure(lambda: Privacy(pipeline.runtime).purge())
        line("retention purge, nothing due (730 days)", size, cost, str(counts))
        cost, found = measure(lambda: SubjectIndex(pipeline.table).last_test_lead())
        line("last test lead (the index; there is none)", size, cost, str(found))
        cost, found = measure(lambda: next(pipeline.table.lead_rows({"IsTest": True}, select=["Id"], page_size=1),
                                           None), repeat=1)
        line("last test lead, the old way (a filter over every lead)", size, cost, str(found))
        cost, report = measure(lambda: status_report(pipeline.runtime))
        line("status (last lead, last test lead, 30 days' counts, ...)", size, cost,
             f"last test lead {report['last_test_lead']}")

    with ExitStack() as stack:
        disk: DiskAzurite | None = None
        if preload:
            disk = stack.enter_context(disk_azurite(Path(stack.enter_context(tempfile.TemporaryDirectory()))))
            pipeline = disk.pipeline
        else:
            pipeline, _azurite, _work = stack.enter_context(pipeline_on_own_azurite())
        now, seeded = utcnow(), 0
        print(f"{'operation':<58} {'leads':>9} {'requests':>8} {'rows':>8} {'ms':>9}", flush=True)
        for size in sizes:
            if not seed_indexed:
                pipeline.table.leads.delete_entity("index", "subjects")  # as before the upgrade: no index yet
            started = time.perf_counter()
            if disk is None:
                seed(pipeline.table, (not_test(n, now) for n in range(seeded + 1, size + 1)), indexed=seed_indexed)
            else:  # the first 100 through Azurite's API, the rest into its database file (azurite_preload.py)
                through_api = [not_test(n, now) for n in range(seeded + 1, min(size, seeded + 100) + 1)]
                seed(pipeline.table, through_api, indexed=seed_indexed)
                kept = list(through_api[::33])  # read back after the restart: some through the API, some preloaded
                summary = disk.preload(sampled((not_test(n, now) for n in range(seeded + 101, size + 1)), 20_000, kept),
                                       seed_indexed, check=through_api)
                pipeline = disk.pipeline
                compared = disk.verify(kept, seed_indexed)
                print(f"(preload: {summary}; {compared} leads read back equal; insert, ETag update, query, delete "
                      "work)", flush=True)
            print(f"(seeded {size - seeded:,} leads{' with their index rows' if seed_indexed else ''} in "
                  f"{time.perf_counter() - started:.0f} s)", flush=True)
            seeded = size
            figures(pipeline, size)


def import_costs(sizes: list[int]) -> None:
    from azure.data.tables import TableClient

    from leads.core.model import utcnow
    from leads.core.ports import Watermark
    from leads.services.importer import Importer
    from leads.storage.source_table import SourceTable, WatermarkTable
    from tests.support.partner_center_table import partner_center_row, source_table
    from tests.support.pipeline import pipeline_on_own_azurite

    with pipeline_on_own_azurite() as (pipeline, azurite, _work):
        source: TableClient = source_table(azurite.connection_string)
        importer = Importer(SourceTable(source), WatermarkTable(pipeline.table.leads, source.table_name),
                            pipeline.ingest, pipeline.table, clock=pipeline.clock)
        written = 0
        print(f"{'importer minute':<58} {'PC rows':>9} {'requests':>8} {'rows':>8} {'ms':>9}", flush=True)
        for size in sizes:
            started = time.perf_counter()
            while written < size:  # Partner Center's older rows, already imported: 200 a day back from yesterday
                day = utcnow() - timedelta(days=1 + written // 200)
                batch = [partner_center_row(f"old{written + n}@contoso.example",
                                            PartitionKey=f"{day.month}:2F{day.day}:2F{day.year}",
                                            CreatedTime=(day - timedelta(seconds=written % 200 + n))
                                            .strftime("%Y-%m-%dT%H:%M:%SZ")) for n in range(100)]
                source.submit_transaction([("create", row) for row in batch])
                written += 100
            print(f"(wrote {size:,} rows in Partner Center's table in {time.perf_counter() - started:.0f} s)",
                  flush=True)
            watermarks = WatermarkTable(pipeline.table.leads, source.table_name)
            previous = watermarks.read()
            time.sleep(1.5)  # the rows above are older than the watermark by more than Timestamp's resolution
            at = utcnow()
            watermarks.write(Watermark(at, {}, at - timedelta(days=1)), previous)
            importer.overlap = timedelta(seconds=1)  # the rows written above are outside it: only new ones count
            cost, report = measure(importer.run, repeat=1)
            line("a minute with nothing new", size, cost, report.sentence())
            for n in range(5):
                source.create_entity(partner_center_row(f"new{size}-{n}@contoso.example"))
            cost, report = measure(importer.run, repeat=1)
            line("a minute with 5 new rows", size, cost, report.sentence())
            pipeline.queued()


def main() -> None:
    sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,200000", help="leads in the table, comma-separated")
    parser.add_argument("--source-rows", default="10000,200000", help="rows in Partner Center's table")
    parser.add_argument("--skip-import", action="store_true")
    parser.add_argument("--skip-privacy", action="store_true")
    parser.add_argument("--seed-indexed", action="store_true",
                        help="seed the leads with their index rows (as this version writes them): no backfill")
    parser.add_argument("--preload", action="store_true",
                        help="leads: Azurite on disk, all but 100 per size written into its database file "
                             "(tests/support/azurite_preload.py: seeding through the API is quadratic)")
    args = parser.parse_args()
    if not args.skip_privacy:
        privacy_costs([int(n) for n in args.sizes.split(",")], args.seed_indexed, args.preload)
    if not args.skip_import:
        import_costs([int(n) for n in args.source_rows.split(",")])


if __name__ == "__main__":
    main()
