"""The composition root: builds each service once per process from the settings.

Ingest only needs the storage SDKs; destinations (and their heavy libraries) are built the first time a
delivery runs, so the HTTP cold start stays close to the cost of the storage SDKs alone."""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Generic, TypeVar

from leads.core.breaker import Breaker, CircuitBreakers
from leads.core.errors import StorageUnavailableError
from leads.core.notices import NoticeSender
from leads.core.ports import HeldLeads
from leads.core.settings import Settings, get_settings
from leads.services.context import Runtime
from leads.services.delivery import DeliveryService
from leads.services.ingest import IngestService
from leads.services.ops_notices import OpsNotices, notify_safely
from leads.services.poison import PoisonRequeue
from leads.services.recovery import Recovery
from leads.services.sweeper import Sweeper
from leads.storage.azure_clients import queue_service, table_service
from leads.storage.spool import Spool
from leads.storage.subject_index import SubjectIndex
from leads.storage.table_store import LeadTable
from leads.storage.work_queue import WorkQueue
from leads.telemetry import telemetry

if TYPE_CHECKING:
    from leads.services.importer import Importer

log = logging.getLogger("leads")
T = TypeVar("T")


class built_once(Generic[T]):
    """Build a service once per process, even when the host's first invocations arrive together (a
    concurrent cold start would otherwise build several: more storage calls, several msal caches).
    `cache_clear()` forgets it, as with functools.cache (tests change the environment)."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._value: T | None = None
        functools.update_wrapper(self, build)

    def __call__(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
                value = self._value
        return value

    def cache_clear(self) -> None:
        with self._lock:
            self._value = None


def build_runtime(settings: Settings) -> Runtime:
    table = LeadTable(table_service(settings.storage), settings.table, settings.quarantine_table)
    queue = WorkQueue(queue_service(settings.storage), settings.queue)
    index = SubjectIndex(table)  # forgotten people are never stored again; a new table needs no index backfill
    try:  # In Azure the Bicep creates them; locally this makes Azurite ready. Retried on the next start.
        table.create_tables()
        queue.create_queues()
        index.start()
    except StorageUnavailableError as error:
        log.warning("could not create tables/queues yet: %s", error.explanation)
    spool = Spool(settings.spool_dir)
    fallback = build_fallback(settings)
    ingest = IngestService(table, queue, spool, settings, settings.routing, fallback=fallback)
    recovery = Recovery(ingest, spool, fallback, table.ping)
    ingest.after_stored = recovery.drain_spool_soon  # this instance's spool: no other instance sees it
    ingest.tombstones = index
    rt = Runtime(settings, table, queue, spool, ingest, recovery)
    recovery.notify = functools.partial(_notify_set_aside, rt)
    return rt


def _notify_set_aside(rt: Runtime, lead_id: str, sentence: str) -> None:
    """A held lead storage refuses for good: an operational notice (built only then: it is rare)."""
    notices = build_notices(rt)
    notify_safely(functools.partial(notices.needs_person, "held", lead_id, sentence), "held lead set aside")


def build_fallback(settings: Settings) -> HeldLeads | None:
    if settings.fallback_storage is None:
        return None
    from leads.storage.fallback_table import FallbackTable

    try:
        fallback = FallbackTable(table_service(settings.fallback_storage))
    except ValueError as error:  # settings.fallback_storage checks what the SDK refuses; this is the backstop
        # The SDK's sentence names no secret ("Connection string missing required connection details.").
        log.error("LEADS_FALLBACK_STORAGE is not usable (%s); the fallback is off until it is fixed: while the "
                  "main table is down, leads get 503. `python -m leads doctor` names the setting.", error)
        return None
    with contextlib.suppress(StorageUnavailableError):  # created on first use otherwise (and by the Bicep)
        fallback.create_table()
    return fallback


@built_once
def runtime() -> Runtime:
    telemetry()  # first (configured once when APPLICATIONINSIGHTS_CONNECTION_STRING is set): building is logged too
    return build_runtime(get_settings())


def build_delivery(rt: Runtime) -> DeliveryService:
    from leads.destinations import build_destinations

    def persist(destination: str, breaker: Breaker | None) -> None:
        with contextlib.suppress(StorageUnavailableError):  # visibility only; the breaker lives in memory
            rt.table.record_breaker(breaker, destination)

    service = DeliveryService(rt.table, rt.queue, build_destinations(rt.settings), rt.settings,
                              CircuitBreakers(on_change=persist), notices=build_notices(rt))
    service.tombstones = rt.ingest.tombstones  # a lead stored while its tombstone was unreadable goes here
    return service


def build_notices(rt: Runtime) -> OpsNotices:
    """Operational notices by e-mail when e-mail is configured; otherwise they are only logged."""
    from leads.destinations.notice_email import EmailNoticeSender
    from leads.storage.notice_table import NoticeTable

    sender = EmailNoticeSender(rt.settings)
    if sender.problem:
        log.warning("operational notices are only logged, not e-mailed: %s", sender.problem)
    senders: list[NoticeSender] = [] if sender.problem else [sender]
    if rt.settings.ops_chat:
        from leads.destinations import Unavailable, usable_destination
        from leads.destinations.notice_chat import chat_sender

        for name in rt.settings.ops_chat:
            chat = usable_destination(name, rt.settings)
            if isinstance(chat, Unavailable):
                log.warning("operational notices do not go to %s: %s", name, chat.reason)
            else:
                senders.append(chat_sender(name, chat))
    return OpsNotices(NoticeTable(rt.table.leads), senders,
                      interval=timedelta(seconds=rt.settings.notice_interval_seconds),
                      silence_days=rt.settings.silence_alert_days, console_url=rt.settings.console_url)


@built_once
def delivery() -> DeliveryService:
    return build_delivery(runtime())


@built_once
def sweeper() -> Sweeper:
    rt = runtime()
    notices = build_notices(rt)
    poisoned = PoisonRequeue(rt.queue.poison_queue(), rt.queue, rt.table, rt.settings.requeue_again_seconds)

    def stuck(lead_id: str, sentence: str) -> None:
        notify_safely(functools.partial(notices.needs_person, "outbox", lead_id, sentence), "stuck lead")

    return Sweeper(rt.table, rt.queue, rt.ingest, rt.spool, recovery=rt.recovery,
                   requeue_again=timedelta(seconds=rt.settings.requeue_again_seconds), poisoned=poisoned,
                   review=lambda: notify_safely(notices.review, "review"), notify=stuck)


def build_importer(rt: Runtime) -> Importer | None:
    """None without LEADS_IMPORT_STORAGE (or with a malformed one: a warning says so)."""
    if rt.settings.import_storage is None:
        return None
    from leads.services.importer import Importer
    from leads.storage.source_table import SourceTable, WatermarkTable

    source = SourceTable(table_service(rt.settings.import_storage).get_table_client(rt.settings.import_table))
    watermarks = WatermarkTable(rt.table.leads, rt.settings.import_table)
    return Importer(source, watermarks, rt.ingest, rt.table)


@built_once
def importer() -> Importer | None:
    return build_importer(runtime())
