"""`verify` against Azurite: an untouched history verifies; altering one stored snapshot entity,
the chain, an anchor or one byte of a pack makes it fail and name the broken link."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient, UpdateMode

from auditor.adapters.blobs import EvidenceStore
from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.packing import compress_lines, iter_section_lines
from auditor.core.canonical import snapshot_content_hash
from auditor.core.snapshot import SnapshotIndexEntry, SnapshotTampered
from auditor.services.report import BuiltPack, ReportService
from auditor.services.verify import verify
from auditor.settings import Settings
from tests.reports.conftest import commit_days
from tools.devservices import REPO

TENANT = "7e0a0000-0000-0000-0000-0000000000f1"
OTHER = "7e0a0000-0000-0000-0000-0000000000f2"


@pytest.fixture
def history(store: SnapshotStore, evidence: EvidenceStore) -> list[SnapshotIndexEntry]:
    commit_days(store, evidence, OTHER, days=2)
    return commit_days(store, evidence, TENANT, days=3)


@pytest.fixture
def raw(settings: Settings) -> Iterator[SnapshotStore]:
    """The store as verify reads it: reporting what fails verification, not refusing it."""
    with SnapshotStore.from_settings(settings, anchored=False) as reader:
        yield reader


@pytest.fixture
def pack(
    store: SnapshotStore, evidence: EvidenceStore, history: list[SnapshotIndexEntry]
) -> BuiltPack:
    service = ReportService(store, evidence, clock=lambda: datetime(2025, 2, 1, tzinfo=UTC))
    built = service.run(service.new_job(TENANT, None, None, "test"))
    assert built is not None
    return built


def _tables(settings: Settings) -> TableServiceClient:
    assert settings.storage is not None and settings.storage.connection_string
    return TableServiceClient.from_connection_string(settings.storage.connection_string)


def test_an_untouched_history_and_its_packs_verify(
    raw: SnapshotStore, store: SnapshotStore, evidence: EvidenceStore, pack: BuiltPack
) -> None:
    result = verify(raw, evidence, reports=True)
    assert result.ok, [str(f) for f in result.findings]
    assert result.tenants == sorted([TENANT, OTHER])
    assert (result.snapshots, result.packs) == (5, 1)


def test_altering_one_stored_snapshot_entity_is_named(
    raw: SnapshotStore,
    store: SnapshotStore,
    evidence: EvidenceStore,
    settings: Settings,
    history: list[SnapshotIndexEntry],
) -> None:
    middle = history[1]
    _tamper_plans(store, settings, middle)

    result = verify(raw, evidence, [TENANT])
    assert not result.ok
    assert [f.subject for f in result.findings] == [f"snapshot {middle.snapshot_id}"]
    assert result.first_broken is not None
    assert result.first_broken.tenant_id == TENANT
    assert "hashes to" in result.first_broken.problem


def _tamper_plans(store: SnapshotStore, settings: Settings, entry: SnapshotIndexEntry) -> None:
    """Upgrade one Free plan to Standard in the stored content of `entry` (one entity)."""
    content = _tables(settings).get_table_client(store.tables.content)
    (row,) = [
        r
        for r in content.list_entities()
        if r["section"] == "plans"
        and entry.snapshot_id in r["PartitionKey"]
        and entry.tenant_id in r["PartitionKey"]
    ]
    lines = list(iter_section_lines([row]))
    free = next(i for i, line in enumerate(lines) if '"tier":"Free"' in line)
    lines[free] = lines[free].replace('"tier":"Free"', '"tier":"Standard"')
    row["p00"] = compress_lines(lines)
    content.upsert_entity(row, mode=UpdateMode.REPLACE)


def test_a_quiet_rewrite_of_history_is_caught_by_the_anchor(
    raw: SnapshotStore,
    store: SnapshotStore,
    evidence: EvidenceStore,
    settings: Settings,
    history: list[SnapshotIndexEntry],
) -> None:
    """The operator alters the latest snapshot and re-hashes it: content and index agree and the
    chain still links, but the write-once anchor holds the original hash."""
    last = history[-1]
    _tamper_plans(store, settings, last)
    rehashed = snapshot_content_hash(store.get_snapshot(TENANT, last.snapshot_id, verify=False))
    index = _tables(settings).get_table_client(store.tables.index)
    row = next(r for r in index.list_entities() if r.get("content_hash") == last.content_hash)
    row["content_hash"] = rehashed
    index.upsert_entity(row, mode=UpdateMode.REPLACE)
    assert raw.get_snapshot(TENANT, last.snapshot_id).index.content_hash == rehashed
    with pytest.raises(SnapshotTampered, match="but anchored"):
        store.get_snapshot(TENANT, last.snapshot_id)  # refused at read time too

    result = verify(raw, evidence, [TENANT])
    assert [str(f) for f in result.findings] == [
        f"tenant {TENANT} snapshot {last.snapshot_id}: anchor disagrees: content hash "
        f"{rehashed} but anchored {last.content_hash}",
        f"tenant {TENANT} snapshot {last.snapshot_id}: stored content entities differ from what "
        "the attempt wrote (a property of a content entity was edited, added or removed)",
    ]


def test_a_broken_link_in_the_chain_is_named(
    raw: SnapshotStore,
    store: SnapshotStore,
    evidence: EvidenceStore,
    settings: Settings,
    history: list[SnapshotIndexEntry],
) -> None:
    index = _tables(settings).get_table_client(store.tables.index)
    second = history[1]
    row = next(r for r in index.list_entities() if r.get("content_hash") == second.content_hash)
    row["previous_hash"] = "0" * 64
    index.upsert_entity(row, mode=UpdateMode.REPLACE)

    result = verify(raw, evidence, [TENANT])
    assert result.first_broken is not None
    assert result.first_broken.subject == f"snapshot {second.snapshot_id}"
    problems = [f.problem for f in result.findings]
    assert (
        f"predecessor hash {'0' * 64} differs from {history[0].snapshot_id}'s content hash "
        f"{history[0].content_hash}" in problems
    )
    assert any(p.startswith("anchor disagrees: predecessor hash") for p in problems)


def test_a_deleted_anchor_or_snapshot_is_named(
    raw: SnapshotStore, evidence: EvidenceStore, history: list[SnapshotIndexEntry]
) -> None:
    last = history[2]
    anchor = evidence.read_anchor(TENANT, last.snapshot_id, last.attempt)
    assert anchor is not None
    evidence.container.delete_blob(anchor.blob_name)
    evidence.write_anchor(replace(anchor, snapshot_id="20250110T020000Z"))
    result = verify(raw, evidence, [TENANT])
    missing = f"no anchor of attempt {last.attempt} in the evidence container"
    assert [(f.subject, f.problem) for f in result.findings] == [
        (f"snapshot {last.snapshot_id}", missing),
        (
            "snapshot 20250110T020000Z",
            "anchored, but no committed snapshot has this id in the store (deleted?)",
        ),
        (f"latest row {last.snapshot_id}", missing),
    ]


def test_changing_one_byte_of_a_pack_is_named(
    raw: SnapshotStore, store: SnapshotStore, evidence: EvidenceStore, pack: BuiltPack
) -> None:
    data = bytearray(b"".join(evidence.iter_chunks(pack.workbook_blob)))
    data[len(data) // 2] ^= 0x01
    blob = evidence.container.get_blob_client(pack.workbook_blob)
    metadata = blob.get_blob_properties().metadata
    blob.upload_blob(bytes(data), overwrite=True, metadata=metadata)  # WORM would refuse this

    assert verify(raw, evidence, [TENANT]).ok  # snapshots alone are fine
    result = verify(raw, evidence, [TENANT], reports=True)
    assert [f.subject for f in result.findings] == [f"pack {pack.manifest.report_id}"]
    assert result.findings[0].problem.startswith(f"workbook {pack.workbook_blob} hashes to")


def test_a_manifest_that_no_longer_matches_its_hash_is_named(
    raw: SnapshotStore, store: SnapshotStore, evidence: EvidenceStore, pack: BuiltPack
) -> None:
    blob = evidence.container.get_blob_client(pack.manifest_blob)
    document = json.loads(blob.download_blob().readall())
    document["pack"]["tenantName"] = "Someone else"
    blob.upload_blob(
        json.dumps(document).encode(), overwrite=True, metadata=blob.get_blob_properties().metadata
    )
    result = verify(raw, evidence, [TENANT], reports=True)
    assert [f.subject for f in result.findings] == [f"pack {pack.manifest.report_id}"]
    assert "manifest content hashes to" in result.findings[0].problem


def test_the_verify_command_exits_non_zero_and_names_the_first_broken_link(
    store: SnapshotStore, evidence: EvidenceStore, settings: Settings, pack: BuiltPack
) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "AUDITOR_STORAGE": settings.storage.connection_string if settings.storage else "",
        "AUDITOR_TABLE_PREFIX": settings.table_prefix,
        "AUDITOR_EVIDENCE_CONTAINER": settings.evidence_container,
    }
    command = [sys.executable, "-m", "auditor", "verify", "--all", "--reports"]
    ok = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK: verified 5 snapshots and 1 packs of 2 tenants" in ok.stdout

    blob = evidence.container.get_blob_client(pack.workbook_blob)
    blob.upload_blob(
        b"not the workbook", overwrite=True, metadata=blob.get_blob_properties().metadata
    )
    bad = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    assert bad.returncode == 1
    assert (
        f"first broken link: tenant {TENANT} pack {pack.manifest.report_id}: workbook" in bad.stdout
    )


def test_report_command_writes_and_stores_a_pack(
    store: SnapshotStore,
    evidence: EvidenceStore,
    settings: Settings,
    history: list[SnapshotIndexEntry],
    tmp_path: Path,
) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "AUDITOR_STORAGE": settings.storage.connection_string if settings.storage else "",
        "AUDITOR_TABLE_PREFIX": settings.table_prefix,
        "AUDITOR_EVIDENCE_CONTAINER": settings.evidence_container,
    }
    out = tmp_path / "pack.xlsx"
    command = [
        sys.executable, "-m", "auditor", "report", "--tenant", TENANT,
        "--from", history[0].snapshot_id, "--to", "2025-01-31T23:59:59Z",
        "--out", str(out), "--json",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["path"] == str(out) and out.exists()
    assert (result["start"], result["end"]) == (history[0].snapshot_id, history[-1].snapshot_id)
    assert result["stored"]["workbook"].startswith(f"{TENANT}/2025/01/")
    assert evidence.sha256(result["stored"]["workbook"])[0] == result["workbookSha256"]

    local = tmp_path / "local.xlsx"
    command[-3:] = ["--out", str(local), "--no-upload"]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "not stored (--no-upload)" in done.stdout and local.exists()
    assert len(evidence.list_blobs(f"{TENANT}/")) == 3


def test_verify_before_the_evidence_container_exists_is_one_line_not_a_traceback(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from auditor.cli import main

    assert settings.storage is not None and settings.storage.connection_string
    monkeypatch.setenv("AUDITOR_STORAGE", settings.storage.connection_string)
    monkeypatch.setenv("AUDITOR_TABLE_PREFIX", settings.table_prefix)
    monkeypatch.setenv("AUDITOR_EVIDENCE_CONTAINER", settings.evidence_container)  # never made
    assert main(["verify", "--all", "--reports"]) == 0
    out, err = capsys.readouterr()
    assert out == "OK: verified 0 snapshots and 0 packs of 0 tenants\n"
    assert err.count("\n") == 1 and "does not exist yet" in err


def test_a_manifest_that_names_another_blob_is_refused_and_flagged(
    raw: SnapshotStore, store: SnapshotStore, evidence: EvidenceStore, pack: BuiltPack
) -> None:
    """Issue 9 §3: a manifest could redirect a download to any blob (an anchor, another
    tenant's pack)."""
    blob = evidence.container.get_blob_client(pack.manifest_blob)
    document = json.loads(blob.download_blob().readall())
    document["workbook"]["blob"] = f"anchors/{TENANT}/x.json"
    blob.upload_blob(
        json.dumps(document).encode(), overwrite=True, metadata=blob.get_blob_properties().metadata
    )
    result = verify(raw, evidence, [TENANT], reports=True)
    assert [f.problem for f in result.findings] == [
        f"manifest names workbook 'anchors/{TENANT}/x.json', not its own "
        f"'{pack.workbook_blob}': refused"
    ]
    status = ReportService(store, evidence).status(TENANT, pack.manifest.report_id)
    assert status is not None and status.status == "failed"
    assert status.failure is not None and "refused" in status.failure.reason
