"""The attempt history of each destination: appended by every answer and every crash, capped, kept across a
replay, read back from rows written before it existed, and trimmed to fit Azure's property limit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from leads.core import policy
from leads.core.azure_limits import STRING_CHUNK_UNITS, utf16_units
from leads.core.destination import Delivered, Skipped
from leads.core.errors import ConfigurationError, TransientDestinationError
from leads.core.model import FAILED, SENDING, Customer, DeliveryState, Lead, StoredLead, iso
from leads.core.routing import Routing
from leads.storage.table_store import deliveries_json, lead_entity, stored_from_entity
from tests.support.pipeline import RecordingDestination, build_pipeline

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
DELAYS = (30, 120, 600)
LEAD_ID = "20261121T120000000Z-00000000"


def lead(**deliveries: DeliveryState) -> StoredLead:
    return StoredLead(LEAD_ID, NOW, Lead(customer=Customer(email="a@b.example")), deliveries)


def test_each_answer_is_one_attempt_with_its_sentence() -> None:
    state = DeliveryState(state=SENDING, attempts=1)
    answers: list[Any] = [TransientDestinationError("timed out"), ConfigurationError("bad key: set X."),
                          Delivered("crm-7")]
    current = lead(crm=state)
    for n, answer in enumerate(answers):
        if n:  # each answer comes to a claim
            current = policy.claim(current, ["crm"], NOW + timedelta(minutes=n), timedelta(minutes=10), DELAYS)
        current = policy.record(current, {"crm": answer}, NOW + timedelta(minutes=n), DELAYS)
    history = current.deliveries["crm"].history
    assert [h["outcome"] for h in history] == ["retrying", "blocked", "delivered"]
    assert history[0] == {"at": iso(NOW), "outcome": "retrying", "sentence": "timed out", "record_id": ""}
    assert history[-1]["record_id"] == "crm-7" and history[-1]["sentence"] == "Delivered."
    skipped = policy.record(lead(crm=state), {"crm": Skipped("no e-mail")}, NOW, DELAYS).deliveries["crm"].history
    assert [(h["outcome"], h["sentence"]) for h in skipped] == [("skipped", "no e-mail")]


def test_the_id_placeholder_is_filled_in_the_history_too() -> None:
    spent = lead(crm=DeliveryState(state=SENDING, attempts=4, retries=3))
    failed = policy.record(spent, {"crm": TransientDestinationError("down")}, NOW, DELAYS)
    assert failed.deliveries["crm"].state == FAILED
    assert f"python -m leads replay {LEAD_ID}" in failed.deliveries["crm"].history[-1]["sentence"]


def test_capped_and_sentences_cut() -> None:
    current = lead(crm=DeliveryState(state=SENDING, attempts=1))
    for n in range(policy.HISTORY_LIMIT + 5):
        if n:
            current = policy.claim(current, ["crm"], NOW, timedelta(minutes=10), (1,) * 99)
        current = policy.record(current, {"crm": TransientDestinationError(f"try {n} " + "x" * 1000)}, NOW, (1,) * 99)
    history = current.deliveries["crm"].history
    assert len(history) == policy.HISTORY_LIMIT and history[0]["sentence"].startswith("try 5 ")
    assert all(len(h["sentence"]) == policy.SENTENCE_LIMIT for h in history)


def test_a_crash_is_an_attempt_and_replay_keeps_the_history() -> None:
    expired = DeliveryState(state=SENDING, attempts=1, lease_until=iso(NOW - timedelta(seconds=1)))
    taken_over = policy.claim(lead(crm=expired), ["crm"], NOW, timedelta(minutes=10))
    assert [h["outcome"] for h in taken_over.deliveries["crm"].history] == [policy.CRASHED]
    looping = DeliveryState(state=SENDING, attempts=4, expired_claims=3, lease_until=iso(NOW - timedelta(seconds=1)))
    settled = policy.settle_crashes(lead(crm=looping), NOW, DELAYS)
    assert settled.deliveries["crm"].state == FAILED
    assert [h["outcome"] for h in settled.deliveries["crm"].history] == [policy.CRASHED]
    replayed = policy.replay(settled, NOW, Routing(("crm",)), False)
    assert replayed.deliveries["crm"].state == "pending"
    assert replayed.deliveries["crm"].history == settled.deliveries["crm"].history


def test_rows_written_before_the_history_load() -> None:
    entity = lead_entity(lead(email=DeliveryState()))
    entity["Deliveries"] = json.dumps({"email": {"state": "delivered", "attempts": 1, "delivered_at": "",
                                                 "last_error": "", "record_id": "m", "lease_until": "",
                                                 "next_attempt_at": "", "expired_claims": 0}})
    assert stored_from_entity(entity).deliveries["email"].history == ()


def test_full_histories_of_every_destination_fit_one_property(azurite: Any, tmp_path: Path) -> None:
    """Six destinations with full histories of long non-ASCII sentences: the column is trimmed, oldest first,
    and the row is accepted (the test-wide enforcer refuses what Azure would)."""
    entry = {"at": iso(NOW), "outcome": "failed", "sentence": "é" * policy.SENTENCE_LIMIT, "record_id": "r" * 200}
    names = ("email", "webhook", "dynamics", "salesforce", "marketo", "hubspot")
    full = DeliveryState(state=FAILED, attempts=20, last_error="ü" * 1000,
                         history=tuple(dict(entry, at=iso(NOW + timedelta(seconds=n))) for n in range(20)))
    stored = lead(**dict.fromkeys(names, full))
    text = deliveries_json(stored)
    assert utf16_units(text) <= STRING_CHUNK_UNITS
    kept = json.loads(text)
    assert all(kept[name]["history"][-1]["at"] == iso(NOW + timedelta(seconds=19)) for name in names)
    assert sum(len(kept[name]["history"]) for name in names) < 6 * 20  # trimmed, the newest kept
    pipeline = build_pipeline(azurite.connection_string, str(tmp_path), {"email": RecordingDestination("email")})
    pipeline.table.leads.create_entity(lead_entity(stored))
    loaded = pipeline.table.load(LEAD_ID)
    assert loaded is not None and len(loaded.stored.deliveries["hubspot"].history) >= 1
