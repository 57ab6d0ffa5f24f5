"""Incremental `verify` against Azurite (issue 15 §3): a passing verify leaves a write-once
checkpoint, the next one reads only what was committed since, and every way of abusing the
checkpoint (a row rewritten behind it, a checkpoint naming a hash the chain lacks, an edited or a
forged checkpoint, a deleted one) makes that tenant's check full, said so, and is named.

Before this, verify read every snapshot of every tenant on each run (its cost grew with history:
bench/bench_verify.py) and had no checkpoint to trust or to abuse.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableServiceClient, UpdateMode

from auditor.adapters.blobs import EvidenceExists, EvidenceStore
from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.store import CorruptSnapshot
from auditor.core.canonical import snapshot_content_hash
from auditor.core.checkpoint import Checkpoint, chain_digest, checkpoint_blob_name
from auditor.core.snapshot import Snapshot, SnapshotIndexEntry
from auditor.services.report import ReportService
from auditor.services.verify import Verification, verify
from auditor.services.verify_checkpoint import FULL, INCREMENTAL, list_checkpoints
from auditor.settings import Settings
from tests.reports.conftest import DAY1, commit_days
from tests.reports.test_verify import _tamper_plans
from tools.posture_factory import make_posture

TENANT = "7e0a0000-0000-0000-0000-0000000000c1"
NOW = datetime(2025, 2, 1, tzinfo=UTC)


class ReadCounting(SnapshotStore):
    """The real store as verify reads it, noting which snapshots' content it reads."""

    read: list[str]
    reread: list[str]  # snapshots whose partition was read again, for the projection alone

    def get_snapshot(self, tenant_id: str, snapshot_id: str, *, verify: bool = True) -> Snapshot:
        self.read.append(snapshot_id)
        return super().get_snapshot(tenant_id, snapshot_id, verify=verify)

    def get_snapshot_and_projection(
        self, tenant_id: str, snapshot_id: str
    ) -> tuple[Snapshot, list[str] | None, str | None]:
        self.read.append(snapshot_id)
        return super().get_snapshot_and_projection(tenant_id, snapshot_id)

    def get_projection(self, tenant_id: str, snapshot_id: str) -> list[str] | None:
        self.reread.append(snapshot_id)
        return super().get_projection(tenant_id, snapshot_id)


@pytest.fixture
def raw(settings: Settings) -> Iterator[ReadCounting]:
    with ReadCounting.from_settings(settings, anchored=False) as reader:
        assert isinstance(reader, ReadCounting)
        reader.read = []
        reader.reread = []
        yield reader


@pytest.fixture
def history(store: SnapshotStore, evidence: EvidenceStore) -> list[SnapshotIndexEntry]:
    return commit_days(store, evidence, TENANT, days=3)


def _check(raw: ReadCounting, evidence: EvidenceStore, mode: str = INCREMENTAL) -> Verification:
    raw.read = []
    return verify(raw, evidence, [TENANT], checkpoints=mode, now=NOW)


def _next_day(store: SnapshotStore, evidence: EvidenceStore, day: int) -> SnapshotIndexEntry:
    (entry,) = commit_days(store, evidence, TENANT, days=1, first=DAY1 + timedelta(days=day))
    return entry


@pytest.fixture
def checkpointed(
    raw: ReadCounting,
    store: SnapshotStore,
    evidence: EvidenceStore,
    history: list[SnapshotIndexEntry],
) -> list[SnapshotIndexEntry]:
    """Three days verified (checkpoint 1), then a fourth committed."""
    first = _check(raw, evidence)
    assert first.ok and first.checkpoints == {TENANT: 1}, [str(f) for f in first.findings]
    return [*history, _next_day(store, evidence, 3)]


def _scope(result: Verification) -> str:
    return result.scopes[TENANT]


def _tables(settings: Settings) -> TableServiceClient:
    assert settings.storage is not None and settings.storage.connection_string
    return TableServiceClient.from_connection_string(settings.storage.connection_string)


def _edit_row(settings: Settings, store: SnapshotStore, snapshot_id: str, **values: object) -> None:
    """Set properties of a committed index row, as someone with table access could."""
    index = _tables(settings).get_table_client(store.tables.index)
    row = next(r for r in index.list_entities() if r.get("snapshot_id") == snapshot_id)
    row.update(values)
    index.upsert_entity(row, mode=UpdateMode.REPLACE)


def _overwrite(evidence: EvidenceStore, name: str, data: bytes, metadata: dict[str, str]) -> None:
    """What someone with write access does where there is no immutability policy (Azurite)."""
    evidence.container.get_blob_client(name).upload_blob(data, overwrite=True, metadata=metadata)


def _stored_checkpoint(evidence: EvidenceStore, number: int) -> tuple[dict[str, object], str]:
    name = checkpoint_blob_name(TENANT, number)
    return json.loads(evidence.get_bytes(name) or b"null"), name


# -- the checkpoint and what it saves ------------------------------------------------------


def test_a_passing_verify_anchors_a_checkpoint_naming_the_head_and_its_hashes(
    raw: ReadCounting, evidence: EvidenceStore, history: list[SnapshotIndexEntry]
) -> None:
    result = _check(raw, evidence)
    assert result.ok and _scope(result) == "full: no checkpoint yet"
    assert sorted(raw.read) == [e.snapshot_id for e in history]  # the first run reads all
    assert raw.reread == []  # each snapshot's entities once: its projection is among them

    document, name = _stored_checkpoint(evidence, 1)
    head = history[-1]
    body = document["checkpoint"]
    assert isinstance(body, dict)
    assert body["head"] == {
        "snapshotId": head.snapshot_id,
        "attempt": head.attempt,
        "contentHash": head.content_hash,
        "indexDigest": head.row_digest,
        "contentDigest": raw.get_snapshot(TENANT, head.snapshot_id).content_digest,
    }
    assert body["snapshots"] == 3 and body["chainDigest"] == chain_digest(history)
    assert (body["mode"], body["verifiedAt"], body["previousCheckpointSha256"]) == (
        FULL,
        "2025-02-01T00:00:00Z",
        None,
    )
    assert str(body["verifier"]).startswith("auditor-verify/")
    # Write-once, like the anchors: the name cannot be written again.
    with pytest.raises(EvidenceExists):
        evidence.put_bytes(name, b"{}", {})


def test_the_next_verify_reads_only_the_snapshots_committed_since_the_checkpoint(
    raw: ReadCounting, evidence: EvidenceStore, checkpointed: list[SnapshotIndexEntry]
) -> None:
    new = checkpointed[-1]
    result = _check(raw, evidence)
    assert result.ok, [str(f) for f in result.findings]
    assert raw.read == [new.snapshot_id]
    assert (result.snapshots, result.trusted) == (4, 3)
    assert _scope(result).startswith(
        f"incremental from checkpoint 000000001 (head {checkpointed[2].snapshot_id}"
    )
    assert _scope(result).endswith("3 snapshots trusted, 1 read")
    assert result.checkpoints == {TENANT: 2}
    document, _ = _stored_checkpoint(evidence, 2)
    first, _ = _stored_checkpoint(evidence, 1)
    body = document["checkpoint"]
    assert isinstance(body, dict)
    assert body["previousCheckpointSha256"] == first["checkpointSha256"]
    assert (body["snapshots"], body["mode"]) == (4, INCREMENTAL)

    again = _check(raw, evidence)  # nothing new: nothing read, no new checkpoint
    assert again.ok and raw.read == [] and again.checkpoints == {}


def test_full_reads_every_snapshot_whatever_the_checkpoint_covers(
    raw: ReadCounting, evidence: EvidenceStore, checkpointed: list[SnapshotIndexEntry]
) -> None:
    result = _check(raw, evidence, FULL)
    assert result.ok and sorted(raw.read) == [e.snapshot_id for e in checkpointed]
    assert _scope(result) == "full (--full; checkpoint 1 is intact)"
    assert result.trusted == 0 and result.checkpoints == {TENANT: 2}


def test_a_new_snapshot_that_does_not_link_to_the_checkpoint_head_is_named(
    raw: ReadCounting,
    store: SnapshotStore,
    evidence: EvidenceStore,
    settings: Settings,
    checkpointed: list[SnapshotIndexEntry],
) -> None:
    """The link from the checkpoint's head to what is new is checked again."""
    new = checkpointed[-1]
    _edit_row(settings, store, new.snapshot_id, previous_hash="0" * 64)

    result = _check(raw, evidence)
    assert _scope(result).startswith("incremental")
    problems = [f.problem for f in result.findings if f.subject == f"snapshot {new.snapshot_id}"]
    assert any(p.startswith("predecessor hash 000") for p in problems), problems
    assert result.checkpoints == {}  # nothing is checkpointed past a finding


# -- abuse of the checkpoint: full, said so, and named -------------------------------------


def test_a_snapshot_rewritten_behind_the_checkpoint_makes_the_check_full_and_is_named(
    raw: ReadCounting,
    store: SnapshotStore,
    evidence: EvidenceStore,
    settings: Settings,
    checkpointed: list[SnapshotIndexEntry],
) -> None:
    """The operator alters an old snapshot after it was checkpointed and re-hashes its row."""
    middle = checkpointed[1]
    _tamper_plans(store, settings, middle)
    rehashed = snapshot_content_hash(store.get_snapshot(TENANT, middle.snapshot_id, verify=False))
    _edit_row(settings, store, middle.snapshot_id, content_hash=rehashed)

    result = _check(raw, evidence)
    assert _scope(result).startswith("full: checkpoint 000000001 covered 3 snapshots")
    assert "behind the checkpoint" in _scope(result)
    assert sorted(raw.read) == [e.snapshot_id for e in checkpointed]
    subjects = [f.subject for f in result.findings]
    assert f"snapshot {middle.snapshot_id}" in subjects  # the full check names the rewrite
    assert subjects[-1] == "checkpoint 000000001"
    assert result.checkpoints == {}


def test_a_checkpoint_naming_a_hash_the_chain_does_not_have_is_named(
    raw: ReadCounting, evidence: EvidenceStore, checkpointed: list[SnapshotIndexEntry]
) -> None:
    """A checkpoint written (self-consistent, next number) for a head hash nobody committed."""
    document, _ = _stored_checkpoint(evidence, 1)
    forged = _forge(
        document,
        sequence=2,
        content_hash="f" * 64,
        previous_sha256=str(document["checkpointSha256"]),
    )
    evidence.put_bytes(forged.blob_name, forged.to_bytes(), forged.metadata())

    result = _check(raw, evidence)
    assert _scope(result).startswith("full: checkpoint 000000002 names head")
    assert f"with hash {'f' * 64}; the chain has" in _scope(result)
    assert len(raw.read) == 4
    assert [f.subject for f in result.findings] == ["checkpoint 000000002"]


def test_an_edited_checkpoint_is_named_and_nothing_is_trusted_from_it(
    raw: ReadCounting, evidence: EvidenceStore, checkpointed: list[SnapshotIndexEntry]
) -> None:
    document, name = _stored_checkpoint(evidence, 1)
    body = document["checkpoint"]
    assert isinstance(body, dict)
    body["verifiedAt"] = "2030-01-01T00:00:00Z"
    metadata = evidence.container.get_blob_client(name).get_blob_properties().metadata
    _overwrite(evidence, name, json.dumps(document).encode(), dict(metadata))

    result = _check(raw, evidence)
    assert _scope(result).startswith("full: checkpoint 000000001 is broken")
    assert len(raw.read) == 4
    (finding,) = result.findings
    assert finding.subject == "checkpoint 000000001" and "hashes to" in finding.problem


def test_a_forged_checkpoint_over_rewritten_rows_is_caught_by_the_anchors(
    raw: ReadCounting,
    store: SnapshotStore,
    evidence: EvidenceStore,
    settings: Settings,
    checkpointed: list[SnapshotIndexEntry],
) -> None:
    """Someone rewrites an old row (compliance per standard) and then writes the next checkpoint
    themselves, over the rewritten rows, with every hash right: the rows it covers are compared
    with their write-once anchors before anything is trusted."""
    middle = checkpointed[1]
    _edit_row(
        settings, store, middle.snapshot_id, compliance_by_standard=json.dumps({"PCI-DSS-4": 100})
    )
    rows = sorted(raw.list_snapshots(TENANT), key=lambda e: e.scheduled_at)
    document, _ = _stored_checkpoint(evidence, 1)
    previous = _forge(document, sequence=1)
    head = rows[-1]
    forged = Checkpoint.of(
        rows,
        raw.get_snapshot(TENANT, head.snapshot_id).content_digest,
        sequence=2,
        previous_sha256=previous.sha256,
        mode=FULL,
        verified_at=NOW,
    )
    evidence.put_bytes(forged.blob_name, forged.to_bytes(), forged.metadata())

    result = _check(raw, evidence)
    assert _scope(result) == (
        f"full: checkpoint 000000002 covers snapshot {middle.snapshot_id}, which disagrees with "
        "its anchor"
    )
    assert len(raw.read) == 4
    subjects = [f.subject for f in result.findings]
    assert subjects == [f"snapshot {middle.snapshot_id}", "checkpoint 000000002"]


def test_a_deleted_checkpoint_makes_the_check_full_and_is_named(
    raw: ReadCounting,
    store: SnapshotStore,
    evidence: EvidenceStore,
    checkpointed: list[SnapshotIndexEntry],
) -> None:
    assert _check(raw, evidence).checkpoints == {TENANT: 2}
    _next_day(store, evidence, 4)
    assert _check(raw, evidence).checkpoints == {TENANT: 3}
    _next_day(store, evidence, 5)
    evidence.container.delete_blob(checkpoint_blob_name(TENANT, 2))

    result = _check(raw, evidence)
    assert _scope(result) == "full: checkpoints [2] are missing (deleted?)"
    assert len(raw.read) == 6
    assert [str(f) for f in result.findings] == [
        f"tenant {TENANT} checkpoint 000000003: checkpoints [2] are missing (deleted?)"
    ]


def test_with_its_only_checkpoint_deleted_the_check_is_full_and_says_so(
    raw: ReadCounting, evidence: EvidenceStore, checkpointed: list[SnapshotIndexEntry]
) -> None:
    evidence.container.delete_blob(checkpoint_blob_name(TENANT, 1))
    result = _check(raw, evidence)
    assert _scope(result) == "full: no checkpoint yet" and len(raw.read) == 4
    assert result.ok and result.checkpoints == {TENANT: 1}


def test_content_edited_behind_the_checkpoint_is_found_by_full_and_refused_by_readers(
    raw: ReadCounting,
    store: SnapshotStore,
    evidence: EvidenceStore,
    settings: Settings,
    checkpointed: list[SnapshotIndexEntry],
) -> None:
    """What the incremental check trusts, stated: content entities behind an intact checkpoint
    are not read again. Every reader still checks them against their anchor, and --full names
    them."""
    middle = checkpointed[1]
    _tamper_plans(store, settings, middle)

    assert _check(raw, evidence).ok  # trusted: the rows and anchors are untouched
    with pytest.raises(CorruptSnapshot, match="content hashes to"):
        store.get_snapshot(TENANT, middle.snapshot_id)
    full = _check(raw, evidence, FULL)
    assert [f.subject for f in full.findings] == [f"snapshot {middle.snapshot_id}"]


def test_the_verify_command_is_incremental_by_default_and_full_on_request(
    settings: Settings,
    evidence: EvidenceStore,
    history: list[SnapshotIndexEntry],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from auditor.cli import main

    assert settings.storage is not None and settings.storage.connection_string
    monkeypatch.setenv("AUDITOR_STORAGE", settings.storage.connection_string)
    monkeypatch.setenv("AUDITOR_TABLE_PREFIX", settings.table_prefix)
    monkeypatch.setenv("AUDITOR_EVIDENCE_CONTAINER", settings.evidence_container)
    assert main(["verify", "--tenant", TENANT]) == 0
    out = capsys.readouterr().out
    assert f"tenant {TENANT}: full: no checkpoint yet" in out
    assert "OK: verified 3 snapshots of 1 tenants" in out
    assert main(["verify", "--tenant", TENANT]) == 0
    out = capsys.readouterr().out
    assert "1 tenants checked incrementally from their checkpoints" in out
    assert "OK: verified 3 snapshots (3 covered by checkpoints) of 1 tenants" in out
    assert main(["verify", "--tenant", TENANT, "--full", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["scopes"] == {TENANT: "full (--full; checkpoint 1 is intact)"}
    assert (document["trusted"], document["checkpointsWritten"]) == (0, {TENANT: 2})
    assert [n for n, _ in list_checkpoints(evidence, TENANT)] == [1, 2]


def _forge(document: dict[str, object], **changes: object) -> Checkpoint:
    """A checkpoint like the stored one with `changes`, hashed and labelled correctly."""
    from auditor.core.checkpoint import parse_checkpoint

    body = document["checkpoint"]
    assert isinstance(body, dict)
    stored = parse_checkpoint(document, {"checkpointsha256": str(document["checkpointSha256"])})
    return replace(stored, **changes)  # type: ignore[arg-type]


def test_a_broken_pack_is_named_but_does_not_hold_back_the_chain_s_checkpoint(
    raw: ReadCounting,
    store: SnapshotStore,
    evidence: EvidenceStore,
    history: list[SnapshotIndexEntry],
) -> None:
    """A checkpoint covers the chain; packs are checked in full on every run with --reports."""
    service = ReportService(store, evidence, clock=lambda: NOW)
    pack = service.run(service.new_job(TENANT, None, None, "test"))
    assert pack is not None
    blob = evidence.container.get_blob_client(pack.workbook_blob)
    blob.upload_blob(
        b"not the workbook", overwrite=True, metadata=blob.get_blob_properties().metadata
    )

    for _ in range(2):
        result = verify(raw, evidence, [TENANT], reports=True, checkpoints=INCREMENTAL, now=NOW)
        assert [f.subject for f in result.findings] == [f"pack {pack.manifest.report_id}"]
    assert _scope(result).startswith("incremental from checkpoint 000000001")


def test_a_failed_head_retaken_after_its_checkpoint_makes_the_check_full_without_a_finding(
    raw: ReadCounting,
    store: SnapshotStore,
    evidence: EvidenceStore,
    history: list[SnapshotIndexEntry],
) -> None:
    """A retake replaces the latest slot's failed row: the one row a commit may change."""
    posture = make_posture(TENANT)
    failed = store.commit_failed(posture.tenant, DAY1 + timedelta(days=3), "503", "test")
    assert _check(raw, evidence).checkpoints == {TENANT: 1}
    retaken = store.commit_snapshot(posture, DAY1 + timedelta(days=3), "test")
    assert retaken.supersedes == failed.attempt

    result = _check(raw, evidence)
    assert result.ok, [str(f) for f in result.findings]
    assert _scope(result) == (
        f"full: checkpoint 000000001's head {failed.snapshot_id} (failed) was retaken by attempt "
        f"{retaken.attempt}"
    )
    assert len(raw.read) == 4 and result.checkpoints == {TENANT: 2}
    assert _scope(_check(raw, evidence)).startswith("incremental from checkpoint 000000002")


def test_a_verifier_that_may_only_read_verifies_and_says_the_checkpoint_was_not_written(
    raw: ReadCounting, settings: Settings, history: list[SnapshotIndexEntry]
) -> None:
    """A read-only identity (here a read-and-list SAS, as Storage Blob Data Reader would have)
    gets its verification and one note, not a 403 traceback."""
    from azure.storage.blob import (
        BlobServiceClient,
        ContainerSasPermissions,
        generate_container_sas,
    )

    from tools.devservices import DEV_ACCOUNT, DEV_KEY

    owner = EvidenceStore.from_settings(settings)
    token = generate_container_sas(
        DEV_ACCOUNT,
        settings.evidence_container,
        account_key=DEV_KEY,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    account_url = owner.container.url.rsplit("/", 1)[0]
    reader = EvidenceStore(
        BlobServiceClient(account_url, credential=token),
        settings.evidence_container,
        identity_based=True,
    )
    with owner, reader:
        result = verify(raw, reader, [TENANT], checkpoints=INCREMENTAL, now=NOW)
        assert result.ok and result.checkpoints == {}
        (note,) = result.notes
        assert note.startswith("checkpoint not written: this identity may not write")
        assert list_checkpoints(owner, TENANT) == []
