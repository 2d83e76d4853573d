"""The state machine and the scheduler on a real pipeline (Azurite): a destination dropped from the settings
for a while is parked and resumes (defect 4), blocked re-checks leave the transient schedule whole (defect 3),
the outbox row of a lead that is gone is deleted (defect 7), and a delivery that keeps failing before it claims
keeps one chain, with state and a notice (defect 8)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from leads.core.breaker import CircuitBreakers
from leads.core.errors import ConfigurationError, TransientDestinationError
from leads.core.messages import DeliveryMessage
from leads.core.model import BLOCKED, DELIVERED, PARKED, RETRYING
from leads.services.delivery import DeliveryService
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
