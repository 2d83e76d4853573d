"""The Azure Tables adapter: leads, their delivery state, de-duplication markers, the outbox, rejected
requests and circuit breakers. Every Azure exception is translated here into this package's errors."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableServiceClient, TableTransactionError, UpdateMode

from leads.core import keys
from leads.core.azure_limits import (
    BINARY_CHUNK_BYTES,
    STRING_CHUNK_UNITS,
    chunk_utf16,
    utf16_units,
    without_lone_surrogates,
)
from leads.core.breaker import Breaker
from leads.core.chunked import joined_bytes
from leads.core.errors import ConcurrentUpdateError, StorageRefusedError, StorageUnavailableError
from leads.core.model import DeliveryState, Lead, StoredLead, parse_iso
from leads.core.policy import needs_attention
from leads.core.ports import ROW_BOOKKEEPING, Added, RejectedRequest, SourceRow, Versioned
from leads.storage.bare_markers import BareMarkers
from leads.storage.index_rows import index_entities
from leads.storage.marker_secret import MarkerSecret

T = TypeVar("T")
log = logging.getLogger("leads.table_store")
_DUPLICATE_TRIES = 5
_CHUNK = STRING_CHUNK_UNITS  # a string property holds 64 KiB of UTF-16 (32K code units): stay under it
_SHOWN = 1_000  # display columns are truncated; the full lead is in the Lead column(s)
_BINARY_CHUNK = BINARY_CHUNK_BYTES


@contextmanager
def _storage_errors(action: str) -> Iterator[None]:
    try:
        yield
    except (ResourceExistsError, ResourceNotFoundError, ResourceModifiedError, TableTransactionError):
        raise
    except HttpResponseError as exc:
        if exc.status_code in (409, 412):
            raise
        raise StorageUnavailableError(f"Table storage refused to {action} ({exc.status_code}).") from None
    except AzureError:
        raise StorageUnavailableError(f"Table storage did not answer when asked to {action}.") from None


# Every method azure-core's RetryPolicy knows, POST included: asked for per call (RetryPolicy.configure_retries
# reads `retry_on_methods`), only where a repeat is recognised (LeadTable._store_transaction).
_RETRY_EVERY_METHOD = frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST", "PATCH", "MERGE"})


def _code(error: HttpResponseError) -> str:
    return str(getattr(error, "error_code", "") or "")


# Table service error codes that refuse the entity itself (400): the same row is refused every time.
# Learn: https://learn.microsoft.com/rest/api/storageservices/table-service-error-codes and
# https://learn.microsoft.com/rest/api/storageservices/common-rest-api-error-codes
_REFUSED_FOR_GOOD = frozenset({
    "PropertyValueTooLarge", "EntityTooLarge", "TooManyProperties", "PropertyNameTooLong", "PropertyNameInvalid",
    "InvalidValueType", "DuplicatePropertiesSpecified", "InvalidDuplicateRow", "OutOfRangeInput", "InvalidInput",
    "KeyValueTooLarge", "InvalidXmlDocument", "InvalidXmlNodeValue"})


def _refused(error: TableTransactionError, what: str) -> StorageUnavailableError:
    """The error to raise for a transaction storage did not take: refused for good, or worth another try."""
    code = _code(error)
    if code in _REFUSED_FOR_GOOD:
        return StorageRefusedError(f"Table storage refused {what} ({code}).")
    return StorageUnavailableError(f"Table storage refused {what} ({code}).")


def _chunks(text: str, size: int) -> list[str]:
    """Pieces of at most `size` UTF-16 code units (Azure's unit: an emoji counts two), pairs kept whole."""
    return chunk_utf16(text, size)


def _joined(entity: dict[str, Any], name: str) -> str:
    parts, index = [str(entity.get(name, ""))], 1
    while f"{name}_{index}" in entity:
        parts.append(str(entity[f"{name}_{index}"]))
        index += 1
    return "".join(parts)


def lead_entity(stored: StoredLead, body: bytes = b"") -> dict[str, Any]:
    """Readable columns (as Partner Center's Azure Table destination has, CustomerInfo split out, #38995)
    plus the whole lead as JSON, plus the request body as received (binary `Body0`, `Body1`).

    Within Azure's limits for any body of at most 64 KiB (leads/core/azure_limits.py): display columns are cut
    to 1,000 characters, the JSON is split into 30,000-code-unit strings (at most about 3 x 64K code units,
    as `campaign` and the parsed LeadSource repeat what they are read from: ~400 KB of the 1 MiB), the body
    into 32 KiB binaries."""
    lead, customer = stored.lead, stored.lead.customer
    entity: dict[str, Any] = {
        "PartitionKey": keys.LEADS_PARTITION,
        "RowKey": keys.lead_row_key(stored.id),
        "Id": stored.id,
        "ReceivedAt": stored.received_at,
        "Status": stored.status,
        "IsTest": lead.is_test,
        "IsEdu": lead.is_edu,
        "ActionCode": lead.action[:_SHOWN],
        "OfferTitle": lead.offer_title[:_SHOWN],
        "LeadSource": lead.lead_source.raw[:_SHOWN],
        "FirstName": customer.first_name[:_SHOWN],
        "LastName": customer.last_name[:_SHOWN],
        "Email": customer.email[:_SHOWN],
        "Phone": customer.phone[:_SHOWN],
        "Country": customer.country[:_SHOWN],
        "Company": customer.company[:_SHOWN],
        "Title": customer.title[:_SHOWN],
        "Deliveries": deliveries_json(stored),
    }
    for index, chunk in enumerate(_chunks(json.dumps(lead.to_dict(), ensure_ascii=False), _CHUNK)):
        entity["Lead" if index == 0 else f"Lead_{index}"] = chunk
    if body:
        entity["BodyBytes"] = len(body)
        for index in range(0, len(body), _BINARY_CHUNK):
            entity[f"Body{index // _BINARY_CHUNK}"] = body[index : index + _BINARY_CHUNK]
    return entity


def stored_from_entity(entity: dict[str, Any]) -> StoredLead:
    received = entity["ReceivedAt"]
    return StoredLead(
        id=entity["Id"],
        received_at=received if isinstance(received, datetime) else parse_iso(str(received)) or received,
        lead=Lead.from_dict(json.loads(_joined(entity, "Lead"))),
        deliveries=deliveries_from_json(entity.get("Deliveries") or "{}"),
        duplicates=int(entity.get("DuplicateCount") or 0),
        last_duplicate_at=entity.get("LastDuplicateAt"),
    )


def deliveries_json(stored: StoredLead) -> str:
    """The Deliveries column: one string property (at most 32K UTF-16 code units in Azure). When the attempt
    histories would overflow it, the oldest attempts of the longest history go first, then long last errors
    are cut."""
    states = {name: asdict(state) for name, state in stored.deliveries.items()}

    def dumped() -> str:
        return without_lone_surrogates(json.dumps(states, ensure_ascii=False))

    text = dumped()
    while utf16_units(text) > _CHUNK:
        longest = max(states.values(), key=lambda state: len(state["history"]))
        if not longest["history"]:
            for state in states.values():
                state["last_error"] = state["last_error"][:_SHOWN]
            return dumped()
        longest["history"] = longest["history"][1:]
        text = dumped()
    return text


def deliveries_from_json(text: str) -> dict[str, DeliveryState]:
    return {name: DeliveryState.from_dict(state) for name, state in json.loads(text).items()}


def raw_body_of(entity: dict[str, Any]) -> bytes:
    """The request body a lead row was stored from (before lone surrogates were replaced)."""
    return joined_bytes(entity)


def _delivery_columns(stored: StoredLead) -> dict[str, Any]:
    return {
        "PartitionKey": keys.LEADS_PARTITION,
        "RowKey": keys.lead_row_key(stored.id),
        "Status": stored.status,
        "Deliveries": deliveries_json(stored),
    }


def _outbox_entity(lead_id: str, due: datetime) -> dict[str, Any]:
    """The outbox row as a worker writes it with the lead: next due at `due`, which is also as long as this
    worker's own wake-up (its retry message) covers it (`EnqueuedUntil`), and no wake-up in vain (`Wakeups`:
    the sweeper's enqueues since the lead last changed; progress sets it back to 0)."""
    return {"PartitionKey": keys.LEADS_PARTITION, "RowKey": keys.outbox_row_key(lead_id), "LeadId": lead_id,
            "DueAt": due, "EnqueuedUntil": due, "Wakeups": 0, "Stuck": ""}


ATTENTION_PREFIX = "attention:"  # one row per lead with a failed or blocked destination: `replay --failed`


def _attention_key(lead_id: str) -> str:
    return f"{ATTENTION_PREFIX}{lead_id}"


def _attention_operation(stored: StoredLead, previous: StoredLead | None) -> Any:
    """The index row follows the lead in the same transaction. `previous` is the copy the ETag was read
    with, so a delete is only sent for a row that exists (a delete of a missing row fails the batch)."""
    row = {"PartitionKey": keys.LEADS_PARTITION, "RowKey": _attention_key(stored.id)}
    if needs_attention(stored):
        return ("upsert", {**row, "LeadId": stored.id, "Status": stored.status})
    if previous is not None and needs_attention(previous):
        return ("delete", row)
    return None


def _import_marker_entity(row: SourceRow, lead_id: str, outcome: str, at: datetime) -> dict[str, Any]:
    """Where an imported lead came from: no personal data, only the source row's keys and bookkeeping columns."""
    bookkeeping = {ROW_BOOKKEEPING[name.lower()]: str(value)[:_SHOWN] for name, value in row.columns.items()
                   if name.lower() in ROW_BOOKKEEPING}
    return {"PartitionKey": keys.LEADS_PARTITION, "RowKey": keys.import_row_key(row.key), "LeadId": lead_id,
            "Outcome": outcome[:_SHOWN], "ImportedAt": at, "SourceTable": row.table[:_SHOWN],
            "SourcePartitionKey": without_lone_surrogates(row.partition_key[:_SHOWN]),
            "SourceRowKey": without_lone_surrogates(row.row_key[:_SHOWN]), "SourceTimestamp": row.timestamp,
            **{f"Source{name}": without_lone_surrogates(value) for name, value in bookkeeping.items()}}


@dataclass(frozen=True)
class OutboxItem:
    """A due outbox row and the ETag it was read with: the sweeper moves it only if nobody else did."""

    lead_id: str
    etag: str
    wakeups: int = 0  # the sweeper's enqueues since the lead last changed (a row of the previous version: 0)


class LeadTable:
    """Leads table + quarantine table. Clients are created once per process and reused."""

    def __init__(self, service: TableServiceClient, table: str, quarantine_table: str) -> None:
        self._service = service
        self.leads: TableClient = service.get_table_client(table)
        self.quarantine_table: TableClient = service.get_table_client(quarantine_table)
        self.marker_secret = MarkerSecret(self.leads)
        self.bare_markers = BareMarkers(self.leads)  # defect 9: markers of the old form honoured at once

    def create_tables(self) -> None:
        with _storage_errors("create the tables"):
            for client in (self.leads, self.quarantine_table):
                with suppress(ResourceExistsError):
                    client.create_table()
            self.marker_secret.get()  # read (or made) now, at start: not on a lead's path
            self.bare_markers.any_left()  # likewise: whether markers of the old form remain (defect 9)

    def _call(self, action: str, operation: Callable[[], T]) -> T:
        with _storage_errors(action):
            return operation()

    def marker_key(self, fingerprint: str) -> str:
        """The de-duplication marker's RowKey: keyed with this deployment's secret (leads/storage/marker_secret.py)."""
        return keys.marker_row_key(self._call("read the de-duplication secret", self.marker_secret.get), fingerprint)

    def _index_rows(self, stored: StoredLead) -> list[dict[str, Any]]:
        secret = self._call("read the de-duplication secret", self.marker_secret.get)
        return index_entities(secret, stored.id, stored.lead.customer.email, stored.lead.is_test, stored.received_at)

    # --- ingest -----------------------------------------------------------------------------------
    def _store_transaction(self, operations: list[Any]) -> Any:
        """A lead's transaction, retried after a transport error as well. azure-core's RetryPolicy retries no
        POST after a connection or read error (azure/core/pipeline/policies/_retry.py, RetryPolicy.send and
        _is_method_retryable: POST is not in _method_whitelist), and a transaction is a POST to $batch: so a
        pooled connection an outage broke, or one the server closed while idle, turned the next lead into a
        503. It is safe to repeat: a transaction is all or nothing, and a repeat of one that was done fails on
        its own rows (EntityAlreadyExists), which `add` recognises as its own (`_own_commit`)."""
        return self._call("store the lead", lambda: self.leads.submit_transaction(
            operations, retry_on_methods=_RETRY_EVERY_METHOD))

    def _own_commit(self, stored: StoredLead) -> Added | None:
        """The lead row under this lead's own id exists: an earlier attempt of this very transaction was done
        (ids are new for each arrival), its answer lost on the way."""
        try:
            row = self._call("read the lead", lambda: self.leads.get_entity(
                keys.LEADS_PARTITION, keys.lead_row_key(stored.id), select=["RowKey"]))
        except ResourceNotFoundError:
            return None
        return Added(stored.id, duplicate=False, etag=str(row.metadata["etag"]))

    def add(self, stored: StoredLead, fingerprint: str | None, window: timedelta, outbox_due: datetime,
            body: bytes = b"", source: SourceRow | None = None) -> Added:
        """Store a new lead (with the request `body` as received), its marker and its outbox row in one
        transaction; or, if the same payload arrived within `window`, count the arrival on that lead and
        return its id as a duplicate. No fingerprint: no marker, always a new lead. Atomic: never
        half-stored. A `source` row (the importer's) gets its import marker in the same transaction: a row
        imported before is a duplicate of the lead it made, not counted again."""
        new_rows: list[Any] = [("create", lead_entity(stored, body)),
                               ("create", _outbox_entity(stored.id, outbox_due))]
        new_rows += [("create", row) for row in self._index_rows(stored)]  # forget, export, last test lead
        if source is not None:
            new_rows.append(("create", _import_marker_entity(source, stored.id, "stored", stored.received_at)))
        if fingerprint is None:
            try:
                result = self._store_transaction(new_rows)
            except TableTransactionError as exc:
                own = self._own_commit(stored) if _code(exc) == "EntityAlreadyExists" else None
                if own is not None:
                    return own
                imported = self._imported_before(source, exc)
                if imported is None:
                    raise _refused(exc, "the lead") from None
                return imported
            return Added(stored.id, duplicate=False, etag=result[0]["etag"])
        marker_key = self.marker_key(fingerprint)
        self._call("re-key a marker of the old form", lambda: self.bare_markers.rekey(fingerprint, marker_key))
        marker = {"PartitionKey": keys.LEADS_PARTITION, "RowKey": marker_key,
                  "LeadId": stored.id, "ReceivedAt": stored.received_at}
        try:
            result = self._store_transaction([("create", marker), *new_rows])
            return Added(stored.id, duplicate=False, etag=result[1]["etag"])
        except TableTransactionError as exc:
            if _code(exc) != "EntityAlreadyExists":
                raise _refused(exc, "the lead") from None
            own = self._own_commit(stored)
            if own is not None:
                return own
            imported = self._imported_before(source, exc)
            if imported is not None:
                return imported
        existing = self._call("read the de-duplication marker", lambda: self.leads.get_entity(
            keys.LEADS_PARTITION, marker_key))
        gap = stored.received_at - existing["ReceivedAt"]
        if abs(gap) < window:  # either side: an import carries Partner Center's time, older than a POST's
            self._count_duplicate(str(existing["LeadId"]), stored.received_at)
            if source is not None:
                self.mark_imported(source, str(existing["LeadId"]), "duplicate")
            return Added(str(existing["LeadId"]), duplicate=True)
        if gap < timedelta(0):  # an older copy (imported by its source's time): its own lead; the marker stays
            try:
                result = self._call("store the lead", lambda: self.leads.submit_transaction(new_rows))
            except TableTransactionError as exc:
                imported = self._imported_before(source, exc)
                if imported is None:
                    raise StorageUnavailableError(f"Table storage refused the lead ({_code(exc)}).") from None
                return imported
            return Added(stored.id, duplicate=False, etag=result[0]["etag"])
        # Same payload, but long ago: a new lead. The marker moves to it, unless someone else moved it first.
        marker_update = ("update", marker, {"mode": UpdateMode.REPLACE, "etag": existing.metadata["etag"],
                                            "match_condition": MatchConditions.IfNotModified})
        try:
            result = self._store_transaction([marker_update, *new_rows])
        except TableTransactionError:
            return self.add(stored, fingerprint, window, outbox_due, body, source)
        return Added(stored.id, duplicate=False, etag=result[1]["etag"])

    # --- import markers (leads/services/importer.py) -------------------------------------------------------
    def _imported_before(self, source: SourceRow | None, error: TableTransactionError) -> Added | None:
        """The lead a source row already made, when the transaction failed because its marker exists."""
        if source is None or _code(error) != "EntityAlreadyExists":
            return None
        marker = self.import_marker(source)
        return None if marker is None else Added(str(marker.get("LeadId") or ""), duplicate=True)

    def import_marker(self, row: SourceRow) -> dict[str, Any] | None:
        try:
            return dict(self._call("read the import marker", lambda: self.leads.get_entity(
                keys.LEADS_PARTITION, keys.import_row_key(row.key))))
        except ResourceNotFoundError:
            return None

    def mark_imported(self, row: SourceRow, lead_id: str, outcome: str) -> None:
        """Record a row that made no new lead (a duplicate, a quarantined row); kept if one exists already."""
        with suppress(ResourceExistsError):
            self._call("record the import", lambda: self.leads.create_entity(
                _import_marker_entity(row, lead_id, outcome, datetime.now(UTC))))

    def _count_duplicate(self, lead_id: str, at: datetime) -> None:
        """`DuplicateCount` + 1 and `LastDuplicateAt` on the original lead: a MERGE conditional on the ETag
        just read, retried when concurrent duplicates (or a delivery) changed the row meanwhile. Best
        effort: the lead is safe either way, so a failure here is logged, not answered with a 503."""
        row_key = keys.lead_row_key(lead_id)

        def count() -> None:
            entity = self.leads.get_entity(keys.LEADS_PARTITION, row_key,
                                           select=["DuplicateCount", "LastDuplicateAt"])
            last = entity.get("LastDuplicateAt")
            counted = {"PartitionKey": keys.LEADS_PARTITION, "RowKey": row_key,
                       "DuplicateCount": int(entity.get("DuplicateCount") or 0) + 1,
                       "LastDuplicateAt": max(last, at) if isinstance(last, datetime) else at}
            self.leads.update_entity(counted, mode=UpdateMode.MERGE, etag=entity.metadata["etag"],
                                     match_condition=MatchConditions.IfNotModified)

        for _ in range(_DUPLICATE_TRIES):
            try:
                self._call("count a duplicate", count)
                return
            except ResourceModifiedError:
                continue
            except (ResourceNotFoundError, StorageUnavailableError) as error:
                log.warning("duplicate of lead %s not counted (%s)", lead_id, type(error).__name__)
                return
        log.warning("duplicate of lead %s not counted: the lead kept changing", lead_id)

    # --- delivery ---------------------------------------------------------------------------------
    def load(self, lead_id: str) -> Versioned | None:
        try:
            entity = self._call("read the lead", lambda: self.leads.get_entity(
                keys.LEADS_PARTITION, keys.lead_row_key(lead_id)))
        except ResourceNotFoundError:
            return None
        return Versioned(stored_from_entity(entity), str(entity.metadata["etag"]))

    def save(self, stored: StoredLead, etag: str, outbox_due: datetime | None,
             previous: StoredLead | None = None) -> str:
        """Write the delivery state if nobody changed the lead since `etag` (`previous` is the copy read with
        it), and in the same transaction set the outbox row's due time (or remove it once every destination
        is finished) and the `attention:` index row."""
        update = ("update", _delivery_columns(stored),
                  {"mode": UpdateMode.MERGE, "etag": etag, "match_condition": MatchConditions.IfNotModified})
        outbox: Any = (("upsert", _outbox_entity(stored.id, outbox_due)) if outbox_due is not None
                       else ("delete", {"PartitionKey": keys.LEADS_PARTITION,
                                        "RowKey": keys.outbox_row_key(stored.id)}))
        attention = _attention_operation(stored, previous)
        operations = [update, outbox, *([attention] if attention else [])]
        try:
            result = self._call("record the delivery", lambda: self.leads.submit_transaction(operations))
        except TableTransactionError as exc:
            if _code(exc) == "UpdateConditionNotSatisfied":
                raise ConcurrentUpdateError(f"Lead {stored.id} changed while it was being delivered.") from None
            if _code(exc) != "ResourceNotFound":
                raise StorageUnavailableError(f"Table storage refused the delivery record ({_code(exc)}).") \
                    from None
            # A row to delete was already gone (the outbox row of a lead replayed by an older version, or an index
            # row older than the index): without the outbox delete first, then without any delete.
            result = self._save_without_missing_rows(stored.id, [op for op in operations if op is not outbox],
                                                     [op for op in operations if op[0] != "delete"])
        return str(result[0]["etag"])

    def _save_without_missing_rows(self, lead_id: str, *attempts: list[Any]) -> Any:
        for operations in attempts:
            try:
                return self._call("record the delivery", functools.partial(self.leads.submit_transaction, operations))
            except TableTransactionError as exc:
                if _code(exc) != "ResourceNotFound":
                    raise ConcurrentUpdateError(f"Lead {lead_id} could not be recorded ({_code(exc)}).") from None
        raise ConcurrentUpdateError(f"Lead {lead_id} could not be recorded (ResourceNotFound).")

    def due_work(self, now: datetime, limit: int = 100) -> list[OutboxItem]:
        """Leads whose outbox row is due and whose last wake-up has run out: never enqueued, a retry whose
        message was lost, a delivery that crashed after claiming or failed before it could. Each with its
        row's ETag, for a conditional postpone. (`EnqueuedUntil` is compared here, not by the server: a row the
        previous version wrote has none, and the due rows are few.)"""
        query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi and DueAt le @now"
        params = {"pk": keys.LEADS_PARTITION, "lo": "outbox:", "hi": "outbox" + keys.PREFIX_END, "now": now}

        def run() -> list[OutboxItem]:
            rows = self.leads.query_entities(query, parameters=params, select=["LeadId", "EnqueuedUntil", "Wakeups"],
                                             results_per_page=limit)
            due = []
            for row in rows:
                until = row.get("EnqueuedUntil")
                if isinstance(until, datetime) and until > now:
                    continue  # a wake-up is still on its way
                due.append(OutboxItem(str(row["LeadId"]), str(row.metadata["etag"]), int(row.get("Wakeups") or 0)))
                if len(due) >= limit:
                    break
            return due

        return self._call("list undelivered leads", run)

    def postpone(self, item: OutboxItem, due: datetime, stuck: str = "") -> bool:
        """Note a wake-up on a due outbox row (no other before `due`, one more in `Wakeups`, and `stuck`: the
        sentence when wake-ups keep coming to nothing) unless it changed since it was read: False when a worker
        finished the lead (row deleted) or moved it meanwhile; never re-creates the row of a finished lead."""
        row = {"PartitionKey": keys.LEADS_PARTITION, "RowKey": keys.outbox_row_key(item.lead_id),
               "EnqueuedUntil": due, "Wakeups": item.wakeups + 1, **({"Stuck": stuck[:_SHOWN]} if stuck else {})}
        return self._unless_changed("update the outbox", lambda: self.leads.update_entity(
            row, mode=UpdateMode.MERGE, etag=item.etag, match_condition=MatchConditions.IfNotModified))

    def _unless_changed(self, action: str, write: Callable[[], Any]) -> bool:
        """An ETag-conditional write: False when the row is gone (404) or changed since it was read (412)."""
        try:
            self._call(action, write)
        except (ResourceNotFoundError, ResourceModifiedError):
            return False
        except HttpResponseError as exc:
            if exc.status_code in (404, 412):
                return False
            raise
        return True

    def outbox_row(self, lead_id: str) -> dict[str, Any] | None:
        """The lead's outbox row (its ETag in `etag`), or None."""
        try:
            row = self._call("read the outbox", lambda: self.leads.get_entity(
                keys.LEADS_PARTITION, keys.outbox_row_key(lead_id)))
        except ResourceNotFoundError:
            return None
        return {**row, "etag": str(row.metadata["etag"])}

    def outbox_due(self, lead_id: str) -> datetime | None:
        """When the lead's outbox row wakes it: its due time, or the end of the wake-up on its way if later."""
        row = self.outbox_row(lead_id)
        if row is None:
            return None
        moments = [m for m in (row.get("DueAt"), row.get("EnqueuedUntil")) if isinstance(m, datetime)]
        return max(moments) if moments else datetime.min.replace(tzinfo=UTC)

    def drop_orphan_outbox(self, lead_id: str) -> bool:
        """Delete the outbox row of a lead that no longer exists (forgotten, purged): else the sweeper would
        bring the missing lead back every few minutes, for ever. Read first, then the lead's absence checked,
        then deleted on the row's ETag: a lead stored meanwhile (lead and row are created together) keeps it."""
        row = self.outbox_row(lead_id)
        if row is None:
            return False
        try:
            self._call("read the lead", lambda: self.leads.get_entity(
                keys.LEADS_PARTITION, keys.lead_row_key(lead_id), select=["Id"]))
            return False  # the lead exists: not an orphan
        except ResourceNotFoundError:
            pass
        return self._unless_changed("delete the outbox row", lambda: self.leads.delete_entity(
            keys.LEADS_PARTITION, keys.outbox_row_key(lead_id), etag=row["etag"],
            match_condition=MatchConditions.IfNotModified))

    def needing_attention(self, limit: int | None = None) -> list[tuple[str, str]]:
        """(lead id, status) of every lead with a failed or blocked destination, oldest first: a range query
        on the index rows, not a read of every lead."""
        query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
        params = {"pk": keys.LEADS_PARTITION, "lo": ATTENTION_PREFIX,
                  "hi": ATTENTION_PREFIX[:-1] + keys.PREFIX_END}

        def run() -> list[tuple[str, str]]:
            rows = self.leads.query_entities(query, parameters=params, select=["LeadId", "Status"])
            return [(str(row["LeadId"]), str(row["Status"])) for row in islice(rows, limit)]

        return self._call("list leads needing attention", run)

    def recent(self, limit: int = 50) -> list[StoredLead]:
        return self.page(limit)[0]

    def page(self, limit: int = 50, continuation: str | None = None) -> tuple[list[StoredLead], str | None]:
        """Leads newest first, one page at a time: a range query on the `lead:` prefix (no scan). The token
        it returns fetches the next page."""
        query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
        params = {"pk": keys.LEADS_PARTITION, "lo": "lead:", "hi": "lead" + keys.PREFIX_END}

        def run() -> tuple[list[StoredLead], str | None]:
            pages = self.leads.query_entities(query, parameters=params, results_per_page=limit).by_page(
                continuation_token=json.loads(continuation) if continuation else None)
            rows: list[Any] = list(next(pages, []))
            token = pages.continuation_token  # type: ignore[attr-defined]
            return [stored_from_entity(row) for row in rows], json.dumps(token) if token else None

        return self._call("list leads", run)

    def lead_rows(self, equal: Mapping[str, str | bool] | None = None, since: datetime | None = None,
                  until: datetime | None = None, after: str | None = None, select: list[str] | None = None,
                  page_size: int = 1000) -> Iterator[dict[str, Any]]:
        """Lead rows newest first (with their RowKey), lazily: the `lead:` range narrowed to [since, until]
        by key, then `after` (a RowKey: resume exactly after it), each `equal` column compared by the
        server. Read with `select`, the rows are only the columns asked for."""
        low, high = keys.lead_key_range(since, until)
        query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
        params: dict[str, Any] = {"pk": keys.LEADS_PARTITION, "lo": low, "hi": high}
        if after:
            query += " and RowKey gt @after"
            params["after"] = after
        for index, (column, value) in enumerate(sorted((equal or {}).items())):
            query += f" and {column} eq @v{index}"
            params[f"v{index}"] = value
        columns = None if select is None else sorted({"RowKey", *select})
        with _storage_errors("list leads"):
            for row in self.leads.query_entities(query, parameters=params, select=columns,
                                                 results_per_page=page_size):
                yield dict(row)

    def lead_entity_of(self, lead_id: str) -> dict[str, Any] | None:
        """The whole row of a lead (its raw body included), or None."""
        try:
            return dict(self._call("read the lead", lambda: self.leads.get_entity(
                keys.LEADS_PARTITION, keys.lead_row_key(lead_id))))
        except ResourceNotFoundError:
            return None

    # --- rejected requests ------------------------------------------------------------------------
    def quarantine(self, rejected: RejectedRequest) -> None:
        body = rejected.body[: 2 * _BINARY_CHUNK]
        entity: dict[str, Any] = {
            "PartitionKey": keys.QUARANTINE_PARTITION,
            "RowKey": keys.rejected_row_key(rejected.received_at),
            "ReceivedAt": rejected.received_at,
            "Reason": rejected.reason,
            "Status": rejected.status,
            # Within Azure's limits whatever was sent: short texts without lone surrogates, 2 x 32 KiB of body.
            "Message": without_lone_surrogates(rejected.message[:_SHOWN]),
            "Method": without_lone_surrogates(rejected.method[:20]),
            "ContentType": without_lone_surrogates(rejected.content_type[:200]),
            "BodyBytes": len(rejected.body),
            "Truncated": len(rejected.body) > len(body),
        }
        for index in range(0, len(body), _BINARY_CHUNK):  # binary properties hold 64 KiB at most
            entity[f"Body{index // _BINARY_CHUNK}"] = body[index : index + _BINARY_CHUNK]
        self._call("keep the rejected request", lambda: self.quarantine_table.create_entity(entity))

    def rejected(self, limit: int = 50) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            rows = self.quarantine_table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": keys.QUARANTINE_PARTITION}, results_per_page=limit)
            return [dict(row) for _, row in zip(range(limit), rows, strict=False)]

        return self._call("list rejected requests", run)

    def rejected_page(self, limit: int, after: str | None = None) -> list[dict[str, Any]]:
        """Rejected requests newest first (RowKey included), at most `limit`, resuming after a RowKey."""
        query = "PartitionKey eq @pk" + (" and RowKey gt @after" if after else "")
        params = {"pk": keys.QUARANTINE_PARTITION, **({"after": after} if after else {})}

        def run() -> list[dict[str, Any]]:
            rows = self.quarantine_table.query_entities(query, parameters=params, results_per_page=limit)
            return [dict(row) for row in islice(rows, limit)]

        return self._call("list rejected requests", run)

    def rejected_one(self, row_key: str) -> dict[str, Any] | None:
        try:
            return dict(self._call("read a rejected request", lambda: self.quarantine_table.get_entity(
                keys.QUARANTINE_PARTITION, row_key)))
        except ResourceNotFoundError:
            return None

    def mark_reingested(self, row_key: str, outcome: str) -> None:
        """Note on the rejected request what its re-ingest answered (it stays, as the record of the try)."""
        row = {"PartitionKey": keys.QUARANTINE_PARTITION, "RowKey": row_key, "Reingested": outcome[:_SHOWN]}
        with suppress(ResourceNotFoundError):
            self._call("note the re-ingest", lambda: self.quarantine_table.update_entity(row, mode=UpdateMode.MERGE))

    # --- circuit breakers (visible in status) -------------------------------------------------------
    def record_breaker(self, breaker: Breaker | None, destination: str) -> None:
        row = {"PartitionKey": keys.BREAKER_PARTITION, "RowKey": destination}
        if breaker is None:
            with suppress(ResourceNotFoundError):
                self._call("close the breaker", lambda: self.leads.delete_entity(row))
            return
        self._call("open the breaker", lambda: self.leads.upsert_entity(
            {**row, "Reason": breaker.reason[:_SHOWN], "OpenUntil": breaker.open_until}))

    def breakers(self) -> list[Breaker]:
        def run() -> list[Breaker]:
            rows = self.leads.query_entities("PartitionKey eq @pk", parameters={"pk": keys.BREAKER_PARTITION})
            return [Breaker(str(r["RowKey"]), str(r["Reason"]), r["OpenUntil"]) for r in rows]

        return self._call("read the breakers", run)

    def ping(self) -> None:
        """One cheap read that proves the table answers (health)."""
        def run() -> None:
            with suppress(ResourceNotFoundError):
                self.leads.get_entity(keys.LEADS_PARTITION, "health")

        self._call("answer a health check", run)

