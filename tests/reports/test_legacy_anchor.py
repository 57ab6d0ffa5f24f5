"""Snapshots anchored by 0.1.0's scheme (one anchor per snapshot id, after the commit, covering
the content hash and chain only) are explicitly unverified: `verify` says why, and readers
refuse them like any snapshot that fails verification (docs/evidence.md, Legacy anchors)."""

from __future__ import annotations

import pytest

from auditor.adapters.blobs import EvidenceStore
from auditor.adapters.tables import SnapshotStore
from auditor.core.evidence import LEGACY_ANCHOR_SCHEMA, Anchor
from auditor.core.snapshot import SnapshotTampered
from auditor.services.verify import verify
from auditor.settings import Settings
from tests.reports.conftest import commit_days

TENANT = "7e0a0000-0000-0000-0000-0000000000b7"


def test_a_legacy_anchored_snapshot_is_reported_as_not_covered_and_refused(
    settings: Settings, evidence: EvidenceStore
) -> None:
    with SnapshotStore.from_settings(settings, anchored=False) as raw:
        [entry] = commit_days(raw, None, TENANT, days=1)  # as 0.1.0 committed it
        legacy = Anchor(
            tenant_id=entry.tenant_id,
            snapshot_id=entry.snapshot_id,
            scheduled_at=entry.scheduled_at,
            content_hash=entry.content_hash,
            previous_snapshot_id=None,
            previous_hash=None,
            schema=LEGACY_ANCHOR_SCHEMA,
        )
        evidence.write_anchor(legacy)  # 0.1.0 wrote it after the commit
        assert legacy.blob_name == f"anchors/{TENANT}/{entry.snapshot_id}.json"
        findings = verify(raw, evidence, [TENANT]).findings
    assert [(f.subject, f.problem.split(",")[0]) for f in findings] == [
        (
            f"snapshot {entry.snapshot_id}",
            f"anchored by the legacy scheme ({LEGACY_ANCHOR_SCHEMA})",
        ),
        (
            f"latest row {entry.snapshot_id}",
            f"anchored by the legacy scheme ({LEGACY_ANCHOR_SCHEMA})",
        ),
    ]
    assert all("does not cover the index row" in f.problem for f in findings)
    with SnapshotStore.from_settings(settings) as store:
        with pytest.raises(SnapshotTampered, match="legacy scheme"):
            store.get_index(TENANT, entry.snapshot_id)
        assert store.list_tenants() == []
