"""One short deterministic scenario per defect of issue 16, on the real services (the in-memory storage of
tests/support/memory_storage.py and a virtual clock; Azurite for defect 1, a fake Salesforce for defect 12).

Each failed on the code before its fix (a strict xfail until its fix was merged); each now guards its fix."""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from leads.core import keys
from leads.core.breaker import CircuitBreakers
from leads.core.errors import (
    ConfigurationError,
    LeadRejectedError,
    LeadsError,
    StorageUnavailableError,
    TransientDestinationError,
)
from leads.core.messages import DeliveryMessage
from leads.core.model import BLOCKED, DELIVERED, RETRYING, Customer
from leads.core.settings import load_settings
from leads.services import doctor
from leads.services.delivery import DeliveryService
from leads.services.importer import Importer
from leads.services.privacy import Privacy
from leads.storage.bare_markers import BareMarkers
from leads.storage.erasure import lead_ids_for
from leads.storage.source_table import SourceTable, WatermarkTable
from leads.storage.table_store import raw_body_of
from tests.destinations.sample import stored_lead
from tests.destinations.test_salesforce import LEADS, errors, rest, server  # noqa: F401 - `server` is a fixture
from tests.support.fake_http import FakeServer
from tests.support.memory_common import Faults
from tests.support.memory_pipeline import MemoryPipeline, build_memory_pipeline
from tests.support.memory_storage import OK, REFUSE, MemoryAccount, ProcessCrash, StorageCall
from tests.support.pipeline import RecordingDestination
from tests.support.sim_world import PC_TABLE, Person

JSON = "application/json"


class Switch:
    """A fault hook: every call to the main account refused while `down`, or only the calls named."""

    def __init__(self) -> None:
        self.down = False
        self.refuse_next: list[str] = []

    def __call__(self, call: StorageCall) -> str:
        if self.refuse_next and call.operation == self.refuse_next[0]:
            self.refuse_next.pop(0)
            return REFUSE
        return REFUSE if self.down else OK


def _pipe(tmp_path: Path, *names: str, env: dict[str, str] | None = None, faults: Faults | None = None,
          script: list[Any] | None = None) -> MemoryPipeline:
    destinations = {name: RecordingDestination(name, script=list(script or [])) for name in names or ("email",)}
    return build_memory_pipeline(tmp_path / "spool", destinations, env, faults=faults)


def _deliver(pipe: MemoryPipeline, lead_id: str) -> None:
    """One delivery by a fresh instance (its own circuit breakers), as after a restart."""
    DeliveryService(pipe.table, pipe.queue, pipe.destinations, pipe.settings, CircuitBreakers(), clock=pipe.clock,
                    sleep=pipe.clock.sleep).handle(DeliveryMessage(lead_id))


def _accepted(pipe: MemoryPipeline, body: bytes) -> str:
    answer = pipe.ingest.receive("POST", body, JSON)
    assert answer.status == 202, answer.body
    return str(answer.body["id"])


# --- 1 --------------------------------------------------------------------------------------------------------
def test_defect_01_a_malformed_fallback_setting_turns_off_only_the_fallback_and_doctor_says_so(azurite: Any) -> None:
    from leads.runtime import build_runtime

    suffix = uuid.uuid4().hex[:10]
    env = {"AzureWebJobsStorage": azurite.connection_string, "LEADS_TABLE": f"leads{suffix}",
           "LEADS_QUARANTINE_TABLE": f"rejected{suffix}", "LEADS_QUEUE": f"work-{suffix}",
           "LEADS_DESTINATIONS": "email",
           # a connection string without a key: `Connection string missing required connection details.`
           "LEADS_FALLBACK_STORAGE": "DefaultEndpointsProtocol=https;AccountName=contosofallback;"
                                     "EndpointSuffix=core.windows.net"}
    rt = build_runtime(load_settings(env))  # today: ValueError, so every POST answers 503
    assert rt.ingest.receive("POST", Person(1, "post").body, JSON).status == 202
    out = io.StringIO()
    doctor.main([], env=env, out=out)
    assert "LEADS_FALLBACK_STORAGE" in out.getvalue()


# --- 2 --------------------------------------------------------------------------------------------------------
def test_defect_02_a_transient_error_while_a_spooled_lead_is_stored_does_not_set_it_aside(tmp_path: Path) -> None:
    switch = Switch()
    pipe = _pipe(tmp_path, faults=switch)
    pipe.spool.keep(Person(1, "post").body, pipe.clock())
    switch.refuse_next = ["submit_transaction"]  # one 503 while the lead is stored; the table answers otherwise
    pipe.recovery.drain_spool()
    assert not list(pipe.spool.folder.glob("*.failed")), "set aside for good, as storage came back"
    pipe.recovery.drain_spool()
    assert not pipe.spool.pending()
    assert lead_ids_for(pipe.table, Person(1, "post").email)


# --- 3 --------------------------------------------------------------------------------------------------------
def test_defect_03_blocked_rechecks_do_not_use_up_the_transient_retry_budget(tmp_path: Path) -> None:
    refusals: list[Any] = [ConfigurationError("The token was refused (401): fix LEADS_X.")] * 5
    pipe = _pipe(tmp_path, script=[*refusals, TransientDestinationError("429; will retry.", retry_after=1)])
    lead_id = _accepted(pipe, Person(1, "post").body)
    for _ in range(6):  # five hourly re-checks while blocked, then the setting is fixed and the API says 429
        _deliver(pipe, lead_id)
        pipe.clock.advance(3601)
    loaded = pipe.table.load(lead_id)
    assert loaded is not None
    state = loaded.stored.deliveries["email"]
    assert [h["outcome"] for h in state.history].count(BLOCKED) == 5
    assert state.state == RETRYING, state.last_error  # today: failed, "Gave up after 6 attempts"


# --- 4 --------------------------------------------------------------------------------------------------------
def test_defect_04_a_destination_missing_for_minutes_is_not_skipped_for_good(tmp_path: Path) -> None:
    pipe = _pipe(tmp_path, "email", "webhook")
    lead_id = _accepted(pipe, Person(1, "post").body)
    typo = pipe.reconfigured(LEADS_DESTINATIONS="email")  # a rolling settings change: webhook missing a while
    _deliver(typo, lead_id)
    fixed = pipe.reconfigured(LEADS_DESTINATIONS="email,webhook")  # named again minutes later
    fixed.clock.advance(600)
    _deliver(fixed, lead_id)
    fixed.sweeper.sweep()
    fixed.run_host(3)
    loaded = fixed.table.load(lead_id)
    assert loaded is not None
    assert loaded.stored.deliveries["webhook"].state == DELIVERED, loaded.stored.deliveries["webhook"].last_error
    assert fixed.destinations["webhook"].received == [lead_id]


# --- 5 --------------------------------------------------------------------------------------------------------
def test_defect_05_a_lead_imported_after_the_dedupe_window_is_compared_at_its_source_time(tmp_path: Path) -> None:
    pipe = _pipe(tmp_path)
    person = Person(1, "both")  # POSTed, and written to Partner Center's table at the same moment
    posted = _accepted(pipe, person.body)
    partner_center = MemoryAccount(pipe.clock, name="partner_center")
    source = partner_center.table_service().create_table(PC_TABLE)
    source.create_entity(person.pc_row("row-1", pipe.clock()))
    pipe.clock.advance(25 * 3600)  # an importer outage (or a backfill) longer than LEADS_DEDUPE_HOURS=24
    importer = Importer(SourceTable(source), WatermarkTable(pipe.table.leads, PC_TABLE), pipe.ingest, pipe.table,
                        clock=pipe.clock, workers=1)
    report = importer.run(since=pipe.clock() - timedelta(hours=26))
    assert report.read == 1
    assert (report.imported, report.duplicates) == (0, 1), f"a second lead besides {posted}"


# --- 6 --------------------------------------------------------------------------------------------------------
def test_defect_06_the_retention_purge_keeps_blocked_and_pending_leads(tmp_path: Path) -> None:
    pipe = _pipe(tmp_path, "email", "webhook", env={"LEADS_RETENTION_DAYS": "1", "LEADS_DEDUPE_HOURS": "12"})
    pipe.destinations["email"].script = [ConfigurationError("The token was refused (401): fix LEADS_X.")]
    blocked = _accepted(pipe, Person(1, "post").body)
    _deliver(pipe, blocked)
    pending = _accepted(pipe, Person(2, "post").body)
    pipe.clock.advance(2 * 86400)
    Privacy(pipe.runtime, now=pipe.clock()).purge()
    assert pipe.table.load(blocked) is not None, "a blocked lead was purged"
    assert pipe.table.load(pending) is not None, "a pending lead was purged"


def test_defect_06_a_lead_purged_after_retention_is_not_sent_again_by_a_backfill(tmp_path: Path) -> None:
    """Found by the simulation (SIM_SEED=204666932, before Settings.import_horizon): a lead POSTed, delivered and
    purged with its de-dup marker; a backfill read Partner Center's row of it, took it for a new lead and sent it
    to every destination again."""
    pipe = _pipe(tmp_path, env={"LEADS_RETENTION_DAYS": "2", "LEADS_DEDUPE_HOURS": "24"})
    partner_center = MemoryAccount(pipe.clock, name="partner_center")
    source = partner_center.table_service().create_table(PC_TABLE)
    person, late = Person(1, "both"), Person(2, "import")  # late: never POSTed, written to the table 49 hours later
    began = pipe.clock()
    _deliver(pipe, _accepted(pipe, person.body))
    source.create_entity(person.pc_row("row-1", pipe.clock()))
    pipe.clock.advance(49 * 3600)  # past the import horizon (2 days less 24 hours) by a day
    source.create_entity(late.pc_row("row-2", pipe.clock()))
    pipe.clock.advance(23 * 3600)
    assert Privacy(pipe.runtime, now=pipe.clock()).purge()["leads"] == 1
    importer = Importer(SourceTable(source), WatermarkTable(pipe.table.leads, PC_TABLE), pipe.ingest, pipe.table,
                        clock=pipe.clock, workers=1)

    report = importer.run(since=began - timedelta(hours=1))

    assert (report.read, report.imported, report.past_retention) == (2, 1, 1)
    assert "1 row(s) older than LEADS_RETENTION_DAYS less LEADS_DEDUPE_HOURS were not imported" in report.sentence()
    assert [stored.lead.customer.email for stored in pipe.table.recent()] == [late.email]


# --- 7 --------------------------------------------------------------------------------------------------------
def test_defect_07_the_outbox_row_of_a_lead_that_is_gone_is_removed_not_requeued_forever(tmp_path: Path) -> None:
    pipe = _pipe(tmp_path)
    gone = keys.new_lead_id(pipe.clock())
    pipe.table.leads.upsert_entity({"PartitionKey": keys.LEADS_PARTITION, "RowKey": keys.outbox_row_key(gone),
                                    "LeadId": gone, "DueAt": pipe.clock()})
    requeued = 0
    for _ in range(4):
        requeued += pipe.sweeper.sweep().requeued
        pipe.run_host()
        pipe.clock.advance(pipe.settings.requeue_again_seconds + 1)
    assert requeued <= 1, f"re-enqueued {requeued} times"
    assert not list(pipe.table.leads.query_entities("RowKey eq @k", parameters={"k": keys.outbox_row_key(gone)}))


# --- 8 --------------------------------------------------------------------------------------------------------
def test_defect_08_a_delivery_that_fails_before_its_claim_keeps_one_chain_of_messages(tmp_path: Path) -> None:
    switch = Switch()
    pipe = _pipe(tmp_path, faults=switch)
    switch.refuse_next = ["send_message"]  # stored, not enqueued: the sweeper enqueues it (a message without a copy)
    lead_id = _accepted(pipe, Person(1, "post").body)
    row = pipe.main.tables[pipe.settings.table].rows[(keys.LEADS_PARTITION, keys.lead_row_key(lead_id))]
    row.entity["Lead"] = "{unreadable"  # a row the worker cannot read (a half-applied rollback, say)
    most = 0
    for _ in range(6):
        pipe.clock.advance(pipe.settings.requeue_again_seconds + 1)
        pipe.sweeper.sweep()
        pipe.run_host(6)
        waiting = pipe.messages() + pipe.messages(f"{pipe.settings.queue}-poison")
        most = max(most, len(waiting))
    assert most <= 1, f"{most} messages of one lead at once: the chains multiply"


# --- 9 --------------------------------------------------------------------------------------------------------
def test_defect_09_a_repeat_of_a_lead_stored_before_keyed_markers_is_recognised(tmp_path: Path) -> None:
    pipe = _pipe(tmp_path)
    body = Person(1, "post").body
    first = _accepted(pipe, body)
    table = pipe.main.tables[pipe.settings.table]
    [(key, marker)] = [(k, r) for k, r in table.rows.items() if k[1].startswith(keys.KEYED_MARKER_PREFIX)]
    legacy = {**marker.entity, "RowKey": f"marker:{pipe.ingest.store.load(first).stored.lead.fingerprint()}"}  # type: ignore[union-attr]
    table.remove(key)  # as a version before keyed markers stored it (bare SHA-256)
    pipe.table.leads.create_entity(legacy)
    # The upgraded version starts on a table the previous one wrote: a fresh process's view of the old markers
    # (leads/storage/bare_markers.py checks for them at start, then hourly).
    pipe.table.bare_markers = BareMarkers(pipe.table.leads)
    pipe.clock.advance(3600)
    answer = pipe.ingest.receive("POST", body, JSON)
    assert answer.body == {"id": first, "duplicate": True, "test": False}


# --- 10 -------------------------------------------------------------------------------------------------------
def test_defect_10_a_lead_that_waited_in_the_fallback_table_keeps_its_raw_body(tmp_path: Path) -> None:
    switch = Switch()
    pipe = _pipe(tmp_path, faults=switch)
    body = Person(1, "post").body
    switch.down = True
    held = pipe.ingest.receive("POST", body, JSON)
    assert (held.status, held.outcome) == (202, "held")
    switch.down = False
    pipe.sweeper.sweep()
    entity = pipe.table.lead_entity_of(str(held.body["id"]))
    assert entity is not None
    assert raw_body_of(entity) == body


# --- 11 -------------------------------------------------------------------------------------------------------
def test_defect_11_forget_during_the_fallback_drain_does_not_bring_the_person_back(tmp_path: Path) -> None:
    switch = Switch()
    pipe = _pipe(tmp_path, faults=switch)
    person = Person(1, "post")
    switch.down = True
    assert pipe.ingest.receive("POST", person.body, JSON).outcome == "held"
    switch.down = False
    read = pipe.fallback.held
    forgot: list[dict[str, int]] = []

    def held_then_forgotten(limit: int = 100) -> Any:
        rows = read(limit)
        if not forgot:  # the drain has read the held rows; `forget` runs now, before it stores them
            forgot.append({})
            forgot[0] = Privacy(pipe.runtime, now=pipe.clock()).forget(person.email)
        return rows

    pipe.fallback.held = held_then_forgotten  # type: ignore[method-assign]
    pipe.sweeper.sweep()
    pipe.run_host(2)
    assert forgot[0]["held"] == 1
    assert lead_ids_for(pipe.table, person.email) == []
    assert pipe.destinations["email"].received == []


# --- 12 -------------------------------------------------------------------------------------------------------
def test_defect_12_salesforce_refusals_name_salesforces_code_and_lead_source_is_a_standard_value(
        server: FakeServer) -> None:  # noqa: F811 - the fixture of tests/destinations/test_salesforce.py
    server.on("POST", LEADS, errors("REQUIRED_FIELD_MISSING", "Required fields are missing: [Phone]", ["Phone"]))
    with pytest.raises(LeadRejectedError) as missing:
        rest(server).deliver(stored_lead(Customer(last_name="Lovelace", company="Contoso")))
    assert "REQUIRED_FIELD_MISSING" in missing.value.explanation
    server.on("POST", LEADS, errors("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                    "bad value for restricted picklist field: Contoso Analytics", ["LeadSource"]))
    with pytest.raises(LeadRejectedError) as picklist:
        rest(server).deliver(stored_lead())
    assert "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" in picklist.value.explanation
    # Salesforce's standard Lead Source picklist (an org as created): Web, Phone Inquiry, Partner Referral,
    # Purchased List, Other; https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/
    # object_reference/sforce_api_objects_lead.htm (LeadSource: picklist).
    sent = json.loads(server.sent("POST", LEADS)[-1].body)
    assert sent["LeadSource"] in {"Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"}


# --- found by the simulation ----------------------------------------------------------------------------------
def test_claims_that_crashed_do_not_use_up_the_transient_retry_budget(tmp_path: Path) -> None:
    crash = ProcessCrash("the worker died after the call, before recording its answer")
    busy = TransientDestinationError("503; will retry.")
    pipe = _pipe(tmp_path, script=[crash, busy, crash, busy])
    lead_id = _accepted(pipe, Person(1, "post").body)
    for _ in range(4):
        with contextlib.suppress(StorageUnavailableError):  # "answers could not be recorded": the lease runs out
            _deliver(pipe, lead_id)
        pipe.clock.advance(pipe.settings.delivery_lease_seconds + 1)
    loaded = pipe.table.load(lead_id)
    assert loaded is not None
    state = loaded.stored.deliveries["email"]
    assert [h["outcome"] for h in state.history][:3] == ["crashed", "retrying", "crashed"]
    # Two transient answers of the four LEADS_RETRY_DELAYS=30,120,600 allows; today "Gave up after 4 attempts".
    assert state.state == RETRYING, state.last_error


def test_a_forgotten_person_is_not_imported_again_from_partner_centers_table(tmp_path: Path) -> None:
    """Found by the simulation: `forget` erases the app's copies; Partner Center's table still holds the row,
    and an import that reads it (the first run after the POST, a backfill, or the overlap once the import
    marker is gone) stores the person again and every destination gets them."""
    pipe = _pipe(tmp_path)
    person = Person(1, "both")
    _accepted(pipe, person.body)
    partner_center = MemoryAccount(pipe.clock, name="partner_center")
    source = partner_center.table_service().create_table(PC_TABLE)
    source.create_entity(person.pc_row("row-1", pipe.clock()))
    Privacy(pipe.runtime, now=pipe.clock()).forget(person.email)
    pipe.clock.advance(60)
    Importer(SourceTable(source), WatermarkTable(pipe.table.leads, PC_TABLE), pipe.ingest, pipe.table,
             clock=pipe.clock, workers=1).run()
    assert lead_ids_for(pipe.table, person.email) == []


# --- found by the simulation after the merge (SIM_SEED=51499146) -----------------------------------------------
@pytest.mark.parametrize("cut", range(1, 9))
def test_a_forget_cut_short_at_any_write_finds_the_lead_again_on_the_next_run(tmp_path: Path, cut: int) -> None:
    """`forget` finds a person's leads through the person index: erasing the index rows before the lead row let a
    run cut short between the two leave a lead no later `forget` could find (it was then delivered again)."""
    writes = [0]

    def cut_at(call: StorageCall) -> str:
        if call.writes and call.service == "table" and cutting[0]:
            writes[0] += 1
            if writes[0] == cut:
                return REFUSE
        return OK

    cutting = [False]
    pipe = _pipe(tmp_path, faults=cut_at)
    person = Person(1, "post")
    _accepted(pipe, person.body)
    cutting[0] = True
    with contextlib.suppress(LeadsError):
        Privacy(pipe.runtime, now=pipe.clock()).forget(person.email)
    cutting[0] = False
    Privacy(pipe.runtime, now=pipe.clock()).forget(person.email)
    assert lead_ids_for(pipe.table, person.email) == []
    pipe.sweeper.sweep()
    pipe.run_host(2)
    assert pipe.destinations["email"].received == []


def test_a_lead_stored_while_its_tombstone_was_unreadable_is_erased_before_any_send(tmp_path: Path) -> None:
    """The tombstone is read after the write (defect 11); when that read fails the POST is answered 503 and the
    lead stays stored with its outbox row: delivery asks the tombstone again and erases it, sending nothing
    (found by the simulation, SIM_SEED=858972698)."""
    refuse_reads = [False]

    def reads_refused(call: StorageCall) -> str:
        return REFUSE if refuse_reads[0] and call.operation == "get_entity" else OK

    pipe = _pipe(tmp_path, faults=reads_refused)
    person = Person(1, "post")
    Privacy(pipe.runtime, now=pipe.clock()).forget(person.email)
    refuse_reads[0] = True
    answer = pipe.ingest.receive("POST", person.body, JSON)
    refuse_reads[0] = False
    assert answer.status == 503
    assert len(lead_ids_for(pipe.table, person.email)) == 1  # stored, not enqueued
    pipe.clock.advance(600)
    pipe.sweeper.sweep()
    pipe.run_host(3)
    assert pipe.destinations["email"].received == []
    assert lead_ids_for(pipe.table, person.email) == []
