"""Fixtures for tests against Azurite: a store and settings isolated by table prefix and queue."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from auditor.adapters.tables import SnapshotStore
from auditor.settings import Settings, load_settings
from tools.devservices import Azurite


@pytest.fixture
def settings(azurite: Azurite, table_prefix: str) -> Settings:
    return load_settings(
        {
            "AUDITOR_STORAGE": azurite.connection_string,
            "AUDITOR_TABLE_PREFIX": table_prefix,
            "AUDITOR_SNAPSHOT_QUEUE": f"snap-{uuid.uuid4().hex[:12]}",
            "AUDITOR_EVIDENCE_CONTAINER": f"evidence-{uuid.uuid4().hex[:12]}",
        }
    )


@pytest.fixture
def make_store(settings: Settings) -> Iterator[Callable[..., SnapshotStore]]:
    """Stores on the test's tables; keyword options go to the SDK client (hooks, retries)."""
    stores: list[SnapshotStore] = []

    def make(**options: Any) -> SnapshotStore:
        store = SnapshotStore.from_settings(settings, **options)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., SnapshotStore]) -> SnapshotStore:
    return make_store()
