"""The real services on the in-memory storage (tests/support/memory_storage.py) with a virtual clock and
scripted destinations (tests/support/pipeline.py RecordingDestination): the defect scenarios of
tests/services/test_defect_scenarios.py, each a few deterministic steps."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from leads.core.breaker import CircuitBreakers
from leads.core.errors import StorageUnavailableError
from leads.core.messages import decode_message
from leads.core.settings import Settings, load_settings
from leads.services.context import Runtime
from leads.services.delivery import DeliveryService
from leads.services.ingest import IngestService
from leads.services.poison import PoisonRequeue
from leads.services.recovery import Recovery
from leads.services.sweeper import Sweeper
from leads.storage.fallback_table import FallbackTable
from leads.storage.spool import Spool
from leads.storage.table_store import LeadTable
from leads.storage.work_queue import WorkQueue
from tests.support.memory_storage import Faults, MemoryAccount
from tests.support.pipeline import RecordingDestination
from tests.support.sim_world import HOST_LEASE, HOST_RETRY_VISIBILITY, MAX_DEQUEUE, VirtualClock, tombstones


@dataclass
class MemoryPipeline:
    clock: VirtualClock
    main: MemoryAccount
    fallback_account: MemoryAccount
    settings: Settings
    table: LeadTable
    queue: WorkQueue
    spool: Spool
    fallback: FallbackTable
    ingest: IngestService
    recovery: Recovery
    runtime: Runtime
    delivery: DeliveryService
    sweeper: Sweeper
    destinations: dict[str, RecordingDestination]

    def reconfigured(self, **env: str) -> MemoryPipeline:
        """The same storage and disk after a settings change (the app restarts)."""
        return build_memory_pipeline(self.spool.folder, self.destinations, env, clock=self.clock, main=self.main,
                                     fallback=self.fallback_account)

    def run_host(self, rounds: int = 1) -> int:
        """The host's queue trigger over every visible message, `rounds` times: delete on success, visible
        again after host.json's visibilityTimeout on an error, to `<queue>-poison` at maxDequeueCount."""
        client = self.main.queue_service().get_queue_client(self.settings.queue)
        poison = self.main.queue_service().get_queue_client(f"{self.settings.queue}-poison")
        ran = 0
        for _ in range(rounds):
            for message in list(client.receive_messages(messages_per_page=32, visibility_timeout=HOST_LEASE)):
                ran += 1
                try:
                    self.delivery.handle(decode_message(base64.b64decode(message.content).decode()))
                except Exception:  # noqa: BLE001 - whatever the function raised, the host retries the message
                    if (message.dequeue_count or 0) >= MAX_DEQUEUE:
                        poison.send_message(message.content)
                        client.delete_message(message)
                    else:
                        client.update_message(message, visibility_timeout=HOST_RETRY_VISIBILITY)
                    continue
                client.delete_message(message)
            self.clock.advance(HOST_RETRY_VISIBILITY + 1)
        return ran

    def messages(self, queue: str = "") -> list[Any]:
        return list(self.main.queues[queue or self.settings.queue].messages.values())


def build_memory_pipeline(spool_dir: Path | str, destinations: Mapping[str, RecordingDestination],
                          env: Mapping[str, str] | None = None, *, clock: VirtualClock | None = None,
                          main: MemoryAccount | None = None, fallback: MemoryAccount | None = None,
                          faults: Faults | None = None) -> MemoryPipeline:
    clock = clock or VirtualClock()
    main = main or MemoryAccount(clock, faults, name="main")
    fallback = fallback or MemoryAccount(clock, name="fallback")
    settings = load_settings({
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "LEADS_DESTINATIONS": ",".join(destinations),
        "LEADS_RETRY_DELAYS": "30,120,600",
        "LEADS_SPOOL_DIR": str(spool_dir),
        **(env or {}),
    })
    table = LeadTable(main.table_service(), settings.table, settings.quarantine_table)
    queue = WorkQueue(main.queue_service(), settings.queue)
    held = FallbackTable(fallback.table_service())
    with contextlib.suppress(StorageUnavailableError):
        table.create_tables()
        queue.create_queues()
        held.create_table()
    spool = Spool(str(spool_dir))
    ingest = IngestService(table, queue, spool, settings, settings.routing, clock=clock, fallback=held)
    ingest.tombstones = tombstones(table)  # as leads/runtime.py build_runtime wires it
    recovery = Recovery(ingest, spool, held, table.ping)
    runtime = Runtime(settings, table, queue, spool, ingest, recovery)
    delivery = DeliveryService(table, queue, dict(destinations), settings, CircuitBreakers(), clock=clock,
                               sleep=clock.sleep)
    delivery.tombstones = ingest.tombstones  # as leads/runtime.py build_delivery wires it
    poisoned = PoisonRequeue(queue.poison_queue(), queue, table, settings.requeue_again_seconds)
    sweeper = Sweeper(table, queue, ingest, spool, clock=clock, recovery=recovery,
                      requeue_again=timedelta(seconds=settings.requeue_again_seconds), poisoned=poisoned)
    return MemoryPipeline(clock, main, fallback, settings, table, queue, spool, held, ingest, recovery, runtime,
                          delivery, sweeper, dict(destinations))

