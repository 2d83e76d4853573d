"""The spine on a real Azurite: store before answering, de-duplicate, deliver once per claim, retry, sweep."""

from __future__ import annotations

import json
import socket
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from leads.core.errors import ConfigurationError, LeadRejectedError, TransientDestinationError
from leads.core.messages import DeliveryMessage
from leads.core.model import BLOCKED, DELIVERED, FAILED, RETRYING, SENDING, SKIPPED, parse_iso
from leads.services.poison import PoisonRequeue
from leads.services.sweeper import Sweeper
from leads.storage.table_store import OutboxItem
from tests.support.pipeline import Pipeline, RecordingDestination, build_pipeline
from tests.support.samples import sample_bytes
from tests.support.waiting import wait_until

pytestmark = pytest.mark.azurite

LEAD = {"UserDetails": {"FirstName": "Ana", "LastName": "Lopez", "Email": "Ana@Fabrikam.example",
                        "Company": "Fabrikam", "Country": "ES"},
        "LeadSource": "AzureMarketplace", "ActionCode": "INS", "OfferTitle": "Lead Router"}


def body(**changes: object) -> bytes:
    return json.dumps({**LEAD, **changes}).encode()


def dead_connection_string(connection_string: str) -> str:
    """The same account on a port where nothing listens: storage that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    parts = [p for p in connection_string.split(";") if p and "Endpoint=" not in p]
    return ";".join([*parts, f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1",
                      f"QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1"])


@pytest.fixture
def pipeline(azurite, tmp_path: Path) -> Pipeline:
    return build_pipeline(azurite.connection_string, str(tmp_path / "spool"),
                          {"email": RecordingDestination("email"), "hubspot": RecordingDestination("hubspot", True)})


def test_lead_is_stored_before_the_answer_and_a_delivery_message_is_queued(pipeline: Pipeline) -> None:
    answer = pipeline.ingest.receive("POST", body())
    assert answer.status == 202
    assert answer.body["duplicate"] is False and answer.body["test"] is False
    stored = pipeline.table.load(answer.body["id"])
    assert stored is not None
    assert stored.stored.lead.customer.email == "ana@fabrikam.example"
    assert set(stored.stored.deliveries) == {"email", "hubspot"}
    [message] = pipeline.queued()
    assert message.lead_id == answer.body["id"]
    assert message.snapshot is not None and message.etag == stored.etag


def test_same_payload_within_the_window_is_the_same_lead(pipeline: Pipeline) -> None:
    first = pipeline.ingest.receive("POST", body())
    camel = json.dumps({"userDetails": {"firstName": "Ana", "lastName": "Lopez", "email": "ana@fabrikam.example",
                                        "company": "Fabrikam", "country": "ES"}, "leadSource": "AzureMarketplace",
                        "actionCode": "INS", "offerTitle": "Lead Router"}).encode()
    second = pipeline.ingest.receive("POST", camel)
    assert second.status == 202
    assert second.body == {"id": first.body["id"], "duplicate": True, "test": False}
    assert len(pipeline.queued()) == 1


def test_same_payload_after_the_window_is_a_new_lead(pipeline: Pipeline) -> None:
    first = pipeline.ingest.receive("POST", body())
    pipeline.clock.offset = 25 * 3600
    later = pipeline.ingest.receive("POST", body())
    assert later.body["duplicate"] is False
    assert later.body["id"] != first.body["id"]
    pipeline.clock.offset = 26 * 3600
    assert pipeline.ingest.receive("POST", body()).body == {"id": later.body["id"], "duplicate": True, "test": False}


def test_concurrent_identical_posts_store_one_lead(pipeline: Pipeline) -> None:
    answers = []
    barrier = threading.Barrier(6)

    def post() -> None:
        barrier.wait()
        answers.append(pipeline.ingest.receive("POST", body(Description="race")))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {a.status for a in answers} == {202}
    assert len({a.body["id"] for a in answers}) == 1
    assert sum(not a.body["duplicate"] for a in answers) == 1
    assert len(pipeline.queued()) == 1


def test_every_rejected_request_is_kept_in_quarantine(pipeline: Pipeline) -> None:
    printed = sample_bytes("faq-test-lead-as-printed.txt")
    assert pipeline.ingest.receive("POST", printed).status == 400
    assert pipeline.ingest.receive("POST", b"[1]").status == 400
    assert pipeline.ingest.receive("POST", b"x" * (70 * 1024)).status == 413
    assert pipeline.ingest.receive("PUT", b"{}").status == 405
    rows = {row["Reason"]: row for row in pipeline.table.rejected()}
    assert set(rows) == {"invalid_json", "not_an_object", "too_large", "method_not_allowed"}
    assert rows["invalid_json"]["Body0"] + rows["invalid_json"].get("Body1", b"") == printed
    assert "line 14, column 5" in rows["invalid_json"]["Message"]
    too_large = rows["too_large"]
    assert too_large["Truncated"] is True and too_large["BodyBytes"] == 70 * 1024
    assert len(too_large["Body0"]) + len(too_large["Body1"]) == 64 * 1024
    assert pipeline.queued() == []


def test_storage_down_answers_503_keeps_the_lead_on_disk_and_the_sweeper_stores_it(azurite, tmp_path: Path) -> None:
    spool = str(tmp_path / "spool")
    down = build_pipeline(azurite.connection_string, spool, {"email": RecordingDestination("email")},
                          table_connection=dead_connection_string(azurite.connection_string),
                          queue_connection=dead_connection_string(azurite.connection_string))
    answer = down.ingest.receive("POST", body())
    assert answer.status == 503
    assert answer.body["error"] == "storage_unavailable"
    assert "retry" in answer.body["message"]
    assert len(list(Path(spool).glob("*.json"))) == 1

    up = build_pipeline(azurite.connection_string, spool, {"email": RecordingDestination("email")})
    report = Sweeper(up.table, up.runtime.queue, up.ingest, up.runtime.spool).sweep()
    assert report.respooled == 1
    assert list(Path(spool).glob("*.json")) == []
    [message] = up.queued()
    loaded = up.table.load(message.lead_id)
    assert loaded is not None and loaded.stored.lead.customer.first_name == "Ana"


def test_stored_but_not_enqueued_is_delivered_through_the_sweeper(azurite, tmp_path: Path) -> None:
    email = RecordingDestination("email")
    broken_queue = build_pipeline(azurite.connection_string, str(tmp_path), {"email": email},
                                  queue_connection=dead_connection_string(azurite.connection_string))
    answer = broken_queue.ingest.receive("POST", body())
    assert answer.status == 202  # the lead is safe in the table; the outbox row will bring it back
    working = build_pipeline(azurite.connection_string, str(tmp_path), {"email": email})
    sweeper = Sweeper(broken_queue.table, working.runtime.queue, working.ingest, working.runtime.spool,
                      clock=lambda: broken_queue.clock() + timedelta(minutes=3))
    assert sweeper.sweep().requeued == 1
    assert sweeper.sweep().requeued == 0  # postponed: not enqueued again at every sweep
    [message] = working.queued()
    assert message.lead_id == answer.body["id"]


def storage_calls_per_lead(pipeline: Pipeline) -> tuple[dict[str, int], dict[str, int], str]:
    pipeline.transport.reset()
    answer = pipeline.ingest.receive("POST", body())
    ingest_calls = dict(pipeline.transport.calls)
    [message] = pipeline.queued()
    pipeline.transport.reset()
    pipeline.delivery.handle(message)
    return ingest_calls, dict(pipeline.transport.calls), answer.body["id"]


def test_happy_path_takes_five_storage_calls_per_lead(azurite, tmp_path: Path) -> None:
    pipeline = build_pipeline(azurite.connection_string, str(tmp_path), {"email": RecordingDestination("email")})
    ingest_calls, delivery_calls, lead_id = storage_calls_per_lead(pipeline)
    # ingest: one transaction (marker + lead + outbox + index rows), the tombstone's point read after it (a
    # forgotten person is not kept: leads/storage/subject_index.py) and one enqueue; delivery: claim, and the
    # record that also deletes the outbox row
    print(f"\nstorage calls per lead, e-mail only: ingest {ingest_calls}, delivery {delivery_calls}")
    assert sum(ingest_calls.values()) == 3, ingest_calls
    assert sum(delivery_calls.values()) == 2, delivery_calls
    assert pipeline.table.load(lead_id).stored.status == DELIVERED  # type: ignore[union-attr]


def test_happy_path_with_two_destinations_takes_six_storage_calls_per_lead(pipeline: Pipeline) -> None:
    ingest_calls, delivery_calls, lead_id = storage_calls_per_lead(pipeline)
    # one record per destination, each as soon as that destination answers: claim + 2 records
    print(f"\nstorage calls per lead, two destinations: ingest {ingest_calls}, delivery {delivery_calls}")
    assert sum(ingest_calls.values()) + sum(delivery_calls.values()) == 6, (ingest_calls, delivery_calls)
    assert pipeline.table.load(lead_id).stored.status == DELIVERED  # type: ignore[union-attr]
    assert pipeline.table.due_work(pipeline.clock() + timedelta(days=1)) == []  # no outbox row left


def test_a_message_delivered_twice_sends_once(pipeline: Pipeline) -> None:
    answer = pipeline.ingest.receive("POST", body())
    [message] = pipeline.queued()
    pipeline.delivery.handle(message)
    pipeline.delivery.handle(message)
    pipeline.delivery.handle(DeliveryMessage(answer.body["id"]))
    assert pipeline.destinations["email"].received == [answer.body["id"]]
    assert pipeline.destinations["hubspot"].received == [answer.body["id"]]
    state = pipeline.table.load(answer.body["id"]).stored.deliveries["email"]  # type: ignore[union-attr]
    assert (state.state, state.attempts, state.record_id) == (DELIVERED, 1, "email-1")


def test_the_same_message_handled_concurrently_sends_once(pipeline: Pipeline) -> None:
    pipeline.ingest.receive("POST", body())
    [message] = pipeline.queued()
    gate = threading.Event()
    pipeline.destinations["email"].gate = gate
    threads = [threading.Thread(target=pipeline.delivery.handle, args=(message,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join()
    assert len(pipeline.destinations["email"].received) == 1


def test_three_destinations_one_failing_transiently_each_gets_the_lead_exactly_once(azurite, tmp_path: Path) -> None:
    destinations = {"email": RecordingDestination("email"), "hubspot": RecordingDestination("hubspot", True),
                    "webhook": RecordingDestination("webhook")}
    pipeline = build_pipeline(azurite.connection_string, str(tmp_path), destinations)
    hubspot = destinations["hubspot"]
    hubspot.script = [TransientDestinationError("HubSpot 503"), TransientDestinationError("HubSpot 503")]
    answer = pipeline.ingest.receive("POST", body())
    [message] = pipeline.queued()
    pipeline.delivery.handle(message)
    lead = pipeline.table.load(answer.body["id"]).stored  # type: ignore[union-attr]
    assert lead.deliveries["hubspot"].state == RETRYING
    assert lead.deliveries["email"].state == lead.deliveries["webhook"].state == DELIVERED  # the others carry on
    assert pipeline.queued() == []  # the retry message is invisible for its delay
    for _ in range(2):
        pipeline.clock.offset += 5
        pipeline.delivery.handle(wait_for_message(pipeline))
    lead = pipeline.table.load(answer.body["id"]).stored  # type: ignore[union-attr]
    assert {name: d.state for name, d in lead.deliveries.items()} == dict.fromkeys(destinations, DELIVERED)
    assert lead.deliveries["hubspot"].attempts == 3
    assert len(hubspot.received) == 3  # two failed tries, one success
    assert destinations["email"].received == destinations["webhook"].received == [answer.body["id"]]


def wait_for_message(pipeline: Pipeline, timeout: float = 10) -> DeliveryMessage:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = pipeline.queued()
        if messages:
            return messages[0]
        time.sleep(0.2)
    raise AssertionError("no retry message became visible")


def test_retries_end_in_failed_with_the_reason(pipeline: Pipeline) -> None:
    email = pipeline.destinations["email"]
    email.script = [TransientDestinationError("SMTP down")] * 10
    answer = pipeline.ingest.receive("POST", body())
    message = pipeline.queued()[0]
    for _ in range(4):  # the schedule (1,2,3 s) allows three retries after the first try
        pipeline.delivery.handle(message)
        pipeline.clock.offset += 10
        message = DeliveryMessage(answer.body["id"])
    state = pipeline.table.load(answer.body["id"]).stored.deliveries["email"]  # type: ignore[union-attr]
    assert state.state == FAILED
    assert "Gave up after 4 attempts" in state.last_error
    assert f"python -m leads replay {answer.body['id']}" in state.last_error


def test_configuration_error_trips_the_breaker_and_the_others_carry_on(pipeline: Pipeline) -> None:
    hubspot = pipeline.destinations["hubspot"]
    hubspot.script = [ConfigurationError("HubSpot refused the token: set LEADS_HUBSPOT_TOKEN.")]
    first = pipeline.ingest.receive("POST", body())
    pipeline.delivery.handle(pipeline.queued()[0])
    second = pipeline.ingest.receive("POST", body(Description="second"))
    pipeline.delivery.handle(pipeline.queued()[0])
    assert hubspot.received == [first.body["id"]]  # not called again while the breaker is open
    for lead_id in (first.body["id"], second.body["id"]):
        lead = pipeline.table.load(lead_id).stored  # type: ignore[union-attr]
        assert lead.deliveries["email"].state == DELIVERED
        assert lead.deliveries["hubspot"].state == BLOCKED
        assert "LEADS_HUBSPOT_TOKEN" in lead.deliveries["hubspot"].last_error


def test_test_leads_are_notified_but_not_sent_to_crms(pipeline: Pipeline) -> None:
    answer = pipeline.ingest.receive("POST", body(OfferTitle="MSFT_TEST_636573304831318844"))
    assert answer.body["test"] is True
    pipeline.delivery.handle(pipeline.queued()[0])
    lead = pipeline.table.load(answer.body["id"]).stored  # type: ignore[union-attr]
    assert lead.deliveries["email"].state == DELIVERED
    assert lead.deliveries["hubspot"].state == SKIPPED
    assert pipeline.destinations["hubspot"].received == []


def test_a_poison_message_marks_nothing_failed_and_brings_the_lead_back_later(pipeline: Pipeline) -> None:
    answer = pipeline.ingest.receive("POST", body())
    [message] = pipeline.queued()
    email = pipeline.destinations["email"]
    email.gate = threading.Event()  # e-mail is being sent (a live claim) when the poison message is handled
    worker = threading.Thread(target=pipeline.delivery.handle, args=(message,))
    worker.start()
    wait_until(lambda: pipeline.table.load(answer.body["id"]).stored.deliveries["email"].state == SENDING)  # type: ignore[union-attr]
    # The host moved a message for this lead to the poison queue (as it was: base64); the sweeper reads it.
    queue = pipeline.runtime.queue
    queue.poison.send_message(DeliveryMessage(answer.body["id"]).encode())
    requeue = PoisonRequeue(queue.poison_queue(), queue, pipeline.table, pipeline.settings.requeue_again_seconds)
    assert requeue.requeue() == 1
    assert not queue.poison_queue().holds_messages()  # taken off the poison queue, not left there
    lead = pipeline.table.load(answer.body["id"]).stored  # type: ignore[union-attr]
    assert lead.deliveries["email"].state == SENDING  # the live claim is not overridden
    assert FAILED not in {d.state for d in lead.deliveries.values()}
    due = pipeline.table.outbox_due(answer.body["id"])  # the outbox row wakes it (no second chain of messages)
    assert due is not None and due <= pipeline.clock() + timedelta(seconds=pipeline.settings.requeue_again_seconds)
    email.gate.set()
    worker.join()
    assert pipeline.queued() == []  # nothing enqueued by the poison handling
    assert pipeline.table.outbox_due(answer.body["id"]) is None  # finished: its row went with the last answer
    sweeper = Sweeper(pipeline.table, queue, pipeline.ingest, pipeline.runtime.spool, clock=pipeline.clock)
    assert sweeper.sweep().requeued == 0
    assert email.received == [answer.body["id"]]  # sent once


def test_an_empty_poison_queue_costs_the_sweeper_one_metadata_read(pipeline: Pipeline) -> None:
    queue = pipeline.runtime.queue
    requeue = PoisonRequeue(queue.poison_queue(), queue, pipeline.table, pipeline.settings.requeue_again_seconds)
    pipeline.transport.reset()
    assert requeue.requeue() == 0
    assert dict(pipeline.transport.calls) == {f"GET {pipeline.settings.poison_queue}": 1}  # ?comp=metadata


def test_an_unreadable_poison_message_is_kept_in_quarantine_and_leaves_the_poison_queue(pipeline: Pipeline) -> None:
    queue = pipeline.runtime.queue
    queue.poison_queue().client.send_message("not base64, not ours")  # copied as it was by the host
    requeue = PoisonRequeue(queue.poison_queue(), queue, pipeline.table, pipeline.settings.requeue_again_seconds)
    assert requeue.requeue() == 1
    assert not queue.poison_queue().holds_messages()
    [rejected] = pipeline.table.rejected()
    assert rejected["Reason"] == "unreadable_queue_message"
    assert pipeline.queued() == []  # nothing to deliver


def test_the_sweeper_cannot_resurrect_the_outbox_row_of_a_lead_a_worker_just_finished(pipeline: Pipeline) -> None:
    answer = pipeline.ingest.receive("POST", body())
    [message] = pipeline.queued()  # the message is lost for now; the outbox row is due in 2 minutes
    later = pipeline.clock() + timedelta(minutes=3)

    class FinishingMeanwhile:
        """The interleaving: the sweeper reads the due row, a worker finishes the lead, the sweeper postpones."""

        def due_work(self, now: datetime, limit: int = 100) -> list[OutboxItem]:
            due = pipeline.table.due_work(now, limit)
            pipeline.delivery.handle(message)
            return due

        def postpone(self, item: OutboxItem, due: datetime, stuck: str = "") -> bool:
            return pipeline.table.postpone(item, due, stuck)

    report = Sweeper(FinishingMeanwhile(), pipeline.runtime.queue, pipeline.ingest, pipeline.runtime.spool,
                     clock=lambda: later).sweep()
    assert report.requeued == 0
    assert pipeline.queued() == []
    assert pipeline.table.due_work(later + timedelta(days=365)) == []  # no row: not re-enqueued every 5 minutes
    assert pipeline.table.load(answer.body["id"]).stored.status == DELIVERED  # type: ignore[union-attr]


def test_a_finished_lead_brought_back_by_a_leftover_outbox_row_loses_the_row(pipeline: Pipeline) -> None:
    from leads.core import keys

    answer = pipeline.ingest.receive("POST", body())
    pipeline.delivery.handle(pipeline.queued()[0])
    later = pipeline.clock() + timedelta(minutes=10)
    pipeline.table.leads.upsert_entity({"PartitionKey": keys.LEADS_PARTITION, "RowKey": keys.outbox_row_key(
        answer.body["id"]), "LeadId": answer.body["id"], "DueAt": later})  # left by an older version
    assert Sweeper(pipeline.table, pipeline.runtime.queue, pipeline.ingest, pipeline.runtime.spool,
                   clock=lambda: later).sweep().requeued == 1
    assert pipeline.delivery.handle(pipeline.queued()[0]).note == "nothing due"
    assert pipeline.table.due_work(later + timedelta(days=365)) == []  # not brought back every 5 minutes


def test_a_missing_outbox_row_does_not_leave_a_stale_attention_row(pipeline: Pipeline) -> None:
    from leads.core import keys

    pipeline.destinations["hubspot"].script = [ConfigurationError("HubSpot refused the token.")]
    lead_id = pipeline.ingest.receive("POST", body()).body["id"]
    pipeline.delivery.handle(pipeline.queued()[0])
    assert pipeline.table.needing_attention() == [(lead_id, BLOCKED)]
    pipeline.table.leads.delete_entity(keys.LEADS_PARTITION, keys.outbox_row_key(lead_id))  # lost (older version)
    pipeline.clock.offset += 3601
    pipeline.delivery.handle(DeliveryMessage(lead_id))
    assert pipeline.table.load(lead_id).stored.status == DELIVERED  # type: ignore[union-attr]
    assert pipeline.table.needing_attention() == []


def test_two_sweepers_enqueue_a_due_lead_once(pipeline: Pipeline) -> None:
    pipeline.ingest.receive("POST", body())
    pipeline.queued()
    later = pipeline.clock() + timedelta(minutes=3)
    [item] = pipeline.table.due_work(later)
    assert pipeline.table.postpone(item, later + timedelta(minutes=5)) is True
    assert pipeline.table.postpone(item, later + timedelta(minutes=5)) is False  # the row moved since it was read


def test_a_blocked_destination_waits_for_the_fix_and_then_goes_through_by_itself(pipeline: Pipeline) -> None:
    hubspot = pipeline.destinations["hubspot"]
    hubspot.script = [ConfigurationError("HubSpot refused the token: set LEADS_HUBSPOT_TOKEN.")] * 8
    answer = pipeline.ingest.receive("POST", body())
    lead_id = answer.body["id"]
    pipeline.delivery.handle(pipeline.queued()[0])
    for _ in range(7):  # far past the schedule (1, 2, 3 s here): still blocked, re-checked at most hourly
        pipeline.clock.offset += 3601
        pipeline.delivery.handle(DeliveryMessage(lead_id))
        state = pipeline.table.load(lead_id).stored.deliveries["hubspot"]  # type: ignore[union-attr]
        assert state.state == BLOCKED
        assert parse_iso(state.next_attempt_at) <= pipeline.clock() + timedelta(hours=1)  # type: ignore[operator]
        assert pipeline.table.needing_attention() == [(lead_id, BLOCKED)]
    pipeline.clock.offset += 3601  # the token was fixed: the next check goes through
    pipeline.delivery.handle(DeliveryMessage(lead_id))
    lead = pipeline.table.load(lead_id).stored  # type: ignore[union-attr]
    assert {d.state for d in lead.deliveries.values()} == {DELIVERED}
    assert len(hubspot.received) == 9 and pipeline.destinations["email"].received == [lead_id]
    assert pipeline.table.needing_attention() == []  # the index row went with the last blocked destination


def test_replay_failed_finds_every_failed_lead_through_the_index_and_replays_it(pipeline: Pipeline) -> None:
    from leads.services.replay import leads_needing_attention, replay_leads

    pipeline.destinations["hubspot"].script = [LeadRejectedError("a validation rule refused it")] * 3
    ids = []
    for n in range(3):
        ids.append(pipeline.ingest.receive("POST", body(Description=f"lead {n}")).body["id"])
        pipeline.delivery.handle(pipeline.queued()[0])
    ok = pipeline.ingest.receive("POST", body(Description="fine")).body["id"]
    pipeline.delivery.handle(pipeline.queued()[0])
    pipeline.transport.reset()
    found = leads_needing_attention(pipeline.runtime)
    assert sorted(found) == sorted(ids) and ok not in found
    assert pipeline.transport.total == 1  # one range query on `attention:`, not a read of every lead
    assert [line.split(": ", 1)[1] for line in replay_leads(pipeline.runtime, found)] == ["queued again"] * 3
    for message in pipeline.queued():
        pipeline.delivery.handle(message)
    assert leads_needing_attention(pipeline.runtime) == []
    for lead_id in ids:
        assert pipeline.table.load(lead_id).stored.status == DELIVERED  # type: ignore[union-attr]
    assert pipeline.destinations["email"].received.count(ids[0]) == 1  # delivered ones are not re-sent


def test_each_answer_is_recorded_when_it_comes_not_after_the_slowest(pipeline: Pipeline) -> None:
    answer = pipeline.ingest.receive("POST", body())
    [message] = pipeline.queued()
    hubspot = pipeline.destinations["hubspot"]
    hubspot.gate = threading.Event()  # HubSpot is slow; e-mail answers at once
    worker = threading.Thread(target=pipeline.delivery.handle, args=(message,))
    worker.start()
    wait_until(lambda: pipeline.table.load(answer.body["id"]).stored.deliveries["email"].state == DELIVERED)  # type: ignore[union-attr]
    assert pipeline.table.load(answer.body["id"]).stored.deliveries["hubspot"].state == SENDING  # type: ignore[union-attr]
    hubspot.gate.set()
    worker.join()
    assert pipeline.table.load(answer.body["id"]).stored.status == DELIVERED  # type: ignore[union-attr]




def test_an_unexpected_error_is_retried_and_logged_without_its_message(pipeline: Pipeline,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    pipeline.destinations["email"].script = [KeyError("ana@fabrikam.example")]
    answer = pipeline.ingest.receive("POST", body())
    pipeline.delivery.handle(pipeline.queued()[0])
    state = pipeline.table.load(answer.body["id"]).stored.deliveries["email"]  # type: ignore[union-attr]
    assert state.state == RETRYING
    assert "KeyError" in state.last_error and "ana@" not in state.last_error
    assert "KeyError" in caplog.text and "ana@fabrikam" not in caplog.text


def test_leads_are_listed_newest_first_page_by_page(pipeline: Pipeline) -> None:
    ids = []
    for n in range(5):
        pipeline.clock.offset = n  # one second apart
        ids.append(pipeline.ingest.receive("POST", body(Description=f"lead {n}")).body["id"])
    first, token = pipeline.table.page(limit=2)
    second, token2 = pipeline.table.page(limit=2, continuation=token)
    third, token3 = pipeline.table.page(limit=2, continuation=token2)
    assert [s.id for s in first + second + third] == list(reversed(ids))
    assert token3 is None
