"""A real pipeline on Azurite with unique table and queue names, and destinations that record calls."""

from __future__ import annotations

import contextlib
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from leads.core.breaker import CircuitBreakers
from leads.core.destination import Check, Delivered, Skipped
from leads.core.errors import StorageUnavailableError
from leads.core.messages import DeliveryMessage, decode_message
from leads.core.model import StoredLead, utcnow
from leads.core.settings import Settings, load_settings
from leads.services.context import Runtime
from leads.services.delivery import DeliveryService
from leads.services.ingest import IngestService
from leads.storage.azure_clients import queue_service, table_service
from leads.storage.spool import Spool
from leads.storage.subject_index import SubjectIndex
from leads.storage.table_store import LeadTable
from leads.storage.work_queue import WorkQueue
from tests.support.counting import CountingTransport


@dataclass
class RecordingDestination:
    """A destination double: records each lead it is given; `script` decides each answer in turn."""

    name: str
    is_crm: bool = False
    script: list[Any] = field(default_factory=list)  # Delivered/Skipped/exception per call; then Delivered
    received: list[str] = field(default_factory=list)
    gate: threading.Event | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def deliver(self, stored: StoredLead) -> Delivered | Skipped:
        if self.gate is not None:
            self.gate.wait(10)
        with self._lock:
            self.received.append(stored.id)
            answer = self.script.pop(0) if self.script else Delivered(f"{self.name}-{len(self.received)}")
        if isinstance(answer, Exception):
            raise answer
        return answer

    def check(self) -> list[Check]:
        return [Check(self.name, "reachable", True, "OK")]


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> datetime:
        from datetime import timedelta

        return utcnow() + timedelta(seconds=self.offset)


@dataclass
class Pipeline:
    settings: Settings
    runtime: Runtime
    delivery: DeliveryService
    destinations: dict[str, RecordingDestination]
    transport: CountingTransport
    clock: Clock

    @property
    def table(self) -> LeadTable:
        return self.runtime.table

    @property
    def ingest(self) -> IngestService:
        return self.runtime.ingest

    def queued(self) -> list[DeliveryMessage]:
        """Receive (and delete) every visible message."""
        out = []
        for message in self.runtime.queue.queue.receive_messages(max_messages=32, visibility_timeout=1):
            out.append(decode_message(message.content))
            self.runtime.queue.queue.delete_message(message.id, message.pop_receipt)
        return out


def build_pipeline(connection_string: str, spool_dir: str, destinations: Mapping[str, RecordingDestination],
                   env: Mapping[str, str] | None = None, table_connection: str | None = None,
                   queue_connection: str | None = None) -> Pipeline:
    suffix = uuid.uuid4().hex[:10]
    settings = load_settings({
        "AzureWebJobsStorage": connection_string,
        "LEADS_TABLE": f"leads{suffix}",
        "LEADS_QUARANTINE_TABLE": f"rejected{suffix}",
        "LEADS_QUEUE": f"work-{suffix}",
        "LEADS_DESTINATIONS": ",".join(destinations),
        "LEADS_RETRY_DELAYS": "1,2,3",
        "LEADS_REQUEUE_AGAIN_SECONDS": "1",
        "LEADS_SPOOL_DIR": spool_dir,
        **(env or {}),
    })
    transport = CountingTransport()
    clock = Clock()
    tables = replace(settings.storage, connection_string=table_connection or connection_string)
    queues = replace(settings.storage, connection_string=queue_connection or connection_string)
    table = LeadTable(table_service(tables, transport=transport, retry_total=0), settings.table,
                      settings.quarantine_table)
    queue = WorkQueue(queue_service(queues, transport=transport, retry_total=0), settings.queue)
    for create in (table.create_tables, queue.create_queues):
        with contextlib.suppress(StorageUnavailableError):  # a test may point one at a dead port on purpose
            create()
    spool = Spool(spool_dir)
    ingest = IngestService(table, queue, spool, settings, settings.routing, clock=clock)
    ingest.tombstones = index = SubjectIndex(table)  # as leads/runtime.py wires it
    with contextlib.suppress(StorageUnavailableError):
        index.start()  # a new table: the person index is complete from the start
    runtime = Runtime(settings, table, queue, spool, ingest)
    delivery = DeliveryService(table, queue, destinations, settings, CircuitBreakers(), clock=clock)
    transport.reset()
    return Pipeline(settings, runtime, delivery, dict(destinations), transport, clock)


Factory = Callable[..., Pipeline]


@contextlib.contextmanager
def pipeline_on_own_azurite() -> Iterator[tuple[Pipeline, Any, str]]:
    """The benchmarks' stack: an Azurite of its own in a temporary folder and a pipeline on it whose e-mail is
    recorded; yields (pipeline, azurite, the folder)."""
    from tests.support.azurite import start_test_azurite

    with tempfile.TemporaryDirectory() as work:
        azurite = start_test_azurite(Path(work) / "azurite")
        try:
            yield (build_pipeline(azurite.connection_string, str(Path(work) / "spool"),
                                  {"email": RecordingDestination("email")}), azurite, work)
        finally:
            azurite.stop()
