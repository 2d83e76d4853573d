"""Seed many leads fast: rows built by the app's own entity builder (leads/storage/table_store.py lead_entity), 100
per transaction (Azure's batch limit), so the table holds exactly what ingest and delivery would write."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from itertools import islice

from leads.core import policy
from leads.core.keys import new_lead_id
from leads.core.model import BLOCKED, DELIVERED, FAILED, RETRYING, SKIPPED, Customer, DeliveryState, Lead, StoredLead
from leads.storage.index_rows import index_entities
from leads.storage.table_store import LeadTable, lead_entity

_ACTIONS = ("INS", "PLT", "CREATE", "STARTTESTDRIVE", "DNC")
_STATES = (DELIVERED, DELIVERED, DELIVERED, FAILED, BLOCKED, RETRYING, SKIPPED)


def seed(table: LeadTable, leads: Iterable[StoredLead], indexed: bool = True) -> int:
    """Store `leads` (ids unique, one partition) in batches of 100; returns how many. `indexed`: with the index rows
    the app writes with each lead (leads/storage/index_rows.py); without, as a version before the index wrote them
    (then `python -m leads reindex` / Privacy.reindex backfills them)."""
    count, rows = 0, iter(leads)
    secret = table.marker_secret.get() if indexed else b""
    while batch := list(islice(rows, 100)):
        table.leads.submit_transaction([("create", lead_entity(stored)) for stored in batch])
        index = [row for stored in batch for row in index_entities(
            secret, stored.id, stored.lead.customer.email, stored.lead.is_test, stored.received_at)] if indexed else []
        for start in range(0, len(index), 100):
            table.leads.submit_transaction([("create", row) for row in index[start:start + 100]])
        count += len(batch)
    return count


def varied_lead(n: int, now: datetime, spacing: timedelta = timedelta(minutes=5)) -> StoredLead:
    """Lead number `n`, received `n * spacing` ago: a mix of actions, offers, test leads and states."""
    moment = now - n * spacing
    state = _STATES[n % len(_STATES)]
    attempts = 0 if state == SKIPPED else 1 + n % 3
    email = DeliveryState(state=state, attempts=attempts,
                          last_error="" if state == DELIVERED else f"Seeded {state} answer {n}.",
                          record_id=f"msg-{n}" if state == DELIVERED else "")
    email = policy.with_attempt(email, moment, state, email.last_error or "Delivered.", email.record_id)
    lead = Lead(customer=Customer(first_name=f"First{n}", last_name=f"Last{n}", email=f"person{n}@example{n % 50}.com",
                                  country="US", company=f"Company {n % 400} Ltd"),
                action_code=_ACTIONS[n % len(_ACTIONS)], offer_title=f"Offer {n % 7}", is_test=n % 10 == 0)
    return StoredLead(new_lead_id(moment), moment, lead, {"email": email})
