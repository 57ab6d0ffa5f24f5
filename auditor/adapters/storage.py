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

# Retries of the storage SDKs, bounded so that storage that cannot be reached ends a command
# within about 45 s (issue 9: a listener that never answered held `report` for 14 minutes).
# - Connection refused (Azurite or a storage front end restarting) is retried 5 times, about
#   15 s (tables) / 25 s (blobs, queues) in all, then surfaces to the caller (the queue then
#   retries the whole tenant later).
# - No answer: a response must start within READ_TIMEOUT_SECONDS (Azure Storage's own server
#   timeouts are 30 s for blob and queue operations and 5 s per table query page, so a longer
#   wait means it is not answering); one retry, so 2 x 20 s at most.
# - 500/503 under load: retried 6 times with the backoff below.
# One dict for both retry vocabularies: the tables SDK (azure-core RetryPolicy) reads
# retry_backoff_*, the blob and queue SDKs (storage ExponentialRetry: initial_backoff +
# increment_base ** retry) read initial_backoff, increment_base and random_jitter_range; each
# ignores the other's keys.
CONNECT_TIMEOUT_SECONDS = 10
READ_TIMEOUT_SECONDS = 20
RETRY_OPTIONS: dict[str, Any] = {
    "retry_total": 6,
    "retry_connect": 5,
    "retry_read": 1,
    "retry_status": 6,
    "retry_backoff_factor": 0.5,
    "retry_backoff_max": 8,
    "initial_backoff": 1,
    "increment_base": 1.5,
    "random_jitter_range": 0.5,
    "connection_timeout": CONNECT_TIMEOUT_SECONDS,
    "read_timeout": READ_TIMEOUT_SECONDS,
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
