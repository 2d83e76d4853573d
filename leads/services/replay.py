"""Replay, the one path (CLI, management API and console all come here): chosen destinations of a lead go
back to their first state through the state machine (leads/core/transitions.py, event `replay`) and the
lead is enqueued again. A destination a worker is sending to right now, or one delivered, is left alone."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from leads.core import policy
from leads.core.errors import ConcurrentUpdateError
from leads.core.messages import DeliveryMessage
from leads.core.model import DeliveryState, utcnow
from leads.services.context import Runtime

_ATTEMPTS = 5
Wanted = Callable[[str, DeliveryState], bool]

NOT_A_LEAD_ID, NOT_FOUND, NOTHING, QUEUED, KEPT_CHANGING = (
    "not a lead id", "not found", "nothing to replay", "queued again", "kept changing")


@dataclass(frozen=True)
class Replayed:
    outcome: str  # one of the five above
    status: str = ""  # the lead's status when nothing was replayed
    again: tuple[str, ...] = ()  # the destinations put back

    @property
    def queued(self) -> bool:
        return self.outcome == QUEUED


def replay_leads(rt: Runtime, lead_ids: list[str], only_failed: bool = True) -> Iterator[str]:
    for lead_id in dict.fromkeys(lead_ids):
        done = replay_lead(rt, lead_id, only_failed=only_failed)
        yield f"{lead_id}: {done.outcome}" + (f" ({done.status})" if done.outcome == NOTHING else "") \
            if done.outcome != KEPT_CHANGING else f"{lead_id}: kept changing; try again"


def leads_needing_attention(rt: Runtime) -> list[str]:
    """Every lead with a failed, blocked or parked destination (the `attention:` index rows), however old."""
    return [lead_id for lead_id, _status in rt.table.needing_attention()]


def replay_lead(rt: Runtime, lead_id: str, only_failed: bool = True, wanted: Wanted | None = None) -> Replayed:
    """Replay one lead: its failed, blocked and parked destinations (only_failed=False: every one not
    delivered; `wanted`: those it picks). The write is ETag-conditional, with its outbox row due now."""
    for _ in range(_ATTEMPTS):
        try:
            current = rt.table.load(lead_id)
        except ValueError:
            return Replayed(NOT_A_LEAD_ID)
        if current is None:
            return Replayed(NOT_FOUND)
        now = utcnow()
        reset = policy.replay(current.stored, now, rt.settings.routing, only_failed, wanted)
        again = tuple(sorted(name for name, state in reset.deliveries.items()
                             if state != current.stored.deliveries.get(name)))
        if not again:
            return Replayed(NOTHING, current.stored.status)
        try:
            rt.table.save(reset, current.etag, outbox_due=now, previous=current.stored)
        except ConcurrentUpdateError:
            continue
        rt.queue.send(DeliveryMessage(lead_id))
        return Replayed(QUEUED, again=again)
    return Replayed(KEPT_CHANGING)
