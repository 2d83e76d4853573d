"""The first request after an outage: a lead's transaction whose connection breaks (before the request reaches
storage, or after storage did it but before its answer arrives) is retried by the storage client and stored
exactly once, under the id it is answered with: the app answers 202 itself, no caller's retry needed.

azure-core's RetryPolicy does not retry a POST after a transport error (azure/core/pipeline/policies/_retry.py,
RetryPolicy.send and _is_method_retryable: POST is not in _method_whitelist), and an entity group
transaction is a POST to $batch: so a connection broken by an outage, or closed by the server while idle in the
pool, used to turn the next lead into a 503. leads/storage/table_store.py now asks for the retry and
recognises its own transaction when the retry finds it already done."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from devhost.azurite import connection_string
from leads.core.model import utcnow
from leads.core.settings import load_settings
from leads.storage.azure_clients import table_service
from leads.storage.table_store import LeadTable
from tests.support.cut_proxy import CutProxy
from tests.support.seeding import varied_lead

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(60)]


@pytest.fixture
def names() -> Iterator[dict[str, str]]:
    suffix = uuid.uuid4().hex[:8]
    yield {"LEADS_TABLE": f"cut{suffix}", "LEADS_QUARANTINE_TABLE": f"cutq{suffix}"}


def table_through(proxy_port: int | None, azurite, names: dict[str, str]) -> LeadTable:
    endpoints = dict(azurite.endpoints)
    if proxy_port is not None:
        endpoints["table"] = f"http://127.0.0.1:{proxy_port}"
    settings = load_settings({**names, "AzureWebJobsStorage": connection_string(endpoints)})
    return LeadTable(table_service(settings.storage), settings.table, settings.quarantine_table)


@pytest.mark.parametrize("mode", ["before", "after"])
@pytest.mark.parametrize("with_fingerprint", [True, False])
def test_a_lead_transaction_cut_once_is_stored_once_under_its_own_id(azurite, names, mode, with_fingerprint) -> None:
    direct = table_through(None, azurite, names)
    direct.create_tables()
    proxy = CutProxy(int(azurite.endpoints["table"].rsplit(":", 1)[1]), b"$batch", mode)
    try:
        table = table_through(proxy.port, azurite, names)
        stored = varied_lead(1, utcnow())
        fingerprint = f"fp-{uuid.uuid4().hex}" if with_fingerprint else None
        added = table.add(stored, fingerprint, timedelta(days=1), utcnow(), b"{}")
    finally:
        proxy.close()
    assert proxy.cut == 1  # the fault happened
    assert (added.lead_id, added.duplicate) == (stored.id, False)
    assert added.etag
    loaded = direct.load(stored.id)
    assert loaded is not None and loaded.stored.id == stored.id
    assert [lead.id for lead in direct.recent(10)] == [stored.id]  # once
