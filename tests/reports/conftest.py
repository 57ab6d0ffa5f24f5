"""Fixtures for evidence tests against Azurite: a snapshot store, an evidence container and a
report queue of the test's own (isolated by names, sharing the session's Azurite)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from auditor.adapters.blobs import EvidenceStore
from auditor.adapters.tables import SnapshotStore
from auditor.core.model import State
from auditor.core.snapshot import SnapshotIndexEntry
from auditor.settings import Settings, load_settings
from tools.devservices import Azurite
from tools.posture_factory import make_posture, with_states

DAY1 = datetime(2025, 1, 1, 2, tzinfo=UTC)


@pytest.fixture
def settings(azurite: Azurite, table_prefix: str) -> Settings:
    suffix = uuid.uuid4().hex[:12]
    return load_settings(
        {
            "AUDITOR_STORAGE": azurite.connection_string,
            "AUDITOR_TABLE_PREFIX": table_prefix,
            "AUDITOR_EVIDENCE_CONTAINER": f"evidence-{suffix}",
            "AUDITOR_REPORT_QUEUE": f"reports-{suffix}",
        }
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[SnapshotStore]:
    with SnapshotStore.from_settings(settings) as snapshots:
        yield snapshots


@pytest.fixture
def evidence(settings: Settings) -> Iterator[EvidenceStore]:
    with EvidenceStore.from_settings(settings) as container:
        container.create_container()
        yield container


def commit_days(
    store: SnapshotStore,
    evidence: EvidenceStore | None,
    tenant_id: str,
    days: int = 3,
    first: datetime = DAY1,
    **posture: int,
) -> list[SnapshotIndexEntry]:
    """Commit `days` daily snapshots of a tenant (each day one more assessment fails); the
    store anchors each (before its commit). `evidence` is kept for call sites' clarity."""
    base = make_posture(tenant_id, **posture)
    entries = []
    for day in range(days):
        failing = {r.key: State.FAILED for r in base.compliance[: day * 2]}
        entry = store.commit_snapshot(
            with_states(base, failing), first + timedelta(days=day), "test-collector"
        )
        entries.append(entry)
    return entries
