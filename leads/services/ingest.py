"""Ingest: parse, store before answering, enqueue, answer. Every rejected request is kept."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from leads.core import policy
from leads.core.errors import LeadValidationError, StorageUnavailableError
from leads.core.keys import new_lead_id
from leads.core.messages import DeliveryMessage
from leads.core.model import Lead, StoredLead, utcnow
from leads.core.parsing import parse_lead
from leads.core.ports import Added, HeldLeads, LeadStore, RejectedRequest, SourceRow, Tombstones, WorkQueue
from leads.core.routing import Routing
from leads.core.settings import Settings
from leads.storage.spool import Spool
from leads.telemetry import DUPLICATES, RECEIVED, REJECTED, elapsed_ms, log_ingest, telemetry

log = logging.getLogger("leads.ingest")
ENQUEUE_GRACE = timedelta(minutes=2)  # if no worker has claimed the lead by then, the sweeper enqueues it


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    outcome: str = ""  # accepted | duplicate | rejected | held | spooled | unavailable (leads/telemetry/__init__.py)


class IngestService:
    def __init__(self, store: LeadStore, queue: WorkQueue, spool: Spool, settings: Settings,
                 routing: Routing, clock: Callable[[], datetime] = utcnow,
                 fallback: HeldLeads | None = None) -> None:
        self.store = store
        self.queue = queue
        self.spool = spool
        self.settings = settings
        self.routing = routing  # which destinations take each lead (a skipped one says why)
        self.clock = clock
        self.fallback = fallback  # LEADS_FALLBACK_STORAGE: where a lead waits while the main table is down
        self.after_stored: Callable[[], None] | None = None  # e.g. drain this instance's spool (runtime.py)
        self.tombstones: Tombstones | None = None  # forgotten people (runtime.py): asked after every write

    def receive(self, method: str, body: bytes, content_type: str = "") -> Answer:
        started = time.monotonic()
        tel = telemetry()
        with tel.span("lead.ingest") as span:
            answer = self._receive(method, body, content_type)
            lead_id = str(answer.body.get("id", "")) if answer.status == 202 else ""
            span.set(lead_id=lead_id or "-", outcome=answer.outcome, status=answer.status)
        if answer.outcome == "rejected":
            tel.count(REJECTED, status=answer.status, reason=str(answer.body.get("error", "")))
        else:
            tel.count(RECEIVED, outcome=answer.outcome)
            if answer.outcome == "duplicate":
                tel.count(DUPLICATES)
        log_ingest(lead_id, answer.outcome, elapsed_ms(started, time.monotonic()))
        return answer

    def _receive(self, method: str, body: bytes, content_type: str = "") -> Answer:
        now = self.clock()
        if method.upper() != "POST":
            return self._reject(now, method, body, content_type, 405, "method_not_allowed",
                                f"{method.upper()} is not allowed here: Partner Center sends leads with POST.",
                                headers={"Allow": "POST"})
        try:
            lead = parse_lead(body)
        except LeadValidationError as error:
            extra = {"where": error.where} if error.where else {}
            return self._reject(now, method, body, content_type, error.status, error.reason, error.explanation,
                                extra=extra)
        stored = StoredLead(new_lead_id(now), now, lead,
                            policy.initial_deliveries(lead, self.routing))
        try:
            added = self.store.add(stored, lead.fingerprint(), timedelta(hours=self.settings.dedupe_hours),
                                   outbox_due=now + ENQUEUE_GRACE, body=body)
        except StorageUnavailableError as error:
            return self._storage_down(stored, lead.fingerprint(), body, error)
        try:
            forgotten = self._forgotten(lead, added)
        except StorageUnavailableError as error:  # stored, but not known to be allowed: not enqueued, asked again
            log.warning("lead %s stored; the tombstone could not be read (%s)", added.lead_id, error.explanation)
            return Answer(503, {"error": "storage_unavailable", "message": (
                "The lead was stored, but storage did not answer a check that follows; please send it again "
                "(it is recognised as a repeat, not stored twice).")}, headers={"Retry-After": "30"},
                outcome="unavailable")
        if forgotten:
            return Answer(202, {"id": "", "duplicate": False, "test": lead.is_test, "stored": False},
                          outcome="forgotten")
        if not added.duplicate:
            self._enqueue(stored, added)
        if lead.is_test:
            log.info("lead %s is a Partner Center test lead", added.lead_id)
        if self.after_stored is not None:
            self.after_stored()
        return Answer(202, {"id": added.lead_id, "duplicate": added.duplicate, "test": lead.is_test},
                      outcome="duplicate" if added.duplicate else "accepted")

    def _forgotten(self, lead: Lead, added: Added) -> bool:
        """After the write: if the person was forgotten (leads/storage/subject_index.py), erase what was just
        stored and say so; nothing is enqueued. Asked after the write, not before, so that a forget running
        meanwhile either finds this lead or is seen here (defect 11)."""
        if self.tombstones is None or not self.tombstones.forgotten(lead.customer.email):
            return False
        if added.lead_id:  # a repeat too: any lead naming a forgotten person goes (its copy may be this one's)
            self.tombstones.erase(added.lead_id)
        log.info("a lead of a forgotten person was not kept (address not logged)")
        return True

    def _enqueue(self, stored: StoredLead, added: Added) -> None:
        tel = telemetry()
        try:
            with tel.span("lead.enqueue", kind="producer", lead_id=stored.id):
                self.queue.send(DeliveryMessage(stored.id, added.etag, stored, tel.traceparent()))
        except StorageUnavailableError:
            # Stored with its outbox row: the sweeper enqueues it. The lead is safe, so say 202.
            log.warning("lead %s stored but not enqueued; the sweeper will deliver it", stored.id)

    def _storage_down(self, stored: StoredLead, fingerprint: str | None, body: bytes,
                      error: StorageUnavailableError) -> Answer:
        """The main table is down: the fallback table (202, moved by the sweeper), else disk and 503."""
        if self.fallback is not None:
            try:
                held = self.fallback.hold(stored.id, fingerprint, stored.received_at, body)
            except StorageUnavailableError as fallback_error:
                log.error("fallback storage unavailable too (%s)", fallback_error.explanation)
            else:
                log.warning("storage unavailable (%s): lead %s held in the fallback table%s", error.explanation,
                            held.lead_id, " (duplicate)" if held.duplicate else "")
                return Answer(202, {"id": held.lead_id, "duplicate": held.duplicate, "test": stored.lead.is_test},
                              outcome="held")
        kept = self.spool.keep(body, stored.received_at)
        log.error("storage unavailable, lead %s (%s)", "spooled" if kept else "NOT spooled", error.explanation)
        return Answer(503, {"error": "storage_unavailable", "message": (
            "The lead could not be stored because storage is unavailable. "
            + ("A copy was kept on the disk of the app instance that answered, but the platform may remove that "
               "instance, and its disk, before storage returns (Flex Consumption scales in), so the copy is not "
               "safe: " if kept else "")
            + "please retry later (a repeated lead that names its customer is recognised, not duplicated).")},
            headers={"Retry-After": "30"}, outcome="spooled" if kept else "unavailable")

    def store_body(self, body: bytes, received_at: datetime, lead_id: str = "") -> Added | None:
        """Store a body that was kept while storage was down (disk spool or fallback table), under
        `lead_id` when it was already answered with one. Never keeps it again: raises
        StorageUnavailableError instead. None: not a lead (quarantined), or a forgotten person's (erased again).
        Idempotent: a lead already stored under `lead_id`, or the same payload within the de-dup window, is not
        stored twice."""
        try:
            lead = parse_lead(body)
        except LeadValidationError as error:
            self.store.quarantine(RejectedRequest(received_at, error.reason, error.status, error.explanation,
                                                  "POST", "application/json", body))
            return None
        if lead_id and self.store.load(lead_id) is not None:
            if self._forgotten(lead, Added(lead_id, duplicate=False)):
                return None
            return Added(lead_id, duplicate=True)  # moved before, its row not yet released
        stored = StoredLead(lead_id or new_lead_id(received_at), received_at, lead,
                            policy.initial_deliveries(lead, self.routing))
        added = self.store.add(stored, lead.fingerprint(), timedelta(hours=self.settings.dedupe_hours),
                               outbox_due=self.clock() + ENQUEUE_GRACE, body=body)  # kept as a POSTed one is
        if self._forgotten(lead, added):
            return None
        if not added.duplicate:
            self._enqueue(stored, added)
        return added

    def store_imported(self, lead: Lead, body: bytes, row: SourceRow, received_at: datetime | None = None) \
            -> Added | None:
        """Store a lead read from Partner Center's Azure Table destination (leads/services/importer.py) as a POSTed one
        is stored (same fingerprint de-dup), its import marker in the same transaction: a row imported twice
        is one lead. `received_at` is when Partner Center stored the row (defect 5: compared by the import's
        own time, a backfill or an importer outage longer than the de-dup window made leads received by POST
        again); never later than now. None: the person was forgotten (nothing kept)."""
        now = self.clock()
        at = min(received_at, now) if received_at is not None else now
        stored = StoredLead(new_lead_id(at), at, lead, policy.initial_deliveries(lead, self.routing))
        added = self.store.add(stored, lead.fingerprint(), timedelta(hours=self.settings.dedupe_hours),
                               outbox_due=now + ENQUEUE_GRACE, body=body, source=row)
        if self._forgotten(lead, added):
            return None
        if not added.duplicate:
            self._enqueue(stored, added)
        return added

    def _reject(self, now: datetime, method: str, body: bytes, content_type: str, status: int, reason: str,
                message: str, headers: dict[str, str] | None = None, extra: dict[str, str] | None = None) -> Answer:
        rejected = RejectedRequest(now, reason, status, message, method.upper(), content_type, body)
        try:
            self.store.quarantine(rejected)
        except StorageUnavailableError:
            if body:
                self.spool.keep(body, now)  # re-ingested later: rejected again and quarantined then
        log.info("request rejected: %s (%s)", reason, status)
        return Answer(status, {"error": reason, "message": message, **(extra or {})}, headers or {}, "rejected")
