"""Issue 11: "a trend never drops the last snapshot of a period (after a failed day the Fabrikam
trend stops before the end snapshot)". Against Azurite, through the store as the product reads
it: a complete day, a failed day, a complete end day. The pack's trend (Summary sheet and OSCAL
results), the API's trend and the command line's `snapshots` listing all end with the end
snapshot, for every spelling of the period's end (none, the snapshot id, its instant, the end
of its day)."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from auditor.adapters.blobs import EvidenceStore
from auditor.adapters.tables import SnapshotStore
from auditor.api import create_app
from auditor.core.access import AccessPolicy
from auditor.core.workbook import SUMMARY
from auditor.services.report import ReportService
from auditor.settings import Settings
from tests.reports.packs import read_calamine
from tools.posture_factory import make_sized_posture

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TENANT = "7e0a0000-0000-0000-0000-0000000000b1"
FIRST = datetime(2026, 11, 1, 2, tzinfo=UTC)
DAYS = ["20261101T020000Z", "20261102T020000Z", "20261103T020000Z"]
FAILED, END = DAYS[1], DAYS[2]
ENDS = [None, END, "2026-11-03T02:00:00Z", "2026-11-03T23:59:59Z"]


@pytest.fixture
def history(store: SnapshotStore) -> None:
    posture = make_sized_posture(TENANT, subscriptions=2, records=60, seed=11)
    store.commit_snapshot(posture, FIRST, "test")
    store.commit_failed(posture.tenant, FIRST + timedelta(days=1), "503 three times", "test")
    store.commit_snapshot(posture, FIRST + timedelta(days=2), "test")


@pytest.mark.parametrize("end", ENDS)
def test_the_packs_trend_and_oscal_results_end_with_the_end_snapshot_after_a_failed_day(
    store: SnapshotStore, evidence: EvidenceStore, history: None, tmp_path: Path, end: str | None
) -> None:
    service = ReportService(store, evidence, clock=lambda: datetime(2026, 11, 4, tzinfo=UTC))
    workbook, oscal = tmp_path / "pack.xlsx", tmp_path / "pack.oscal.json"
    job = service.new_job(TENANT, "2026-11-01T00:00:00Z", end, "test")
    pack = service.run(job, out=workbook, oscal_out=oscal, upload=False)
    assert pack is not None
    assert pack.manifest.end == END
    assert [s.snapshot_id for s in pack.manifest.snapshots] == DAYS

    trend = [row for row in read_calamine(workbook)[SUMMARY] if row and row[0] in DAYS]
    assert [row[0] for row in trend] == DAYS
    assert [row[1] for row in trend] == ["complete", "failed", "complete"]
    results = json.loads(oscal.read_bytes())["assessment-results"]["results"]
    assert [
        next(p["value"] for p in r["props"] if p["name"] == "snapshot") for r in results
    ] == DAYS


@pytest.mark.parametrize("end", ENDS)
def test_the_api_trend_ends_with_the_end_snapshot_after_a_failed_day(
    store: SnapshotStore, history: None, end: str | None
) -> None:
    client = TestClient(
        create_app(store, AccessPolicy.allow_all(), local_principal="dev"),
        raise_server_exceptions=False,
    )
    params = {"from": "2026-11-01T00:00:00Z"} | ({"to": end} if end else {})
    answer = client.get(f"/api/tenants/{TENANT}/trend", params=params)
    assert answer.status_code == 200, answer.text
    points = answer.json()["value"]
    assert [p["snapshotId"] for p in points][-1] == END
    assert sorted({p["snapshotId"] for p in points}) == DAYS
    assert all(p["compliance"] is not None for p in points if p["snapshotId"] == END)


@pytest.mark.parametrize("until", [None, "2026-11-03T02:00:00Z", "2026-11-03T23:59:59Z"])
def test_the_cli_lists_the_end_snapshot_after_a_failed_day(
    settings: Settings,
    evidence: EvidenceStore,
    history: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    until: str | None,
) -> None:
    from auditor.cli import main

    assert settings.storage is not None and settings.storage.connection_string
    monkeypatch.setenv("AUDITOR_STORAGE", settings.storage.connection_string)
    monkeypatch.setenv("AUDITOR_TABLE_PREFIX", settings.table_prefix)
    monkeypatch.setenv("AUDITOR_EVIDENCE_CONTAINER", settings.evidence_container)
    argv = ["snapshots", "--tenant", TENANT, "--since", "2026-11-01T00:00:00Z", "--json"]
    assert main(argv + (["--until", until] if until else [])) == 0
    listed = json.loads(capsys.readouterr().out)["snapshots"]
    assert [s["snapshotId"] for s in listed] == DAYS[::-1]  # newest first
    assert [s["status"] for s in listed] == ["complete", "failed", "complete"]


def test_an_end_day_that_failed_and_was_retaken_is_the_trends_last_point(
    store: SnapshotStore, evidence: EvidenceStore, tmp_path: Path
) -> None:
    posture = make_sized_posture(TENANT, subscriptions=2, records=60, seed=12)
    store.commit_snapshot(posture, FIRST, "test")
    store.commit_failed(posture.tenant, FIRST + timedelta(days=1), "503 three times", "test")
    store.commit_failed(posture.tenant, FIRST + timedelta(days=2), "429 on every retry", "test")
    retaken = store.commit_snapshot(posture, FIRST + timedelta(days=2), "test")
    assert retaken.supersedes and retaken.status.value == "complete"

    service = ReportService(store, evidence, clock=lambda: datetime(2026, 11, 4, tzinfo=UTC))
    job = service.new_job(TENANT, "2026-11-01T00:00:00Z", "2026-11-03T23:59:59Z", "test")
    pack = service.run(job, out=tmp_path / "p.xlsx", oscal_out=tmp_path / "p.json", upload=False)
    assert pack is not None and pack.manifest.end == END
    trend = [row for row in read_calamine(tmp_path / "p.xlsx")[SUMMARY] if row and row[0] in DAYS]
    assert [row[0] for row in trend] == DAYS
    assert [row[1].split(" ")[0] for row in trend] == ["complete", "failed", "complete"]
    assert "retook failed attempt" in trend[-1][1]
    client = TestClient(
        create_app(store, AccessPolicy.allow_all(), local_principal="dev"),
        raise_server_exceptions=False,
    )
    points = client.get(f"/api/tenants/{TENANT}/trend").json()["value"]
    assert points[-1]["snapshotId"] == END and points[-1]["status"] == "complete"
