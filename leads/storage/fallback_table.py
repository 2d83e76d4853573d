"""The fallback table (LEADS_FALLBACK_STORAGE): where a lead waits, already answered 202 with its id, while
the main table is unreachable. Ideally another storage account in another region (infra/main.bicep
`fallbackStorageLocation`). One row per lead keyed by the lead's fingerprint, so a lead Partner Center
sends again during the outage gets the same id; a lead that names no customer has no fingerprint and is
keyed by its own id (never merged with another). The sweeper moves the rows (leads/services/recovery.py).
The fingerprint is keyed with a secret kept in this table (leads/storage/marker_secret.py), not the main table's:
the main table is down whenever this table is used."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any, TypeVar

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient

from leads.core import keys
from leads.core.errors import StorageUnavailableError
from leads.core.ports import Added, HeldLead
from leads.storage.marker_secret import MarkerSecret

T = TypeVar("T")
FALLBACK_TABLE = "leadsfallback"  # infra/main.bicep creates it under this name
HELD_PARTITION = "held"
_CHUNK = 64 * 1024  # a binary property holds 64 KiB at most
_MAX_CHUNKS = 15  # an entity holds 1 MiB at most (docs/stack.md): stay well under it


@contextmanager
def _fallback_errors(action: str) -> Iterator[None]:
    try:
        yield
    except (ResourceExistsError, ResourceNotFoundError):
        raise
    except AzureError:
        raise StorageUnavailableError(f"The fallback table did not answer when asked to {action}.") from None


class FallbackTable:
    def __init__(self, service: TableServiceClient, table: str = FALLBACK_TABLE) -> None:
        self.table: TableClient = service.get_table_client(table)
        self.secret = MarkerSecret(self.table)

    def create_table(self) -> None:
        with _fallback_errors("create the table"), suppress(ResourceExistsError):
            self.table.create_table()

    def _call(self, action: str, operation: Callable[[], T]) -> T:
        with _fallback_errors(action):
            try:
                return operation()
            except ResourceNotFoundError as error:
                if "TableNotFound" not in f"{getattr(error, 'error_code', '')} {error}":
                    raise
            self.create_table()  # Bicep creates it in Azure; a fresh Azurite needs it made
            return operation()

    def hold(self, lead_id: str, fingerprint: str | None, received_at: datetime, body: bytes) -> Added:
        key = (f"k1:{keys.keyed_fingerprint(self._call('read the secret', self.secret.get), fingerprint)}"
               if fingerprint else f"id:{lead_id}")
        chunks = [body[i : i + _CHUNK] for i in range(0, len(body), _CHUNK)] or [b""]
        if len(chunks) > _MAX_CHUNKS:
            raise StorageUnavailableError("The lead is too large for the fallback table.")
        entity: dict[str, Any] = {"PartitionKey": HELD_PARTITION, "RowKey": key, "LeadId": lead_id,
                                  "ReceivedAt": received_at, "Chunks": len(chunks)}
        entity.update({f"Body{index}": chunk for index, chunk in enumerate(chunks)})
        try:
            self._call("hold the lead", lambda: self.table.create_entity(entity))
            return Added(lead_id, duplicate=False)
        except ResourceExistsError:
            existing = self._call("read the held lead", lambda: self.table.get_entity(HELD_PARTITION, key))
            return Added(str(existing["LeadId"]), duplicate=True)

    def held(self, limit: int = 100) -> list[HeldLead]:
        def run() -> list[HeldLead]:
            rows = self.table.query_entities("PartitionKey eq @pk", parameters={"pk": HELD_PARTITION},
                                             results_per_page=min(limit, 1000))  # the service's page at most
            return [HeldLead(str(row["LeadId"]), str(row["RowKey"]), row["ReceivedAt"],
                             b"".join(bytes(row.get(f"Body{i}", b"")) for i in range(int(row["Chunks"]))))
                    for _, row in zip(range(limit), rows, strict=False)]

        return self._call("list the held leads", run)

    def release(self, key: str) -> None:
        with suppress(ResourceNotFoundError):
            self._call("release the held lead", lambda: self.table.delete_entity(HELD_PARTITION, key))
