"""Azure's size limits (in Azure's units) and de-duplication, on a real Azurite held to those limits by
tests/support/azure_limits_enforcer.py (installed for the whole session by tests/conftest.py)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.queue import TextBase64EncodePolicy

from leads.core import keys
from leads.core.azure_limits import (
    MAX_ENTITY_BYTES,
    MAX_QUEUE_MESSAGE_BYTES,
    MAX_STRING_BYTES,
    base64_length,
    chunk_utf16,
    entity_size,
    queue_message_fits,
    utf16_units,
)
from leads.core.messages import DeliveryMessage
from leads.core.model import StoredLead
from leads.core.settings import load_settings
from leads.storage.azure_clients import queue_service, table_service
from leads.storage.table_store import lead_entity, raw_body_of
from tests.support.azure_limits_enforcer import ENFORCER, AzureLimitExceeded
from tests.support.pipeline import Pipeline, RecordingDestination, build_pipeline

LEAD: dict[str, Any] = {"UserDetails": {"FirstName": "Ana", "LastName": "Lopez", "Email": "ana@fabrikam.example"},
        "LeadSource": "AzureMarketplace", "ActionCode": "INS", "OfferTitle": "Lead Router"}
EDU_LEAD: dict[str, Any] = {"UserDetails": {"FirstName": "", "LastName": "", "Email": "", "Phone": "", "Country": "US",
                            "Company": "", "Title": ""},
            "LeadSource": "AzureMarketplace", "ActionCode": "INS", "OfferTitle": "Lead Router"}


def utf8(document: object, ensure_ascii: bool = True) -> bytes:
    return json.dumps(document, ensure_ascii=ensure_ascii).encode("utf-8")


@pytest.fixture
def pipeline(azurite, tmp_path: Path) -> Pipeline:
    return build_pipeline(azurite.connection_string, str(tmp_path / "spool"),
                          {"email": RecordingDestination("email")})


# --- the arithmetic ---------------------------------------------------------------------------------

def test_utf16_units_count_an_emoji_as_two() -> None:
    assert utf16_units("a数😀") == 4
    assert len("😀".encode("utf-16-le")) == 4


def test_chunks_respect_utf16_units_and_never_split_a_pair() -> None:
    text = "a" + "😀" * 10 + "数" * 5
    chunks = chunk_utf16(text, 5)
    assert "".join(chunks) == text
    assert all(utf16_units(chunk) <= 5 for chunk in chunks)
    for chunk in chunks:
        chunk.encode("utf-8")  # a split pair would leave a lone surrogate, which does not encode
    assert chunk_utf16("") == [""]


def test_queue_message_size_is_the_base64_of_its_utf8() -> None:
    assert base64_length(3) == 4 and base64_length(4) == 8
    fits = "数" * (3 * MAX_QUEUE_MESSAGE_BYTES // 4 // 3)  # 3 UTF-8 bytes each: exactly 64 KiB as base64
    assert queue_message_fits(fits) and not queue_message_fits(fits + "a")
    assert not queue_message_fits("\ud800")


def test_the_largest_lead_entity_is_within_azure_limits() -> None:
    """A 64 KiB body of campaign parameters and a long LeadSource: the JSON repeats both."""
    from leads.core.parsing import MAX_BODY_BYTES, parse_lead

    pairs = "&".join(f"k{i}=v" for i in range(12_000))
    document: dict[str, Any] = {**LEAD, "Description": "Campaigns: " + pairs,
                                "LeadSource": "S" * 5_000 + "-" + "A" * 5_000 + "|p." + "o" * 5_000}
    body = utf8(document)
    body = utf8({**document, "Description": document["Description"][: len(document["Description"])
                                                                        - (len(body) - MAX_BODY_BYTES)]})
    assert len(body) == MAX_BODY_BYTES
    lead = parse_lead(body)
    assert len(lead.campaign) > 5_000 and len(lead.lead_source.action) == 5_000
    now = datetime.now(UTC)
    entity = lead_entity(StoredLead(keys.new_lead_id(now), now, lead), body)
    assert 300_000 < entity_size(entity) < MAX_ENTITY_BYTES
    assert all(2 * utf16_units(v) <= MAX_STRING_BYTES for v in entity.values() if isinstance(v, str))


# --- the enforcer itself ----------------------------------------------------------------------------

def _clients(connection_string: str, name: str) -> tuple[Any, Any]:
    storage = load_settings({"AzureWebJobsStorage": connection_string}).storage
    table = table_service(storage, retry_total=0).get_table_client(name)
    table.create_table()
    queue = queue_service(storage, retry_total=0).get_queue_client(
        name, message_encode_policy=TextBase64EncodePolicy())
    queue.create_queue()
    return table, queue


# What this Azurite (--loose) does with each: it refuses over-long properties, over-long queue messages and
# an entity over 1 MiB in a batch itself, but stores an entity over 1 MiB or over 252 properties alone.
@pytest.mark.azurite
@pytest.mark.parametrize(("what", "expected", "azurite_accepts"), [
    ("entity", "EntityTooLarge", True), ("properties", "TooManyProperties", True),
    ("string", "PropertyValueTooLarge", False), ("binary", "PropertyValueTooLarge", False),
    ("batch", "EntityTooLarge", False), ("message", "RequestBodyTooLarge", False),
])
def test_enforcer_refuses_what_azure_refuses(azurite, what: str, expected: str, azurite_accepts: bool) -> None:
    table, queue = _clients(azurite.connection_string, f"enforcer{what}")
    entities: dict[str, dict[str, Any]] = {
        "string": {"PartitionKey": "p", "RowKey": what, "Text": "😀" * 17_000},  # 34,000 UTF-16 code units
        "binary": {"PartitionKey": "p", "RowKey": what, "Data": b"x" * (64 * 1024 + 1)},
        "entity": {"PartitionKey": "p", "RowKey": what, **{f"D{i}": b"x" * 60_000 for i in range(18)}},
        "properties": {"PartitionKey": "p", "RowKey": what, **{f"P{i}": i for i in range(253)}},
    }

    def send() -> None:
        if what == "message":
            queue.send_message("数" * 16_385)  # 49,155 UTF-8 bytes: 65,540 as base64
        elif what == "batch":
            table.submit_transaction([("upsert", {**entities["entity"], "RowKey": "b"})])
        else:
            table.create_entity(entities[what])

    with pytest.raises(AzureLimitExceeded, match=expected):
        send()
    assert ENFORCER.take_violations() and not ENFORCER.violations
    with ENFORCER.allowing():
        if azurite_accepts:
            send()
            assert table.get_entity("p", "b" if what == "batch" else what)
        else:
            with pytest.raises(HttpResponseError):
                send()


# --- the three reported cases -------------------------------------------------------------------------

@pytest.mark.azurite
def test_a_lone_surrogate_is_stored_as_u_fffd_and_enqueued_with_its_snapshot(pipeline: Pipeline) -> None:
    body = b'{"UserDetails": {"FirstName": "Jo\\ud800e", "Email": "jo@example.com", "X\\udfff": "y"},' \
           b' "OfferTitle": "Lead Router"}'
    answer = pipeline.ingest.receive("POST", body)
    assert answer.status == 202
    loaded = pipeline.table.load(answer.body["id"])
    assert loaded is not None
    assert loaded.stored.lead.customer.first_name == "Jo\ufffde"
    assert loaded.stored.lead.extra == {"UserDetails.X\ufffd": "y"}
    entity = pipeline.table.leads.get_entity(keys.LEADS_PARTITION, keys.lead_row_key(answer.body["id"]))
    assert raw_body_of(entity) == body  # as received
    [message] = pipeline.queued()
    assert message.snapshot is not None and message.snapshot.lead.customer.first_name == "Jo\ufffde"


@pytest.mark.azurite
@pytest.mark.parametrize("description", ["😀" * 10_000 + "a" * 20_000, "数据" * 10_000],
                         ids=["emoji", "cjk"])
def test_a_60_kb_lead_is_stored_and_enqueued_in_the_same_request(pipeline: Pipeline, description: str) -> None:
    """30,000 characters of the emoji lead are 40,000 UTF-16 code units: over a string property's limit."""
    body = utf8({**LEAD, "Description": description}, ensure_ascii=False)
    assert 60_000 <= len(body) <= 64 * 1024
    answer = pipeline.ingest.receive("POST", body)
    assert answer.status == 202
    loaded = pipeline.table.load(answer.body["id"])
    assert loaded is not None and loaded.stored.lead.description == description
    [message] = pipeline.queued()  # the same request enqueued it: no wait for the sweeper
    assert message.lead_id == answer.body["id"]
    assert message.snapshot is None  # too big to travel inline: the delivery reads the lead
    pipeline.delivery.handle(message)
    assert pipeline.destinations["email"].received == [answer.body["id"]]


def test_a_snapshot_message_that_fits_travels_whole_and_one_that_does_not_is_id_only() -> None:
    from leads.core.parsing import parse_lead

    now = datetime.now(UTC)
    for size, inline in ((40_000, True), (50_000, False)):
        lead = parse_lead(utf8({**LEAD, "Description": "a" * size}))
        encoded = DeliveryMessage("id", "etag", StoredLead("id", now, lead)).encode()
        assert queue_message_fits(encoded)
        assert ("snapshot" in json.loads(encoded)) is inline


# --- de-duplication -----------------------------------------------------------------------------------

@pytest.mark.azurite
def test_two_leads_that_identify_no_customer_are_two_leads(pipeline: Pipeline) -> None:
    first = pipeline.ingest.receive("POST", utf8(EDU_LEAD))
    second = pipeline.ingest.receive("POST", utf8(EDU_LEAD))
    assert first.body["duplicate"] is False and second.body["duplicate"] is False
    assert first.body["id"] != second.body["id"]
    assert {m.lead_id for m in pipeline.queued()} == {first.body["id"], second.body["id"]}
    markers = list(pipeline.table.leads.query_entities("RowKey ge 'marker:' and RowKey lt 'marker;'"))
    assert markers == []


@pytest.mark.azurite
def test_each_duplicate_is_counted_on_the_original_lead(pipeline: Pipeline) -> None:
    first = pipeline.ingest.receive("POST", utf8(LEAD))
    pipeline.clock.offset = 60
    second = pipeline.ingest.receive("POST", utf8(LEAD))
    assert second.body == {"id": first.body["id"], "duplicate": True, "test": False}
    pipeline.clock.offset = 120
    before = pipeline.clock()
    pipeline.ingest.receive("POST", utf8(LEAD))
    loaded = pipeline.table.load(first.body["id"])
    assert loaded is not None
    assert loaded.stored.duplicates == 2
    assert loaded.stored.last_duplicate_at is not None
    assert before - timedelta(milliseconds=1) <= loaded.stored.last_duplicate_at <= pipeline.clock()
    assert len(pipeline.queued()) == 1  # and still delivered once


@pytest.mark.azurite
def test_concurrent_duplicates_are_all_counted(pipeline: Pipeline) -> None:
    first = pipeline.ingest.receive("POST", utf8(LEAD))
    threads = [threading.Thread(target=pipeline.ingest.receive, args=("POST", utf8(LEAD))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    loaded = pipeline.table.load(first.body["id"])
    assert loaded is not None and loaded.stored.duplicates == 4


@pytest.mark.azurite
def test_a_counted_duplicate_does_not_stop_the_delivery(pipeline: Pipeline) -> None:
    """The count changes the lead's ETag after the message carried it: the claim reloads and goes on."""
    first = pipeline.ingest.receive("POST", utf8(LEAD))
    pipeline.ingest.receive("POST", utf8(LEAD))
    [message] = pipeline.queued()
    pipeline.delivery.handle(message)
    assert pipeline.destinations["email"].received == [first.body["id"]]


@pytest.mark.azurite
def test_a_rejected_request_is_kept_within_azure_limits_whatever_it_holds(pipeline: Pipeline) -> None:
    body = "😀".encode() * 50_000  # 200 KB: too large, and not JSON
    answer = pipeline.ingest.receive("POST", body, content_type="application/json; x=" + "\ud800😀" * 500)
    assert answer.status == 413
    [row] = pipeline.table.rejected()
    assert row["BodyBytes"] == len(body) and row["Truncated"] is True
    assert bytes(row["Body0"]) + bytes(row["Body1"]) == body[: 64 * 1024]
    assert "\ud800" not in row["ContentType"]
