"""What an operator needs at a glance, without personal data: open breakers, recent leads' states."""

from __future__ import annotations

from typing import Any

from leads.core.model import iso, utcnow
from leads.services.context import Runtime


def status_report(rt: Runtime, recent: int = 20) -> dict[str, Any]:
    now = utcnow()
    return {
        "destinations": list(rt.settings.destinations),
        "routing": {name: rt.settings.routing.describe(name) for name in rt.settings.destinations},  # which leads
        # Sentences naming each bad setting: a destination blocked by one, a global one replaced by its default.
        "blocked_by_settings": {name: sentence for name, sentence in rt.settings.problems.items()
                                if name in rt.settings.destinations},
        "settings_ignored": dict(rt.settings.warnings),
        "open_breakers": [
            {"destination": b.destination, "reason": b.reason, "open_until": iso(b.open_until)}
            for b in rt.table.breakers() if b.open_until > now
        ],
        # Every lead with a failed or blocked destination (`python -m leads replay --failed` replays them).
        "needs_attention": [{"id": lead_id, "status": status} for lead_id, status in rt.table.needing_attention(100)],
        "recent_leads": [
            {
                "id": stored.id,
                "received_at": iso(stored.received_at),
                "status": stored.status,
                "test": stored.lead.is_test,
                "duplicate_arrivals": stored.duplicates,  # the same lead received again (de-duplicated)
                "deliveries": {name: {"state": d.state, "attempts": d.attempts, "last_error": d.last_error}
                               for name, d in stored.deliveries.items()},
            }
            for stored in rt.table.recent(recent)
        ],
    }
