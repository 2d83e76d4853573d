"""Partner Center's "Azure Table" destination on Azurite: rows in the shape Partner Center writes
(samples/azure-table-destination-row.json; docs/marketplace-leads.md §3)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from azure.data.tables import TableClient, TableServiceClient

from tests.support.samples import SAMPLES

SAMPLE_ROW: dict[str, Any] = json.loads((SAMPLES / "azure-table-destination-row.json").read_text("utf-8"))


def source_table(connection_string: str) -> TableClient:
    """A new, empty table named as Partner Center would (a unique suffix keeps tests apart)."""
    client = TableServiceClient.from_connection_string(connection_string).get_table_client(
        f"MarketplaceLeads{uuid.uuid4().hex[:10]}")
    client.create_table()
    return client


def partner_center_row(email: str, *, first: str = "Jo", customer_info: str | None = None,
                       **columns: Any) -> dict[str, Any]:
    """A row as Partner Center writes one: PartitionKey the creation date `M:2FD:2FYYYY`, CustomerInfo a JSON
    string."""
    now = datetime.now(UTC)
    info = json.loads(SAMPLE_ROW["CustomerInfo"])
    info.update(Email=email, FirstName=first)
    return {**SAMPLE_ROW, "PartitionKey": f"{now.month}:2F{now.day}:2F{now.year}", "RowKey": str(uuid.uuid4()),
            "CreatedTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "CustomerInfo": json.dumps(info) if customer_info is None else customer_info, **columns}


def write_rows(client: TableClient, emails: list[str]) -> list[dict[str, Any]]:
    rows = [partner_center_row(email) for email in emails]
    for row in rows:
        client.create_entity(row)
    return rows
