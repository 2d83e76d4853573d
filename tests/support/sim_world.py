"""The simulated world of tests/services/test_simulation.py: a virtual clock, the in-memory storage accounts
(tests/support/memory_storage.py), Partner Center (POSTs and its own table), the Functions host's queue
trigger, fake destinations, and one process of the app built as leads/runtime.py builds it.

Deterministic: one `random.Random(seed)` decides everything; no sleeps (the services' `sleep` advances the
virtual clock), no threads (the services' thread pools run each task in turn, `deterministic()` below), and
the random parts of lead ids and file names come from the same seed."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from leads.core.breaker import CircuitBreakers
from leads.core.destination import Check, Delivered
from leads.core.errors import ConfigurationError, StorageUnavailableError, TransientDestinationError
from leads.core.model import StoredLead
from leads.core.ports import SourceRow
from leads.core.settings import Settings, load_settings
from leads.services.context import Runtime
from leads.services.delivery import DeliveryService
from leads.services.importer import Importer, lead_body
from leads.services.ingest import IngestService
from leads.services.poison import PoisonRequeue
from leads.services.recovery import SOON_BATCH, Recovery
from leads.services.sweeper import Sweeper
from leads.storage.fallback_table import FallbackTable
from leads.storage.source_table import SourceTable, WatermarkTable
from leads.storage.spool import Spool
from leads.storage.subject_index import SubjectIndex
from leads.storage.table_store import LeadTable
from leads.storage.work_queue import WorkQueue
from tests.support.memory_storage import ProcessCrash
from tests.support.samples import SAMPLES

START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
PC_TABLE = "MarketplaceLeads"
HOST_LEASE = 600  # the host leases a message for 10 minutes, renewed while the function runs (docs/stack.md)
HOST_RETRY_VISIBILITY = 10  # host.json extensions.queues.visibilityTimeout
MAX_DEQUEUE = 5  # host.json extensions.queues.maxDequeueCount
DESTINATIONS = ("email", "webhook", "hubspot")
POST_SAMPLE: dict[str, Any] = json.loads((SAMPLES / "partner-center-doc-sample.json").read_text("utf-8"))
ROW_SAMPLE: dict[str, Any] = json.loads((SAMPLES / "azure-table-destination-row.json").read_text("utf-8"))


class VirtualClock:
    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=max(0.0, seconds))

    sleep = advance


class _SeededSecrets:
    """Stands in for the `secrets` module in the app's modules that name leads and files."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def token_hex(self, count: int = 32) -> str:
        return self.rng.randbytes(count).hex()

    def token_bytes(self, count: int = 32) -> bytes:
        return self.rng.randbytes(count)


class SerialExecutor:
    """A ThreadPoolExecutor that runs each task when it is submitted: same results, one order."""

    def __init__(self, *_: Any, **__: Any) -> None:
        pass

    def __enter__(self) -> SerialExecutor:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:  # noqa: BLE001 - kept on the future, as a pool does; ProcessCrash goes through
            future.set_exception(error)
        return future

    def map(self, fn: Callable[..., Any], *iterables: Any) -> Iterator[Any]:
        return iter([fn(*args) for args in zip(*iterables, strict=False)])


@contextlib.contextmanager
def deterministic(clock: Callable[[], datetime], rng: random.Random) -> Iterator[None]:
    """The app's modules read this clock, name things from this seed and run their pools in turn."""
    from leads.core import model

    patches: list[tuple[Any, str, Any]] = []
    seeded = _SeededSecrets(rng)
    for name, module in list(sys.modules.items()):
        if not name.startswith("leads.") or module is None:
            continue
        if getattr(module, "utcnow", None) is model.utcnow and module is not model:
            patches.append((module, "utcnow", clock))
        if getattr(module, "secrets", None) is not None and name in (
                "leads.core.keys", "leads.storage.spool", "leads.storage.marker_secret"):
            patches.append((module, "secrets", seeded))
        if getattr(module, "ThreadPoolExecutor", None) is not None and name in (
                "leads.services.delivery", "leads.services.importer"):
            patches.append((module, "ThreadPoolExecutor", SerialExecutor))
    saved = [(module, attr, getattr(module, attr)) for module, attr, _ in patches]
    for module, attr, value in patches:
        setattr(module, attr, value)
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)
        for module, attr, value in saved:
            setattr(module, attr, value)


# --- Partner Center's leads ----------------------------------------------------------------------------------
@dataclass
class Person:
    """One distinct lead (one customer, one payload): what Partner Center sends, by POST, its table, or both."""

    number: int
    via: str  # post | import | both
    email: str = ""
    body: bytes = b""
    first_posted: datetime | None = None
    accepted_ids: set[str] = field(default_factory=set)  # 202 answers
    answered_503: int = 0
    forgotten_at: datetime | None = None
    forget_pending: bool = False
    forget_started: datetime | None = None
    written_to_pc: datetime | None = None

    def __post_init__(self) -> None:
        self.email = f"person{self.number}@example.com"
        if self.via == "both":  # the same lead by both ways: the body the importer makes of the row
            self.body = lead_body(SourceRow(PC_TABLE, "", "", START, self.pc_columns()))
            return
        details = {**POST_SAMPLE["UserDetails"], "Email": self.email, "FirstName": f"P{self.number}",
                   "LastName": "Sim", "Company": f"Company {self.number}"}
        self.body = json.dumps({**POST_SAMPLE, "UserDetails": details,
                                "Description": f"simulated lead {self.number}"}).encode()

    def pc_columns(self) -> dict[str, Any]:
        info = json.loads(ROW_SAMPLE["CustomerInfo"])
        info.update(Email=self.email, FirstName=f"P{self.number}", LastName="Sim", Company=f"Company {self.number}")
        columns = {k: v for k, v in ROW_SAMPLE.items() if k not in ("PartitionKey", "RowKey", "Timestamp")}
        return {**columns, "CustomerInfo": json.dumps(info), "Description": f"simulated lead {self.number}"}

    def pc_row(self, row_key: str, now: datetime) -> dict[str, Any]:
        return {**self.pc_columns(), "PartitionKey": f"{now.month}:2F{now.day}:2F{now.year}", "RowKey": row_key,
                "CreatedTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")}


# --- destinations ------------------------------------------------------------------------------------------
@dataclass
class Send:
    lead_id: str
    email: str
    destination: str
    lease_until: str  # the claim it was sent under


@dataclass
class FakeDestination:
    """Answers as the world's mood for it says: ok, transient (429/5xx with Retry-After), a configuration
    error (a setting broken), or slowly (past the lease). Each call that hands the lead over is counted."""

    name: str
    world: Any  # the Simulation
    is_crm: bool = False

    def deliver(self, stored: StoredLead) -> Delivered:
        world = self.world
        mood = world.moods.get(self.name, "ok")
        roll = world.rng.random()
        if mood == "broken":
            raise ConfigurationError(f"{self.name}: the token was refused (401); fix the setting.")
        if (mood == "flaky" and roll < 0.6) or roll < 0.08:
            retry_after = world.rng.choice([None, 5.0, 60.0, 600.0])
            raise TransientDestinationError(f"{self.name} answered 503; will retry.", retry_after=retry_after)
        world.handed_over(self.name, stored)
        if roll < 0.10:
            world.count("destination_crash")
            raise ProcessCrash(f"the process died while {self.name} was answering")
        if roll < 0.13:
            world.slow_call(self.name, stored)
        return Delivered(f"{self.name}-{stored.id}")

    def check(self) -> list[Check]:
        return []


# --- one process of the app ----------------------------------------------------------------------------------
class Process:
    """What leads/runtime.py builds in one process, on the simulated storage; nothing of it survives a crash."""

    def __init__(self, world: Any, settings: Settings) -> None:
        self.settings = settings
        table = LeadTable(world.main.table_service(), settings.table, settings.quarantine_table)
        queue = WorkQueue(world.main.queue_service(), settings.queue)
        self.table, self.queue = table, queue
        spool = Spool(str(world.spool_dir))
        fallback = FallbackTable(world.fallback.table_service())
        self.ingest = IngestService(table, queue, spool, settings, settings.routing, clock=world.clock,
                                    fallback=fallback)
        self.ingest.tombstones = tombstones(table)  # as leads/runtime.py build_runtime wires it
        self.recovery = Recovery(self.ingest, spool, fallback, table.ping)
        # runtime.py drains a few spooled files on a thread after a successful ingest; here in turn.
        self.ingest.after_stored = self._drain_a_few
        self.runtime = Runtime(settings, table, queue, spool, self.ingest, self.recovery)
        self.delivery = self.new_delivery(world)
        poisoned = PoisonRequeue(queue.poison_queue(), queue, table, settings.requeue_again_seconds)
        self.sweeper = Sweeper(table, queue, self.ingest, spool, clock=world.clock, recovery=self.recovery,
                               requeue_again=timedelta(seconds=settings.requeue_again_seconds), poisoned=poisoned)
        self.importer = Importer(SourceTable(world.partner_center.table_service().get_table_client(PC_TABLE)),
                                 WatermarkTable(table.leads, PC_TABLE), self.ingest, table, clock=world.clock,
                                 workers=1)

    def _drain_a_few(self) -> None:
        self.recovery.drain_spool(SOON_BATCH)

    def new_delivery(self, world: Any) -> DeliveryService:
        """A delivery worker (another instance's, for a takeover): its own breakers."""
        destinations = {name: FakeDestination(name, world, is_crm=name == "hubspot")
                        for name in self.settings.routing.destinations}
        service = DeliveryService(self.table, self.queue, destinations, self.settings, CircuitBreakers(),
                                  clock=world.clock, sleep=world.clock.sleep)
        service.tombstones = self.ingest.tombstones
        return service


def settings_for(destinations: tuple[str, ...], spool_dir: Path) -> Settings:
    return load_settings({
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "LEADS_DESTINATIONS": ",".join(destinations),
        "LEADS_RETRY_DELAYS": "30,120,600,1800",
        "LEADS_DEDUPE_HOURS": "12",  # below the retention (the settings refuse a window as long as it)
        "LEADS_RETENTION_DAYS": "1",
        "LEADS_DELIVERY_LEASE_SECONDS": "600",
        "LEADS_OUTBOX_GRACE_SECONDS": "120",
        "LEADS_REQUEUE_AGAIN_SECONDS": "300",
        "LEADS_SPOOL_DIR": str(spool_dir),
    })


def tombstones(table: LeadTable) -> SubjectIndex:
    """The person index and tombstones as leads/runtime.py builds them (started: a new table needs no backfill)."""
    index = SubjectIndex(table)
    with contextlib.suppress(StorageUnavailableError):
        index.start()
    return index
