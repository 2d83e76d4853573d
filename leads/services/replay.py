"""Replay: failed (and blocked) destinations of a lead go back to their first state and the lead is enqueued
again. A destination a worker is sending to right now, or one delivered, is left alone."""

from __future__ import annotations

from collections.abc import Iterator

from leads.core import policy
from leads.core.errors import ConcurrentUpdateError
from leads.core.messages import DeliveryMessage
from leads.core.model import utcnow
from leads.services.context import Runtime

_ATTEMPTS = 5


def replay_leads(rt: Runtime, lead_ids: list[str], only_failed: bool = True) -> Iterator[str]:
    for lead_id in dict.fromkeys(lead_ids):
        yield f"{lead_id}: {_replay_one(rt, lead_id, only_failed)}"


def leads_needing_attention(rt: Runtime) -> list[str]:
    """Every lead with a failed or blocked destination (the `attention:` index rows), however old."""
    return [lead_id for lead_id, _status in rt.table.needing_attention()]


def _replay_one(rt: Runtime, lead_id: str, only_failed: bool) -> str:
    settings = rt.settings
    for _ in range(_ATTEMPTS):
        try:
            current = rt.table.load(lead_id)
        except ValueError:
            return "not a lead id"
        if current is None:
            return "not found"
        now = utcnow()
        reset = policy.replay(current.stored, now, settings.routing, only_failed)
        if reset == current.stored:
            return "nothing to replay (" + current.stored.status + ")"
        try:
            rt.table.save(reset, current.etag, outbox_due=now, previous=current.stored)
        except ConcurrentUpdateError:
            continue
        rt.queue.send(DeliveryMessage(lead_id))
        return "queued again"
    return "kept changing; try again"
