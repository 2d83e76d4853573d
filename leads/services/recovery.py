"""Leads kept while storage was down go into the main table once it answers again: one recovery path for
both holding places, by one rule.

Two places hold them: the fallback table (LEADS_FALLBACK_STORAGE; every instance reads it, so the sweeper
timer moves them) and the disk spool (one instance's own disk: on Flex Consumption the HTTP instance that
wrote a file is the only one that sees it, so it drains its spool after a successful ingest; the timer
drains its own instance's spool, which matters for local runs). Both go through IngestService.store_body,
which never keeps a body again (so nothing here can duplicate itself) and stores the raw body with the
lead, as a directly stored one is.

The rule: storage not answering, or answering with an error worth another try, leaves the lead where it
is and the next try waits longer (doubling from RETRY_FIRST up to RETRY_LONGEST); only storage refusing the
lead itself (errors.StorageRefusedError: too large, a value it cannot take) sets it aside, kept in
quarantine with an operational notice (`person:held`)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from leads.core.errors import StorageRefusedError, StorageUnavailableError
from leads.core.model import utcnow
from leads.core.ports import HeldLeads, RejectedRequest
from leads.services.ingest import IngestService
from leads.storage.spool import Spool

log = logging.getLogger("leads.recovery")
SOON_BATCH = 5  # files drained after one successful ingest: a few, so one request's instance is not kept busy
RETRY_FIRST = 5.0  # seconds before the try after the second failure in a row; doubled each time after
RETRY_LONGEST = 300.0  # the sweeper's period: never longer


class Backoff:
    """When the next try may come, after consecutive failures (this process only)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.failures = 0
        self.not_before = 0.0

    def ready(self) -> bool:
        return self.clock() >= self.not_before

    def failed(self) -> float:
        """One more failure in a row: the first is tried again at the next chance (a single 503 as storage
        comes back is common), then 5 s, 10 s, ... up to RETRY_LONGEST."""
        self.failures += 1
        wait = 0.0 if self.failures == 1 else min(RETRY_FIRST * 2.0 ** (self.failures - 2), RETRY_LONGEST)
        self.not_before = self.clock() + wait
        return wait

    def succeeded(self) -> None:
        self.failures, self.not_before = 0, 0.0


class Recovery:
    def __init__(self, ingest: IngestService, spool: Spool, fallback: HeldLeads | None = None,
                 storage_answers: Callable[[], None] | None = None,
                 notify: Callable[[str, str], None] | None = None) -> None:
        """`storage_answers()` raises StorageUnavailableError when the main table is down: after one lead's
        transient failure it tells whether the next lead is worth trying in the same run. `notify(lead_id,
        sentence)` tells the operator a held lead was set aside (OpsNotices.needs_person); None: logged only."""
        self.ingest = ingest
        self.spool = spool
        self.fallback = fallback
        self.storage_answers = storage_answers
        self.notify = notify
        def seconds() -> float:  # the ingest's clock (a virtual one in the simulation), as seconds
            return ingest.clock().timestamp()

        self.spool_backoff = Backoff(seconds)
        self.held_backoff = Backoff(seconds)
        self._draining = threading.Lock()  # one drain at a time per process

    # --- disk spool ----------------------------------------------------------------------------------
    def drain_spool(self, limit: int | None = None) -> int:
        """Store up to `limit` spooled bodies, oldest first; returns how many left the spool."""
        if not self.spool_backoff.ready() or not self._draining.acquire(blocking=False):
            return 0
        try:
            done = 0
            for path in self.spool.pending()[:limit]:
                outcome = self._store_file(path)
                if outcome == "later":
                    break  # storage failed: the next try waits (the backoff), this file stays first
                done += outcome == "stored"
            return done
        finally:
            self._draining.release()

    def drain_spool_soon(self) -> None:
        """After a successful ingest: drain a few files on a background thread, off the request's path."""
        if self.spool.pending() and not self._draining.locked() and self.spool_backoff.ready():
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
        except StorageRefusedError as error:
            self._set_aside(path, body, error.explanation)
            return "failed"
        except StorageUnavailableError as error:
            wait = self.spool_backoff.failed()
            log.warning("spooled lead %s not stored yet (%s); next try in %.0f s", path.name, error.explanation, wait)
            return "later"
        except Exception as error:  # noqa: BLE001 - a bug must not block every later file
            self._set_aside(path, body, f"{type(error).__name__} while storing it")
            return "failed"
        self.spool_backoff.succeeded()
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
        """Storage answers but refuses this body for good: keep it as `*.failed` and, when possible, in
        quarantine; tell the operator."""
        moved = self.spool.set_aside(path)
        message = (f"A lead kept on disk while storage was down could not be stored: {reason} The file is kept "
                   f"as {moved or path} on the instance that received it.")
        self._keep_refused("spool_refused", message, body, path.name)

    def _keep_refused(self, reason: str, message: str, body: bytes, name: str) -> None:
        with contextlib.suppress(StorageUnavailableError):  # else the .failed file (or the held row) remains
            self.ingest.store.quarantine(RejectedRequest(utcnow(), reason, 503, message, "POST",
                                                         "application/json", body))
        log.error("held lead %s set aside: %s", name, message)
        if self.notify is not None:
            self.notify(name, message + " It is listed with `python -m leads quarantine`.")

    # --- fallback table ------------------------------------------------------------------------------
    def move_held(self, limit: int = 100) -> int:
        """Move leads from the fallback table into the main table, keeping the id they were answered with.
        The row is released only after the lead is stored; a crash in between is harmless: next time
        store_body finds the lead under its id (or the de-dup marker) and stores nothing."""
        if self.fallback is None or not self.held_backoff.ready():
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
            except StorageRefusedError as error:
                self._set_aside_held(lead.lead_id, lead.key, lead.body, error.explanation)
                continue
            except StorageUnavailableError as error:
                wait = self.held_backoff.failed()
                log.warning("held lead %s not moved yet (%s); next try in %.0f s", lead.lead_id, error.explanation,
                            wait)
                if not self._answers():
                    break
                continue
            self.held_backoff.succeeded()
            try:
                self.fallback.release(lead.key)
            except StorageUnavailableError as error:  # moved: the next run finds it stored and releases it
                log.warning("held lead %s moved, not released yet: %s", lead.lead_id, error.explanation)
            if added is not None and added.lead_id != lead.lead_id:
                log.warning("held lead %s was a repeat of lead %s, stored earlier", lead.lead_id, added.lead_id)
            moved += 1
        if moved:
            log.info("%d held leads moved from the fallback table", moved)
        return moved

    def _set_aside_held(self, lead_id: str, key: str, body: bytes, reason: str) -> None:
        """The main table refuses a held lead for good: into quarantine (the body kept), then out of the fallback
        table, with a notice. If quarantine does not answer, the row stays and is tried again."""
        message = (f"Lead {lead_id}, answered 202 and held in the fallback table while storage was down, could not "
                   f"be stored: {reason} Its request is kept in quarantine.")
        try:
            self.ingest.store.quarantine(RejectedRequest(utcnow(), "held_refused", 503, message, "POST",
                                                         "application/json", body))
        except StorageUnavailableError as error:
            log.warning("held lead %s refused, not set aside yet: %s", lead_id, error.explanation)
            return
        assert self.fallback is not None
        with contextlib.suppress(StorageUnavailableError):
            self.fallback.release(key)
        log.error("held lead %s set aside: %s", lead_id, reason)
        if self.notify is not None:
            self.notify(lead_id, message + " It is listed with `python -m leads quarantine`.")
