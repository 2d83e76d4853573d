"""Finding a person without reading every lead, and keeping a forgotten person forgotten.

- The index: rows written with each lead (leads/storage/index_rows.py), read as one range per person. Leads stored
  before this version have none: a one-time backfill (`backfill`, run by the daily retention purge and by
  `python -m leads reindex`) writes them, resumably (its place is kept in one row), and until it has finished
  forget and subject export read every lead as before (`lead_ids` answers None).
- The tombstone: `forgotten:<keyed hash of the address>`, written by forget *before* it looks for the person's
  leads. Every way a lead enters the table (POST, fallback drain, spool drain, import) stores the lead, then asks
  `forgotten`; if the tombstone is there the lead just stored is erased before anything is enqueued. Whatever
  the order of a forget and a store, one of them sees the other: the store's check follows its write, and
  forget's search follows its tombstone."""

from __future__ import annotations

import time
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode

from leads.core import keys
from leads.core.azure_limits import MAX_BATCH_ENTITIES
from leads.core.model import utcnow
from leads.storage.erasure import delete_rows, erase_leads, old_rows
from leads.storage.index_rows import index_entities
from leads.storage.table_store import LeadTable, _storage_errors

_PROGRESS_KEY = "subjects"
_SETTLE = 600  # seconds: leads written by an instance of the previous version while the backfill began


class SubjectIndex:
    """The person index, the test-lead index and the tombstones, over the leads table (a port: ports.Tombstones)."""

    def __init__(self, table: LeadTable) -> None:
        self.table = table
        self._ready = False  # once true, true for good: the backfill never runs again

    def _hash(self, email: str) -> str:
        with _storage_errors("read the de-duplication secret"):
            return keys.subject_hash(self.table.marker_secret.get(), email)

    # --- the backfill ----------------------------------------------------------------------------------
    def _progress(self) -> dict[str, Any] | None:
        with suppress(ResourceNotFoundError), _storage_errors("read the index's progress"):
            return dict(self.table.leads.get_entity(keys.INDEX_PARTITION, _PROGRESS_KEY))
        return None

    def ready(self) -> bool:
        """Whether every lead has its index rows (one point read until it is, none after)."""
        if not self._ready:
            progress = self._progress()
            self._ready = bool(progress and progress.get("Done"))
        return self._ready

    def start(self) -> None:
        """At a process's start: a table that holds no lead yet (a new deployment) needs no backfill, so its index
        is complete at once (one point read, and one single-row query while no progress row exists)."""
        if self.ready() or self._progress() is not None:
            return
        if next(self.table.lead_rows(select=["Id"], page_size=1), None) is None:
            self._write([], "", utcnow(), finished=True)
            self._ready = True

    def backfill(self, most: int | None = None, seconds: float | None = None) -> int:
        """Index rows for the leads stored before the index existed, newest first, resuming where the last run
        stopped; at most `most` leads and about `seconds` this run (None: all). Returns how many leads it indexed."""
        if self.ready():
            return 0
        deadline = None if seconds is None else time.monotonic() + seconds
        progress = self._progress() or {}
        started = progress.get("StartedAt") or utcnow()
        after = str(progress.get("After") or "")
        secret = self.table.marker_secret.get()
        done = 0
        rows: list[dict[str, Any]] = []
        last = after
        for lead in self.table.lead_rows(after=after or None, select=["Id", "Email", "IsTest", "ReceivedAt"]):
            rows += index_entities(secret, str(lead["Id"]), str(lead.get("Email") or ""), bool(lead.get("IsTest")),
                                   lead["ReceivedAt"])
            last, done = str(lead["RowKey"]), done + 1
            if len(rows) >= MAX_BATCH_ENTITIES - 1:
                self._write(rows, last, started)
                rows = []
            if (most is not None and done >= most) or (deadline is not None and time.monotonic() > deadline):
                self._write(rows, last, started)
                return done
        self._write(rows, last, started)
        # Leads an instance of the previous version wrote after the walk began (during the deployment) are above
        # its start: one bounded range more, then the index is complete.
        recent = list(self.table.lead_rows(since=started - timedelta(seconds=_SETTLE), select=["Id", "Email", "IsTest",
                                                                                  "ReceivedAt"]))
        extra = [row for lead in recent for row in index_entities(
            secret, str(lead["Id"]), str(lead.get("Email") or ""), bool(lead.get("IsTest")), lead["ReceivedAt"])]
        self._write(extra, last, started, finished=True)
        self._ready = True
        return done

    def _write(self, rows: list[dict[str, Any]], after: str, started: datetime, finished: bool = False) -> None:
        with _storage_errors("write the person index"):
            for start in range(0, len(rows), MAX_BATCH_ENTITIES):
                self.table.leads.submit_transaction(
                    [("upsert", row, {"mode": UpdateMode.REPLACE}) for row in rows[start:start + MAX_BATCH_ENTITIES]])
            self.table.leads.upsert_entity({"PartitionKey": keys.INDEX_PARTITION, "RowKey": _PROGRESS_KEY,
                                            "After": after, "StartedAt": started, "Done": finished})

    # --- reading it ---------------------------------------------------------------------------------------
    def lead_ids(self, email: str) -> list[str] | None:
        """The ids of the person's leads from the index (one range query), or None until the backfill is done."""
        if not self.ready():
            return None
        low, high = keys.subject_range(self._hash(email))
        return [str(row["LeadId"]) for row in old_rows(self.table.leads, keys.LEADS_PARTITION, low, high,
                                                        ["LeadId"])]

    def drop(self, email: str) -> int:
        """Delete the person's index rows that are left (a lead erased by an older version leaves its row)."""
        low, high = keys.subject_range(self._hash(email))
        left = [str(row["RowKey"]) for row in old_rows(self.table.leads, keys.LEADS_PARTITION, low, high, ["RowKey"])]
        return delete_rows(self.table.leads, keys.LEADS_PARTITION, left)

    def last_test_lead(self) -> tuple[bool, dict[str, Any] | None]:
        """(True, the newest test lead's Id and ReceivedAt or None) from the index; (False, None) until it is
        complete (then the caller reads the leads)."""
        if not self.ready():
            return False, None
        with _storage_errors("find the last test lead"):
            rows = self.table.leads.query_entities(
                "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi", results_per_page=1,
                parameters={"pk": keys.LEADS_PARTITION, "lo": keys.TEST_LEAD_PREFIX,
                            "hi": keys.TEST_LEAD_PREFIX[:-1] + keys.PREFIX_END}, select=["Id", "ReceivedAt"])
            first = next(iter(rows), None)
        return True, None if first is None else dict(first)

    # --- tombstones (ports.Tombstones) ------------------------------------------------------------------
    def bury(self, email: str, at: datetime) -> None:
        """The tombstone: written before forget looks for the person, never deleted by the purge."""
        with _storage_errors("write the tombstone"):
            self.table.leads.upsert_entity({"PartitionKey": keys.LEADS_PARTITION,
                                            "RowKey": keys.tombstone_row_key(self._hash(email)), "ForgottenAt": at})

    def forgotten(self, email: str) -> bool:
        """Whether forget was asked for this address (one point read; False for a lead without an address)."""
        if not email.strip():
            return False
        with suppress(ResourceNotFoundError), _storage_errors("read the tombstones"):
            self.table.leads.get_entity(keys.LEADS_PARTITION, keys.tombstone_row_key(self._hash(email)),
                                        select=["ForgottenAt"])
            return True
        return False

    def erase(self, lead_id: str) -> None:
        """Erase a lead just stored for a forgotten person, with every row written with it."""
        entity = self.table.lead_entity_of(lead_id)
        if entity is not None:
            erase_leads(self.table, [entity])

