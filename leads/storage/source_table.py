"""The importer's adapters: Partner Center's table (read only) and the watermark row in the app's own table.

Partner Center's Timestamp is not indexed, so `Timestamp ge ...` scans that table server-side; it is small
(one row per lead: about 1 KB each) and each page answers within Azure's 5-second query limit, with a
continuation token when it needs more."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError, ResourceModifiedError
from azure.data.tables import TableClient, UpdateMode

from leads.core import keys
from leads.core.azure_limits import STRING_CHUNK_UNITS, chunk_utf16
from leads.core.errors import StorageUnavailableError
from leads.core.model import iso, parse_iso
from leads.core.ports import SourceRow, Watermark

PAGE = 1000  # the most a query page may hold
_OWN_COLUMNS = frozenset({"PartitionKey", "RowKey", "Timestamp"})


def source_error(error: AzureError, table: str, action: str) -> StorageUnavailableError:
    """What a person must change, from the status Azure answered."""
    status = getattr(error, "status_code", None)
    if status == 404:
        return StorageUnavailableError(
            f"The table {table} does not exist in the account LEADS_IMPORT_STORAGE names (Partner Center creates it "
            "when it writes its first lead): check LEADS_IMPORT_TABLE and LEADS_IMPORT_STORAGE.")
    if status == 403:
        return StorageUnavailableError(
            f"Partner Center's table {table} refused to let the app {action} (403): with the app's identity, give it "
            "the Storage Table Data Reader role on that account; with a connection string, check its key.")
    if isinstance(error, HttpResponseError):
        return StorageUnavailableError(f"Partner Center's table {table} refused to let the app {action} ({status}).")
    return StorageUnavailableError(f"Partner Center's table {table} did not answer when the app tried to {action}: "
                                   "check LEADS_IMPORT_STORAGE.")


class SourceTable:
    """Rows of LEADS_IMPORT_TABLE in the account LEADS_IMPORT_STORAGE names."""

    def __init__(self, client: TableClient) -> None:
        self.client = client

    def rows_since(self, since: datetime) -> Iterator[SourceRow]:
        name = self.client.table_name
        try:
            for entity in self.client.query_entities("Timestamp ge @since", parameters={"since": since},
                                                     results_per_page=PAGE):
                yield SourceRow(name, str(entity.get("PartitionKey", "")), str(entity.get("RowKey", "")),
                                entity.metadata["timestamp"] or since,
                                {k: v for k, v in entity.items() if k not in _OWN_COLUMNS})
        except AzureError as error:
            raise source_error(error, name, "read it") from None

    def ping(self) -> None:
        """One small query: the table exists and may be read."""
        try:
            next(iter(self.client.query_entities("PartitionKey eq @pk", parameters={"pk": ""}, results_per_page=1,
                                                 select=["PartitionKey"])), None)
        except AzureError as error:
            raise source_error(error, self.client.table_name, "read it") from None


class WatermarkTable:
    """One row per source table in the app's own table (partition `importer`), written ETag-conditionally."""

    def __init__(self, client: TableClient, source_table: str) -> None:
        self.client = client
        self.row_key = source_table

    def read(self) -> Watermark | None:
        try:
            entity = self.client.get_entity(keys.IMPORT_PARTITION, self.row_key)
        except HttpResponseError as error:
            if error.status_code == 404:
                return None
            raise StorageUnavailableError(
                f"Table storage refused to read the import watermark ({error.status_code}).") from None
        except AzureError:
            raise StorageUnavailableError("Table storage did not answer when asked for the import watermark.") from None
        parts, index = [str(entity.get("Recent") or "{}")], 1
        while f"Recent_{index}" in entity:
            parts.append(str(entity[f"Recent_{index}"]))
            index += 1
        recent = {key: parse_iso(text) for key, text in json.loads("".join(parts)).items()}
        return Watermark(entity["Watermark"], {k: v for k, v in recent.items() if v is not None},
                         entity.get("Start") or entity["Watermark"], str(entity.metadata["etag"]))

    def write(self, watermark: Watermark, previous: Watermark | None) -> bool:
        """False when another run wrote it since `previous` was read."""
        entity: dict[str, Any] = {"PartitionKey": keys.IMPORT_PARTITION, "RowKey": self.row_key,
                                  "Watermark": watermark.at, "Start": watermark.start}
        # A string column holds 32K UTF-16 code units: the list goes over as many as it needs (~300 rows each).
        listed = json.dumps({k: iso(v) for k, v in watermark.recent.items()})
        for index, chunk in enumerate(chunk_utf16(listed, STRING_CHUNK_UNITS)):
            entity["Recent" if index == 0 else f"Recent_{index}"] = chunk
        try:
            if previous is None or not previous.etag:
                self.client.create_entity(entity)
            else:
                self.client.update_entity(entity, mode=UpdateMode.REPLACE, etag=previous.etag,
                                          match_condition=MatchConditions.IfNotModified)
        except (ResourceExistsError, ResourceModifiedError):
            return False
        except AzureError:
            raise StorageUnavailableError("Table storage did not take the import watermark.") from None
        return True
