"""One edited property of each kind of stored entity (index row, latest row, content entity),
made with the real azure-data-tables client as someone with table access could: `verify` names
the snapshot and what disagrees, and the API refuses the snapshot instead of serving it.

Issue 9 measured that editing index fields the hash did not cover (compliance per standard,
tenant name, expected and collected subscriptions) changed the trend, the tenant list, the
diff's scope rules and a new pack's headline, and that `verify` said OK.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from auditor.adapters.blobs import EvidenceStore
from auditor.adapters.tables import SnapshotStore
from auditor.api import create_app
from auditor.core.access import AccessPolicy
from auditor.core.snapshot import SnapshotIndexEntry
from auditor.services.report import ReportError, ReportService
from auditor.services.verify import verify
from auditor.settings import Settings
from tests.reports.conftest import commit_days

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TENANT = "7e0a0000-0000-0000-0000-0000000000d1"


def _table(settings: Settings, name: str) -> TableClient:
    assert settings.storage is not None and settings.storage.connection_string
    return TableServiceClient.from_connection_string(
        settings.storage.connection_string
    ).get_table_client(name)


def _edit(table: TableClient, pick: Callable[[dict[str, Any]], bool], change: Any) -> None:
    row = next(dict(r) for r in table.list_entities() if pick(dict(r)))
    change(row)
    table.upsert_entity(row, mode=UpdateMode.REPLACE)


def _json_edit(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(row: dict[str, Any]) -> None:
        row[name] = json.dumps(value, sort_keys=True, separators=(",", ":"))

    return change


def _set(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(row: dict[str, Any]) -> None:
        row[name] = value

    return change


# (table, what is edited, the edit). Every one of these passed `verify` before.
INDEX_EDITS = {
    "compliance_by_standard": _json_edit("compliance_by_standard", {"PCI-DSS-4": 100.0}),
    "tenant_name": _set("tenant_name", "Fabrikam (renamed)"),
    "expected_subscriptions": _json_edit("expected_subscriptions", []),
    "collected_subscriptions": _json_edit("collected_subscriptions", []),
    "status": _set("status", "incomplete"),
    "counts": _json_edit("counts", {"compliance": 0}),
    "an added property": _set("note", "all good"),
}


@pytest.fixture
def history(store: SnapshotStore, evidence: EvidenceStore) -> list[SnapshotIndexEntry]:
    return commit_days(store, evidence, TENANT, days=3)


@pytest.fixture
def raw(settings: Settings) -> Iterator[SnapshotStore]:
    with SnapshotStore.from_settings(settings, anchored=False) as reader:
        yield reader


@pytest.fixture
def api(store: SnapshotStore) -> TestClient:
    app = create_app(store, AccessPolicy.allow_all(), local_principal="local-dev")
    return TestClient(app, raise_server_exceptions=False)


def _refused(api: TestClient, path: str, snapshot_id: str) -> None:
    answer = api.get(f"/api/tenants/{TENANT}{path}")
    assert answer.status_code == 500, (path, answer.text)
    problem = answer.json()
    assert problem["type"] == "urn:auditor:problem:snapshot-failed-verification"
    assert snapshot_id in problem["detail"] and "failed verification" in problem["detail"]


@pytest.mark.parametrize("what", sorted(INDEX_EDITS))
def test_an_edited_index_row_is_named_by_verify_and_refused_by_the_api(
    what: str,
    settings: Settings,
    store: SnapshotStore,
    raw: SnapshotStore,
    evidence: EvidenceStore,
    api: TestClient,
    history: list[SnapshotIndexEntry],
) -> None:
    middle = history[1]
    _edit(
        _table(settings, store.tables.index),
        lambda r: r.get("snapshot_id") == middle.snapshot_id,
        INDEX_EDITS[what],
    )
    findings = verify(raw, evidence, [TENANT]).findings
    assert findings, what
    assert {f.subject for f in findings} == {f"snapshot {middle.snapshot_id}"}
    named = "note" if what == "an added property" else what
    assert any(
        f.problem.startswith("anchor disagrees: index row properties differ")
        and f.problem.endswith(named)
        for f in findings
    ), findings
    for path in ("/snapshots", "/trend", f"/diff?to={middle.snapshot_id}", "/diff"):
        _refused(api, path, middle.snapshot_id)
    with pytest.raises(ReportError, match="failed verification"):
        service = ReportService(store, evidence)
        service.run(service.new_job(TENANT, None, None, "test"))


def test_an_edited_latest_row_is_named_and_the_tenant_is_not_listed(
    settings: Settings,
    raw: SnapshotStore,
    store: SnapshotStore,
    evidence: EvidenceStore,
    api: TestClient,
    history: list[SnapshotIndexEntry],
) -> None:
    latest = history[-1]
    _edit(
        _table(settings, store.tables.latest),
        lambda r: r.get("tenant_id") == TENANT,
        _json_edit("compliance_by_standard", {"PCI-DSS-4": 100.0}),
    )
    findings = verify(raw, evidence, [TENANT]).findings
    assert [f.subject for f in findings] == [f"latest row {latest.snapshot_id}"]
    assert "anchor disagrees" in findings[0].problem
    assert api.get("/api/tenants").json()["value"] == []  # never its edited numbers
    assert store.list_tenants() == []


@pytest.mark.parametrize("edit", ["added property", "section property", "binary part"])
def test_an_edited_content_entity_is_named_by_verify_and_refused_by_the_api(
    edit: str,
    settings: Settings,
    raw: SnapshotStore,
    store: SnapshotStore,
    evidence: EvidenceStore,
    api: TestClient,
    history: list[SnapshotIndexEntry],
) -> None:
    middle = history[1]

    def change(row: dict[str, Any]) -> None:
        if edit == "added property":
            row["comment"] = "reviewed"
        elif edit == "section property":
            row["section"] = "plans_old"
        else:
            row["p00"] = bytes(row["p00"]) + b"\x00"

    _edit(
        _table(settings, store.tables.content),
        lambda r: middle.snapshot_id in r["PartitionKey"] and r["section"] == "plans",
        change,
    )
    findings = verify(raw, evidence, [TENANT]).findings
    assert {f.subject for f in findings} == {f"snapshot {middle.snapshot_id}"}, findings
    _refused(api, f"/coverage?snapshot={middle.snapshot_id}", middle.snapshot_id)
