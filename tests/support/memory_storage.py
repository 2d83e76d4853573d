"""An in-memory Azure Table and Queue at the level of the SDK client objects the app's adapters use
(azure-data-tables TableServiceClient/TableClient, azure-storage-queue QueueServiceClient/QueueClient), so
the real adapters (leads/storage/*) run on it unchanged, fast and deterministically (tests/services/
test_simulation.py). tests/storage/test_storage_contract.py runs the same behaviours against Azurite.

What it answers, and where Azure says so:
- Table errors are the SDK's own types with Azure's status and error code (azure.data.tables._error
  `_decode_error`): create of an existing entity 409 EntityAlreadyExists (ResourceExistsError); If-Match
  mismatch 412 UpdateConditionNotSatisfied (ResourceModifiedError); update/get of a missing entity 404
  ResourceNotFound (ResourceNotFoundError); delete of a missing entity is no error (the SDK swallows the 404:
  TableClient.delete_entity). A failed operation in a transaction fails the whole transaction with
  TableTransactionError carrying that operation's status and code, message "<index>:..."
  (https://learn.microsoft.com/rest/api/storageservices/performing-entity-group-transactions). Entities of
  one partition only (the SDK raises ValueError before sending), at most 100 operations, an entity at most
  once per transaction (400 InvalidDuplicateRow).
- Queries: the filters the app writes (`Prop op @param` joined by `and`), rows in PartitionKey/RowKey
  order, at most 1,000 per page, continuation tokens as the SDK gives them ({"PartitionKey", "RowKey"});
  with `short_pages`, a page may hold fewer rows than asked (even none) and still continue, as Azure may
  (https://learn.microsoft.com/rest/api/storageservices/query-timeout-and-pagination).
- Size limits: leads/core/azure_limits.py, refused as tests/support/azure_limits_enforcer.py refuses them on
  Azurite (AzureLimitExceeded, recorded so the test fails).
- Queues: visibility timeouts, dequeue counts, a new pop receipt at each receive and update; delete/update
  with a stale receipt 400 PopReceiptMismatch, of a missing message 404 MessageNotFound
  (https://learn.microsoft.com/rest/api/storageservices/delete-message2); at most 32 per receive or peek; an
  initial visibility of at most 7 days (https://learn.microsoft.com/rest/api/storageservices/put-message).

Every storage call passes the account's `faults` hook first (a deterministic simulation decides there to
refuse the call, lose its answer after the write, or crash the process before or after it)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from tests.support.memory_common import (
    CRASH_AFTER,
    CRASH_BEFORE,
    LOST,
    OK,
    REFUSE,
    UNREACHABLE,
    Faults,
    ProcessCrash,
    StorageCall,
    T,
    azure_error,
)
from tests.support.memory_queues import MemoryQueueClient, MemoryQueueService, _Queue
from tests.support.memory_tables import MemoryTableClient, MemoryTableService, _Table

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient
    from azure.storage.queue import QueueServiceClient

__all__ = ["CRASH_AFTER", "CRASH_BEFORE", "LOST", "OK", "REFUSE", "UNREACHABLE", "Faults", "MemoryAccount",
           "MemoryQueueClient", "MemoryTableClient", "ProcessCrash", "StorageCall"]


class MemoryAccount:
    """One storage account: its tables and queues, a clock and a fault hook shared by every client."""

    def __init__(self, clock: Callable[[], datetime] | None = None, faults: Faults | None = None,
                 short_pages: random.Random | None = None, name: str = "memory") -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        self.faults = faults
        self.short_pages = short_pages
        self.name = name
        self.tables: dict[str, _Table] = {}
        self.queues: dict[str, _Queue] = {}
        self._ids = itertools.count(1)
        self.calls = 0

    def next_id(self) -> int:
        return next(self._ids)

    def table_service(self) -> TableServiceClient:
        """Typed as the SDK's client it stands in for (the adapters take that type)."""
        return cast("TableServiceClient", MemoryTableService(self))

    def queue_service(self) -> QueueServiceClient:
        return cast("QueueServiceClient", MemoryQueueService(self))

    def call(self, service: str, target: str, operation: str, writes: bool, action: Callable[[], T]) -> T:
        self.calls += 1
        decision = self.faults(StorageCall(service, target, operation, writes)) if self.faults else OK
        if decision == REFUSE:
            raise azure_error(HttpResponseError, 503, "ServerBusy", "The server is busy.")
        if decision == UNREACHABLE:
            raise ServiceRequestError("connection refused (injected)")
        if decision == CRASH_BEFORE:
            raise ProcessCrash(f"crash before {service} {operation} {target}")
        result = action()
        if decision == LOST:
            raise ServiceResponseError("connection reset after the request was sent (injected)")
        if decision == CRASH_AFTER:
            raise ProcessCrash(f"crash after {service} {operation} {target}")
        return result


