"""Privacy operations: forget a person, export what is held about them, purge what is past retention.

Every place the app writes a lead: the main table (lead row with the body as received, its de-dup marker,
outbox and attention rows), the quarantine table, the fallback table, the disk spool of the process this runs
in, and the delivery queue and its poison queue. What destinations received (e-mail, CRMs, webhooks) and
what a local mail catcher wrote are theirs, not the app's (docs/operations.md, "Privacy")."""

from __future__ import annotations

import base64
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from leads.core import keys
from leads.core.model import iso, utcnow
from leads.core.ports import HeldLead
from leads.core.subjects import FORGET_COUNTS, checked_email, mentions
from leads.services.context import Runtime
from leads.storage.erasure import (
    delete_rows,
    erase_leads,
    lead_ids_for,
    purge_main_table,
    quarantined_for,
    rekey_legacy_markers,
)
from leads.storage.queue_erase import Found, messages_of
from leads.storage.subject_index import SubjectIndex
from leads.storage.table_store import raw_body_of, stored_from_entity

log = logging.getLogger("leads.privacy")
_MOST_HELD = 10_000  # the fallback table holds leads only during an outage
BACKFILL_SECONDS = 240.0  # of the daily run's 10 minutes (host.json functionTimeout): the rest is the purge's


@dataclass
class Privacy:
    rt: Runtime
    now: datetime = field(default_factory=utcnow)
    _index: SubjectIndex | None = None

    # --- forget ------------------------------------------------------------------------------------
    def forget(self, email: str) -> dict[str, int]:
        """Delete every record of the person with this address; counts by kind (all zero the second time).
        The lead rows go first, so no delivery starts from them; then copies elsewhere."""
        email = checked_email(email)
        table = self.rt.table
        self.index.bury(email, utcnow())  # first: a store racing this sees it, or is found below (defect 11)
        lead_ids = self._lead_ids(email)
        counts: Counter[str] = erase_leads(table, [e for i in lead_ids if (e := table.lead_entity_of(i))])
        counts["index"] += self.index.drop(email)
        rejected = [str(row["RowKey"]) for row in quarantined_for(table, email)]
        counts["quarantined"] = delete_rows(table.quarantine_table, keys.QUARANTINE_PARTITION, rejected)
        for held in self._held(email):
            self.rt.ingest.fallback.release(held.key)  # type: ignore[union-attr]  # _held is empty without it
            counts["held"] += 1
        for path in self._spooled(email):
            path.unlink(missing_ok=True)
            counts["spool_files"] += 1
        counts["queue_messages"] = len(self._queued(set(lead_ids), remove=True))
        answer = {name: counts[name] for name in FORGET_COUNTS}
        log.info("forget request done (address not logged): %s", ", ".join(f"{k}={v}" for k, v in answer.items()))
        return answer

    # --- subject access ------------------------------------------------------------------------------
    def export(self, email: str) -> dict[str, Any]:
        """Everything held about the person, as JSON-ready data (nothing is changed)."""
        email = checked_email(email)
        table = self.rt.table
        lead_ids = self._lead_ids(email)
        leads = [_lead(entity) for lead_id in lead_ids if (entity := table.lead_entity_of(lead_id))]
        log.info("subject export done (address not logged): %d leads", len(leads))
        return {
            "email": email,
            "exported_at": iso(utcnow()),
            "leads": leads,
            "quarantined": [_rejected(row) for row in quarantined_for(table, email)],
            "held_while_storage_was_down": [{"lead_id": h.lead_id, "received_at": iso(h.received_at),
                                             **_body(h.body)} for h in self._held(email)],
            "spool_files": [{"file": str(path), **_body(path.read_bytes())} for path in self._spooled(email)],
            "queue_messages": [{"queue": f.queue, "lead_id": f.lead_id, "content": f.content}
                               for f in self._queued(set(lead_ids), remove=False)],
            "not_held_here": "Copies sent to the destinations (e-mail, webhook, CRMs) are held by them.",
        }

    @property
    def index(self) -> SubjectIndex:
        if self._index is None:
            self._index = SubjectIndex(self.rt.table)
        return self._index

    def _lead_ids(self, email: str) -> list[str]:
        """From the person index (one range query); until its one-time backfill has run, by reading every lead."""
        found = self.index.lead_ids(email)
        return lead_ids_for(self.rt.table, email) if found is None else found

    # --- retention ---------------------------------------------------------------------------------
    def reindex(self, most: int | None = None, seconds: float | None = None) -> dict[str, int]:
        """Re-key bare-hash markers and index the leads stored before the person index (resumable)."""
        counts = {"markers_rekeyed": rekey_legacy_markers(self.rt.table),
                  "leads_indexed": self.index.backfill(most, seconds)}
        return {name: count for name, count in counts.items() if count}

    def purge(self) -> dict[str, int]:
        """Re-key bare-hash markers and index older leads (once), then delete the finished leads that arrived more
        than LEADS_RETENTION_DAYS ago (0: keep); a lead a destination still waits for, or still held in the fallback
        table or the spool, is kept, counted by why."""
        counts: Counter[str] = Counter(self.reindex(seconds=BACKFILL_SECONDS))
        days = self.rt.settings.retention_days
        if days:
            cutoff = self.now - timedelta(days=days)
            counts += purge_main_table(self.rt.table, cutoff)
            # A lead waiting in the fallback table or the disk spool was answered 202 and never stored: it is kept
            # (and counted) until the recovery path stores it, then purged like any other. Only what was set aside
            # (`.failed`, with a notice) or half-written (`.part`) goes with age (defect 6).
            counts["kept_held"] += sum(held.received_at < cutoff for held in self._held_leads())
            waiting = set(self.rt.spool.pending())
            for path in self._spool_files():
                if self.rt.spool.received_at(path) >= cutoff:
                    continue
                if path in waiting:
                    counts["kept_spooled"] += 1
                    continue
                path.unlink(missing_ok=True)
                counts["spool_files"] += 1
        answer = dict(+counts)
        if answer:
            log.info("retention purge: %s", ", ".join(f"{k}={v}" for k, v in sorted(answer.items())))
        kept = {name[len("kept_"):]: count for name, count in answer.items() if name.startswith("kept_")}
        if kept:
            log.warning("retention purge kept %d lead(s) past LEADS_RETENTION_DAYS that a destination still waits "
                        "for, or that wait to be stored (%s): each goes once it is delivered, skipped or failed "
                        "(replay or fix the destination; a held lead is stored once the main table answers)",
                        sum(kept.values()), ", ".join(f"{count} {state}" for state, count in sorted(kept.items())))
        return answer

    # --- places outside the main table -----------------------------------------------------------------
    def _held_leads(self) -> list[HeldLead]:
        fallback = self.rt.ingest.fallback
        return [] if fallback is None else fallback.held(_MOST_HELD)

    def _held(self, email: str) -> list[HeldLead]:
        return [held for held in self._held_leads() if mentions(held.body, email)]

    def _spool_files(self) -> list[Path]:
        """Every file of this process's spool: waiting, set aside (`.failed`) or half-written (`.part`)."""
        folder = self.rt.spool.folder
        return sorted(path for path in folder.iterdir() if path.is_file()) if folder.is_dir() else []

    def _spooled(self, email: str) -> list[Path]:
        return [path for path in self._spool_files() if mentions(_read(path), email)]

    def _queued(self, lead_ids: set[str], remove: bool) -> list[Found]:
        if not lead_ids:
            return []
        queue = self.rt.queue
        return messages_of(queue.queue, lead_ids, remove) + messages_of(queue.poison, lead_ids, remove)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""  # drained meanwhile


def _body(body: bytes) -> dict[str, str]:
    try:
        return {"body": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body_base64": base64.b64encode(body).decode("ascii")}


def _lead(entity: dict[str, Any]) -> dict[str, Any]:
    stored = stored_from_entity(entity)
    return {"id": stored.id, "received_at": iso(stored.received_at), "lead": stored.lead.to_dict(),
            "deliveries": {name: vars(state) for name, state in stored.deliveries.items()},
            "duplicates": stored.duplicates, **_body(raw_body_of(entity))}


def _rejected(row: dict[str, Any]) -> dict[str, Any]:
    received = row.get("ReceivedAt")
    return {"received_at": iso(received) if isinstance(received, datetime) else str(received or ""),
            "reason": str(row.get("Reason", "")), "message": str(row.get("Message", "")), **_body(raw_body_of(row))}
