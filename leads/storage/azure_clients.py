"""Storage clients from settings: a connection string locally (Azurite), the managed identity in Azure.

Retries are few and timeouts short: the ingest request must answer (503) rather than hang while
Partner Center waits; the queue trigger and the sweeper retry on their own schedule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from leads.core.settings import StorageSettings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.data.tables import TableServiceClient
    from azure.storage.queue import QueueServiceClient

CLIENT_OPTIONS: dict[str, Any] = {
    "retry_total": 2,
    "retry_backoff_factor": 0.2,
    "retry_backoff_max": 2,
    "connection_timeout": 5,
    "read_timeout": 15,
}


def credential(storage: StorageSettings) -> TokenCredential:
    from azure.identity import DefaultAzureCredential

    # With a user-assigned identity, DefaultAzureCredential must be told which one.
    return DefaultAzureCredential(managed_identity_client_id=storage.client_id or None)


def table_service(storage: StorageSettings, **options: Any) -> TableServiceClient:
    from azure.data.tables import TableServiceClient

    kwargs = {**CLIENT_OPTIONS, **options}
    if storage.uses_identity:
        return TableServiceClient(endpoint=storage.table_service_uri, credential=credential(storage), **kwargs)
    return TableServiceClient.from_connection_string(storage.connection_string, **kwargs)


def queue_service(storage: StorageSettings, **options: Any) -> QueueServiceClient:
    from azure.storage.queue import LinearRetry, QueueServiceClient

    # The queue SDK ignores retry_backoff_*: its default policy waits 15 s, then 18 s, 24 s.
    retry = LinearRetry(backoff=0.3, random_jitter_range=0.1,  # type: ignore[arg-type]  # floats work
                        retry_total=CLIENT_OPTIONS["retry_total"])
    kwargs = {**CLIENT_OPTIONS, "retry_policy": retry, **options}
    if storage.uses_identity:
        return QueueServiceClient(account_url=storage.queue_service_uri, credential=credential(storage), **kwargs)
    return QueueServiceClient.from_connection_string(storage.connection_string, **kwargs)
