"""The management service: every answer of `/api/manage/` (and of the CLI) as a JSON-ready dict. Errors are
typed (leads.core.errors): BadRequestError (400), NotFoundError (404), StorageUnavailableError (503)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from leads.core import keys
from leads.core.audit import AuditEntry
from leads.core.errors import BadRequestError, NotFoundError, StorageUnavailableError
from leads.core.model import BLOCKED, DELIVERED, FAILED, PARKED, SKIPPED, DeliveryState, utcnow
from leads.manage import views
from leads.manage.filters import DESTINATION_STATES, LeadFilter, decode_token, encode_token
from leads.services.context import Runtime
from leads.storage.audit_table import AuditTable
from leads.storage.table_store import deliveries_from_json, raw_body_of, stored_from_entity

_SERVER_STATUSES = frozenset({"pending", "retrying", "blocked", "parked", "failed"})  # the Status column says these
_REJECTED_ROW = re.compile(r"^\d{13}:[0-9a-f]{8}$")
_REJECTED_ID = re.compile(r"^(\d{13})-([0-9a-f]{8})$")  # the RowKey with `-` for `:` (views.rejected)
_REPLAY_TRIES = 5
# The most table rows one list request reads: a filter no column answers (a search) stops here and answers the
# leads found so far with a continuation token, so that no request scans the whole table.
MAX_ROWS_READ = 2000
REPLAYABLE_STATES = tuple(s for s in DESTINATION_STATES if s not in (DELIVERED, "sending"))

Wanted = Callable[[str, DeliveryState], bool]


class ManageService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.table = rt.table

    def forget(self, email: str) -> dict[str, int]:
        """Erase every record of a person (leads/services/privacy.py); the counts of what went."""
        from leads.services.privacy import Privacy

        return Privacy(self.rt).forget(email)

    def export(self, email: str) -> dict[str, Any]:
        """Everything held about a person (leads/services/privacy.py)."""
        from leads.services.privacy import Privacy

        return Privacy(self.rt).export(email)

    # --- the audit trail --------------------------------------------------------------------------
    def record_audit(self, entry: AuditEntry) -> None:
        AuditTable(self.table).add(entry)

    def audit_subject(self, email: str) -> str:
        return AuditTable(self.table).subject(email)

    def audit_page(self, limit: int = 50, continuation: str | None = None) -> dict[str, Any]:
        after = decode_token(continuation, "")
        if after is not None and not _REJECTED_ROW.match(after):
            raise BadRequestError("continuation is not a token this list gave; start again without it.",
                                  parameter="continuation")
        rows = AuditTable(self.table).page(limit + 1, after)
        shown = rows[:limit]
        token = encode_token(shown[-1][0]) if len(rows) > limit else None
        return {"entries": [entry.view() for _, entry in shown], "continuation": token}

    # --- leads ------------------------------------------------------------------------------------
    def list_leads(self, filters: LeadFilter, limit: int = 50, continuation: str | None = None) -> dict[str, Any]:
        """Newest first. Status, test and action are compared by the table, the date range is a RowKey range;
        the rest is matched here over the summary columns. A page ends after `limit` matches, or after
        MAX_ROWS_READ rows read (then perhaps with fewer matches, or none); its token resumes right after the last
        row read."""
        after = decode_token(continuation, "lead:")
        equal: dict[str, str | bool] = {}
        if filters.status in _SERVER_STATUSES:
            equal["Status"] = filters.status or ""
        elif filters.status in (DELIVERED, SKIPPED):
            equal["Status"] = DELIVERED
        if filters.test is not None:
            equal["IsTest"] = filters.test
        if filters.action:
            equal["ActionCode"] = filters.action
        page_size = min(1000, MAX_ROWS_READ) if filters.needs_python else limit + 1
        rows = self.table.lead_rows(equal, filters.since, filters.until, after, views.LIST_COLUMNS, page_size)
        found: list[dict[str, Any]] = []
        last_key = None
        for read, row in enumerate(rows):
            if len(found) == limit or read == MAX_ROWS_READ:  # more rows exist: a next page (perhaps empty)
                return {"leads": found, "continuation": encode_token(str(last_key))}
            last_key = row["RowKey"]
            deliveries = deliveries_from_json(str(row.get("Deliveries") or "{}"))
            if _matches(filters, row, deliveries):
                found.append(views.summary(row, deliveries))
        return {"leads": found, "continuation": None}

    def get_lead(self, lead_id: str) -> dict[str, Any]:
        entity = self._entity(lead_id)
        return views.detail(entity, stored_from_entity(entity), raw_body_of(entity))

    def _entity(self, lead_id: str) -> dict[str, Any]:
        try:
            keys.received_at_of(lead_id)
        except ValueError:
            raise NotFoundError(f"{lead_id[:80]!r} is not a lead id (they look like 20261121T044355123Z-9f3a1c2e)."
                                ) from None
        entity = self.table.lead_entity_of(lead_id)
        if entity is None:
            raise NotFoundError(f"No lead {lead_id} in table {self.rt.settings.table}.")
        return entity

    # --- replay -----------------------------------------------------------------------------------
    def replay_lead(self, lead_id: str, destination: str | None = None) -> dict[str, Any]:
        """Failed, blocked and parked destinations again (or the one named, whatever its state unless delivered or
        being sent right now)."""
        stored = stored_from_entity(self._entity(lead_id))
        if destination is not None and destination not in stored.deliveries:
            raise BadRequestError(f"Lead {lead_id} has no destination {destination[:40]!r}; it has "
                                  f"{', '.join(stored.deliveries) or 'none'}.", parameter="destination")
        wanted: Wanted = ((lambda name, state: name == destination) if destination is not None
                          else (lambda name, state: state.state in (FAILED, BLOCKED, PARKED)))
        sentence, queued = self._replay(lead_id, wanted)
        return {"id": lead_id, "result": sentence, "queued": queued}

    def replay_many(self, destination: str | None, states: tuple[str, ...] = (FAILED, BLOCKED, PARKED),
                    since: datetime | None = None, until: datetime | None = None) -> dict[str, Any]:
        bad = [s for s in states if s not in REPLAYABLE_STATES]
        if bad or not states:
            raise BadRequestError(f"states must be some of {', '.join(REPLAYABLE_STATES)}"
                                  + (f", not {bad[0][:40]!r}." if bad else "."), parameter="states")
        if destination is not None and destination not in self.rt.settings.destinations:
            raise BadRequestError(f"{destination[:40]!r} is not a configured destination (LEADS_DESTINATIONS: "
                                  f"{', '.join(self.rt.settings.destinations)}).", parameter="destination")

        def wanted(name: str, state: DeliveryState) -> bool:
            return (destination is None or name == destination) and state.state in states

        results = []
        for lead_id in self._candidates(states, since, until):
            sentence, queued = self._replay(lead_id, wanted)
            results.append({"id": lead_id, "result": sentence, "queued": queued})
        return {"queued": sum(1 for r in results if r["queued"]), "results": results}

    def _candidates(self, states: tuple[str, ...], since: datetime | None, until: datetime | None) -> Iterator[str]:
        if set(states) <= {FAILED, BLOCKED, PARKED}:  # the `attention:` index lists exactly these: no scan
            for lead_id, _status in self.table.needing_attention():
                received = keys.received_at_of(lead_id)
                if (since is None or received >= since) and (until is None or received <= until):
                    yield lead_id
            return
        for row in self.table.lead_rows(since=since, until=until, select=["Id", "Deliveries"]):
            deliveries = deliveries_from_json(str(row.get("Deliveries") or "{}"))
            if any(d.state in states for d in deliveries.values()):
                yield str(row["Id"])

    def _replay(self, lead_id: str, wanted: Wanted) -> tuple[str, bool]:
        from leads.services import replay

        done = replay.replay_lead(self.rt, lead_id, wanted=wanted)
        if done.outcome == replay.QUEUED:
            return f"Queued again for {', '.join(done.again)}.", True
        if done.outcome in (replay.NOT_FOUND, replay.NOT_A_LEAD_ID):
            return "Not found (deleted meanwhile).", False
        if done.outcome == replay.NOTHING:
            return (f"Nothing to replay: no destination in that state is waiting (status {done.status}; a "
                    "delivered one or one being sent now is left alone)."), False
        return "The lead kept changing while being replayed; try again in a moment.", False

    # --- rejected requests ------------------------------------------------------------------------
    def list_quarantine(self, limit: int = 50, continuation: str | None = None) -> dict[str, Any]:
        after = decode_token(continuation, "")
        if after is not None and not _REJECTED_ROW.match(after):
            raise BadRequestError("continuation is not a token this list gave; start again without it.",
                                  parameter="continuation")
        rows = self.table.rejected_page(limit + 1, after)
        shown = rows[:limit]
        token = encode_token(str(shown[-1]["RowKey"])) if len(rows) > limit else None
        return {"requests": [views.rejected(row) for row in shown], "continuation": token}

    def get_quarantined(self, request_id: str) -> dict[str, Any]:
        return views.rejected(self._rejected(request_id), with_body=True)

    def _rejected(self, request_id: str) -> dict[str, Any]:
        found = _REJECTED_ID.match(request_id)
        row = self.table.rejected_one(f"{found[1]}:{found[2]}") if found else None
        if row is None:
            raise NotFoundError(f"No rejected request {request_id[:80]!r} in table "
                                f"{self.rt.settings.quarantine_table}.")
        return row

    def reingest(self, request_id: str) -> dict[str, Any]:
        """The stored body through ingest again, as Partner Center's POST (its cause fixed). The rejected
        request stays, marked with what the re-ingest answered; a new rejection is kept as a new one."""
        row = self._rejected(request_id)
        if row.get("Truncated"):
            raise BadRequestError(f"Only the first {len(views.body_of(row))} bytes of this request were kept, so "
                                  "it cannot be re-ingested; ask the sender to send it again.")
        answer = self.rt.ingest.receive("POST", views.body_of(row), str(row.get("ContentType") or ""))
        outcome = f"{answer.status} " + str(answer.body.get("id") or answer.body.get("error") or "")
        self.table.mark_reingested(str(row["RowKey"]), f"{utcnow():%Y-%m-%dT%H:%M:%SZ}: {outcome}")
        return {"status": answer.status, "answer": answer.body}

    # --- status, checks, test lead ----------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        from leads.manage.health import status_report

        return status_report(self.rt)

    def doctor(self) -> dict[str, Any]:
        from leads.manage.health import doctor_report

        return doctor_report(self.rt.settings)

    def send_test_lead(self) -> dict[str, Any]:
        from leads.manage.test_lead import test_lead_body

        answer = self.rt.ingest.receive("POST", test_lead_body(utcnow()), "application/json")
        if answer.status != 202:  # a well-formed lead: only storage can refuse it
            raise StorageUnavailableError(str(answer.body.get("message") or "The test lead was not stored."))
        return answer.body


def _matches(filters: LeadFilter, row: dict[str, Any], deliveries: dict[str, DeliveryState]) -> bool:
    """The filters no column answers (and the edges of the date range, finer than the key's millisecond)."""
    received = row.get("ReceivedAt")
    if isinstance(received, datetime) and ((filters.since and received < filters.since)
                                           or (filters.until and received > filters.until)):
        return False
    if filters.status in (DELIVERED, SKIPPED) and views.lead_status(DELIVERED, deliveries) != filters.status:
        return False
    if filters.destination or filters.destination_state:  # a state alone: any destination in it
        states = [d for name, d in deliveries.items() if filters.destination in (None, name)]
        if not any(filters.destination_state in (None, d.state) for d in states):
            return False
    if filters.offer:
        needle = filters.offer.casefold()
        if not any(needle in str(row.get(c) or "").casefold() for c in ("OfferTitle", "LeadSource")):
            return False
    if filters.text:
        needle = filters.text.casefold()
        first, last = str(row.get("FirstName") or ""), str(row.get("LastName") or "")
        fields = (row.get("Company"), row.get("Email"), first, last, f"{first} {last}")
        if not any(needle in str(value or "").casefold() for value in fields):
            return False
    return True
