"""Delivery decisions (plain Python): which destinations, when, and what an answer does to the state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leads import policy
from leads.destinations.base import Delivered, Skipped
from leads.errors import ConfigurationError, LeadRejectedError, TransientDestinationError
from leads.model import (
    BLOCKED,
    DELIVERED,
    FAILED,
    PENDING,
    RETRYING,
    SENDING,
    SKIPPED,
    Customer,
    DeliveryState,
    Lead,
    StoredLead,
    iso,
)
from leads.settings import load_settings

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
DELAYS = (30, 120, 600)
FLAGS = {"email": False, "webhook": False, "dynamics": True, "hubspot": True}


def stored(lead: Lead | None = None, **deliveries: DeliveryState) -> StoredLead:
    return StoredLead("20261121T120000000Z-00000000", NOW, lead or Lead(customer=Customer(email="a@b.example")),
                      deliveries)


def test_test_leads_go_to_email_and_webhook_but_not_to_crms_by_default() -> None:
    states = policy.initial_deliveries(Lead(is_test=True), FLAGS, forward_test_leads=False)
    assert states["email"].state == PENDING
    assert states["webhook"].state == PENDING
    assert states["dynamics"].state == SKIPPED
    assert "LEADS_FORWARD_TEST_LEADS=true" in states["hubspot"].last_error


def test_test_leads_go_to_crms_when_the_setting_says_so() -> None:
    states = policy.initial_deliveries(Lead(is_test=True), FLAGS, forward_test_leads=True)
    assert {s.state for s in states.values()} == {PENDING}


def test_real_leads_go_everywhere() -> None:
    states = policy.initial_deliveries(Lead(), FLAGS, forward_test_leads=False)
    assert {s.state for s in states.values()} == {PENDING}


def test_claimed_destination_is_not_due_until_its_lease_runs_out() -> None:
    lead = policy.claim(stored(email=DeliveryState()), ["email"], NOW, timedelta(minutes=10))
    assert lead.deliveries["email"].state == SENDING
    assert lead.deliveries["email"].attempts == 1
    assert policy.due_destinations(lead, NOW + timedelta(minutes=9)) == []
    assert policy.due_destinations(lead, NOW + timedelta(minutes=11)) == ["email"]


def test_retrying_destination_is_due_at_its_next_attempt() -> None:
    lead = stored(email=DeliveryState(state=RETRYING, attempts=1, next_attempt_at=iso(NOW + timedelta(seconds=30))))
    assert policy.due_destinations(lead, NOW) == []
    assert policy.due_destinations(lead, NOW + timedelta(seconds=31)) == ["email"]


def test_finished_destinations_are_never_due() -> None:
    lead = stored(a=DeliveryState(state=DELIVERED), b=DeliveryState(state=SKIPPED), c=DeliveryState(state=FAILED))
    assert policy.due_destinations(lead, NOW + timedelta(days=30)) == []
    assert lead.finished


def test_delivered_records_the_destination_record_id() -> None:
    state = policy.apply_outcome(DeliveryState(state=SENDING, attempts=1), Delivered("crm-42"), NOW, DELAYS)
    assert (state.state, state.record_id, state.delivered_at, state.lease_until) == (DELIVERED, "crm-42", iso(NOW), "")


def test_transient_failure_waits_by_the_schedule() -> None:
    state = DeliveryState(state=SENDING, attempts=2)
    result = policy.apply_outcome(state, TransientDestinationError("down"), NOW, DELAYS)
    assert result.state == RETRYING
    assert result.next_attempt_at == iso(NOW + timedelta(seconds=120))
    assert result.last_error == "down"


def test_retry_after_longer_than_the_schedule_is_honoured() -> None:
    result = policy.apply_outcome(DeliveryState(state=SENDING, attempts=1),
                                  TransientDestinationError("429", retry_after=900), NOW, DELAYS)
    assert result.next_attempt_at == iso(NOW + timedelta(seconds=900))


def test_schedule_spent_means_failed_with_the_reason_and_how_to_replay() -> None:
    result = policy.apply_outcome(DeliveryState(state=SENDING, attempts=4), TransientDestinationError("down"),
                                  NOW, DELAYS)
    assert result.state == FAILED
    assert "Gave up after 4 attempts" in result.last_error
    assert "down" in result.last_error
    assert "python -m leads replay" in result.last_error


def test_configuration_error_blocks_and_retries_slowly() -> None:
    result = policy.apply_outcome(DeliveryState(state=SENDING, attempts=1), ConfigurationError("bad secret"),
                                  NOW, DELAYS)
    assert result.state == BLOCKED
    assert result.last_error == "bad secret"
    assert result.next_attempt_at == iso(NOW + timedelta(seconds=30))


def test_rejected_lead_fails_at_once() -> None:
    result = policy.apply_outcome(DeliveryState(state=SENDING, attempts=1), LeadRejectedError("rule X"), NOW, DELAYS)
    assert (result.state, result.last_error) == (FAILED, "rule X")


def test_skipped_is_recorded_with_its_reason() -> None:
    result = policy.apply_outcome(DeliveryState(state=SENDING, attempts=1), Skipped("no e-mail"), NOW, DELAYS)
    assert (result.state, result.last_error) == (SKIPPED, "no e-mail")


def test_default_retry_schedule_spans_at_least_24_hours() -> None:
    delays = load_settings({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}).retry_delays
    assert sum(delays) >= 24 * 3600


def test_reconcile_adds_new_destinations_and_skips_removed_ones() -> None:
    lead = stored(email=DeliveryState(state=DELIVERED), old=DeliveryState(state=RETRYING))
    result = policy.reconcile(lead, {"email": False, "dynamics": True}, forward_test_leads=False)
    assert result.deliveries["dynamics"].state == PENDING
    assert result.deliveries["old"].state == SKIPPED
    assert result.deliveries["email"].state == DELIVERED


def test_give_up_fails_only_unfinished_destinations() -> None:
    lead = stored(email=DeliveryState(state=DELIVERED), hubspot=DeliveryState(state=RETRYING))
    result = policy.give_up(lead, "poison")
    assert result.deliveries["email"].state == DELIVERED
    assert (result.deliveries["hubspot"].state, result.deliveries["hubspot"].last_error) == (FAILED, "poison")


def test_replay_resets_failed_destinations_only() -> None:
    lead = stored(email=DeliveryState(state=DELIVERED, attempts=1), hubspot=DeliveryState(state=FAILED, attempts=9))
    result = policy.replay(lead)
    assert result.deliveries["email"].state == DELIVERED
    assert result.deliveries["hubspot"] == DeliveryState()


def test_next_due_is_the_earliest_wait() -> None:
    soon, later = NOW + timedelta(seconds=30), NOW + timedelta(hours=1)
    lead = stored(a=DeliveryState(state=RETRYING, next_attempt_at=iso(later)),
                  b=DeliveryState(state=BLOCKED, next_attempt_at=iso(soon)), c=DeliveryState(state=DELIVERED))
    assert policy.next_due(lead) == soon
    assert policy.next_due(stored(c=DeliveryState(state=DELIVERED))) is None
