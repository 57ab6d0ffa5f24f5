"""AUDITOR_STORAGE in both forms gives table and queue clients on the right endpoints."""

from __future__ import annotations

from azure.core.credentials import AccessToken

from auditor.adapters.queues import SnapshotQueue, poison_queue_name
from auditor.adapters.tables import SnapshotStore
from auditor.settings import load_settings


class NoToken:
    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        raise AssertionError("building clients makes no request")


def test_use_development_storage_means_azurite_on_its_default_ports() -> None:
    settings = load_settings({"AUDITOR_STORAGE": "UseDevelopmentStorage=true"})
    with SnapshotStore.from_settings(settings) as store:
        assert store._service.url.startswith("http://127.0.0.1:10002/devstoreaccount1")
    with SnapshotQueue.from_settings(settings) as queue:
        assert queue._queue.url == "http://127.0.0.1:10001/devstoreaccount1/auditor-snapshots"
        assert queue._poison.url.endswith("/auditor-snapshots-poison")


def test_identity_based_storage_uses_the_service_uris_with_a_token_credential() -> None:
    settings = load_settings(
        {
            "AUDITOR_STORAGE__tableServiceUri": "https://acct.table.core.windows.net",
            "AUDITOR_STORAGE__queueServiceUri": "https://acct.queue.core.windows.net",
            "AUDITOR_STORAGE__blobServiceUri": "https://acct.blob.core.windows.net",
            "AUDITOR_SNAPSHOT_QUEUE": "snapshots",
        }
    )
    credential = NoToken()
    with SnapshotStore.from_settings(settings, credential=credential) as store:  # type: ignore[arg-type]
        assert store._service.url.startswith("https://acct.table.core.windows.net")
    with SnapshotQueue.from_settings(settings, credential=credential) as queue:  # type: ignore[arg-type]
        assert queue._queue.url == "https://acct.queue.core.windows.net/snapshots"
    assert poison_queue_name("snapshots") == "snapshots-poison"
