"""Storage clients from the AUDITOR_STORAGE connection, in either of its two forms.

Locally a connection string (``UseDevelopmentStorage=true`` or Azurite's full string); in Azure
the identity-based form (``AUDITOR_STORAGE__tableServiceUri`` / ``__queueServiceUri`` /
``__blobServiceUri``) with the app's managed identity through DefaultAzureCredential. Bindings
in function_app.py name the same connection, so triggers and SDK clients use one account.
"""

from __future__ import annotations

from typing import Any

from azure.core.credentials import TokenCredential
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueClient

from auditor.settings import STORAGE_CONNECTION, SettingsError, StorageSettings

# Retries of the storage SDKs: transient errors (connection refused while Azurite or a storage
# front end restarts, 500/503 under load) are retried with exponential backoff for about 30 s in
# all, then surface to the caller (the queue then retries the whole tenant later).
RETRY_OPTIONS: dict[str, Any] = {
    "retry_total": 6,
    "retry_connect": 6,
    "retry_read": 6,
    "retry_status": 6,
    "retry_backoff_factor": 0.5,
    "retry_backoff_max": 8,
    "connection_timeout": 20,
    "read_timeout": 120,
}


def _credential(credential: TokenCredential | None) -> TokenCredential:
    if credential is not None:
        return credential
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def _uri(value: str | None, suffix: str) -> str:
    if not value:
        raise SettingsError(f"{STORAGE_CONNECTION}__{suffix}", "is not set")
    return value


def table_service_client(
    storage: StorageSettings, credential: TokenCredential | None = None, **options: Any
) -> TableServiceClient:
    kwargs = {**RETRY_OPTIONS, **options}
    if storage.connection_string:
        return TableServiceClient.from_connection_string(storage.connection_string, **kwargs)
    return TableServiceClient(
        _uri(storage.table_uri, "tableServiceUri"), credential=_credential(credential), **kwargs
    )


def queue_client(
    storage: StorageSettings,
    queue_name: str,
    credential: TokenCredential | None = None,
    **options: Any,
) -> QueueClient:
    kwargs = {**RETRY_OPTIONS, **options}
    if storage.connection_string:
        return QueueClient.from_connection_string(storage.connection_string, queue_name, **kwargs)
    return QueueClient(
        _uri(storage.queue_uri, "queueServiceUri"),
        queue_name,
        credential=_credential(credential),
        **kwargs,
    )
