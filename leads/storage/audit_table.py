"""The audit trail in the leads table, partition `audit` (leads/core/keys.py AUDIT_PARTITION): one row per
operator action, newest first; purged with the leads after LEADS_RETENTION_DAYS (leads/storage/erasure.py)."""

from __future__ import annotations

import json
from itertools import islice
from typing import Any

from leads.core import keys
from leads.core.audit import MAX_LEAD_IDS, AuditEntry, entry_of, subject_hash
from leads.storage.table_store import LeadTable, _storage_errors

_TEXT = 1000  # characters kept of a sentence (an outcome)


class AuditTable:
    def __init__(self, table: LeadTable) -> None:
        self.table = table

    def add(self, entry: AuditEntry) -> None:
        row = {"PartitionKey": keys.AUDIT_PARTITION, "RowKey": keys.audit_row_key(entry.at), "At": entry.at,
               "Who": entry.who[:300], "ObjectId": entry.object_id[:100], "How": entry.how, "Action": entry.action,
               "Outcome": entry.outcome[:_TEXT], "Status": entry.status,
               "LeadIds": json.dumps(list(entry.lead_ids[:MAX_LEAD_IDS])),
               "LeadCount": max(entry.lead_count, len(entry.lead_ids)), "Subject": entry.subject[:200]}
        with _storage_errors("record an operator action"):
            self.table.leads.create_entity(row)

    def page(self, limit: int, after: str | None = None) -> list[tuple[str, AuditEntry]]:
        """(RowKey, entry) newest first, at most `limit`, resuming after a RowKey."""
        query = "PartitionKey eq @pk" + (" and RowKey gt @after" if after else "")
        params = {"pk": keys.AUDIT_PARTITION, **({"after": after} if after else {})}
        with _storage_errors("read the audit trail"):
            rows = self.table.leads.query_entities(query, parameters=params, results_per_page=limit)
            return [(str(row["RowKey"]), entry_of(dict(row))) for row in islice(rows, limit)]

    def subject(self, email: str) -> str:
        """The keyed hash an entry names this address by (the markers' secret)."""
        with _storage_errors("read the de-duplication secret"):
            return subject_hash(self.table.marker_secret.get(), email)

    def rows(self) -> list[dict[str, Any]]:
        """Every row (for tests and the privacy export's check that no address is kept)."""
        with _storage_errors("read the audit trail"):
            return [dict(row) for row in self.table.leads.query_entities(
                "PartitionKey eq @pk", parameters={"pk": keys.AUDIT_PARTITION})]
