"""The snapshot service anchors every committed snapshot in the write-once evidence container,
and a duplicate job repairs an anchor lost between commit and anchor."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from auditor.adapters.blobs import EvidenceStore
from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.runs import RunStore
from auditor.core.evidence import Anchor
from auditor.services.snapshot import SnapshotService
from auditor.services.verify import verify
from auditor.settings import Settings
from tools.posture_factory import FakeSource, make_posture

TENANT = "7e0a0000-0000-0000-0000-0000000000c1"
SLOT = datetime(2025, 1, 1, 2, tzinfo=UTC)
NEXT = datetime(2025, 1, 2, 2, tzinfo=UTC)


@pytest.fixture
def runs(settings: Settings) -> Iterator[RunStore]:
    store = RunStore.from_settings(settings)
    yield store
    store.close()


@pytest.fixture
def service(store: SnapshotStore, runs: RunStore, evidence: EvidenceStore) -> SnapshotService:
    source = FakeSource([make_posture(TENANT)], failures={TENANT: [None, ConnectionError("x")]})
    return SnapshotService(store, runs, source, anchor=evidence.anchor)


def test_every_committed_snapshot_is_anchored_failed_ones_included(
    service: SnapshotService, evidence: EvidenceStore, store: SnapshotStore
) -> None:
    tenant = make_posture(TENANT).tenant
    good = service.snapshot_tenant(tenant, SLOT)
    failed = service.snapshot_tenant(tenant, NEXT)  # the source raises: committed as failed
    assert (good.outcome, failed.outcome) == ("complete", "failed")
    anchors = evidence.list_anchors(TENANT)
    assert anchors == {
        e.snapshot_id: Anchor.of(e) for e in (good.entry, failed.entry) if e is not None
    }
    assert verify(store, evidence, [TENANT]).ok


def test_a_duplicate_job_repairs_a_missing_anchor(
    service: SnapshotService, evidence: EvidenceStore
) -> None:
    tenant = make_posture(TENANT).tenant
    entry = service.snapshot_tenant(tenant, SLOT).entry
    assert entry is not None
    evidence.container.delete_blob(f"anchors/{TENANT}/{entry.snapshot_id}.json")  # lost
    again = service.snapshot_tenant(tenant, SLOT)
    assert again.outcome == "duplicate"
    assert evidence.get_anchor(TENANT, entry.snapshot_id) == Anchor.of(entry)


def test_an_anchor_with_other_hashes_is_logged_and_left_alone(
    service: SnapshotService,
    evidence: EvidenceStore,
    store: SnapshotStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant = make_posture(TENANT).tenant
    entry = service.snapshot_tenant(tenant, SLOT).entry
    assert entry is not None
    forged = Anchor.of(replace(entry, snapshot_id="20250103T020000Z", content_hash="e" * 64))
    evidence.put_bytes(
        f"anchors/{TENANT}/20250103T020000Z.json", forged.to_bytes(), forged.metadata()
    )
    with caplog.at_level(logging.ERROR, logger="auditor.snapshot"):
        outcome = service.snapshot_tenant(tenant, datetime(2025, 1, 3, 2, tzinfo=UTC))
    assert outcome.entry is not None
    assert "anchored with other hashes" in caplog.text
    findings = verify(store, evidence, [TENANT]).findings
    assert [f.subject for f in findings] == ["snapshot 20250103T020000Z"]
