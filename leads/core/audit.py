"""The audit trail's record: who did which operator action, when, on which leads, and how it ended.

Who: the signed-in person's name and Entra object id (from App Service Authentication's principal), "function
key" (a script on /api/manage-key), or "local" (the developer's own machine). A person's e-mail address
(forget, export) is never kept: only its keyed hash, the HMAC the de-duplication markers use
(leads/core/keys.py keyed_fingerprint), which nobody without the deployment's secret can link to an address."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leads.core.keys import keyed_fingerprint
from leads.core.model import iso

MAX_LEAD_IDS = 200  # kept per entry (a bulk replay counts the rest); a row stays far below Azure's 1 MiB
ACTIONS = {  # the management API's operationId -> what the trail calls it
    "replayLead": "replay", "replayMany": "replay many", "reingest": "re-ingest", "forgetPerson": "forget",
    "sendTestLead": "test lead", "doctor": "doctor", "exportPerson": "export",
}


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    who: str
    how: str  # "sign-in", "key" or "local"
    action: str
    outcome: str
    status: int
    lead_ids: tuple[str, ...] = ()
    lead_count: int = 0
    subject: str = ""  # a keyed hash of the person's address (forget, export), or a rejected request's id
    object_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def view(self) -> dict[str, Any]:
        return {"at": iso(self.at), "who": self.who, "object_id": self.object_id or None, "how": self.how,
                "action": self.action, "lead_ids": list(self.lead_ids), "lead_count": self.lead_count,
                "subject": self.subject or None, "status": self.status, "outcome": self.outcome}


def subject_hash(secret: bytes, email: str) -> str:
    """The keyed hash an audit entry names a person by: HMAC-SHA256 (the markers' key) of the SHA-256 of the
    address as forget matches it (trimmed, case ignored)."""
    digest = hashlib.sha256(email.strip().casefold().encode("utf-8")).hexdigest()
    return "k1:" + keyed_fingerprint(secret, digest)


def entry_of(row: dict[str, Any]) -> AuditEntry:
    """From a stored row (leads/storage/audit_table.py)."""
    try:
        lead_ids = tuple(str(i) for i in json.loads(str(row.get("LeadIds") or "[]")))
    except ValueError:
        lead_ids = ()
    at = row.get("At")
    return AuditEntry(at=at if isinstance(at, datetime) else datetime.fromisoformat(str(at)),
                      who=str(row.get("Who") or ""), how=str(row.get("How") or ""),
                      action=str(row.get("Action") or ""), outcome=str(row.get("Outcome") or ""),
                      status=int(row.get("Status") or 0), lead_ids=lead_ids,
                      lead_count=int(row.get("LeadCount") or len(lead_ids)), subject=str(row.get("Subject") or ""),
                      object_id=str(row.get("ObjectId") or ""))
