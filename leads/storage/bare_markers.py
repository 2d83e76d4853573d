"""Markers of the old form (`marker:<bare SHA-256>`, written before keyed markers), honoured from the first minute
after the upgrade (defect 9: re-keyed only by the daily purge, a repeat of an older lead was a new lead until
then). While any exist, the marker of each arriving lead is re-keyed before its transaction, as the purge does
(leads/storage/erasure.py rekey_legacy_markers): the keyed marker then finds the repeat. Azure exceptions are left
to the caller (LeadTable translates them)."""

from __future__ import annotations

import time
from contextlib import suppress

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError

from leads.core import keys

RECHECK_SECONDS = 3600.0  # an instance of the previous version may still write one while a deployment rolls out


class BareMarkers:
    def __init__(self, client: TableClient) -> None:
        self.client = client
        self._exist = False
        self._checked_at: float | None = None

    def any_left(self) -> bool:
        """One single-row range query per process an hour (none expected once the purge has run)."""
        now = time.monotonic()
        if self._checked_at is None or now - self._checked_at > RECHECK_SECONDS:
            low, high = keys.LEGACY_MARKER_RANGE
            rows = self.client.query_entities("PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                                              parameters={"pk": keys.LEADS_PARTITION, "lo": low, "hi": high},
                                              select=["RowKey"], results_per_page=1)
            self._exist = next(iter(rows), None) is not None
            self._checked_at = now
        return self._exist

    def rekey(self, fingerprint: str, keyed_key: str) -> None:
        """This content's bare marker, if it has one, becomes its keyed marker (one point read while bare markers
        exist; nothing otherwise). A keyed marker already there wins: the bare one just goes."""
        if not self.any_left():
            return
        bare = keys.dedupe_row_key(fingerprint)
        try:
            old = self.client.get_entity(keys.LEADS_PARTITION, bare)
        except ResourceNotFoundError:
            return
        keyed = {"PartitionKey": keys.LEADS_PARTITION, "RowKey": keyed_key, "LeadId": old["LeadId"],
                 "ReceivedAt": old["ReceivedAt"]}
        gone = ("delete", {"PartitionKey": keys.LEADS_PARTITION, "RowKey": bare},
                {"etag": old.metadata["etag"], "match_condition": MatchConditions.IfNotModified})
        with suppress(TableTransactionError):  # moved meanwhile (a purge, a repeat): what is there now decides
            try:
                self.client.submit_transaction([("create", keyed), gone])
            except TableTransactionError:
                self.client.submit_transaction([gone])
