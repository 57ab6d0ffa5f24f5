"""What the Operations page reads: recent runs (the runs table) and poison-queue depths.

A small seam so the page works with whatever the deployment has: ``StoreOperations`` reads the
real tables and queues (lazily, on first use: building the app opens no connection); the page
filters every tenant it names to the caller's grant.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from azure.core.exceptions import AzureError

from auditor.adapters.queues import SnapshotQueue, poison_queue_name
from auditor.adapters.storage import queue_client
from auditor.adapters.tables.runs import RunStore
from auditor.core.runs import RunManifest
from auditor.settings import Settings, StorageSettings, require_storage

RECENT_RUNS = 7


@dataclass(frozen=True, slots=True)
class QueueDepth:
    queue: str
    messages: int | None  # None: could not be read


class OperationsSource(Protocol):
    def recent_runs(self) -> list[RunManifest]: ...

    def poison_depths(self) -> list[QueueDepth]: ...

    def run_failure(self, snapshot_id: str) -> str | None: ...


class StoreOperations:
    """Runs and poison queues of the deployment `settings` names."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._runs: RunStore | None = None
        self._lock = threading.Lock()

    def _store(self) -> RunStore:
        with self._lock:
            if self._runs is None:
                self._runs = RunStore.from_settings(self._settings)
            return self._runs

    def recent_runs(self) -> list[RunManifest]:
        store = self._store()
        out = []
        for slot in store.recent_runs(RECENT_RUNS):
            manifest = store.get_manifest(slot)
            if manifest is not None:
                out.append(manifest)
        return out

    def run_failure(self, snapshot_id: str) -> str | None:
        return self._store().run_failure(snapshot_id)

    def poison_depths(self) -> list[QueueDepth]:
        storage = require_storage(self._settings)
        out = []
        for name in (self._settings.snapshot_queue, self._settings.report_queue):
            poison = poison_queue_name(name)
            out.append(QueueDepth(poison, _count(storage, poison)))
        return out


def _depth(storage: StorageSettings, name: str) -> int:
    client = queue_client(storage, name, None)
    try:
        return SnapshotQueue(client, client).approximate_count()
    finally:
        client.close()


def _count(storage: StorageSettings, name: str) -> int | None:
    try:
        return _depth(storage, name)
    except AzureError:
        return None
