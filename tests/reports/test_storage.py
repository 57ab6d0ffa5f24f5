"""Evidence packs stored write-once in Blob Storage (Azurite): workbook beside its manifest,
hashes repeated in metadata, never overwritten, uploaded in blocks from disk; requests, the
queue path and pack status."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient, UpdateMode
from azure.storage.blob import BlobServiceClient

from auditor.adapters.blobs import EvidenceExists, EvidenceStore
from auditor.adapters.report_queue import ReportQueue
from auditor.adapters.tables import SnapshotStore
from auditor.core.evidence import ReportJob, ReportJobError, canonical_json
from auditor.core.workbook import SUMMARY, standard_sheet_titles
from auditor.services.report import (
    FAILED,
    QUEUED,
    SUCCEEDED,
    ReportError,
    ReportService,
    process_job,
)
from auditor.settings import Settings
from tests.reports.conftest import commit_days
from tests.reports.packs import read_calamine
from tools.posture_factory import make_posture

TENANT = "7e0a0000-0000-0000-0000-0000000000e1"
OTHER = "7e0a0000-0000-0000-0000-0000000000e2"
FEB = datetime(2025, 2, 1, 4, 0, 0, tzinfo=UTC)


class Tokens:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"{self.n:08x}"


@pytest.fixture
def sent() -> list[str]:
    return []


@pytest.fixture
def service(store: SnapshotStore, evidence: EvidenceStore, sent: list[str]) -> ReportService:
    return ReportService(store, evidence, sent.append, clock=lambda: FEB, token=Tokens())


def _download(evidence: EvidenceStore, name: str, to: Path) -> bytes:
    data = b"".join(evidence.iter_chunks(name))
    to.write_bytes(data)
    return data


def test_a_pack_is_stored_beside_its_manifest_with_hashes_in_metadata(
    store: SnapshotStore, evidence: EvidenceStore, service: ReportService, tmp_path: Path
) -> None:
    entries = commit_days(store, evidence, TENANT)
    job = service.new_job(TENANT, entries[0].snapshot_id, entries[-1].snapshot_id, "test")
    pack = service.run(job)
    assert pack is not None
    folder = f"{TENANT}/2025/01/{job.report_id}"
    assert (pack.workbook_blob, pack.manifest_blob) == (f"{folder}.xlsx", f"{folder}.json")

    data = _download(evidence, pack.workbook_blob, tmp_path / "pack.xlsx")
    manifest = json.loads(evidence.get_bytes(pack.manifest_blob) or b"")
    assert manifest["workbook"]["sha256"] == hashlib.sha256(data).hexdigest() == pack.sha256
    assert manifest["workbook"]["bytes"] == len(data)
    assert manifest["packSha256"] == hashlib.sha256(canonical_json(manifest["pack"])).hexdigest()
    assert manifest["pack"]["generatorVersion"].startswith("auditor-evidence/")
    assert [s["snapshotId"] for s in manifest["pack"]["snapshots"]] == [
        e.snapshot_id for e in entries
    ]
    assert [s["contentHash"] for s in manifest["pack"]["snapshots"]] == [
        e.content_hash for e in entries
    ]
    assert [s["previousHash"] for s in manifest["pack"]["snapshots"]] == [
        e.previous_hash for e in entries
    ]
    for name in (pack.workbook_blob, pack.manifest_blob):
        stored = evidence.properties(name)
        assert stored is not None
        assert stored.metadata["workbooksha256"] == pack.sha256
        assert stored.metadata["packsha256"] == manifest["packSha256"]
        assert stored.metadata["endsnapshot"] == entries[-1].snapshot_id

    # The stored workbook's numbers are the store's snapshot's numbers.
    end = store.get_snapshot(TENANT, entries[-1].snapshot_id)
    sheets = read_calamine(tmp_path / "pack.xlsx")
    cover = {v for row in sheets["Cover"] for v in row}
    assert manifest["packSha256"] in cover
    titles = standard_sheet_titles(r.standard for r in end.posture.compliance)
    for standard, title in titles.items():
        header, *rows = sheets[title]
        at = {name: header.index(name) for name in header}
        cols = [at[n] for n in ("Subscription ID", "Assessment", "State", "Failed resources")]
        records = [r for r in end.posture.compliance if r.standard == standard]
        assert sorted(tuple(r[c] for c in cols) for r in rows) == sorted(
            (r.subscription_id, r.assessment, r.state.value, float(r.failed_resources))
            for r in records
        )
    header = sheets[SUMMARY][0]
    summary = {row[0]: row for row in sheets[SUMMARY][1 : 1 + len(titles)]}
    for standard, percent in end.index.compliance_by_standard.items():
        assert summary[standard][header.index("Compliance (end)")] == pytest.approx(percent)


def test_a_rerun_makes_a_new_report_and_nothing_is_overwritten(
    store: SnapshotStore, evidence: EvidenceStore, service: ReportService
) -> None:
    commit_days(store, evidence, TENANT, days=2)
    first = service.run(service.new_job(TENANT, None, None, "test"))
    second = service.run(service.new_job(TENANT, None, None, "test"))
    assert first is not None and second is not None
    assert first.manifest.report_id != second.manifest.report_id
    names = [b.name for b in evidence.list_blobs(f"{TENANT}/")]
    assert sorted(names) == sorted(
        name
        for pack in (first, second)
        for name in (pack.workbook_blob, pack.oscal_blob, pack.manifest_blob)
    )
    with pytest.raises(EvidenceExists):
        evidence.put_file(first.workbook_blob, Path(__file__), {})
    with pytest.raises(EvidenceExists):
        evidence.put_bytes(first.manifest_blob, b"{}", {})
    with pytest.raises(EvidenceExists):
        evidence.put_bytes(first.oscal_blob, b"{}", {})
    assert evidence.sha256(first.workbook_blob)[0] == first.sha256
    assert evidence.sha256(first.oscal_blob)[0] == first.oscal.sha256


def test_uploads_stream_from_the_file_in_blocks(
    settings: Settings, evidence: EvidenceStore, tmp_path: Path
) -> None:
    small = EvidenceStore.from_settings(
        settings, max_single_put_size=64 * 1024, max_block_size=64 * 1024
    )
    big = tmp_path / "big.bin"
    payload = bytes(range(256)) * 1024  # 256 KiB
    big.write_bytes(payload)
    small.put_file("blocks/big.xlsx", big, {"k": "v"})
    blob = small.container.get_blob_client("blocks/big.xlsx")
    committed, _ = blob.get_block_list("committed")
    assert len(committed) == 4
    assert small.sha256("blocks/big.xlsx") == (hashlib.sha256(payload).hexdigest(), len(payload))
    small.close()


def test_a_pack_is_never_built_from_a_snapshot_without_its_anchor(
    settings: Settings, evidence: EvidenceStore, service: ReportService
) -> None:
    """Packs used to anchor snapshots "the hook missed": now nothing anchors late."""
    with SnapshotStore.from_settings(settings, anchored=False) as raw:
        commit_days(raw, None, TENANT, days=2)
    with pytest.raises(ReportError, match="failed verification: no anchor"):
        service.run(service.new_job(TENANT, None, None, "test"))
    assert evidence.list_blobs("anchors/") == [] and evidence.list_blobs(f"{TENANT}/") == []


def test_a_snapshot_that_disagrees_with_its_anchor_gets_no_pack(
    store: SnapshotStore, evidence: EvidenceStore, service: ReportService, settings: Settings
) -> None:
    entry = commit_days(store, None, TENANT, days=1)[0]
    tables = TableServiceClient.from_connection_string(
        settings.storage.connection_string if settings.storage else ""
    )
    index = tables.get_table_client(store.tables.index)
    row = next(iter(index.list_entities()))
    row["tenant_name"] = "Someone else"
    index.upsert_entity(row, mode=UpdateMode.REPLACE)
    with pytest.raises(ReportError, match=f"{entry.snapshot_id} of tenant {TENANT} failed"):
        service.run(service.new_job(TENANT, None, None, "test"))
    assert evidence.list_blobs(f"{TENANT}/") == []


def test_requests_are_queued_then_built_by_the_queue_path(
    store: SnapshotStore,
    evidence: EvidenceStore,
    settings: Settings,
) -> None:
    commit_days(store, evidence, TENANT, days=2)
    with ReportQueue.from_settings(settings) as queue:
        service = ReportService(store, evidence, queue.send, clock=lambda: FEB, token=Tokens())
        job = service.request(TENANT, None, None, "alice@contoso.example")
        status = service.status(TENANT, job.report_id)
        assert status is not None and status.status == QUEUED
        assert status.request is not None and status.request.requested_by == "alice@contoso.example"
        (text,) = queue.receive_texts()
    assert ReportJob.decode(text) == job
    pack = process_job(service, text, dequeue_count=1, max_dequeues=5)
    assert pack is not None
    done = service.status(TENANT, job.report_id)
    assert done is not None and done.status == SUCCEEDED
    assert done.workbook_blob == pack.workbook_blob
    assert done.stored is not None and done.stored.workbook.sha256 == pack.sha256
    assert done.stored.oscal is not None and done.stored.oscal.sha256 == pack.oscal.sha256
    # The same message again (a host retry) stores nothing new.
    assert process_job(service, text, dequeue_count=2, max_dequeues=5) is None
    assert len(evidence.list_blobs(f"{TENANT}/")) == 3
    assert [s.report_id for s in service.list_packs(TENANT)] == [job.report_id]


def test_a_pack_that_cannot_be_built_is_recorded_as_failed_without_retry(
    evidence: EvidenceStore, service: ReportService, sent: list[str]
) -> None:
    job = service.request(OTHER, None, None, "test")
    assert process_job(service, sent[0], dequeue_count=1, max_dequeues=5) is None
    status = service.status(OTHER, job.report_id)
    assert status is not None and status.status == FAILED
    assert status.failure is not None and "no committed snapshot" in status.failure.reason
    assert [(s.report_id, s.status) for s in service.list_packs(OTHER)] == [(job.report_id, FAILED)]


def test_a_malformed_message_raises_for_the_poison_queue(service: ReportService) -> None:
    with pytest.raises(ReportJobError):
        process_job(service, '{"format": "something else"}', 1, 5)


def test_the_monthly_timer_queues_last_month_for_every_tenant(
    store: SnapshotStore, evidence: EvidenceStore, service: ReportService, sent: list[str]
) -> None:
    commit_days(store, evidence, TENANT, days=1)
    commit_days(store, evidence, OTHER, days=1)
    gone = "7e0a0000-0000-0000-0000-0000000000e3"
    store.commit_snapshot(make_posture(gone), datetime(2024, 11, 30, 2, tzinfo=UTC), "test")
    jobs = service.request_monthly()
    assert sorted(j.tenant_id for j in jobs) == [TENANT, OTHER]
    assert {(j.start, j.end) for j in jobs} == {("2025-01-01T00:00:00Z", "2025-01-31T23:59:59Z")}
    assert [ReportJob.decode(text) for text in sent] == jobs


def test_the_upload_body_is_never_the_whole_file_in_memory(tmp_path: Path) -> None:
    """put_file hands the SDK an open file and its length (the SDK reads block by block)."""
    seen: dict[str, object] = {}

    class Container:
        def upload_blob(self, name: str, data: object, **kwargs: object) -> None:
            seen.update(name=name, data=data, length=kwargs["length"])
            assert isinstance(data, io.BufferedReader)

    store = EvidenceStore.__new__(EvidenceStore)
    store.container = Container()  # type: ignore[assignment]
    store.container_name = "evidence"
    path = tmp_path / "w.xlsx"
    path.write_bytes(b"x" * 10)
    store.put_file("a/b.xlsx", path, {})
    assert seen["name"] == "a/b.xlsx" and seen["length"] == 10


def test_identity_based_storage_builds_a_blob_client_on_the_service_uri() -> None:
    from azure.core.credentials import AccessToken

    from auditor.settings import load_settings

    class Credential:
        def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
            raise AssertionError("no request is made while building clients")

    settings = load_settings(
        {
            "AUDITOR_STORAGE__blobServiceUri": "https://acct.blob.core.windows.net",
            "AUDITOR_STORAGE__tableServiceUri": "https://acct.table.core.windows.net",
            "AUDITOR_STORAGE__queueServiceUri": "https://acct.queue.core.windows.net",
        }
    )
    store = EvidenceStore.from_settings(settings, Credential())  # type: ignore[arg-type]
    assert store.identity_based
    assert store.container.url == "https://acct.blob.core.windows.net/evidence"
    assert isinstance(store._service, BlobServiceClient)


def test_a_retry_after_an_interrupted_upload_builds_under_a_new_report_id(
    store: SnapshotStore, evidence: EvidenceStore, service: ReportService, sent: list[str]
) -> None:
    entries = commit_days(store, evidence, TENANT, days=1)
    job = service.request(TENANT, None, None, "test")
    # The first attempt stored the workbook, then died before the manifest.
    orphan = f"{TENANT}/{entries[0].scheduled_at:%Y/%m}/{job.report_id}.xlsx"
    evidence.put_bytes(orphan, b"partial", {})
    pack = process_job(service, sent[0], dequeue_count=2, max_dequeues=5)
    assert pack is not None
    old = service.status(TENANT, job.report_id)
    assert old is not None and old.status == FAILED and old.failure is not None
    new_id = old.failure.superseded_by
    assert new_id != job.report_id
    assert new_id is not None
    new = service.status(TENANT, new_id)
    assert new is not None and new.status == SUCCEEDED
    assert pack.manifest.report_id == new_id
    assert evidence.get_bytes(orphan) == b"partial"  # never overwritten
