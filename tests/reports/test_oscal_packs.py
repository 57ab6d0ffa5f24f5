"""OSCAL in evidence packs (issue 11), against Azurite: each pack stores its period's OSCAL
assessment results write-once beside the workbook, hashed in the manifest and the blobs'
metadata; `verify --reports` names a changed or missing document; the API and
`report --format oscal` hand out the stored bytes; packs made before OSCAL still verify and
download, and say they have none."""

from __future__ import annotations

import hashlib
import json
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from trestle.oscal.assessment_results import AssessmentResults

from auditor.adapters.blobs import EvidenceExists, EvidenceStore, document_bytes
from auditor.adapters.tables import SnapshotStore
from auditor.api import create_app
from auditor.core.access import AccessPolicy
from auditor.core.evidence import pack_metadata, stored_manifest
from auditor.core.snapshot import SnapshotIndexEntry
from auditor.services.report import BuiltPack, ReportService
from auditor.services.verify import verify
from auditor.settings import Settings
from tests.reports.conftest import commit_days

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TENANT = "7e0a0000-0000-0000-0000-0000000000c1"
FEB = datetime(2025, 2, 1, 4, tzinfo=UTC)


@pytest.fixture
def history(store: SnapshotStore, evidence: EvidenceStore) -> list[SnapshotIndexEntry]:
    return commit_days(store, evidence, TENANT, days=3)


@pytest.fixture
def service(store: SnapshotStore, evidence: EvidenceStore) -> ReportService:
    return ReportService(store, evidence, clock=lambda: FEB)


@pytest.fixture
def raw(settings: Settings) -> Any:
    with SnapshotStore.from_settings(settings, anchored=False) as reader:
        yield reader


@pytest.fixture
def pack(service: ReportService, history: list[SnapshotIndexEntry]) -> BuiltPack:
    built = service.run(service.new_job(TENANT, history[0].snapshot_id, None, "test"))
    assert built is not None
    return built


@pytest.fixture
def client(store: SnapshotStore, service: ReportService) -> TestClient:
    app = create_app(
        store, AccessPolicy.allow_all(), local_principal="local-dev", extra={"reports": service}
    )
    return TestClient(app, raise_server_exceptions=False)


def _stored(evidence: EvidenceStore, name: str) -> bytes:
    return b"".join(evidence.iter_chunks(name))


def _overwrite(evidence: EvidenceStore, name: str, data: bytes) -> None:
    """What the WORM policy refuses in Azure, done as someone with the account key could."""
    blob = evidence.container.get_blob_client(name)
    blob.upload_blob(data, overwrite=True, metadata=blob.get_blob_properties().metadata)


def test_a_pack_stores_its_periods_oscal_results_write_once_beside_the_workbook(
    evidence: EvidenceStore,
    pack: BuiltPack,
    history: list[SnapshotIndexEntry],
    tmp_path: Path,
) -> None:
    assert pack.oscal_blob == pack.workbook_blob.removesuffix(".xlsx") + ".oscal.json"
    data = _stored(evidence, pack.oscal_blob)
    manifest = json.loads(evidence.get_bytes(pack.manifest_blob) or b"")
    assert manifest["oscal"] == {
        "blob": pack.oscal_blob,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
    }
    for name in (pack.workbook_blob, pack.oscal_blob, pack.manifest_blob):
        stored = evidence.properties(name)
        assert stored is not None and stored.metadata["oscalsha256"] == manifest["oscal"]["sha256"]
    props = evidence.container.get_blob_client(pack.oscal_blob).get_blob_properties()
    assert props.content_settings.content_type == "application/json"

    # The document is the period's: one result per snapshot, read back through trestle.
    path = tmp_path / "results.json"
    path.write_bytes(data)
    back = AssessmentResults.oscal_read(path)
    assert back is not None and back.oscal_dict() == json.loads(data)
    results = json.loads(data)["assessment-results"]["results"]
    snapshot_of = [
        next(p["value"] for p in result["props"] if p["name"] == "snapshot") for result in results
    ]
    assert snapshot_of == [e.snapshot_id for e in history]
    with pytest.raises(EvidenceExists):
        evidence.put_bytes(pack.oscal_blob, b"{}", {})
    assert _stored(evidence, pack.oscal_blob) == data


def test_verify_names_a_changed_oscal_document(
    raw: SnapshotStore, evidence: EvidenceStore, pack: BuiltPack
) -> None:
    assert verify(raw, evidence, [TENANT], reports=True).ok
    data = bytearray(_stored(evidence, pack.oscal_blob))
    at = data.index(b'"not-satisfied"') if b'"not-satisfied"' in data else len(data) // 2
    data[at + 1] ^= 0x01
    _overwrite(evidence, pack.oscal_blob, bytes(data))

    result = verify(raw, evidence, [TENANT], reports=True)
    assert [f.subject for f in result.findings] == [f"pack {pack.manifest.report_id}"]
    assert result.findings[0].problem.startswith(f"OSCAL document {pack.oscal_blob} hashes to")


def test_verify_names_a_missing_oscal_document(
    raw: SnapshotStore, evidence: EvidenceStore, pack: BuiltPack
) -> None:
    evidence.container.delete_blob(pack.oscal_blob)  # the WORM policy refuses this in Azure
    result = verify(raw, evidence, [TENANT], reports=True)
    assert [str(f) for f in result.findings] == [
        f"tenant {TENANT} pack {pack.manifest.report_id}: {pack.oscal_blob} is missing"
    ]


def test_a_manifest_that_drops_its_oscal_entry_is_named(
    raw: SnapshotStore, evidence: EvidenceStore, pack: BuiltPack
) -> None:
    document = json.loads(evidence.get_bytes(pack.manifest_blob) or b"")
    del document["oscal"]
    _overwrite(evidence, pack.manifest_blob, document_bytes(document))
    problems = [f.problem for f in verify(raw, evidence, [TENANT], reports=True).findings]
    assert f"OSCAL document {pack.oscal_blob} is stored, but the manifest names none" in problems
    assert any(
        p.endswith("metadata OSCAL hash " + pack.oscal.sha256 + " ≠ manifest's") for p in problems
    )


def test_the_api_streams_the_stored_oscal_bytes_with_its_type_and_name(
    client: TestClient, evidence: EvidenceStore, pack: BuiltPack
) -> None:
    url = f"/api/tenants/{TENANT}/reports/{pack.manifest.report_id}"
    detail = client.get(url).json()
    assert detail["oscalSha256"] == pack.oscal.sha256
    assert detail["oscalBytes"] == pack.oscal.bytes
    assert detail["oscalBlob"] == pack.oscal_blob
    assert detail["oscalDownload"] == {"url": f"{url}/oscal", "kind": "stream", "expiresAt": None}
    (listed,) = client.get(f"/api/tenants/{TENANT}/reports").json()["value"]
    assert listed["oscalSha256"] == pack.oscal.sha256

    answer = client.get(detail["oscalDownload"]["url"])
    assert answer.status_code == 200
    assert answer.content == _stored(evidence, pack.oscal_blob)
    assert hashlib.sha256(answer.content).hexdigest() == detail["oscalSha256"]
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="{pack.manifest.report_id}.oscal.json"'
    )
    assert answer.headers["etag"] == f'"{pack.oscal.sha256}"'


def _legacy_pack(service: ReportService, history: list[SnapshotIndexEntry], tmp: Path) -> BuiltPack:
    """A pack stored as packs were before OSCAL: workbook and manifest, no OSCAL anywhere."""
    built = service.run(
        service.new_job(TENANT, history[0].snapshot_id, None, "test"),
        out=tmp / "old.xlsx",
        oscal_out=tmp / "old.oscal.json",
        upload=False,
    )
    assert built is not None
    metadata = pack_metadata(built.manifest, built.sha256)
    service.evidence.put_file(built.workbook_blob, built.path, metadata)
    old = stored_manifest(built.manifest, built.workbook_blob, built.sha256, built.size)
    service.evidence.put_bytes(built.manifest_blob, document_bytes(old), metadata)
    return built


def test_a_pack_made_before_oscal_still_verifies_and_downloads_and_says_it_has_none(
    raw: SnapshotStore,
    evidence: EvidenceStore,
    service: ReportService,
    client: TestClient,
    history: list[SnapshotIndexEntry],
    tmp_path: Path,
) -> None:
    old = _legacy_pack(service, history, tmp_path)
    assert verify(raw, evidence, [TENANT], reports=True).ok

    url = f"/api/tenants/{TENANT}/reports/{old.manifest.report_id}"
    detail = client.get(url).json()
    assert detail["status"] == "succeeded"
    assert (detail["oscalSha256"], detail["oscalBlob"], detail["oscalDownload"]) == (
        None,
        None,
        None,
    )
    workbook = client.get(f"{url}/workbook")
    assert workbook.status_code == 200 and workbook.content == old.path.read_bytes()
    none = client.get(f"{url}/oscal")
    assert none.status_code == 404
    assert "no OSCAL document in this pack" in none.json()["detail"]


def test_report_format_oscal_writes_the_stored_document(
    evidence: EvidenceStore,
    settings: Settings,
    history: list[SnapshotIndexEntry],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from auditor.cli import main

    assert settings.storage is not None and settings.storage.connection_string
    monkeypatch.setenv("AUDITOR_STORAGE", settings.storage.connection_string)
    monkeypatch.setenv("AUDITOR_TABLE_PREFIX", settings.table_prefix)
    monkeypatch.setenv("AUDITOR_EVIDENCE_CONTAINER", settings.evidence_container)
    out = tmp_path / "results.json"
    argv = ["report", "--tenant", TENANT, "--format", "oscal", "--out", str(out), "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["format"] == "oscal" and result["path"] == str(out)
    assert out.read_bytes() == _stored(evidence, result["stored"]["oscal"])
    assert hashlib.sha256(out.read_bytes()).hexdigest() == result["oscalSha256"]
    assert AssessmentResults.oscal_read(out) is not None
    # xlsx stays the default.
    workbook = tmp_path / "pack.xlsx"
    assert main(["report", "--tenant", TENANT, "--out", str(workbook), "--no-upload"]) == 0
    assert workbook.read_bytes()[:2] == b"PK"
    assert "--format {oscal,xlsx}" in _help(main, capsys)


def _help(main: Any, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    return capsys.readouterr().out
