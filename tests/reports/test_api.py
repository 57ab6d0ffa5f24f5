"""Evidence-pack routes: request (202 + status URL), list, status with download link, streamed
workbook; same access policy as the diff (a hidden tenant answers like an unknown one)."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import schemathesis
from azure.storage.blob import UserDelegationKey
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from auditor.adapters.blobs import EvidenceStore, read_link_url
from auditor.adapters.report_queue import ReportQueue
from auditor.adapters.tables import SnapshotStore
from auditor.api import create_app
from auditor.core.access import AccessPolicy, Grant, Principal
from auditor.core.evidence import ReportJob
from auditor.core.snapshot import SnapshotIndexEntry
from auditor.services.report import ReportService, process_job
from auditor.settings import Settings
from tests.api.conftest import principal_header
from tests.reports.conftest import commit_days

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TENANT = "7e0a0000-0000-0000-0000-0000000000a1"
HIDDEN = "7e0a0000-0000-0000-0000-0000000000a2"
UNKNOWN = "7e0a0000-0000-0000-0000-0000000000a3"
ALICE = Principal(object_id="11111111-1111-1111-1111-111111111111")
JSON = {"content-type": "application/json"}


@pytest.fixture
def history(store: SnapshotStore, evidence: EvidenceStore) -> list[SnapshotIndexEntry]:
    commit_days(store, evidence, HIDDEN, days=1)
    return commit_days(store, evidence, TENANT, days=2)


@pytest.fixture
def queue(settings: Settings) -> Iterator[ReportQueue]:
    with ReportQueue.from_settings(settings) as reports:
        yield reports


@pytest.fixture
def service(store: SnapshotStore, evidence: EvidenceStore, queue: ReportQueue) -> ReportService:
    return ReportService(store, evidence, queue.send)


@pytest.fixture
def local(store: SnapshotStore, service: ReportService, history: Any) -> TestClient:
    app = create_app(
        store, AccessPolicy.allow_all(), local_principal="local-dev", extra={"reports": service}
    )
    return TestClient(app, raise_server_exceptions=False)


def _build_queued(service: ReportService, queue: ReportQueue) -> None:
    for text in queue.receive_texts():
        process_job(service, text, 1, 5)


def test_request_answers_202_with_a_status_url_then_the_pack_is_listed_and_downloadable(
    local: TestClient,
    service: ReportService,
    queue: ReportQueue,
    history: list[SnapshotIndexEntry],
) -> None:
    answer = local.post(
        f"/api/tenants/{TENANT}/reports",
        json={"from": history[0].snapshot_id, "to": "2025-01-31T23:59:59Z"},
    )
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    url = f"/api/tenants/{TENANT}/reports/{accepted['reportId']}"
    assert accepted == {"reportId": accepted["reportId"], "status": "queued", "statusUrl": url}
    assert answer.headers["location"] == url

    queued = local.get(url)
    assert queued.status_code == 200
    assert queued.json()["status"] == "queued"
    assert queued.json()["requestedBy"] == "local-dev"
    assert queued.headers["retry-after"] == "30"

    _build_queued(service, queue)
    done = local.get(url).json()
    assert done["status"] == "succeeded"
    assert done["startSnapshotId"] == history[0].snapshot_id
    assert done["endSnapshotId"] == history[-1].snapshot_id
    assert [s["contentHash"] for s in done["snapshots"]] == [e.content_hash for e in history]
    assert done["download"] == {"url": f"{url}/workbook", "kind": "stream", "expiresAt": None}
    assert done["workbookBlob"].startswith(f"{TENANT}/2025/01/")

    workbook = local.get(done["download"]["url"])
    assert workbook.status_code == 200
    assert workbook.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert hashlib.sha256(workbook.content).hexdigest() == done["workbookSha256"]
    assert len(workbook.content) == done["workbookBytes"]
    assert workbook.headers["etag"] == f'"{done["workbookSha256"]}"'

    listed = local.get(f"/api/tenants/{TENANT}/reports").json()["value"]
    assert [(p["reportId"], p["status"]) for p in listed] == [(accepted["reportId"], "succeeded")]


def test_the_body_is_optional_and_its_fields_are_validated(
    local: TestClient, queue: ReportQueue
) -> None:
    assert local.post(f"/api/tenants/{TENANT}/reports", headers=JSON).status_code == 202
    (text,) = queue.receive_texts()
    job = ReportJob.decode(text)
    assert (job.start, job.end) == (None, None)

    bad = local.post(f"/api/tenants/{TENANT}/reports", json={"from": "yesterday"})
    assert bad.status_code == 400
    assert bad.json()["parameter"] == "body.from"
    later = local.post(
        f"/api/tenants/{TENANT}/reports",
        json={"from": "2025-02-01T00:00:00Z", "to": "2025-01-01T00:00:00+01:00"},
    )
    assert later.status_code == 400 and later.json()["parameter"] == "body.from"
    extra = local.post(f"/api/tenants/{TENANT}/reports", json={"month": "2025-01"})
    assert extra.status_code == 400
    for raw in (b"\xff\xfe not utf-8", b"{", b"[1, 2]", b'"2025-01"'):
        garbage = local.post(
            f"/api/tenants/{TENANT}/reports",
            content=raw,
            headers={"content-type": "application/json"},
        )
        assert garbage.status_code == 400, raw
        assert garbage.json()["parameter"] == "body"
    offset = local.post(f"/api/tenants/{TENANT}/reports", json={"to": "2025-01-31T23:00:00-01:00"})
    assert offset.status_code == 202
    (text,) = queue.receive_texts()
    assert ReportJob.decode(text).end == "2025-02-01T00:00:00Z"


def test_a_json_body_nested_100000_deep_is_a_400_naming_the_body(
    local: TestClient, queue: ReportQueue
) -> None:
    # Issue 9 §5: json.loads recursed into a RecursionError, a 500.
    for depth in (100_000, 33):
        for open_, close in (("[", "]"), ('{"from":', "}")):
            nested = (open_ * depth + "null" + close * depth).encode()
            response = local.post(f"/api/tenants/{TENANT}/reports", content=nested, headers=JSON)
            assert response.status_code == 400, (depth, response.text)
            assert response.json()["parameter"] == "body"
    assert queue.receive_texts() == []


def test_a_state_change_that_is_not_json_is_a_415_and_queues_nothing(
    local: TestClient, queue: ReportQueue
) -> None:
    # Issue 9 §5: a cross-site text/plain POST (no CORS preflight) queued a pack.
    url = f"/api/tenants/{TENANT}/reports"
    for headers, body in (
        ({"content-type": "text/plain"}, b'{"to": "2025-01-31T23:59:59Z"}'),
        ({"content-type": "application/x-www-form-urlencoded"}, b"to=x"),
        ({"content-type": "multipart/form-data; boundary=x"}, b"--x--"),
        ({}, b""),
    ):
        response = local.post(url, content=body, headers=headers)
        assert response.status_code == 415, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "application/json" in response.json()["detail"]
    assert queue.receive_texts() == []
    charset = {"content-type": "application/json; charset=utf-8"}
    assert local.post(url, content=b"{}", headers=charset).status_code == 202


def test_a_body_over_the_cap_is_a_413_whether_declared_or_streamed(
    local: TestClient, queue: ReportQueue
) -> None:
    # Issue 9 §5: a 50 MB body was accepted. The cap is 1 MiB (auditor/api/guard.py).
    url = f"/api/tenants/{TENANT}/reports"
    big = b" " * (50 * 1024 * 1024)
    declared = local.post(url, content=big, headers=JSON)
    assert declared.status_code == 413, declared.text
    assert declared.json()["type"] == "urn:auditor:problem:payload-too-large"

    def chunks() -> Iterator[bytes]:
        for _ in range(3):
            yield b" " * (512 * 1024)

    streamed = local.post(url, content=chunks(), headers=JSON)
    assert streamed.status_code == 413, streamed.text
    at_the_cap = b" " * (1024 * 1024 - 2) + b"{}"
    assert local.post(url, content=at_the_cap, headers=JSON).status_code == 202
    assert len(queue.receive_texts()) == 1


def test_unknown_packs_and_tenants_are_not_found(local: TestClient) -> None:
    missing = local.get(f"/api/tenants/{TENANT}/reports/20250201T040000Z-0000beef")
    assert missing.status_code == 404
    assert local.get(f"/api/tenants/{UNKNOWN}/reports").status_code == 404
    assert local.post(f"/api/tenants/{UNKNOWN}/reports", headers=JSON).status_code == 404
    assert local.get(f"/api/tenants/{TENANT}/reports/not-a-report").status_code == 400


def test_a_hidden_tenant_answers_exactly_like_an_unknown_one(
    store: SnapshotStore, service: ReportService, queue: ReportQueue, history: Any
) -> None:
    policy = AccessPolicy((Grant(ALICE.object_id, frozenset({TENANT})),))
    client = TestClient(
        create_app(store, policy, extra={"reports": service}), raise_server_exceptions=False
    )
    who = {**principal_header(ALICE), **JSON}
    assert client.get(f"/api/tenants/{TENANT}/reports", headers=who).status_code == 200
    for method, path in (
        ("get", "/reports"),
        ("post", "/reports"),
        ("get", "/reports/20250201T040000Z-0000beef"),
        ("get", "/reports/20250201T040000Z-0000beef/workbook"),
    ):
        hidden = getattr(client, method)(f"/api/tenants/{HIDDEN}{path}", headers=who)
        unknown = getattr(client, method)(f"/api/tenants/{UNKNOWN}{path}", headers=who)
        assert hidden.status_code == unknown.status_code == 404
        assert hidden.content == unknown.content
    assert queue.receive_texts() == []
    anonymous = client.get(f"/api/tenants/{TENANT}/reports")
    assert anonymous.status_code == 401


def test_in_azure_the_download_link_is_a_short_lived_read_only_sas(
    local: TestClient, service: ReportService, queue: ReportQueue, monkeypatch: Any
) -> None:
    local.post(f"/api/tenants/{TENANT}/reports", headers=JSON)
    _build_queued(service, queue)
    (pack,) = service.list_packs(TENANT)
    monkeypatch.setattr(service.evidence, "identity_based", True)
    monkeypatch.setattr(
        service.evidence, "read_link", lambda name, now=None: f"https://sas.example/{name}?sig=x"
    )
    answer = local.get(f"/api/tenants/{TENANT}/reports/{pack.report_id}").json()
    assert answer["download"]["kind"] == "sas"
    assert answer["download"]["url"] == f"https://sas.example/{pack.workbook_blob}?sig=x"
    expires = datetime.fromisoformat(answer["download"]["expiresAt"].replace("Z", "+00:00"))
    assert timedelta(minutes=10) < expires - datetime.now(UTC) <= timedelta(minutes=15)


def test_read_link_url_may_only_read_one_blob_for_a_short_time() -> None:
    key = UserDelegationKey()
    key.signed_oid = "22222222-2222-2222-2222-222222222222"
    key.signed_tid = "33333333-3333-3333-3333-333333333333"
    key.signed_start = "2025-02-01T04:00:00Z"
    key.signed_expiry = "2025-02-01T05:00:00Z"
    key.signed_service = "b"
    key.signed_version = "2025-01-05"
    key.value = "c2VjcmV0LWtleS1ieXRlcy1mb3ItdGVzdHM="
    start = datetime(2025, 2, 1, 4, 0, tzinfo=UTC)
    url = read_link_url(
        "https://acct.blob.core.windows.net/evidence",
        "evidence",
        f"{TENANT}/2025/01/r.xlsx",
        key,
        start,
        start + timedelta(minutes=20),
    )
    parts = urlsplit(url)
    assert parts.path == f"/evidence/{TENANT}/2025/01/r.xlsx"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["sp"] == "r"
    assert query["sr"] == "b"
    assert query["spr"] == "https"
    assert query["skoid"] == key.signed_oid
    assert (query["st"], query["se"]) == ("2025-02-01T04:00:00Z", "2025-02-01T04:20:00Z")
    assert query["rscd"] == 'attachment; filename="r.xlsx"'


@pytest.fixture
def api_schema(local: TestClient) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/api/openapi.json", local.app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.include(path_regex="/reports").parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.filter_too_much],
)  # fmt: skip
def test_report_routes_match_the_openapi_document(case: schemathesis.Case) -> None:
    tenant = (case.path_parameters or {}).get("tenantId")
    if isinstance(tenant, str) and hashlib.sha256(tenant.encode()).digest()[0] % 2 == 0:
        case.path_parameters = {**case.path_parameters, "tenantId": TENANT}
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


def test_a_manifest_cannot_redirect_the_download(
    local: TestClient, service: ReportService, queue: ReportQueue, evidence: EvidenceStore
) -> None:
    local.post(f"/api/tenants/{TENANT}/reports", headers=JSON)
    _build_queued(service, queue)
    (pack,) = service.list_packs(TENANT)
    assert pack.manifest_blob is not None
    blob = evidence.container.get_blob_client(pack.manifest_blob)
    document = json.loads(blob.download_blob().readall())
    document["workbook"]["blob"] = f"{HIDDEN}/2025/01/20250101T000000Z-00000000.xlsx"
    blob.upload_blob(
        json.dumps(document).encode(), overwrite=True, metadata=blob.get_blob_properties().metadata
    )
    url = f"/api/tenants/{TENANT}/reports/{pack.report_id}"
    answer = local.get(url).json()
    assert answer["status"] == "failed" and answer["download"] is None
    assert "refused" in answer["failure"]["reason"]
    assert local.get(f"{url}/workbook").status_code == 404


def test_an_unreadable_manifest_makes_the_pack_failed_not_a_server_error(
    local: TestClient, service: ReportService, queue: ReportQueue, evidence: EvidenceStore
) -> None:
    local.post(f"/api/tenants/{TENANT}/reports", headers=JSON)
    _build_queued(service, queue)
    (pack,) = service.list_packs(TENANT)
    assert pack.manifest_blob is not None
    blob = evidence.container.get_blob_client(pack.manifest_blob)
    blob.upload_blob(
        json.dumps({"pack": "edited", "workbook": {"blob": pack.workbook_blob}}).encode(),
        overwrite=True,
        metadata=blob.get_blob_properties().metadata,
    )
    url = f"/api/tenants/{TENANT}/reports/{pack.report_id}"
    answer = local.get(url)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "failed" and answer.json()["download"] is None
    assert "is unreadable" in answer.json()["failure"]["reason"]
    listed = local.get(f"/api/tenants/{TENANT}/reports")
    assert listed.status_code == 200
    assert [p["status"] for p in listed.json()["value"]] == ["failed"]
    assert local.get(f"{url}/workbook").status_code == 404
