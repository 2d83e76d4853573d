"""The delivery message: which lead to work on, and (on the first pass) the lead itself.

The first message carries the lead as stored and its ETag, so the delivery can claim it without reading
it back: ingest (1 transaction) + enqueue (1) + claim (1) + record (1) = 4 storage calls per lead.
Retries and sweeps carry only the id and read the lead, and so does a first message whose lead is too big to
travel inline. With telemetry on, a message also carries the W3C traceparent of the span that sent it (55
characters), so the delivery continues the lead's trace across the queue."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leads.core.azure_limits import queue_message_fits
from leads.core.model import DeliveryState, Lead, StoredLead, iso, parse_iso


@dataclass(frozen=True)
class DeliveryMessage:
    lead_id: str
    etag: str = ""
    snapshot: StoredLead | None = None
    traceparent: str = ""

    def encode(self) -> str:
        payload: dict[str, Any] = {"v": 1, "id": self.lead_id}
        if self.traceparent:
            payload["tp"] = self.traceparent
        if self.snapshot is not None and self.etag:
            snapshot = {
                "received_at": iso(self.snapshot.received_at),
                "lead": self.snapshot.lead.to_dict(),
                "deliveries": {k: vars(v) for k, v in self.snapshot.deliveries.items()},
            }
            with_snapshot = json.dumps({**payload, "etag": self.etag, "snapshot": snapshot}, ensure_ascii=False)
            # Too big for one message (64 KiB after base64 of its UTF-8): the id alone; delivery reads the lead.
            if queue_message_fits(with_snapshot):
                return with_snapshot
        return json.dumps(payload)


def decode_message(text: str) -> DeliveryMessage:
    """Raises ValueError (or KeyError/TypeError) for a message that is not ours: it ends up poison."""
    payload = json.loads(text)
    lead_id = str(payload["id"])
    traceparent = str(payload.get("tp") or "")
    snapshot = payload.get("snapshot")
    if not snapshot or not payload.get("etag"):
        return DeliveryMessage(lead_id, traceparent=traceparent)
    received = parse_iso(snapshot["received_at"])
    if received is None:
        raise ValueError("snapshot without received_at")
    stored = StoredLead(
        id=lead_id,
        received_at=received,
        lead=Lead.from_dict(snapshot["lead"]),
        deliveries={k: DeliveryState.from_dict(v) for k, v in snapshot["deliveries"].items()},
    )
    return DeliveryMessage(lead_id, str(payload["etag"]), stored, traceparent)


def seconds_until(moment: datetime, now: datetime) -> int:
    return max(0, int((moment - now).total_seconds() + 0.999))
