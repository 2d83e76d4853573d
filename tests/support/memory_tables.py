"""The in-memory Azure Table (tests/support/memory_storage.py describes what it answers and why)."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.core.paging import ItemPaged
from azure.data.tables import TableEntity, TableTransactionError, UpdateMode

from leads.core.azure_limits import MAX_BATCH_ENTITIES, entity_problem
from tests.support.azure_limits_enforcer import AzureLimitExceeded
from tests.support.memory_common import T, _Response, azure_error, not_found, too_large

if TYPE_CHECKING:
    from tests.support.memory_storage import MemoryAccount

PAGE_MOST = 1000  # https://learn.microsoft.com/rest/api/storageservices/query-entities ("at most 1,000")
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
        raise too_large(found)


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
            raise not_found("TableNotFound")
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
                raise not_found()
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
            raise not_found()
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
            raise too_large(f"TooManyOperations: {len(ops)} operations in one transaction (at most 100)")

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


