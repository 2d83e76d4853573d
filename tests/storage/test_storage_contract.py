"""One contract, two stores: every behaviour the app's adapters rely on, run against a real Azurite and
against the in-memory store (tests/support/memory_storage.py) the simulation uses. Where Azurite and Azure
differ, the test follows Azure (the Learn page is named) and says what Azurite does."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableServiceClient, TableTransactionError, UpdateMode
from azure.storage.queue import QueueServiceClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from leads.core.messages import DeliveryMessage
from leads.storage.work_queue import WorkQueue
from tests.support.azure_limits_enforcer import ENFORCER, AzureLimitExceeded
from tests.support.memory_storage import MemoryAccount


@dataclass
class Store:
    kind: str
    tables: Any
    queues: Any
    advance: Callable[[float], None]  # let this many seconds pass (a sleep on Azurite, the clock in memory)


class _Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(params=["azurite", "memory"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "memory":
        clock = _Clock()
        account = MemoryAccount(clock=clock)
        yield Store("memory", account.table_service(), account.queue_service(), clock.advance)
        return
    connection = request.getfixturevalue("azurite").connection_string
    yield Store("azurite", TableServiceClient.from_connection_string(connection, retry_total=0),
                QueueServiceClient.from_connection_string(connection, retry_total=0), time.sleep)


def _name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


@pytest.fixture
def table(store: Store) -> Any:
    client = store.tables.get_table_client(_name("contract"))
    client.create_table()
    return client


@pytest.fixture
def queue(store: Store) -> Any:
    client = store.queues.get_queue_client(_name("contract-"), message_encode_policy=TextBase64EncodePolicy(),
                                           message_decode_policy=TextBase64DecodePolicy())
    client.create_queue()
    return client


def _row(rk: str, pk: str = "p", **values: Any) -> dict[str, Any]:
    return {"PartitionKey": pk, "RowKey": rk, **values}


def _code(error: Any) -> str:
    code = getattr(error, "error_code", "")
    return str(getattr(code, "value", code))


# --- entities --------------------------------------------------------------------------------------------
def test_create_conflict_is_409_entity_already_exists(table: Any) -> None:
    table.create_entity(_row("a", V=1))
    with pytest.raises(ResourceExistsError) as caught:
        table.create_entity(_row("a", V=2))
    assert caught.value.status_code == 409
    # The SDK does not decode this one: no error_code, Azure's code only in the message.
    assert "EntityAlreadyExists" in str(caught.value)
    assert table.get_entity("p", "a")["V"] == 1


def test_if_match_on_a_changed_entity_is_412_and_changes_nothing(table: Any) -> None:
    first = table.create_entity(_row("a", V=1))
    second = table.update_entity(_row("a", V=2), mode=UpdateMode.MERGE, etag=first["etag"],
                                 match_condition=MatchConditions.IfNotModified)
    assert second["etag"] != first["etag"]
    for attempt in (lambda: table.update_entity(_row("a", V=3), etag=first["etag"],
                                                match_condition=MatchConditions.IfNotModified),
                    lambda: table.delete_entity("p", "a", etag=first["etag"],
                                                match_condition=MatchConditions.IfNotModified)):
        with pytest.raises(ResourceModifiedError) as caught:
            attempt()
        assert caught.value.status_code == 412
        assert _code(caught.value) == "UpdateConditionNotSatisfied"
    entity = table.get_entity("p", "a")
    assert entity["V"] == 2
    assert entity.metadata["etag"] == second["etag"]


def test_missing_entities(table: Any) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        table.get_entity("p", "nothing")
    assert caught.value.status_code == 404
    with pytest.raises(ResourceNotFoundError):
        table.update_entity(_row("nothing", V=1), mode=UpdateMode.MERGE)
    table.delete_entity("p", "nothing")  # the SDK raises nothing for a missing entity


def test_missing_table_is_table_not_found(store: Store) -> None:
    client = store.tables.get_table_client(_name("absent"))
    with pytest.raises(ResourceNotFoundError) as caught:
        client.get_entity("p", "a")
    assert caught.value.status_code == 404
    with pytest.raises(ResourceExistsError):
        client.create_table()
        client.create_table()


def test_merge_keeps_other_properties_and_replace_drops_them(table: Any) -> None:
    table.upsert_entity(_row("a", A=1, B="x"))
    table.upsert_entity(_row("a", A=2), mode=UpdateMode.MERGE)
    assert {k: v for k, v in table.get_entity("p", "a").items() if k in "AB"} == {"A": 2, "B": "x"}
    table.upsert_entity(_row("a", A=3), mode=UpdateMode.REPLACE)
    assert "B" not in table.get_entity("p", "a")
    table.upsert_entity(_row("b", A=1))  # upsert creates
    assert table.get_entity("p", "b")["A"] == 1


def test_values_come_back_typed(table: Any) -> None:
    moment = datetime(2026, 11, 30, 12, 0, 1, 123000, tzinfo=UTC)
    table.create_entity(_row("a", S="é😀", N=7, F=1.5, B=True, D=moment, Y=b"\x00\xff"))
    entity = table.get_entity("p", "a")
    assert (entity["S"], entity["N"], entity["F"], entity["B"], entity["Y"]) == ("é😀", 7, 1.5, True, b"\x00\xff")
    assert entity["D"] == moment
    assert entity.metadata["etag"]
    assert isinstance(entity.metadata["timestamp"], datetime)


# --- entity group transactions ---------------------------------------------------------------------------
def test_a_transaction_is_atomic_and_names_the_failed_operation(table: Any) -> None:
    table.create_entity(_row("b", V=0))
    with pytest.raises(TableTransactionError) as caught:
        table.submit_transaction([("create", _row("a", V=1)), ("create", _row("b", V=1))])
    assert caught.value.status_code == 409
    assert _code(caught.value) == "EntityAlreadyExists"
    assert caught.value.index == 1
    with pytest.raises(ResourceNotFoundError):
        table.get_entity("p", "a")  # the first operation did not happen either


def test_a_transaction_with_a_stale_etag_or_a_missing_row_fails_whole(table: Any) -> None:
    old = table.create_entity(_row("a", V=1))
    table.update_entity(_row("a", V=2))
    with pytest.raises(TableTransactionError) as caught:
        table.submit_transaction([("upsert", _row("c", V=1)),
                                  ("update", _row("a", V=3), {"etag": old["etag"],
                                                              "match_condition": MatchConditions.IfNotModified})])
    assert (caught.value.status_code, _code(caught.value)) == (412, "UpdateConditionNotSatisfied")
    with pytest.raises(TableTransactionError) as caught:
        table.submit_transaction([("upsert", _row("c", V=1)), ("delete", _row("gone"))])
    assert (caught.value.status_code, _code(caught.value)) == (404, "ResourceNotFound")
    with pytest.raises(ResourceNotFoundError):
        table.get_entity("p", "c")


def test_a_transaction_answers_each_operations_etag(table: Any) -> None:
    result = table.submit_transaction([("create", _row("a", V=1)), ("upsert", _row("b", V=1))])
    assert [r["etag"] for r in result] == [table.get_entity("p", k).metadata["etag"] for k in "ab"]


def test_a_transaction_stays_in_one_partition(table: Any) -> None:
    with pytest.raises(ValueError, match="Partition Keys"):
        table.submit_transaction([("create", _row("a")), ("create", _row("a", pk="q"))])


def test_a_transaction_of_more_than_100_is_refused(table: Any) -> None:
    # Azure refuses more than 100 operations (performing-entity-group-transactions); Azurite accepts them,
    # tests/support/azure_limits_enforcer.py refuses them before they leave.
    with pytest.raises(AzureLimitExceeded):
        table.submit_transaction([("create", _row(f"r{i:03d}")) for i in range(101)])
    assert ENFORCER.take_violations()


# --- queries ---------------------------------------------------------------------------------------------
def test_the_apps_filters(table: Any) -> None:
    base = datetime(2026, 11, 1, tzinfo=UTC)
    for index in range(6):
        table.create_entity(_row(f"outbox:{index}", DueAt=base + timedelta(minutes=index), LeadId=str(index),
                                 IsTest=index % 2 == 0))
    table.create_entity(_row("outbox:9", DueAt="not a date", LeadId="9"))  # another type never matches
    table.create_entity(_row("x", pk="other", DueAt=base))
    rows = list(table.query_entities(
        "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi and DueAt le @now",
        parameters={"pk": "p", "lo": "outbox:", "hi": "outbox;", "now": base + timedelta(minutes=2)},
        select=["LeadId"]))
    assert [dict(r) for r in rows] == [{"LeadId": "0"}, {"LeadId": "1"}, {"LeadId": "2"}]
    assert all(r.metadata["etag"] for r in rows)
    tests = table.query_entities("PartitionKey eq @pk and IsTest eq @t", parameters={"pk": "p", "t": True})
    assert [r["LeadId"] for r in tests] == ["0", "2", "4"]
    assert [r["RowKey"] for r in table.query_entities("RowKey gt @k", parameters={"k": "outbox:4"})] == \
        ["x", "outbox:5", "outbox:9"]  # PartitionKey order first ("other" < "p")


def test_timestamp_is_the_commit_time_and_can_be_filtered_on(store: Store, table: Any) -> None:
    table.create_entity(_row("a"))
    store.advance(1.1)
    table.create_entity(_row("b"))
    second = table.get_entity("p", "b").metadata["timestamp"]
    assert table.get_entity("p", "a").metadata["timestamp"] < second
    assert [r["RowKey"] for r in table.query_entities("Timestamp ge @since", parameters={"since": second})] == ["b"]


def test_paging_continues_exactly_where_it_stopped(table: Any) -> None:
    table.submit_transaction([("create", _row(f"r{i:02d}", I=i)) for i in range(7)])
    pages = table.query_entities("PartitionKey eq @pk", parameters={"pk": "p"}, results_per_page=3).by_page()
    first = list(next(pages))
    token = pages.continuation_token
    assert [r["I"] for r in first] == [0, 1, 2]
    assert token is not None
    again = table.query_entities("PartitionKey eq @pk", parameters={"pk": "p"}, results_per_page=3).by_page(
        continuation_token=json.loads(json.dumps(token)))
    rest = [r["I"] for page in again for r in page]
    assert rest == [3, 4, 5, 6]


def test_an_entity_over_azures_limit_is_refused(table: Any) -> None:
    # Azure: 400 PropertyValueTooLarge (a string over 64 KiB). Azurite stores it; the enforcer refuses it.
    with pytest.raises(AzureLimitExceeded):
        table.create_entity(_row("big", S="x" * 40_000))
    assert ENFORCER.take_violations()


# --- queues ----------------------------------------------------------------------------------------------
def test_visibility_dequeue_count_and_pop_receipts(store: Store, queue: Any) -> None:
    queue.send_message("hello")
    first = next(iter(queue.receive_messages(visibility_timeout=1)))
    assert (first.content, first.dequeue_count) == ("hello", 1)
    assert list(queue.receive_messages(visibility_timeout=1)) == []  # invisible while leased
    assert queue.get_queue_properties().approximate_message_count == 1  # counted all the same
    store.advance(1.5)
    second = next(iter(queue.receive_messages(visibility_timeout=30)))
    assert (second.id, second.dequeue_count) == (first.id, 2)
    assert second.pop_receipt != first.pop_receipt
    with pytest.raises(HttpResponseError) as caught:
        queue.delete_message(first.id, first.pop_receipt)  # an old receipt (the lease ran out and was retaken)
    assert caught.value.status_code == 400
    assert _code(caught.value) == "PopReceiptMismatch"
    queue.delete_message(second.id, second.pop_receipt)
    with pytest.raises(ResourceNotFoundError) as gone:
        queue.delete_message(second.id, second.pop_receipt)
    assert gone.value.status_code == 404


def test_a_delayed_message_and_update_message(store: Store, queue: Any) -> None:
    queue.send_message("later", visibility_timeout=1)
    assert queue.peek_messages() == []
    store.advance(1.5)
    peeked = queue.peek_messages(max_messages=32)
    assert [m.content for m in peeked] == ["later"]
    assert peeked[0].dequeue_count == 0  # a peek is not a dequeue
    taken = next(iter(queue.receive_messages(visibility_timeout=60)))
    updated = queue.update_message(taken, visibility_timeout=0)
    assert updated.pop_receipt != taken.pop_receipt
    again = next(iter(queue.receive_messages(visibility_timeout=60)))
    assert (again.content, again.dequeue_count) == ("later", 2)


def test_receive_takes_at_most_what_was_asked(queue: Any) -> None:
    for index in range(5):
        queue.send_message(f"m{index}")
    taken = list(queue.receive_messages(messages_per_page=2, max_messages=3, visibility_timeout=30))
    assert len(taken) == 3
    assert len(list(queue.receive_messages(messages_per_page=32, visibility_timeout=30))) == 2


def test_a_message_over_64_kib_is_refused(queue: Any) -> None:
    with pytest.raises(AzureLimitExceeded):
        queue.send_message("x" * 50_000)  # 66,668 bytes as base64
    assert ENFORCER.take_violations()


def test_the_apps_queue_adapter_round_trips(store: Store) -> None:
    work = WorkQueue(store.queues, _name("contract-"))
    work.create_queues()
    work.create_queues()  # again: an existing queue is no error
    work.send(DeliveryMessage("20261201T000000000Z-0a0b0c0d"))
    work.poison.send_message(DeliveryMessage("20261201T000000000Z-01020304").encode())
    poison = work.poison_queue()
    assert poison.holds_messages()
    [message] = poison.take(32)
    assert b"01020304" in message.body
    poison.remove(message)
    assert not poison.holds_messages()
    [queued] = list(work.queue.receive_messages(visibility_timeout=30))
    assert "0a0b0c0d" in str(queued.content)
