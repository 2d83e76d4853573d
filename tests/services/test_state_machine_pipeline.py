"""The state machine and the scheduler on a real pipeline (Azurite): a destination dropped from the settings
for a while is parked and resumes (defect 4), blocked re-checks leave the transient schedule whole (defect 3),
the outbox row of a lead that is gone is deleted (defect 7), and a delivery that keeps failing before it claims
keeps one chain, with state and a notice (defect 8)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from azure.data.tables import UpdateMode

from leads.core.breaker import CircuitBreakers
from leads.core.errors import ConfigurationError, TransientDestinationError
from leads.core.messages import DeliveryMessage, decode_message
from leads.core.model import BLOCKED, DELIVERED, PARKED, RETRYING
from leads.services.delivery import DeliveryService
from leads.services.poison import PoisonRequeue
from leads.services.sweeper import Sweeper
from tests.services.test_pipeline import body
from tests.support.pipeline import Pipeline, RecordingDestination, build_pipeline

pytestmark = pytest.mark.azurite


@pytest.fixture
def pipeline(azurite, tmp_path: Path) -> Pipeline:
    return build_pipeline(azurite.connection_string, str(tmp_path / "spool"),
                          {"email": RecordingDestination("email"), "hubspot": RecordingDestination("hubspot", True)})


def delivery_with(pipeline: Pipeline, names: tuple[str, ...]) -> DeliveryService:
    """The pipeline's delivery, as an instance whose LEADS_DESTINATIONS names only `names` would run it."""
    settings = replace(pipeline.settings, destinations=names)
    return DeliveryService(pipeline.table, pipeline.runtime.queue,
                           {name: pipeline.destinations[name] for name in names}, settings, CircuitBreakers(),
                           clock=pipeline.clock)


def test_defect_4_a_destination_left_out_of_the_settings_for_a_while_is_parked_then_delivered(
        pipeline: Pipeline) -> None:
    lead_id = pipeline.ingest.receive("POST", body()).body["id"]
    [message] = pipeline.queued()
    delivery_with(pipeline, ("email",)).handle(message)  # a rolling settings change: hubspot missing for now

    loaded = pipeline.table.load(lead_id)
    assert loaded is not None
    hubspot = loaded.stored.deliveries["hubspot"]
    assert (loaded.stored.deliveries["email"].state, hubspot.state) == (DELIVERED, PARKED)
    assert "LEADS_DESTINATIONS" in hubspot.last_error
    assert (lead_id, PARKED) in pipeline.table.needing_attention()  # listed: status, console, replay --failed
    assert pipeline.destinations["hubspot"].received == []

    pipeline.clock.offset += 3600 + 120  # the hourly re-check, with hubspot named again
    [due] = pipeline.table.due_work(pipeline.clock())
    assert due.lead_id == lead_id
    pipeline.delivery.handle(_message(lead_id))
    loaded = pipeline.table.load(lead_id)
    assert loaded is not None and loaded.stored.deliveries["hubspot"].state == DELIVERED
    assert pipeline.destinations["hubspot"].received == [lead_id]
    assert pipeline.destinations["email"].received == [lead_id]  # once: resuming re-sends nothing else
    assert pipeline.table.needing_attention() == [] and pipeline.table.due_work(pipeline.clock()) == []


def test_defect_3_after_a_long_block_is_fixed_the_first_429_is_retried_not_failed(pipeline: Pipeline) -> None:
    hubspot = pipeline.destinations["hubspot"]
    steps = len(pipeline.settings.retry_delays)
    hubspot.script = [ConfigurationError("HubSpot refused the token: set LEADS_HUBSPOT_TOKEN.")] * (steps * 3) + [
        TransientDestinationError("HubSpot answered 429; will retry.", retry_after=1)]
    lead_id = pipeline.ingest.receive("POST", body()).body["id"]
    pipeline.delivery.handle(pipeline.queued()[0])
    for _ in range(steps * 3):  # each blocked re-check, then the fixed setting's first try
        pipeline.clock.offset += 3601
        pipeline.delivery.breakers = CircuitBreakers()  # (the breaker would skip the call: not what is tested)
        pipeline.delivery.handle(_message(lead_id))
    loaded = pipeline.table.load(lead_id)
    assert loaded is not None
    state = loaded.stored.deliveries["hubspot"]
    assert len(hubspot.received) == steps * 3 + 1
    assert (state.state, state.retries, state.blocked_checks) == (RETRYING, 1, steps * 3), state.last_error
    assert [entry["outcome"] for entry in state.history][-2:] == [BLOCKED, RETRYING]


def _message(lead_id: str) -> DeliveryMessage:
    """A message without a snapshot, as the sweeper sends."""
    return DeliveryMessage(lead_id)


def test_defect_7_the_outbox_row_of_a_lead_that_no_longer_exists_is_deleted(pipeline: Pipeline) -> None:
    from leads.core import keys

    gone = "20260101T000000000Z-0000dead"  # forgotten or purged, its outbox row left behind
    pipeline.table.leads.upsert_entity({"PartitionKey": keys.LEADS_PARTITION, "RowKey": keys.outbox_row_key(gone),
                                        "LeadId": gone, "DueAt": pipeline.clock() - timedelta(minutes=1)})
    sweeper = Sweeper(pipeline.table, pipeline.runtime.queue, pipeline.ingest, pipeline.runtime.spool,
                      clock=pipeline.clock)
    assert sweeper.sweep().requeued == 1
    [message] = pipeline.queued()
    assert pipeline.delivery.handle(message).note == "not found"
    pipeline.clock.offset += 86400
    assert pipeline.table.due_work(pipeline.clock()) == []  # was re-enqueued every few minutes, for ever
    assert sweeper.sweep().requeued == 0


def test_defect_8_a_delivery_that_fails_before_it_claims_keeps_one_chain_and_leaves_state_and_a_notice(
        pipeline: Pipeline) -> None:
    from leads.core import keys

    lead_id = pipeline.ingest.receive("POST", body()).body["id"]
    # A row the worker cannot read (a rollback to a version that wrote something else, say).
    pipeline.table.leads.update_entity({"PartitionKey": keys.LEADS_PARTITION, "RowKey": keys.lead_row_key(lead_id),
                                        "Deliveries": "{not json"}, mode=UpdateMode.MERGE)
    queue = pipeline.runtime.queue
    told: list[tuple[str, str]] = []
    sweeper = Sweeper(pipeline.table, queue, pipeline.ingest, pipeline.runtime.spool, clock=pipeline.clock,
                      requeue_again=timedelta(seconds=60),
                      poisoned=PoisonRequeue(queue.poison_queue(), queue, pipeline.table, 0),
                      notify=lambda lead, sentence: told.append((lead, sentence)))

    def host() -> int:
        """The Functions host: each message fails every dequeue and goes to the poison queue, as is."""
        messages = list(queue.queue.receive_messages(max_messages=32, visibility_timeout=1))
        for message in messages:
            with pytest.raises(ValueError):
                pipeline.delivery.handle(decode_message(message.content))
            queue.poison.send_message(message.content)
            queue.queue.delete_message(message.id, message.pop_receipt)
        return len(messages)

    chains = [host()]  # the ingest's own message
    pipeline.clock.offset += 180  # the outbox row is due (2 minutes after intake)
    for _ in range(8):
        sweeper.sweep()
        chains.append(host())
        pipeline.clock.offset += 61
    print(f"\nmessages delivered to the host per sweep, for a lead whose row cannot be read: {chains}")
    assert max(chains) == 1, chains  # one chain: each sweep used to add one more (poison re-enqueue + outbox)
    assert sum(chains[-4:]) < 4  # stuck: woken less and less often, never abandoned
    row = pipeline.table.outbox_row(lead_id)
    assert row is not None and row["Wakeups"] >= 3 and "woken" in row["Stuck"]
    assert [lead for lead, _ in told] == [lead_id]  # one notice
    assert "Ana" not in told[0][1] and "python -m leads show" in told[0][1]
    assert not any(True for _ in queue.poison.receive_messages(max_messages=32, visibility_timeout=1))


def test_a_poison_message_is_dropped_once_its_outbox_row_is_safe_and_starts_no_chain(pipeline: Pipeline) -> None:
    from leads.core import keys

    queue = pipeline.runtime.queue
    waiting = pipeline.ingest.receive("POST", body()).body["id"]
    pipeline.queued()  # its message went to poison, as is
    gone = "20260101T000000000Z-0000dead"
    pipeline.table.leads.upsert_entity({"PartitionKey": keys.LEADS_PARTITION, "RowKey": keys.outbox_row_key(gone),
                                        "LeadId": gone, "DueAt": pipeline.clock()})
    pipeline.table.leads.update_entity({"PartitionKey": keys.LEADS_PARTITION,
                                        "RowKey": keys.outbox_row_key(waiting),
                                        "DueAt": pipeline.clock() + timedelta(hours=5)}, mode=UpdateMode.MERGE)
    for lead_id in (waiting, gone, "not a lead id"):
        queue.poison.send_message(DeliveryMessage(lead_id).encode())

    assert PoisonRequeue(queue.poison_queue(), queue, pipeline.table, 60).requeue() == 3
    assert pipeline.queued() == []  # nothing enqueued: the outbox rows are the one scheduler
    assert pipeline.table.outbox_row(gone) is None  # the lead is gone: its row with it
    due = pipeline.table.outbox_due(waiting)  # the failed wake-up was for now: due now, not in 5 hours
    assert due is not None and due <= pipeline.clock() + timedelta(minutes=1)
    assert not any(True for _ in queue.poison.receive_messages(max_messages=32, visibility_timeout=1))


def test_a_lead_the_previous_version_left_retrying_loads_and_goes_on_where_it_was(pipeline: Pipeline) -> None:
    """No migration to run: its row (no `retries`, `blocked_checks`) is read, migrated on read, and delivered."""
    import json

    from leads.core import keys

    lead_id = pipeline.ingest.receive("POST", body()).body["id"]
    pipeline.queued()
    old = {"email": {"state": "delivered", "attempts": 1, "delivered_at": "2026-01-01T00:00:00.000Z",
                     "last_error": "", "record_id": "m", "lease_until": "", "next_attempt_at": "",
                     "expired_claims": 0, "history": []},
           "hubspot": {"state": "retrying", "attempts": 3, "delivered_at": "", "last_error": "429; will retry.",
                       "record_id": "", "lease_until": "", "next_attempt_at": "2026-01-01T00:00:00.000Z",
                       "expired_claims": 0, "history": []}}
    pipeline.table.leads.update_entity({"PartitionKey": keys.LEADS_PARTITION, "RowKey": keys.lead_row_key(lead_id),
                                        "Deliveries": json.dumps(old)}, mode=UpdateMode.MERGE)
    loaded = pipeline.table.load(lead_id)
    assert loaded is not None and loaded.stored.deliveries["hubspot"].retries == 3  # its place in the schedule
    pipeline.delivery.handle(_message(lead_id))
    done = pipeline.table.load(lead_id)
    assert done is not None and {n: d.state for n, d in done.stored.deliveries.items()} == {
        "email": DELIVERED, "hubspot": DELIVERED}
    assert pipeline.destinations["email"].received == [] and pipeline.destinations["hubspot"].received == [lead_id]
