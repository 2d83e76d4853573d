"""The index rows written with a lead, in its own transaction: one per person (`subject:<keyed hash of the
address>:<lead id>`, read by forget and subject export) and one per test lead (`testlead:<newest first>:<id>`,
read by status's "last test lead"). They hold no personal data: the address is an HMAC with the deployment's
marker secret (leads/core/keys.py subject_hash)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leads.core import keys


def index_entities(secret: bytes, lead_id: str, email: str, is_test: bool, received_at: datetime) \
        -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if email.strip():
        rows.append({"PartitionKey": keys.LEADS_PARTITION,
                     "RowKey": keys.subject_row_key(keys.subject_hash(secret, email), lead_id), "LeadId": lead_id})
    if is_test:
        rows.append({"PartitionKey": keys.LEADS_PARTITION, "RowKey": keys.testlead_row_key(lead_id),
                     "LeadId": lead_id, "Id": lead_id, "ReceivedAt": received_at})
    return rows


def index_keys(secret: bytes, lead_id: str, email: str, is_test: bool) -> list[str]:
    """The RowKeys `index_entities` writes for a lead (to delete them with it)."""
    return [str(row["RowKey"]) for row in index_entities(secret, lead_id, email, is_test, datetime.min)]
