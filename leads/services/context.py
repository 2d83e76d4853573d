"""What one process has built (leads/runtime.py builds it): the settings and the services and adapters the
operator use cases (replay, status, privacy) work with. A plain record, so that a service can take it without
importing the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from leads.core.settings import Settings
from leads.services.ingest import IngestService
from leads.services.recovery import Recovery
from leads.storage.spool import Spool
from leads.storage.table_store import LeadTable
from leads.storage.work_queue import WorkQueue


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    table: LeadTable
    queue: WorkQueue
    spool: Spool
    ingest: IngestService
    recovery: Recovery | None = None
