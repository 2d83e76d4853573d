"""Finding and deleting rows in the main and quarantine tables: a person's (forget, subject export) and those
past retention (purge). Deletes go in transactions of at most 100 rows of one partition (Azure's limits);
a transaction that fails because a row went meanwhile is redone row by row, so every count is of rows that
this run actually deleted, and a second run counts zero."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import suppress
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError

from leads.core import keys
from leads.core.azure_limits import MAX_BATCH_ENTITIES
from leads.core.errors import StorageUnavailableError
from leads.core.model import StoredLead
from leads.core.subjects import mentions, normalized
from leads.storage.index_rows import index_keys
from leads.storage.table_store import ATTENTION_PREFIX, LeadTable, _storage_errors, raw_body_of, stored_from_entity


def delete_rows(client: TableClient, partition: str, row_keys: Iterable[str]) -> int:
    """Delete these rows (missing ones are skipped); returns how many this call deleted."""
    pending = list(dict.fromkeys(row_keys))
    deleted = 0
    with _storage_errors("delete rows"):
        for start in range(0, len(pending), MAX_BATCH_ENTITIES):
            batch = pending[start : start + MAX_BATCH_ENTITIES]
            try:
                client.submit_transaction([("delete", {"PartitionKey": partition, "RowKey": key}) for key in batch])
                deleted += len(batch)
                continue
            except TableTransactionError:
                pass  # one of them is already gone: each on its own, counted only when it existed
            for key in batch:
                try:
                    client.submit_transaction([("delete", {"PartitionKey": partition, "RowKey": key})])
                    deleted += 1
                except TableTransactionError as gone:
                    code = str(getattr(gone, "error_code", "") or "")
                    if code != "ResourceNotFound":
                        raise StorageUnavailableError(f"Table storage refused to delete a row ({code}).") from None
    return deleted


def lead_ids_for(table: LeadTable, email: str) -> list[str]:
    """Every lead whose customer e-mail is `email` (case and surrounding spaces ignored): a scan of the `lead:`
    range reading two columns (docs/operations.md, "Privacy", measures it)."""
    wanted = normalized(email)
    return [str(row["Id"]) for row in table.lead_rows(select=["Id", "Email"])
            if normalized(str(row.get("Email") or "")) == wanted]


def _marker_keys(table: LeadTable, entity: dict[str, Any]) -> list[str]:
    """The lead's markers (keyed, and bare from before keyed markers) that still point at it: a marker moved
    to a later lead of the same content belongs to that lead."""
    fingerprint = stored_from_entity(entity).lead.fingerprint()
    if fingerprint is None:
        return []
    found = []
    for key in (table.marker_key(fingerprint), keys.dedupe_row_key(fingerprint)):
        with suppress(ResourceNotFoundError), _storage_errors("read a de-duplication marker"):
            marker = table.leads.get_entity(keys.LEADS_PARTITION, key, select=["LeadId"])
            if str(marker.get("LeadId")) == entity["Id"]:
                found.append(key)
    return found


def erase_leads(table: LeadTable, entities: Iterable[dict[str, Any]], known: dict[str, set[str]] | None = None) \
        -> Counter[str]:
    """Delete leads (whole rows, as read) with their markers (point reads: a marker moved to a later lead stays),
    index rows, and outbox and attention rows (unless `known`: a purge reads the RowKeys that exist by range, so
    that its transactions hold no missing row). The order makes a run cut short harmless: the lead row goes after
    its markers, then its person-index rows (`forget` finds leads through them, so a lead left behind is found
    again), then its outbox row (which wakes a delivery that erases a forgotten person's lead again, or drops the
    row of a lead that is gone). An index row left behind points at nothing and goes with the next `forget`."""
    counts: Counter[str] = Counter()
    secret = table.marker_secret.get()
    for chunk in _chunks(list(entities), MAX_BATCH_ENTITIES):
        related: dict[str, list[str]] = {"markers": [], "outbox": [], "attention": [], "index": []}
        for entity in chunk:
            lead_id = str(entity["Id"])
            related["markers"] += _marker_keys(table, entity)
            related["index"] += index_keys(secret, lead_id, str(entity.get("Email") or ""), bool(entity.get("IsTest")))
            for kind, key in (("outbox", keys.outbox_row_key(lead_id)), ("attention", ATTENTION_PREFIX + lead_id)):
                if known is None or key in known[kind]:
                    related[kind].append(key)
        for kind in ("markers", "attention"):
            counts[kind] += delete_rows(table.leads, keys.LEADS_PARTITION, related[kind])
        counts["leads"] += delete_rows(table.leads, keys.LEADS_PARTITION, [str(e["RowKey"]) for e in chunk])
        counts["index"] += delete_rows(table.leads, keys.LEADS_PARTITION, related["index"])
        counts["outbox"] += delete_rows(table.leads, keys.LEADS_PARTITION, related["outbox"])
    return +counts


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def quarantined_for(table: LeadTable, email: str) -> list[dict[str, Any]]:
    """Rejected requests whose body names the address (the quarantine is read whole: it is small)."""
    rows = table.quarantine_table.query_entities("PartitionKey eq @pk", parameters={"pk": keys.QUARANTINE_PARTITION})
    with _storage_errors("read the quarantine"):
        return [dict(row) for row in rows if mentions(raw_body_of(dict(row)), email)]


def old_rows(client: TableClient, partition: str, low: str, high: str, select: list[str] | None = None,
             received_before: datetime | None = None) -> list[dict[str, Any]]:
    query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
    parameters: dict[str, Any] = {"pk": partition, "lo": low, "hi": high}
    if received_before is not None:
        query += " and ReceivedAt lt @before"
        parameters["before"] = received_before
    with _storage_errors("list rows past retention"):
        return [dict(row) for row in client.query_entities(query, parameters=parameters, select=select)]


def kept_reason(stored: StoredLead) -> str:
    """Why a lead past retention stays: the first of its destinations' states that is not final (defect 6:
    pending, retrying, blocked or parked leads were deleted with the rest)."""
    waiting = sorted({state.state for state in stored.deliveries.values() if not state.is_terminal})
    return f"kept_{waiting[0]}" if waiting else ""


def purge_main_table(table: LeadTable, cutoff: datetime, page: int = 100) -> Counter[str]:
    """Finished leads received before `cutoff` (every destination delivered, skipped or failed) with their rows;
    then rejected requests and audit entries received before it. A lead some destination still waits for is
    kept and counted by why (`kept_blocked`, ...): it goes once it is finished. Reads the leads past the cutoff
    only (by key), and each erased lead's markers by point reads: nothing due costs the same whatever the table's
    size."""
    stamp = keys.id_stamp(cutoff)
    known = {prefix: {str(row["RowKey"]) for row in old_rows(table.leads, keys.LEADS_PARTITION,
                                                             f"{prefix}:", f"{prefix}:{stamp}", ["RowKey"])}
             for prefix in ("outbox", ATTENTION_PREFIX[:-1])}
    counts: Counter[str] = Counter()
    seen: set[str] = set()
    batch: list[dict[str, Any]] = []
    for row in table.lead_rows(until=cutoff, page_size=page):
        seen.add(str(row["Id"]))
        reason = kept_reason(stored_from_entity(row))
        if reason:
            counts[reason] += 1
            continue
        batch.append(row)
        if len(batch) == page:
            counts += erase_leads(table, batch, known)
            batch = []
    counts += erase_leads(table, batch, known)
    # Outbox and attention rows past the cutoff whose lead is gone (none expected: they go with their lead).
    leftovers = [key for key in known["outbox"] | known["attention"] if key.split(":", 1)[1] not in seen]
    counts["orphans"] += delete_rows(table.leads, keys.LEADS_PARTITION, sorted(leftovers))
    rejected = old_rows(table.quarantine_table, keys.QUARANTINE_PARTITION, keys.rejected_older_than(cutoff), "A",
                        ["RowKey"])
    counts["quarantined"] += delete_rows(table.quarantine_table, keys.QUARANTINE_PARTITION,
                                         [str(row["RowKey"]) for row in rejected])
    audited = old_rows(table.leads, keys.AUDIT_PARTITION, keys.rejected_older_than(cutoff), "A", ["RowKey"])
    counts["audit_entries"] += delete_rows(table.leads, keys.AUDIT_PARTITION, [str(row["RowKey"]) for row in audited])
    return +counts


def rekey_legacy_markers(table: LeadTable) -> int:
    """Bare-hash markers written before keyed markers: each re-keyed (keyed row created, bare one deleted, in one
    transaction). A keyed row that already exists (a repeat after the upgrade) wins: the bare one just goes."""
    low, high = keys.LEGACY_MARKER_RANGE
    moved = 0
    for row in old_rows(table.leads, keys.LEADS_PARTITION, low, high):
        legacy = str(row["RowKey"])
        keyed = {"PartitionKey": keys.LEADS_PARTITION, "RowKey": table.marker_key(legacy[len("marker:"):]),
                 "LeadId": row["LeadId"], "ReceivedAt": row["ReceivedAt"]}
        with _storage_errors("re-key a de-duplication marker"):
            try:
                table.leads.submit_transaction([("create", keyed),
                                                ("delete", {"PartitionKey": keys.LEADS_PARTITION, "RowKey": legacy})])
            except TableTransactionError:
                table.leads.delete_entity(keys.LEADS_PARTITION, legacy)
        moved += 1
    return moved
