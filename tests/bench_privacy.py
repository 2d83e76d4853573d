"""`python -m tests.bench_privacy`: forget, subject export and the retention purge on a table of N leads on
Azurite. Prints figures; asserts nothing.

Leads are seeded as the app writes them (tests/support/seeding.py: one every 5 minutes back from now, each with
its own address, with its index rows). forget and export find a person through the keyed-hash index (a range
query); the purge reads only the key range that is due. `python -m tests.bench_flat_cost` compares 10,000 with
200,000 leads, requests and rows counted."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SIZES = (1_000, 10_000)


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return (time.perf_counter() - started) * 1000, result


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from leads.core.model import utcnow
    from leads.services.privacy import Privacy
    from tests.support.pipeline import pipeline_on_own_azurite
    from tests.support.seeding import seed, varied_lead

    with pipeline_on_own_azurite() as (pipeline, _azurite, _work):
        now, seeded = utcnow(), 0
        privacy = Privacy(pipeline.runtime)
        print(f"{'operation':<52} {'leads in table':>14} {'ms':>8}  result")
        for size in SIZES:
            seed(pipeline.table, (varied_lead(n, now) for n in range(seeded, size)))
            seeded = size
            ms, document = timed(lambda: privacy.export("person7@example7.com"))
            print(f"{'subject-export (1 lead of the person)':<52} {size:>14} {ms:>8.0f}  "
                  f"{len(document['leads'])} lead(s)")
            ms, counts = timed(lambda: privacy.forget("person7@example7.com"))
            print(f"{'forget (1 lead of the person)':<52} {size:>14} {ms:>8.0f}  {counts['leads']} lead(s)")
            ms, counts = timed(lambda: privacy.forget("nobody@example.com"))
            print(f"{'forget (nobody: nothing held)':<52} {size:>14} {ms:>8.0f}  {counts['leads']} lead(s)")
            seed(pipeline.table, [varied_lead(7, now)])  # person 7 back, for the next size
        ms, counts = timed(privacy.purge)
        print(f"{'purge, retention 730 days (nothing due)':<52} {seeded:>14} {ms:>8.0f}  {counts}")
        due = Privacy(replace(pipeline.runtime, settings=replace(pipeline.settings, retention_days=30)))
        ms, counts = timed(due.purge)
        print(f"{'purge, retention 30 days (leads 30-35 days old due)':<52} {seeded:>14} {ms:>8.0f}  {counts}")


if __name__ == "__main__":
    main()
