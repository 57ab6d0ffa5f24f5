"""Anchors: one write-once anchor per write attempt, written by that attempt before its index row
is committed; nothing ever anchors a snapshot it did not produce.

A forger here has write access to Table Storage only (a store without the evidence container,
the real azure-data-tables client): whatever it commits has no anchor, and the real run that
meets it reports it and never anchors it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from auditor.adapters.blobs import EvidenceStore
from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.runs import RunStore
from auditor.core.evidence import ANCHOR_PREFIX, Anchor
from auditor.core.model import State
from auditor.core.snapshot import SnapshotTampered
from auditor.services.snapshot import SnapshotService
from auditor.services.verify import verify
from auditor.settings import Settings
from tools.posture_factory import FakeSource, make_posture, with_states

TENANT = "7e0a0000-0000-0000-0000-0000000000c1"
SLOT = datetime(2025, 1, 1, 2, tzinfo=UTC)
NEXT = datetime(2025, 1, 2, 2, tzinfo=UTC)


@pytest.fixture
def runs(settings: Settings) -> Iterator[RunStore]:
    store = RunStore.from_settings(settings)
    yield store
    store.close()


@pytest.fixture
def forger(settings: Settings) -> Iterator[SnapshotStore]:
    """Write access to the tables only: commits through the store's code, anchors nothing."""
    with SnapshotStore.from_settings(settings, anchored=False) as raw:
        yield raw


@pytest.fixture
def service(store: SnapshotStore, runs: RunStore) -> SnapshotService:
    source = FakeSource([make_posture(TENANT)], failures={TENANT: [None, ConnectionError("x")]})
    return SnapshotService(store, runs, source)


def anchor_names(evidence: EvidenceStore) -> list[str]:
    return [b.name for b in evidence.list_blobs(f"{ANCHOR_PREFIX}{TENANT}/")]


def test_every_committed_snapshot_is_anchored_by_its_attempt_failed_ones_included(
    service: SnapshotService, evidence: EvidenceStore, settings: Settings
) -> None:
    tenant = make_posture(TENANT).tenant
    good = service.snapshot_tenant(tenant, SLOT)
    failed = service.snapshot_tenant(tenant, NEXT)  # the source raises: committed as failed
    assert (good.outcome, failed.outcome) == ("complete", "failed")
    assert good.entry is not None and failed.entry is not None
    assert anchor_names(evidence) == [
        f"anchors/{TENANT}/{e.snapshot_id}/{e.attempt}.json" for e in (good.entry, failed.entry)
    ]
    for entry in (good.entry, failed.entry):
        anchor = evidence.read_anchor(TENANT, entry.snapshot_id, entry.attempt)
        assert anchor is not None and not anchor.legacy
        assert anchor.index_digest == entry.row_digest and anchor.content_hash == entry.content_hash
    with SnapshotStore.from_settings(settings, anchored=False) as raw:
        assert verify(raw, evidence, [TENANT]).ok


def test_the_anchor_exists_before_the_index_row_is_committed(
    settings: Settings, evidence: EvidenceStore
) -> None:
    seen: dict[str, object] = {}
    reader = SnapshotStore.from_settings(settings, anchored=False)

    def at(step: str) -> None:
        if step == "commit":
            seen["anchors"] = anchor_names(evidence)
            seen["committed"] = reader.list_snapshots(TENANT)

    with SnapshotStore.from_settings(settings, step_hook=at) as writer:
        entry = writer.commit_snapshot(make_posture(TENANT), SLOT, "test")
    reader.close()
    assert seen == {
        "anchors": [f"anchors/{TENANT}/{entry.snapshot_id}/{entry.attempt}.json"],
        "committed": [],
    }


def test_a_forgery_committed_ahead_of_the_run_is_reported_and_never_anchored(
    service: SnapshotService,
    store: SnapshotStore,
    forger: SnapshotStore,
    evidence: EvidenceStore,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 9: the forgery used to answer DUPLICATE and be anchored by the real run."""
    tenant = make_posture(TENANT).tenant
    service.snapshot_tenant(tenant, SLOT)
    before = anchor_names(evidence)
    posture = make_posture(TENANT)
    all_passed = with_states(posture, {r.key: State.PASSED for r in posture.compliance})
    forged = forger.commit_snapshot(all_passed, NEXT, "auditor-collector/forged")

    with caplog.at_level(logging.ERROR, logger="auditor.snapshot"):
        outcome = service.snapshot_tenant(tenant, NEXT)
    assert outcome.outcome == "tampered" and outcome.entry is None
    assert forged.snapshot_id in outcome.reason and "no anchor" in outcome.reason
    assert "snapshot.tenant.tampered" in caplog.text
    assert anchor_names(evidence) == before  # nothing anchored for the forgery
    with pytest.raises(SnapshotTampered):
        store.get_index(TENANT, forged.snapshot_id)
    with SnapshotStore.from_settings(settings, anchored=False) as raw:
        findings = verify(raw, evidence, [TENANT]).findings
    assert [f.subject for f in findings] == [
        f"snapshot {forged.snapshot_id}",
        f"latest row {forged.snapshot_id}",
    ]
    assert all("no anchor of attempt" in f.problem for f in findings)


def test_a_lost_anchor_is_never_written_again_by_a_later_job(
    service: SnapshotService, store: SnapshotStore, evidence: EvidenceStore
) -> None:
    tenant = make_posture(TENANT).tenant
    entry = service.snapshot_tenant(tenant, SLOT).entry
    assert entry is not None
    evidence.container.delete_blob(f"anchors/{TENANT}/{entry.snapshot_id}/{entry.attempt}.json")
    again = service.snapshot_tenant(tenant, SLOT)  # a duplicate job used to re-anchor it
    assert again.outcome == "tampered"
    assert anchor_names(evidence) == []


def test_an_anchor_is_write_once_and_other_values_are_a_conflict(
    store: SnapshotStore, evidence: EvidenceStore
) -> None:
    from dataclasses import replace

    from auditor.adapters.blobs import AnchorConflict

    entry = store.commit_snapshot(make_posture(TENANT), SLOT, "test")
    anchor = evidence.read_anchor(TENANT, entry.snapshot_id, entry.attempt)
    assert anchor is not None
    assert evidence.write_anchor(anchor) is False  # the same bytes: a retried write
    with pytest.raises(AnchorConflict):
        evidence.write_anchor(replace(anchor, content_hash="0" * 64))
    stored = evidence.properties(anchor.blob_name)
    assert stored is not None and stored.metadata["indexdigest"] == entry.row_digest
    assert Anchor.from_json(evidence.get_json(anchor.blob_name)) == anchor
