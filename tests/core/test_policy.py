"""Delivery decisions (plain Python): which destinations, when, and what an answer does to the state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leads.core import policy
from leads.core.destination import Delivered, Skipped
from leads.core.errors import ConfigurationError, LeadRejectedError, TransientDestinationError
from leads.core.model import (
    BLOCKED,
    DELIVERED,
    FAILED,
    PARKED,
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
from leads.core.routing import Routing
from leads.core.settings import load_settings

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
DELAYS = (30, 120, 600)
ROUTING = Routing(("email", "webhook", "dynamics", "hubspot"))
FORWARDING = Routing(ROUTING.destinations, forward_test_leads=True)


def stored(lead: Lead | None = None, **deliveries: DeliveryState) -> StoredLead:
    return StoredLead("20261121T120000000Z-00000000", NOW, lead or Lead(customer=Customer(email="a@b.example")),
                      deliveries)


def test_test_leads_go_to_email_and_webhook_but_not_to_crms_by_default() -> None:
    states = policy.initial_deliveries(Lead(is_test=True), ROUTING)
    assert states["email"].state == PENDING
    assert states["webhook"].state == PENDING
    assert states["dynamics"].state == SKIPPED
    assert "LEADS_FORWARD_TEST_LEADS=true" in states["hubspot"].last_error


def test_test_leads_go_to_crms_when_the_setting_says_so() -> None:
    states = policy.initial_deliveries(Lead(is_test=True), FORWARDING)
    assert {s.state for s in states.values()} == {PENDING}


def test_real_leads_go_everywhere() -> None:
    states = policy.initial_deliveries(Lead(), ROUTING)
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
    state = DeliveryState(state=SENDING, attempts=2, retries=1)  # the second try, after one transient failure
    result = policy.apply_outcome(state, TransientDestinationError("down"), NOW, DELAYS)
    assert result.state == RETRYING
    assert result.next_attempt_at == iso(NOW + timedelta(seconds=120))
    assert result.last_error == "down"


def test_retry_after_longer_than_the_schedule_is_honoured() -> None:
    result = policy.apply_outcome(DeliveryState(state=SENDING, attempts=1),
                                  TransientDestinationError("429", retry_after=900), NOW, DELAYS)
    assert result.next_attempt_at == iso(NOW + timedelta(seconds=900))


def test_schedule_spent_means_failed_with_the_reason_and_how_to_replay() -> None:
    result = policy.apply_outcome(DeliveryState(state=SENDING, attempts=4, retries=3),
                                  TransientDestinationError("down"), NOW, DELAYS)
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


def test_blocked_waits_for_the_fix_for_ever_rechecking_at_most_hourly() -> None:
    delays = (30, 7200, 43200)
    for checks, expected in ((1, 3600), (2, 3600), (49, 3600)):  # past the schedule: still blocked, hourly
        result = policy.apply_outcome(DeliveryState(state=SENDING, attempts=checks + 1, blocked_checks=checks),
                                      ConfigurationError("bad secret"), NOW, delays)
        assert (result.state, result.next_attempt_at) == (BLOCKED, iso(NOW + timedelta(seconds=expected)))


def test_rejected_lead_fails_at_once() -> None:
    result = policy.apply_outcome(DeliveryState(state=SENDING, attempts=1), LeadRejectedError("rule X"), NOW, DELAYS)
    assert (result.state, result.last_error) == (FAILED, "rule X")


def test_skipped_is_recorded_with_its_reason() -> None:
    result = policy.apply_outcome(DeliveryState(state=SENDING, attempts=1), Skipped("no e-mail"), NOW, DELAYS)
    assert (result.state, result.last_error) == (SKIPPED, "no e-mail")


def test_default_retry_schedule_spans_at_least_24_hours() -> None:
    delays = load_settings({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}).retry_delays
    assert sum(delays) >= 24 * 3600


def test_reconcile_adds_new_destinations_and_parks_removed_ones() -> None:
    lead = stored(email=DeliveryState(state=DELIVERED), old=DeliveryState(state=RETRYING))
    result = policy.reconcile(lead, Routing(("email", "dynamics")), NOW)
    assert result.deliveries["dynamics"].state == PENDING
    assert result.deliveries["old"].state == PARKED
    assert result.deliveries["email"].state == DELIVERED


def test_claims_that_keep_expiring_end_in_failed_saying_delivery_kept_crashing() -> None:
    lease = timedelta(minutes=10)
    lead = stored(email=DeliveryState(state=DELIVERED), hubspot=DeliveryState())
    for crash in range(len(DELAYS) + 1):  # each claim's worker dies: the lease runs out, the next worker takes over
        now = NOW + crash * 2 * lease
        lead = policy.settle_crashes(lead, now, DELAYS)
        assert policy.due_destinations(lead, now) == ["hubspot"]
        lead = policy.claim(lead, ["hubspot"], now, lease)
    assert lead.deliveries["hubspot"].expired_claims == len(DELAYS)  # a try and a retry per step, all crashed
    settled = policy.settle_crashes(lead, NOW + 10 * lease, DELAYS)
    hubspot = settled.deliveries["hubspot"]
    assert hubspot.state == FAILED and "Delivery kept crashing" in hubspot.last_error
    assert f"python -m leads replay {lead.id}" in hubspot.last_error
    assert settled.deliveries["email"].state == DELIVERED
    live = NOW + len(DELAYS) * 2 * lease + timedelta(minutes=1)
    assert policy.settle_crashes(lead, live, DELAYS) == lead  # a live claim is never touched


def test_a_recorded_answer_clears_the_crash_count() -> None:
    state = DeliveryState(state=SENDING, attempts=3, expired_claims=2)
    assert policy.apply_outcome(state, TransientDestinationError("down"), NOW, (1, 1, 1, 1)).expired_claims == 0


def test_replay_resets_failed_and_blocked_destinations_only() -> None:
    lead = stored(email=DeliveryState(state=DELIVERED, attempts=1), hubspot=DeliveryState(state=FAILED, attempts=9),
                  webhook=DeliveryState(state=BLOCKED, attempts=30), dynamics=DeliveryState(state=RETRYING))
    result = policy.replay(lead, NOW, ROUTING)
    assert result.deliveries["email"].state == DELIVERED
    assert result.deliveries["hubspot"] == DeliveryState(attempts=9)  # counters stay: only the schedule restarts
    assert result.deliveries["webhook"] == DeliveryState(attempts=30)
    assert result.deliveries["dynamics"].state == RETRYING


def test_replay_never_resets_a_live_claim_and_all_means_all_but_delivered() -> None:
    live = policy.claim(stored(email=DeliveryState(), hubspot=DeliveryState(state=FAILED)), ["email"], NOW,
                        timedelta(minutes=10))
    result = policy.replay(live, NOW + timedelta(minutes=1), ROUTING, only_failed=False)
    assert result.deliveries["email"] == live.deliveries["email"]
    assert result.deliveries["hubspot"] == DeliveryState()
    expired = policy.replay(live, NOW + timedelta(minutes=11), ROUTING, only_failed=False)
    email = expired.deliveries["email"]
    assert (email.state, email.attempts, email.retries, email.lease_until) == (PENDING, 1, 0, "")
    assert [entry["outcome"] for entry in email.history] == ["crashed"]  # its worker died: said, then replayed


def test_replay_of_a_test_lead_still_skips_crms_unless_forwarding_is_on() -> None:
    skipped = DeliveryState(state=SKIPPED, last_error=policy.TEST_LEAD_SKIP)
    lead = stored(Lead(is_test=True), email=DeliveryState(state=FAILED), dynamics=skipped,
                  hubspot=DeliveryState(state=FAILED))  # failed while forwarding was on
    result = policy.replay(lead, NOW, ROUTING, only_failed=False)
    assert result.deliveries["email"] == DeliveryState()
    assert result.deliveries["dynamics"].state == result.deliveries["hubspot"].state == SKIPPED
    forwarded = policy.replay(lead, NOW, FORWARDING, only_failed=False)
    assert forwarded.deliveries["dynamics"] == forwarded.deliveries["hubspot"] == DeliveryState()


def test_needs_attention_means_failed_blocked_or_parked_somewhere() -> None:
    assert policy.needs_attention(stored(a=DeliveryState(state=DELIVERED), b=DeliveryState(state=BLOCKED)))
    assert policy.needs_attention(stored(a=DeliveryState(state=FAILED)))
    assert policy.needs_attention(stored(a=DeliveryState(state=PARKED)))
    assert not policy.needs_attention(stored(a=DeliveryState(state=RETRYING), b=DeliveryState(state=SKIPPED)))


def test_next_due_is_the_earliest_wait() -> None:
    soon, later = NOW + timedelta(seconds=30), NOW + timedelta(hours=1)
    lead = stored(a=DeliveryState(state=RETRYING, next_attempt_at=iso(later)),
                  b=DeliveryState(state=BLOCKED, next_attempt_at=iso(soon)), c=DeliveryState(state=DELIVERED))
    assert policy.next_due(lead) == soon
    assert policy.next_due(stored(c=DeliveryState(state=DELIVERED))) is None


def test_a_spent_schedule_does_not_keep_the_promise_to_retry() -> None:
    sentence = "Could not connect to the webhook at hooks.example; will retry. If it persists, check LEADS_WEBHOOK_URL."
    result = policy.apply_outcome(DeliveryState(state=SENDING, attempts=4, retries=3),
                                  TransientDestinationError(sentence), NOW, DELAYS)
    assert result.state == FAILED
    assert "will retry" not in result.last_error
    assert "Could not connect to the webhook at hooks.example. If it persists, check LEADS_WEBHOOK_URL." \
        in result.last_error


def test_defect_3_blocked_rechecks_do_not_use_up_the_transient_schedule() -> None:
    """Blocked for many re-checks, then fixed: the first 429 retries on the schedule's first step."""
    lease = timedelta(minutes=10)
    lead, now = stored(hubspot=DeliveryState()), NOW
    for _ in range(len(DELAYS) * 4):  # blocked far longer than the transient schedule has steps
        lead = policy.claim(lead, ["hubspot"], now, lease, DELAYS)
        lead = policy.record(lead, {"hubspot": ConfigurationError("bad token")}, now, DELAYS)
        now += timedelta(hours=1)
    assert lead.deliveries["hubspot"].blocked_checks == len(DELAYS) * 4
    lead = policy.claim(lead, ["hubspot"], now, lease, DELAYS)  # the setting is fixed: the next try gets a 429
    lead = policy.record(lead, {"hubspot": TransientDestinationError("429", retry_after=None)}, now, DELAYS)
    hubspot = lead.deliveries["hubspot"]
    assert (hubspot.state, hubspot.retries) == (RETRYING, 1), hubspot.last_error
    assert hubspot.next_attempt_at == iso(now + timedelta(seconds=DELAYS[0]))  # the schedule from its start


def test_defect_4_a_destination_missing_from_the_settings_is_parked_and_resumes_when_named_again() -> None:
    lead = stored(email=DeliveryState(state=DELIVERED), hubspot=DeliveryState(state=RETRYING, retries=2))
    typo = policy.reconcile(lead, Routing(("email",)), NOW, DELAYS)  # hubspot left out for a while
    parked = typo.deliveries["hubspot"]
    assert parked.state == PARKED and not parked.is_terminal and not typo.finished
    assert "LEADS_DESTINATIONS" in parked.last_error and policy.needs_attention(typo)
    assert policy.next_due(typo) == NOW + timedelta(hours=1)  # the outbox row brings it back to re-check
    fixed = policy.reconcile(typo, Routing(("email", "hubspot")), NOW + timedelta(minutes=5), DELAYS)
    resumed = fixed.deliveries["hubspot"]
    assert (resumed.state, resumed.retries) == (PENDING, 2)
    assert policy.due_destinations(fixed, NOW + timedelta(minutes=5)) == ["hubspot"]


def test_rows_of_the_previous_version_are_migrated_on_read() -> None:
    """The lazy migration: its attempts seed the schedule position (retrying) or the re-check count (blocked); a
    lead it finished (a destination skipped for removal) stays finished: nothing would wake it."""
    old = {"state": SKIPPED, "attempts": 2, "last_error": "Not sent: this destination was removed from "
           "LEADS_DESTINATIONS.", "history": [], "some_future_key": 1}
    assert DeliveryState.from_dict(old).state == SKIPPED
    assert DeliveryState.from_dict({"state": RETRYING, "attempts": 3}).retries == 3
    assert DeliveryState.from_dict({"state": BLOCKED, "attempts": 7}).blocked_checks == 7
    assert DeliveryState.from_dict({"state": BLOCKED, "attempts": 7}).retries == 0
    assert DeliveryState.from_dict({"state": SENDING, "attempts": 3}).retries == 2


def test_a_claim_whose_worker_died_while_its_destination_left_the_settings_is_parked_not_sent() -> None:
    claimed = policy.claim(stored(email=DeliveryState(state=DELIVERED), hubspot=DeliveryState()), ["hubspot"], NOW,
                           timedelta(minutes=10), DELAYS)
    live = policy.reconcile(claimed, Routing(("email",)), NOW + timedelta(minutes=5), DELAYS)
    assert live.deliveries["hubspot"] == claimed.deliveries["hubspot"]  # a live claim is its worker's
    later = NOW + timedelta(minutes=11)
    parked = policy.reconcile(claimed, Routing(("email",)), later, DELAYS).deliveries["hubspot"]
    assert parked.state == PARKED and [entry["outcome"] for entry in parked.history] == [policy.CRASHED]
    assert policy.due_destinations(policy.reconcile(claimed, Routing(("email",)), later, DELAYS), later) == []
