"""Many leads in a stock Azurite, fast: for the benchmarks' 200,000-lead table (tests/bench_flat_cost.py --preload).

Why: every insert into Azurite's table store (LokiTableMetadataStore.insertTableEntity) first looks for a row of the
same keys with LokiJS's `findOne({PartitionKey, RowKey})`, which takes the partition from the PartitionKey index and
then scans it; every lead row of this app is in one partition (`leads`), so seeding N leads through the API costs
O(N^2): 30 minutes reached 50,000-80,000 leads, not 200,000.

How: Azurite runs with its data on disk; a few leads go in through the API (tests/support/seeding.py); Azurite is
stopped (it writes its LokiJS database, `__azurite_db_table__.json`); the other leads' rows, built by the app's own
builders as seeding.py builds them (`lead_entity`, `index_entities`) and serialized as the azure-data-tables SDK
serializes a create's body (`_add_entity_properties`), are inserted into that file by tests/support/azurite_preload.js
with Azurite's own code (its LokiJS collection insert, its NormalizedEntity, its time stamp and ETag format), which
first checks that this path builds, for the leads Azurite stored through its API, the very documents Azurite stored;
LokiJS rebuilds the binary indices; Azurite is started again on the file. `verify` then reads rows back through the
app and checks that an insert, an ETag-conditional update, a delete and a query still work.

The limit: LokiJS reads and writes the database as one string, so the file must stay under V8's longest string
(2**29 - 24 characters); `preload` refuses a file that does not fit (200,000 seeded leads are about 460 MB).
Azurite and the script run with `--max-old-space-size=8192` (NODE_OPTIONS): a Node flag, Azurite itself is stock."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import TableClient, UpdateMode
from azure.data.tables._serialize import _add_entity_properties

from devhost.azurite import Azurite, start_azurite
from leads.core.model import StoredLead
from leads.storage.index_rows import index_entities
from leads.storage.table_store import lead_entity
from tests.support.azurite import PROJECT_ROOT
from tests.support.pipeline import Pipeline, RecordingDestination, build_pipeline

DB_FILE = "__azurite_db_table__.json"
SCRIPT = Path(__file__).with_suffix(".js")
V8_MAX_STRING = 2**29 - 24


def rows_of(secret: bytes, stored: StoredLead, indexed: bool = True) -> list[dict[str, Any]]:
    """The rows tests/support/seeding.py `seed` writes for a lead: its row, then (indexed) its index rows."""
    return [lead_entity(stored)] + (index_entities(secret, stored.id, stored.lead.customer.email, stored.lead.is_test,
                                                   stored.received_at) if indexed else [])


def sampled(leads: Iterable[StoredLead], every: int, kept: list[StoredLead]) -> Iterator[StoredLead]:
    """`leads`, appending every `every`-th one and the last one to `kept` (to read back with `verify`)."""
    last = None
    for number, stored in enumerate(leads):
        if number % every == 0:
            kept.append(stored)
        last = stored
        yield stored
    if last is not None and kept[-1] is not last:
        kept.append(last)


def body_line(row: dict[str, Any]) -> str:
    """The JSON body the SDK sends to create `row`."""
    return json.dumps(_add_entity_properties(row), ensure_ascii=False, separators=(",", ":"))


class DiskAzurite:
    """An Azurite with its data in `work`/azurite, and a pipeline on it whose table and queue names survive
    restarts (`.azurite`, `.pipeline`)."""

    def __init__(self, work: Path) -> None:
        self.work, self.location = work, work / "azurite"
        self.names: dict[str, str] = {}
        self.azurite, self.pipeline = self._start()
        settings = self.pipeline.settings
        self.names = {"LEADS_TABLE": settings.table, "LEADS_QUARANTINE_TABLE": settings.quarantine_table,
                      "LEADS_QUEUE": settings.queue}

    def _start(self) -> tuple[Azurite, Pipeline]:
        # A 200,000-lead database takes LokiJS a while to parse, and more than Node's default heap to save.
        if "--max-old-space-size" not in os.environ.get("NODE_OPTIONS", ""):
            os.environ["NODE_OPTIONS"] = f"{os.environ.get('NODE_OPTIONS', '')} --max-old-space-size=8192".strip()
        azurite = start_azurite(PROJECT_ROOT, self.location, free_ports=True, in_memory=False, startup_seconds=600)
        return azurite, build_pipeline(azurite.connection_string, str(self.work / "spool"),
                                       {"email": RecordingDestination("email")}, self.names)

    def preload(self, leads: Iterable[StoredLead], indexed: bool = True,
                check: Iterable[StoredLead] = ()) -> dict[str, Any]:
        """Stop Azurite, add the rows of `leads` to its table file, start it again (a new pipeline on the same
        tables). `check`: leads already stored through the API, whose documents the preload path must reproduce.
        Returns the script's summary (added, checked, documents, bytes) and the seconds it took."""
        started = time.perf_counter()
        secret = self.pipeline.table.marker_secret.get()
        bodies, checks = self.work / "preload.jsonl", self.work / "check.jsonl"
        with bodies.open("w", encoding="utf-8") as out:
            for stored in leads:
                out.writelines(body_line(row) + "\n" for row in rows_of(secret, stored, indexed))
        db = self.location / DB_FILE
        self.azurite.stop()
        checks.write_text("".join(body_line(row) + "\n" for stored in check
                                  for row in rows_of(secret, stored, indexed)), "utf-8")
        done = subprocess.run(["node", "--max-old-space-size=8192", str(SCRIPT), str(PROJECT_ROOT), str(db),
                               f"devstoreaccount1${self.pipeline.settings.table}", str(bodies), str(checks)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"preload failed:\n{done.stdout}\n{done.stderr}")
        bodies.unlink()
        if db.stat().st_size > V8_MAX_STRING:
            raise RuntimeError(f"{db} holds {db.stat().st_size:,} characters: more than LokiJS can read back "
                               f"({V8_MAX_STRING:,})")
        self.azurite, self.pipeline = self._start()
        summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        summary["seconds"] = round(time.perf_counter() - started, 1)
        return summary

    def verify(self, samples: Iterable[StoredLead], indexed: bool = True) -> int:
        """Read `samples` back through the app (LeadTable.load, the index rows) and compare them with the leads
        they were made from; then check that the restarted Azurite still inserts, updates on a matching ETag only,
        queries and deletes. Returns how many leads were compared; raises AssertionError on any difference."""
        table = self.pipeline.table
        secret, compared = table.marker_secret.get(), 0
        for stored in samples:
            loaded = table.load(stored.id)
            assert loaded is not None, f"lead {stored.id} not found"
            assert lead_entity(loaded.stored) == lead_entity(stored), f"lead {stored.id} differs"
            assert loaded.stored == stored, f"lead {stored.id} differs"
            for row in rows_of(secret, stored, indexed)[1:]:
                got = dict(table.leads.get_entity(row["PartitionKey"], row["RowKey"]))
                assert {name: got[name] for name in row} == row, f"index row {row['RowKey']} differs"
            compared += 1
        leads: TableClient = table.leads
        probe = {"PartitionKey": "leads", "RowKey": "zz-preload-probe", "Value": 1}
        created = leads.create_entity(probe)
        updated = leads.update_entity({**probe, "Value": 2}, mode=UpdateMode.REPLACE, etag=created["etag"],
                                      match_condition=MatchConditions.IfNotModified)
        try:
            leads.update_entity({**probe, "Value": 3}, mode=UpdateMode.REPLACE, etag=created["etag"],
                                match_condition=MatchConditions.IfNotModified)
        except Exception as error:  # noqa: BLE001 - the stale ETag must be refused (412)
            assert getattr(error, "status_code", None) == 412, error
        else:
            raise AssertionError("an update with a stale ETag was accepted")
        found = list(leads.query_entities("PartitionKey eq 'leads' and RowKey eq 'zz-preload-probe'"))
        assert [row["Value"] for row in found] == [2], found
        leads.delete_entity("leads", "zz-preload-probe", etag=updated["etag"],
                            match_condition=MatchConditions.IfNotModified)
        assert not list(leads.query_entities("RowKey eq 'zz-preload-probe'"))
        return compared


@contextmanager
def disk_azurite(work: Path) -> Iterator[DiskAzurite]:
    """A DiskAzurite in `work`, stopped at the end."""
    handle = DiskAzurite(work)
    try:
        yield handle
    finally:
        handle.azurite.stop()
