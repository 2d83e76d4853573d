"""The operational notices' state in the leads table: partition `notices`, one row per condition, written
on its ETag (create when absent) so that only one instance wins each change. Also the newest lead's arrival,
from one row key (leads sort newest first)."""

from __future__ import annotations

from datetime import datetime
from itertools import islice
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, UpdateMode

from leads.core import keys
from leads.core.errors import ConcurrentUpdateError
from leads.core.notices import ConditionState
from leads.storage.table_store import _storage_errors

NOTICES_PARTITION = "notices"


def _entity(state: ConditionState) -> dict[str, Any]:
    return {
        "PartitionKey": NOTICES_PARTITION, "RowKey": state.condition,
        "OpenSince": state.open_since.isoformat() if state.open_since else "",
        "LastSentAt": state.last_sent_at.isoformat() if state.last_sent_at else "",
        "Announced": state.announced, "Unsent": state.unsent, "Total": state.total,
        "LeadIds": ",".join(state.lead_ids), "Sentence": state.sentence,
    }


def _moment(text: Any) -> datetime | None:
    return datetime.fromisoformat(str(text)) if text else None


def _state(entity: Any) -> ConditionState:
    return ConditionState(
        condition=str(entity["RowKey"]), open_since=_moment(entity.get("OpenSince")),
        last_sent_at=_moment(entity.get("LastSentAt")), announced=bool(entity.get("Announced")),
        unsent=int(entity.get("Unsent") or 0), total=int(entity.get("Total") or 0),
        lead_ids=tuple(i for i in str(entity.get("LeadIds") or "").split(",") if i),
        sentence=str(entity.get("Sentence") or ""))


class NoticeTable:
    def __init__(self, leads: TableClient) -> None:
        self.leads = leads

    def load(self, condition: str) -> tuple[ConditionState, str] | None:
        try:
            with _storage_errors("read an operational notice"):
                entity = self.leads.get_entity(NOTICES_PARTITION, condition)
        except ResourceNotFoundError:
            return None
        return _state(entity), str(entity.metadata["etag"])

    def save(self, state: ConditionState, etag: str | None) -> str:
        try:
            with _storage_errors("record an operational notice"):
                if etag is None:
                    result = self.leads.create_entity(_entity(state))
                else:
                    result = self.leads.update_entity(_entity(state), mode=UpdateMode.REPLACE, etag=etag,
                                                      match_condition=MatchConditions.IfNotModified)
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            raise ConcurrentUpdateError(f"Notice {state.condition} changed meanwhile.") from None
        except HttpResponseError as error:  # 409/412 pass through _storage_errors untranslated
            raise ConcurrentUpdateError(f"Notice {state.condition} changed meanwhile ({error.status_code}).") \
                from None
        return str(result["etag"])

    def all(self) -> list[tuple[ConditionState, str]]:
        with _storage_errors("read the operational notices"):
            rows = self.leads.query_entities("PartitionKey eq @pk", parameters={"pk": NOTICES_PARTITION})
            return [(_state(row), str(row.metadata["etag"])) for row in rows]

    def newest_arrival(self) -> datetime | None:
        """One request: the first row key of the `lead:` range is the newest lead."""
        query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
        params = {"pk": keys.LEADS_PARTITION, "lo": "lead:", "hi": "lead" + keys.PREFIX_END}
        with _storage_errors("find the newest lead"):
            rows = self.leads.query_entities(query, parameters=params, select=["RowKey"], results_per_page=1)
            first = next(islice(rows, 1), None)
        if first is None:
            return None
        return keys.received_at_of(str(first["RowKey"]).split(":", 2)[2])
