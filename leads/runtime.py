"""The composition root: builds each service once per process from the settings.

Ingest only needs the storage SDKs; destinations (and their heavy libraries) are built the first time a
delivery runs, so the HTTP cold start stays close to the cost of the storage SDKs alone."""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass
from datetime import timedelta

from leads.azure_clients import queue_service, table_service
from leads.breaker import Breaker, CircuitBreakers
from leads.delivery import DeliveryService
from leads.errors import StorageUnavailableError
from leads.ingest import IngestService
from leads.settings import Settings, get_settings
from leads.spool import Spool
from leads.sweeper import Sweeper
from leads.table_store import LeadTable
from leads.work_queue import WorkQueue

log = logging.getLogger("leads")


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    table: LeadTable
    queue: WorkQueue
    spool: Spool
    ingest: IngestService


def build_runtime(settings: Settings) -> Runtime:
    table = LeadTable(table_service(settings.storage), settings.table, settings.quarantine_table)
    queue = WorkQueue(queue_service(settings.storage), settings.queue)
    try:  # In Azure the Bicep creates them; locally this makes Azurite ready. Retried on the next start.
        table.create_tables()
        queue.create_queues()
    except StorageUnavailableError as error:
        log.warning("could not create tables/queues yet: %s", error.explanation)
    spool = Spool(settings.spool_dir)
    return Runtime(settings, table, queue, spool, IngestService(table, queue, spool, settings, settings.crm_flags))


@functools.cache
def runtime() -> Runtime:
    return build_runtime(get_settings())


def build_delivery(rt: Runtime) -> DeliveryService:
    from leads.destinations import build_destinations

    def persist(destination: str, breaker: Breaker | None) -> None:
        with contextlib.suppress(StorageUnavailableError):  # visibility only; the breaker lives in memory
            rt.table.record_breaker(breaker, destination)

    return DeliveryService(rt.table, rt.queue, build_destinations(rt.settings), rt.settings,
                           CircuitBreakers(on_change=persist))


@functools.cache
def delivery() -> DeliveryService:
    return build_delivery(runtime())


@functools.cache
def sweeper() -> Sweeper:
    rt = runtime()
    return Sweeper(rt.table, rt.queue, rt.ingest, rt.spool,
                   requeue_again=timedelta(seconds=rt.settings.requeue_again_seconds))
