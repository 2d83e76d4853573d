"""The deployment's secret for keyed de-duplication markers (leads/core/keys.py keyed_fingerprint).

It lives in the table whose keys it makes, as one row written once with a conditional insert: it survives
redeploys (an app setting generated at deploy time would change with each deployment unless kept by hand),
every instance of a scale-out reads the same row, and two instances starting together agree (the second
insert fails and reads the first). Who can read the table can read the secret, but can read the leads
themselves too; what the secret protects is every key that leaves the table or outlives its lead."""

from __future__ import annotations

import base64
import secrets
import threading

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient

from leads.core.model import utcnow

CONFIG_PARTITION = "config"
MARKER_KEY_ROW = "marker-secret"


class MarkerSecret:
    """Read (or made) once per process; raises the SDK's errors for the caller to translate."""

    def __init__(self, table: TableClient) -> None:
        self._table = table
        self._value: bytes | None = None
        self._lock = threading.Lock()

    def get(self) -> bytes:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._load()
                value = self._value
        return value

    def _load(self) -> bytes:
        try:
            return self._read()
        except ResourceNotFoundError as missing:
            if "TableNotFound" in f"{getattr(missing, 'error_code', '')} {missing}":
                raise
        candidate = secrets.token_bytes(32)
        try:
            self._table.create_entity({"PartitionKey": CONFIG_PARTITION, "RowKey": MARKER_KEY_ROW,
                                       "Secret": base64.b64encode(candidate).decode("ascii"), "CreatedAt": utcnow()})
        except ResourceExistsError:
            return self._read()  # another instance made it first: use theirs
        return candidate

    def _read(self) -> bytes:
        entity = self._table.get_entity(CONFIG_PARTITION, MARKER_KEY_ROW)
        return base64.b64decode(str(entity["Secret"]))
