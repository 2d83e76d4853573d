"""Leads kept while storage was down go into the main table once it answers again.

Two places hold them: the fallback table (LEADS_FALLBACK_STORAGE; every instance reads it, so the sweeper
timer moves them) and the disk spool (one instance's own disk: on Flex Consumption the HTTP instance that
wrote a file is the only one that sees it, so it drains its spool after a successful ingest; the timer
drains its own instance's spool, which matters for local runs). Both go through IngestService.store_body,
which never keeps a body again, so nothing here can duplicate itself."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from leads.core.errors import StorageUnavailableError
from leads.core.model import utcnow
from leads.core.ports import HeldLeads, RejectedRequest
from leads.services.ingest import IngestService
from leads.storage.spool import Spool

log = logging.getLogger("leads.recovery")
SOON_BATCH = 5  # files drained after one successful ingest: a few, so one request's instance is not kept busy


class Recovery:
    def __init__(self, ingest: IngestService, spool: Spool, fallback: HeldLeads | None = None,
                 storage_answers: Callable[[], None] | None = None) -> None:
        """`storage_answers()` raises StorageUnavailableError when the main table is down: it tells a file
        that storage refuses (set aside) from storage being down (try again later)."""
        self.ingest = ingest
        self.spool = spool
        self.fallback = fallback
        self.storage_answers = storage_answers
        self._draining = threading.Lock()  # one drain at a time per process

    # --- disk spool ----------------------------------------------------------------------------------
    def drain_spool(self, limit: int | None = None) -> int:
        """Store up to `limit` spooled bodies, oldest first; returns how many left the spool."""
        if not self._draining.acquire(blocking=False):
            return 0
        try:
            done = 0
            for path in self.spool.pending()[:limit]:
                outcome = self._store_file(path)
                if outcome == "down":
                    break  # storage is down: every file would fail the same way; next time
                done += outcome == "stored"
            return done
        finally:
            self._draining.release()

    def drain_spool_soon(self) -> None:
        """After a successful ingest: drain a few files on a background thread, off the request's path."""
        if self.spool.pending() and not self._draining.locked():
            threading.Thread(target=self.drain_spool, args=(SOON_BATCH,), name="leads-spool-drain",
                             daemon=True).start()

    def _store_file(self, path: Path) -> str:
        try:
            body = path.read_bytes()
            received_at = self.spool.received_at(path)
        except OSError:
            return "gone"  # another drainer took it (or the disk is failing: nothing to store)
        try:
            self.ingest.store_body(body, received_at)
        except StorageUnavailableError as error:
            if not self._answers():
                return "down"
            self._set_aside(path, body, error.explanation)
            return "failed"
        except Exception as error:  # noqa: BLE001 - a bug must not block every later file
            self._set_aside(path, body, f"{type(error).__name__} while storing it")
            return "failed"
        self.spool.done(path)
        log.info("spooled lead %s stored", path.name)
        return "stored"

    def _answers(self) -> bool:
        if self.storage_answers is None:
            return False
        try:
            self.storage_answers()
        except StorageUnavailableError:
            return False
        return True

    def _set_aside(self, path: Path, body: bytes, reason: str) -> None:
        """Storage answers but refuses this body: keep it as `*.failed` and, when possible, in quarantine."""
        moved = self.spool.set_aside(path)
        message = (f"A lead kept on disk while storage was down could not be stored: {reason} The file is kept "
                   f"as {moved or path} on the instance that received it.")
        with contextlib.suppress(StorageUnavailableError):  # else the .failed file is what remains
            self.ingest.store.quarantine(RejectedRequest(utcnow(), "spool_refused", 503, message, "POST",
                                                         "application/json", body))
        log.error("spooled body %s set aside: %s", path.name, reason)

    # --- fallback table ------------------------------------------------------------------------------
    def move_held(self, limit: int = 100) -> int:
        """Move leads from the fallback table into the main table, keeping the id they were answered with.
        The row is released only after the lead is stored; a crash in between is harmless: next time
        store_body finds the lead under its id (or the de-dup marker) and stores nothing."""
        if self.fallback is None:
            return 0
        try:
            held = self.fallback.held(limit)
        except StorageUnavailableError as error:
            log.warning("fallback table not read: %s", error.explanation)
            return 0
        moved = 0
        for lead in held:
            try:
                added = self.ingest.store_body(lead.body, lead.received_at, lead.lead_id)
                self.fallback.release(lead.key)
            except StorageUnavailableError as error:
                log.warning("held lead %s not moved yet: %s", lead.lead_id, error.explanation)
                if not self._answers():
                    break
                continue
            if added is not None and added.lead_id != lead.lead_id:
                log.warning("held lead %s was a repeat of lead %s, stored earlier", lead.lead_id, added.lead_id)
            moved += 1
        if moved:
            log.info("%d held leads moved from the fallback table", moved)
        return moved
