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

import bisect
import itertools
import random
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.paging import ItemPaged
from azure.data.tables import TableEntity, TableServiceClient, TableTransactionError, UpdateMode
from azure.storage.queue import QueueMessage, QueueProperties, QueueServiceClient

from leads.core.azure_limits import MAX_BATCH_ENTITIES, MAX_QUEUE_MESSAGE_BYTES, entity_problem, queue_message_fits
from tests.support.azure_limits_enforcer import ENFORCER, AzureLimitExceeded

T = TypeVar("T")
PAGE_MOST = 1000  # https://learn.microsoft.com/rest/api/storageservices/query-entities ("at most 1,000")
RECEIVE_MOST = 32  # https://learn.microsoft.com/rest/api/storageservices/get-messages (numofmessages)
MAX_INITIAL_VISIBILITY = timedelta(days=7)
DEFAULT_VISIBILITY = 30  # seconds, Get Messages' default visibilitytimeout
DEFAULT_TTL = timedelta(days=7)


class ProcessCrash(BaseException):
    """The process died in the middle of a storage call (a BaseException: `except Exception` cannot keep it)."""


@dataclass(frozen=True)
class StorageCall:
    service: str  # "table" | "queue"
    target: str  # table or queue name
    operation: str
    writes: bool


# What a fault hook answers: go on; refuse before the write (503 or no connection); write then lose the
# answer; crash before or after the write.
OK, REFUSE, UNREACHABLE, LOST, CRASH_BEFORE, CRASH_AFTER = "ok", "refuse", "unreachable", "lost", "crash", "crash_after"
Faults = Callable[[StorageCall], str]


class _Response:
    """Just enough of an HTTP response for azure-core's HttpResponseError (status, reason, headers)."""

    def __init__(self, status: int, code: str) -> None:
        self.status_code = status
        self.reason = code
        self.headers = {"x-ms-error-code": code}
        self.content_type = "application/json"

    def text(self, encoding: str | None = None) -> str:
        return ""

    def body(self) -> bytes:
        return b""


def azure_error(kind: type[HttpResponseError], status: int, code: str, message: str, **kwargs: Any) -> Any:
    error = kind(message=f"{message}\nErrorCode:{code}", response=_Response(status, code), **kwargs)  # type: ignore[arg-type]
    error.error_code = code  # type: ignore[attr-defined]
    return error


def _not_found(code: str = "ResourceNotFound") -> ResourceNotFoundError:
    return azure_error(ResourceNotFoundError, 404, code, "The specified resource does not exist.")  # type: ignore[no-any-return]


def _too_large(found: str) -> AzureLimitExceeded:
    ENFORCER.violations.append(found)
    return AzureLimitExceeded(f"Azure would refuse this request: {found}")


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


# --- tables -----------------------------------------------------------------------------------------------
Key = tuple[str, str]


@dataclass
class _Row:
    entity: dict[str, Any]
    etag: str
    timestamp: datetime


@dataclass
class _Table:
    rows: dict[Key, _Row] = field(default_factory=dict)
    order: list[Key] = field(default_factory=list)

    def put(self, key: Key, row: _Row) -> None:
        if key not in self.rows:
            bisect.insort(self.order, key)
        self.rows[key] = row

    def remove(self, key: Key) -> None:
        del self.rows[key]
        self.order.pop(bisect.bisect_left(self.order, key))


def _stored_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, (str, bool, int, float, bytes)):
        return value
    if hasattr(value, "value"):  # an EntityProperty or enum: its value
        return _stored_value(value.value)
    raise TypeError(f"a table property cannot hold {type(value).__name__}")


def _clean(entity: Mapping[str, Any]) -> dict[str, Any]:
    if "PartitionKey" not in entity or "RowKey" not in entity:
        raise ValueError("PartitionKey and/or RowKey were not provided in entity")
    own = {name: _stored_value(value) for name, value in entity.items() if value is not None}
    _check_size(own)
    return own


def _check_size(entity: dict[str, Any]) -> None:
    """leads/core/azure_limits.py's arithmetic, skipped for an entity plainly within every limit (short ASCII
    strings and small binaries: a lone surrogate is not ASCII) to keep the simulation fast."""
    if len(entity) <= 250:
        sizes = [len(v) if isinstance(v, bytes) or (isinstance(v, str) and v.isascii()) else -1
                 for v in entity.values() if isinstance(v, (str, bytes))]
        if -1 not in sizes and max(sizes, default=0) < 30_000 and sum(sizes) < 400_000:
            return
    found = entity_problem(entity)
    if found:
        raise _too_large(found)


_CLAUSE = re.compile(r"^\s*(\w+)\s+(eq|ne|gt|ge|lt|le)\s+@(\w+)\s*$")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


@dataclass(frozen=True)
class _Filter:
    clauses: tuple[tuple[str, str, Any], ...]

    @classmethod
    def parse(cls, text: str, parameters: Mapping[str, Any]) -> _Filter:
        clauses = []
        for part in re.split(r"\s+and\s+", text.strip()):
            match = _CLAUSE.match(part)
            if match is None:
                raise NotImplementedError(f"the in-memory table does not understand the filter {part!r}")
            name, op, parameter = match.groups()
            clauses.append((name, op, _stored_value(parameters[parameter])))
        return cls(tuple(clauses))

    def matches(self, entity: Mapping[str, Any], timestamp: datetime) -> bool:
        for name, op, value in self.clauses:
            have = timestamp if name == "Timestamp" else entity.get(name)
            # A missing property, or one of another type, never matches (Azure compares typed values).
            if have is None or _kind(have) != _kind(value) or not _COMPARE[op](have, value):
                return False
        return True

    def key_range(self) -> tuple[Key | None, Key | None]:
        """A [low, high) range of keys no matching row lies outside of (a partition, a RowKey range)."""
        pk = next((v for n, o, v in self.clauses if n == "PartitionKey" and o == "eq" and isinstance(v, str)), None)
        if pk is None:
            return None, None
        low, high = "", None
        for name, op, value in self.clauses:
            if name == "RowKey" and isinstance(value, str):
                if op in ("ge", "gt", "eq"):
                    low = max(low, value)
                if op in ("lt", "le", "eq"):
                    bound = value + "\x00" if op in ("le", "eq") else value
                    high = bound if high is None else min(high, bound)
        return (pk, low), (pk, high) if high is not None else (pk + "\x00", "")


class MemoryTableService:
    def __init__(self, account: MemoryAccount) -> None:
        self.account = account

    def get_table_client(self, table_name: str) -> MemoryTableClient:
        return MemoryTableClient(self.account, table_name)

    def create_table(self, table_name: str) -> MemoryTableClient:
        client = self.get_table_client(table_name)
        client.create_table()
        return client


class MemoryTableClient:
    def __init__(self, account: MemoryAccount, table_name: str) -> None:
        self.account = account
        self.table_name = table_name

    # --- plumbing
    def _call(self, operation: str, writes: bool, action: Callable[[], T]) -> T:
        return self.account.call("table", self.table_name, operation, writes, action)

    def _table(self) -> _Table:
        table = self.account.tables.get(self.table_name)
        if table is None:
            raise _not_found("TableNotFound")
        return table

    def _etag(self) -> tuple[str, datetime]:
        """Opaque, as Azure's (W/"datetime'...'"): unique per write here."""
        return f"W/\"{self.account.next_id()}\"", self.account.clock()

    def _result(self, row: _Row) -> dict[str, Any]:
        return {"etag": row.etag, "date": row.timestamp, "version": "2019-02-02"}

    def _entity(self, row: _Row, select: Iterable[str] | None = None) -> TableEntity:
        values = row.entity if select is None else {k: v for k, v in row.entity.items() if k in set(select)}
        entity = TableEntity(dict(values))  # the values are immutable (str, bytes, datetime, numbers)
        entity._metadata = {"etag": row.etag, "timestamp": row.timestamp}  # as the SDK's _convert_to_entity
        return entity

    # --- tables
    def create_table(self) -> dict[str, str]:
        def run() -> dict[str, str]:
            if self.table_name in self.account.tables:
                raise azure_error(ResourceExistsError, 409, "TableAlreadyExists", "The table specified already exists.")
            self.account.tables[self.table_name] = _Table()
            return {"name": self.table_name}

        return self._call("create_table", True, run)

    def delete_table(self) -> None:
        self._call("delete_table", True, lambda: self.account.tables.pop(self.table_name, None))

    # --- single entities
    def get_entity(self, partition_key: str, row_key: str, select: Iterable[str] | None = None,
                   **_: Any) -> TableEntity:
        def run() -> TableEntity:
            row = self._table().rows.get((partition_key, row_key))
            if row is None:
                raise _not_found()
            return self._entity(row, select)

        return self._call("get_entity", False, run)

    def create_entity(self, entity: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        return self._call("create_entity", True, lambda: self._apply(("create", entity, {}), self._table()))

    def update_entity(self, entity: Mapping[str, Any], mode: UpdateMode = UpdateMode.MERGE,
                      **kwargs: Any) -> dict[str, Any]:
        return self._call("update_entity", True,
                          lambda: self._apply(("update", entity, {"mode": mode, **kwargs}), self._table()))

    def upsert_entity(self, entity: Mapping[str, Any], mode: UpdateMode = UpdateMode.MERGE,
                      **kwargs: Any) -> dict[str, Any]:
        return self._call("upsert_entity", True,
                          lambda: self._apply(("upsert", entity, {"mode": mode, **kwargs}), self._table()))

    def delete_entity(self, *args: Any, **kwargs: Any) -> None:
        entity: Mapping[str, Any] = kwargs.pop("entity", None) or (
            args[0] if args and isinstance(args[0], Mapping) else
            {"PartitionKey": kwargs.pop("partition_key", args[0] if args else None),
             "RowKey": kwargs.pop("row_key", args[1] if len(args) > 1 else None)})

        def run() -> None:
            try:
                self._apply(("delete", entity, kwargs), self._table())
            except ResourceNotFoundError as error:
                if getattr(error, "error_code", "") == "TableNotFound":
                    raise
                # TableClient.delete_entity: "No error will be raised if the entity ... is not found."

        self._call("delete_entity", True, run)

    def _apply(self, operation: tuple[Any, ...], table: _Table) -> dict[str, Any]:
        kind, entity = str(operation[0]).lower(), operation[1]
        options: dict[str, Any] = dict(operation[2]) if len(operation) > 2 and operation[2] else {}
        key: Key = (str(entity["PartitionKey"]), str(entity["RowKey"]))
        existing = table.rows.get(key)
        if kind == "create":
            values = _clean(entity)
            if existing is not None:
                # The SDK raises this one undecoded: no error_code, the code only in the message (Azurite shows it).
                conflict = ResourceExistsError(
                    message="Operation returned an invalid status 'Conflict'\nContent: {\"odata.error\":{\"code\":"
                    "\"EntityAlreadyExists\",\"message\":{\"value\":\"The specified entity already exists.\"}}}",
                    response=_Response(409, "Conflict"))  # type: ignore[arg-type]
                conflict.batch_code = "EntityAlreadyExists"  # type: ignore[attr-defined]  # in a transaction it is decoded
                raise conflict
            etag, now = self._etag()
            table.put(key, _Row(values, etag, now))
            return self._result(table.rows[key])
        expected: Any = options.get("etag")
        if expected is None and options.get("match_condition") == MatchConditions.IfNotModified \
                and isinstance(entity, TableEntity):
            expected = entity.metadata.get("etag")
        conditional = options.get("match_condition") == MatchConditions.IfNotModified and expected is not None
        if kind in ("update", "delete") and existing is None:
            raise _not_found()
        if conditional and existing is not None and existing.etag != expected:
            raise azure_error(ResourceModifiedError, 412, "UpdateConditionNotSatisfied",
                              "The update condition specified in the request was not satisfied.")
        if kind == "delete":
            table.remove(key)
            return {}
        if kind not in ("update", "upsert"):
            raise ValueError(f"Unrecognized operation: {kind}")
        values = _clean(entity)
        if existing is not None and options.get("mode", UpdateMode.MERGE) == UpdateMode.MERGE:
            values = {**existing.entity, **values}
            _check_size(values)
        new_etag, now = self._etag()
        table.put(key, _Row(values, new_etag, now))
        return self._result(table.rows[key])

    def submit_transaction(self, operations: Iterable[Any], **_: Any) -> list[dict[str, Any]]:
        ops = [tuple(op) for op in operations]
        partitions = {str(op[1].get("PartitionKey")) for op in ops}
        if len(partitions) > 1:  # azure.data.tables._table_batch.TableBatchOperations._verify_partition_key
            raise ValueError("Partition Keys in the batch must all be the same.")
        if len(ops) > MAX_BATCH_ENTITIES:
            raise _too_large(f"TooManyOperations: {len(ops)} operations in one transaction (at most 100)")

        def run() -> list[dict[str, Any]]:
            if not ops:
                return []  # Azure answers 400; the SDK turns an empty transaction into [] (submit_transaction)
            try:
                table = self._table()
            except ResourceNotFoundError:
                raise azure_error(TableTransactionError, 404, "TableNotFound",
                                  "0:The table specified does not exist.") from None
            staged = _Table(dict(table.rows), list(table.order))
            seen: set[Key] = set()
            results = []
            for index, op in enumerate(ops):
                key = (str(op[1]["PartitionKey"]), str(op[1]["RowKey"]))
                try:
                    if key in seen:
                        raise azure_error(HttpResponseError, 400, "InvalidDuplicateRow",
                                          "The batch request contains multiple changes with same row key.")
                    seen.add(key)
                    results.append(self._apply(op, staged))
                except AzureLimitExceeded:
                    raise
                except HttpResponseError as error:
                    raise azure_error(TableTransactionError, int(error.status_code or 400),
                                      str(getattr(error, "batch_code", None) or getattr(error, "error_code", "")),
                                      f"{index}:{str(error.message).split(chr(10))[0]}") from None
            table.rows, table.order = staged.rows, staged.order
            return results

        return self._call("submit_transaction", True, run)

    # --- queries
    def query_entities(self, query_filter: str, *, parameters: Mapping[str, Any] | None = None,
                       select: str | list[str] | None = None, results_per_page: int | None = None,
                       **_: Any) -> ItemPaged[TableEntity]:
        return self._query(_Filter.parse(query_filter, parameters or {}), select, results_per_page)

    def list_entities(self, *, select: str | list[str] | None = None, results_per_page: int | None = None,
                      **_: Any) -> ItemPaged[TableEntity]:
        return self._query(_Filter(()), select, results_per_page)

    def _query(self, where: _Filter, select: str | list[str] | None,
               per_page: int | None) -> ItemPaged[TableEntity]:
        columns = [select] if isinstance(select, str) else select
        size = min(per_page or PAGE_MOST, PAGE_MOST)
        low, high = where.key_range()

        def get_next(token: Any) -> tuple[list[TableEntity], Any]:
            def run() -> tuple[list[TableEntity], Any]:
                table = self._table()
                start: Key = (token["PartitionKey"], token["RowKey"]) if token else (low or ("", ""))
                page_size = size
                rng = self.account.short_pages
                if rng is not None and rng.random() < 0.3:
                    page_size = rng.randint(0, size)
                found: list[TableEntity] = []
                index = bisect.bisect_left(table.order, start)
                while index < len(table.order):
                    key = table.order[index]
                    if high is not None and key >= high:
                        return found, None
                    if len(found) >= page_size:
                        return found, {"PartitionKey": key[0], "RowKey": key[1]}
                    row = table.rows[key]
                    if where.matches(row.entity, row.timestamp):
                        found.append(self._entity(row, columns))
                    index += 1
                return found, None

            return self._call("query_entities", False, run)

        def extract(page: tuple[list[TableEntity], Any]) -> tuple[Any, Iterator[TableEntity]]:
            return page[1], iter(page[0])

        return ItemPaged(get_next, extract)


# --- queues -----------------------------------------------------------------------------------------------
@dataclass
class _Message:
    id: str
    text: str  # as sent (after the encode policy)
    inserted_on: datetime
    expires_on: datetime
    next_visible_on: datetime
    dequeue_count: int = 0
    pop_receipt: str | None = None


@dataclass
class _Queue:
    messages: dict[str, _Message] = field(default_factory=dict)


class MemoryQueueService:
    def __init__(self, account: MemoryAccount) -> None:
        self.account = account

    def get_queue_client(self, queue: str, message_encode_policy: Any = None,
                         message_decode_policy: Any = None, **_: Any) -> MemoryQueueClient:
        return MemoryQueueClient(self.account, queue, message_encode_policy, message_decode_policy)


class MemoryQueueClient:
    def __init__(self, account: MemoryAccount, queue_name: str, encode: Any = None, decode: Any = None) -> None:
        self.account = account
        self.queue_name = queue_name
        self._encode = encode
        self._decode = decode

    def _call(self, operation: str, writes: bool, action: Callable[[], T]) -> T:
        return self.account.call("queue", self.queue_name, operation, writes, action)

    def _queue(self) -> _Queue:
        queue = self.account.queues.get(self.queue_name)
        if queue is None:
            raise azure_error(ResourceNotFoundError, 404, "QueueNotFound", "The specified queue does not exist.")
        return queue

    def _content(self, text: str) -> Any:
        if self._decode is None or not text:
            return text
        return self._decode.decode(text, None)

    def _message(self, message: _Message, receipt: bool = True) -> QueueMessage:
        return QueueMessage(content=self._content(message.text), id=message.id, inserted_on=message.inserted_on,
                            expires_on=message.expires_on, dequeue_count=message.dequeue_count,
                            pop_receipt=message.pop_receipt if receipt else None,
                            next_visible_on=message.next_visible_on if receipt else None)

    def create_queue(self, **_: Any) -> None:
        def run() -> None:
            # Create Queue on an existing queue with the same (no) metadata answers 204 and the SDK returns;
            # https://learn.microsoft.com/rest/api/storageservices/create-queue4 ("Remarks").
            self.account.queues.setdefault(self.queue_name, _Queue())

        self._call("create_queue", True, run)

    def delete_queue(self, **_: Any) -> None:
        self._call("delete_queue", True, lambda: self.account.queues.pop(self.queue_name, None))

    def get_queue_properties(self, **_: Any) -> QueueProperties:
        def run() -> QueueProperties:
            properties = QueueProperties()
            properties.name = self.queue_name
            properties.approximate_message_count = len(self._live(self._queue()))
            return properties

        return self._call("get_queue_properties", False, run)

    def _live(self, queue: _Queue) -> list[_Message]:
        now = self.account.clock()
        for message in [m for m in queue.messages.values() if m.expires_on <= now]:
            del queue.messages[message.id]
        return list(queue.messages.values())

    def _visible(self, queue: _Queue) -> list[_Message]:
        now = self.account.clock()
        return [m for m in self._live(queue) if m.next_visible_on <= now]

    def send_message(self, content: Any, *, visibility_timeout: int | None = None, time_to_live: int | None = None,
                     **_: Any) -> QueueMessage:
        text = self._encode(content) if self._encode is not None else str(content)
        if (len(text) > MAX_QUEUE_MESSAGE_BYTES) if self._encode is not None else not queue_message_fits(text):
            raise _too_large("RequestBodyTooLarge: the message is over 64 KiB")
        delay = timedelta(seconds=visibility_timeout or 0)
        ttl = DEFAULT_TTL if time_to_live is None else timedelta(seconds=time_to_live)
        if delay > MAX_INITIAL_VISIBILITY or (time_to_live not in (None, -1) and delay >= ttl):
            raise azure_error(HttpResponseError, 400, "OutOfRangeQueryParameterValue",
                              "The visibility timeout is out of range.")

        def run() -> QueueMessage:
            queue, now = self._queue(), self.account.clock()
            message = _Message(f"m{self.account.next_id():08d}", text, now,
                               now + (timedelta(days=36500) if time_to_live == -1 else ttl), now + delay,
                               pop_receipt=f"r{self.account.next_id()}")
            queue.messages[message.id] = message
            return self._message(message)

        return self._call("send_message", True, run)

    def receive_messages(self, *, messages_per_page: int | None = None, visibility_timeout: int | None = None,
                         max_messages: int | None = None, **_: Any) -> ItemPaged[QueueMessage]:
        per_page = min(messages_per_page or 1, RECEIVE_MOST)
        hidden = timedelta(seconds=DEFAULT_VISIBILITY if visibility_timeout is None else visibility_timeout)
        taken = [0]

        def get_next(_token: Any) -> list[QueueMessage]:
            want = per_page if max_messages is None else min(per_page, max_messages - taken[0])

            def run() -> list[QueueMessage]:
                now, out = self.account.clock(), []
                for message in self._visible(self._queue())[:want]:
                    message.dequeue_count += 1
                    message.pop_receipt = f"r{self.account.next_id()}"
                    message.next_visible_on = now + hidden
                    out.append(self._message(message))
                return out

            page = self._call("receive_messages", True, run) if want > 0 else []
            taken[0] += len(page)
            return page

        def extract(page: list[QueueMessage]) -> tuple[Any, Iterator[QueueMessage]]:
            more = bool(page) and (max_messages is None or taken[0] < max_messages)
            return ("more" if more else None), iter(page)

        return ItemPaged(get_next, extract)

    def receive_message(self, *, visibility_timeout: int | None = None, **_: Any) -> QueueMessage | None:
        return next(iter(self.receive_messages(max_messages=1, visibility_timeout=visibility_timeout)), None)

    def peek_messages(self, max_messages: int | None = None, **_: Any) -> list[QueueMessage]:
        count = min(max_messages or 1, RECEIVE_MOST)
        return self._call("peek_messages", False,
                          lambda: [self._message(m, receipt=False) for m in self._visible(self._queue())[:count]])

    def _held(self, message: Any, pop_receipt: str | None) -> _Message:
        message_id = message.id if isinstance(message, QueueMessage) else str(message)
        receipt = pop_receipt or (message.pop_receipt if isinstance(message, QueueMessage) else None)
        found = self._queue().messages.get(message_id)
        if found is None or found.expires_on <= self.account.clock():
            raise azure_error(ResourceNotFoundError, 404, "MessageNotFound", "The specified message does not exist.")
        if receipt != found.pop_receipt:
            raise azure_error(HttpResponseError, 400, "PopReceiptMismatch",
                              "The specified pop receipt did not match the pop receipt for a dequeued message.")
        return found

    def delete_message(self, message: Any, pop_receipt: str | None = None, **_: Any) -> None:
        def run() -> None:
            del self._queue().messages[self._held(message, pop_receipt).id]

        self._call("delete_message", True, run)

    def update_message(self, message: Any, pop_receipt: str | None = None, content: Any = None, *,
                       visibility_timeout: int | None = None, **_: Any) -> QueueMessage:
        def run() -> QueueMessage:
            found = self._held(message, pop_receipt)
            if content is not None:
                found.text = self._encode(content) if self._encode is not None else str(content)
            found.pop_receipt = f"r{self.account.next_id()}"
            found.next_visible_on = self.account.clock() + timedelta(seconds=visibility_timeout or 0)
            return self._message(found)

        return self._call("update_message", True, run)

    def clear_messages(self, **_: Any) -> None:
        def run() -> None:
            self._queue().messages.clear()

        self._call("clear_messages", True, run)
