"""The JSON shapes of the management API, from table rows (the list reads only some columns)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leads.core.chunked import joined_bytes
from leads.core.model import DELIVERED, SKIPPED, DeliveryState, StoredLead, action_meaning, iso

# Columns the list reads (never the lead JSON nor the body): what a summary shows and what filters need.
LIST_COLUMNS = ["Id", "ReceivedAt", "Status", "IsTest", "IsEdu", "ActionCode", "OfferTitle", "LeadSource",
                "FirstName", "LastName", "Email", "Country", "Company", "Deliveries", "DuplicateCount"]


def moment_text(value: Any) -> str | None:
    if isinstance(value, datetime):
        return iso(value)
    return str(value) if value else None


def lead_status(row_status: str, deliveries: dict[str, DeliveryState]) -> str:
    """The stored status, except `skipped` when every destination was skipped (nothing was sent)."""
    if row_status == DELIVERED and deliveries and all(d.state == SKIPPED for d in deliveries.values()):
        return SKIPPED
    return row_status


def offer_of(title: str, lead_source: str) -> str:
    """The offer title, else the offer id LeadSource carries (`Source-Action|publisher.offer`)."""
    if title:
        return title
    offer = lead_source.split("|", 1)[1] if "|" in lead_source else ""
    return offer.split(".", 1)[1] if "." in offer else offer


def summary(row: dict[str, Any], deliveries: dict[str, DeliveryState]) -> dict[str, Any]:
    first, last = str(row.get("FirstName") or ""), str(row.get("LastName") or "")
    action = str(row.get("ActionCode") or "")
    return {
        "id": str(row["Id"]),
        "received_at": moment_text(row.get("ReceivedAt")),
        "status": lead_status(str(row.get("Status") or ""), deliveries),
        "test": bool(row.get("IsTest")),
        "edu": bool(row.get("IsEdu")),
        "action": action,
        "action_meaning": action_meaning(action),
        "offer": offer_of(str(row.get("OfferTitle") or ""), str(row.get("LeadSource") or "")),
        "company": str(row.get("Company") or ""),
        "country": str(row.get("Country") or ""),
        "name": " ".join(part for part in (first, last) if part),
        "email": str(row.get("Email") or ""),
        "duplicate_arrivals": int(row.get("DuplicateCount") or 0),
        "deliveries": {name: {"state": d.state, "attempts": d.attempts, "last_error": d.last_error,
                              "record_id": d.record_id} for name, d in deliveries.items()},
    }


def detail(row: dict[str, Any], stored: StoredLead, raw_body: bytes) -> dict[str, Any]:
    lead = stored.lead
    return {
        **summary(row, stored.deliveries),
        "lead": lead.to_dict(),
        "raw_body": raw_body.decode("utf-8", "replace"),
        "raw_body_bytes": len(raw_body),
        "campaign": dict(lead.campaign),
        "description": lead.description,
        "lead_source": lead.lead_source.raw,
        "last_duplicate_at": moment_text(stored.last_duplicate_at),
        "deliveries": {name: {"state": d.state, "attempts": d.attempts, "last_error": d.last_error,
                              "record_id": d.record_id, "delivered_at": d.delivered_at or None,
                              "next_attempt_at": d.next_attempt_at or None,
                              "history": [dict(entry) for entry in d.history]}
                       for name, d in stored.deliveries.items()},
    }


def rejected(row: dict[str, Any], with_body: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": str(row["RowKey"]).replace(":", "-"),  # URL-friendly; service.py turns it back into the RowKey
        "received_at": moment_text(row.get("ReceivedAt")),
        "reason": str(row.get("Reason") or ""),
        "status": int(row.get("Status") or 0),
        "message": str(row.get("Message") or ""),
        "method": str(row.get("Method") or ""),
        "content_type": str(row.get("ContentType") or ""),
        "body_bytes": int(row.get("BodyBytes") or 0),
        "truncated": bool(row.get("Truncated")),
        "reingested": str(row["Reingested"]) if row.get("Reingested") else None,
    }
    if with_body:
        view["body"] = body_of(row).decode("utf-8", "replace")
    return view


def body_of(row: dict[str, Any]) -> bytes:
    """A rejected request's body as kept (the first 64 KiB)."""
    return joined_bytes(row)
