"""The portfolio and GET /api/tenants read the summary stored in each anchored latest row: the
same figures the snapshot path derives, no snapshot read, and a forged summary never shown."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.data.tables import TableServiceClient, UpdateMode
from azure.storage.blob import BlobServiceClient

from auditor.adapters.blobs import EvidenceStore
from auditor.adapters.tables.rows import LATEST_PARTITION
from auditor.adapters.tables.store import SnapshotStore
from auditor.api import create_app
from auditor.core.access import AccessPolicy, Principal, parse_policy
from auditor.core.index_summary import IndexSummary
from auditor.core.snapshot import SnapshotIndexEntry
from auditor.services.history import SnapshotHistory
from auditor.web.summary import TenantSummaries, TenantSummary
from auditor.web.views import PortfolioRow, portfolio_row
from tests.api.conftest import TestClient, principal_header
from tests.api.scenario import Scenario
from tools.devservices import Azurite
from tools.posture_factory import make_posture, tenant_id_for

FORGED = 99.9


class CountingReader:
    """The anchored store, counting the reads that go past the latest rows."""

    def __init__(self, store: SnapshotStore) -> None:
        self.store = store
        self.reads: list[str] = []

    def __getattr__(self, name: str) -> Any:
        if name in ("get_snapshot", "list_snapshots", "get_index", "find_at", "iter_compliance"):
            self.reads.append(name)
        return getattr(self.store, name)


def _figures(summary: TenantSummary | IndexSummary | None) -> tuple[Any, ...] | None:
    if summary is None:
        return None
    return (summary.secure_score, summary.plans, summary.hardening_percent,
            summary.open_alerts, summary.failing_controls)  # fmt: skip


def _shown(row: PortfolioRow) -> tuple[Any, ...]:
    return (row.status, row.standards, row.regressions, row.spark, _figures(row.summary))


def _latest(scenario: Scenario) -> list[SnapshotIndexEntry]:
    return [scenario.a[2], scenario.b, scenario.c]


def test_a_stored_row_shows_what_the_snapshot_path_derives(
    history: SnapshotHistory, scenario: Scenario
) -> None:
    sums = TenantSummaries(history)
    for entry in _latest(scenario):
        assert entry.summary is not None, entry.tenant_id
        stored = portfolio_row(entry, sums, None)
        derived = portfolio_row(entry, sums, None, detail=True)
        assert isinstance(stored.summary, IndexSummary | None)
        assert _shown(stored) == _shown(derived), entry.tenant_id
    a3 = portfolio_row(scenario.a[2], sums, None)
    assert a3.regressions is not None and a3.regressions > 0 and len(a3.spark) == 3


def test_the_portfolio_rows_read_no_snapshot_and_no_history(
    api_store: SnapshotStore, scenario: Scenario
) -> None:
    reader = CountingReader(api_store)
    sums = TenantSummaries(SnapshotHistory(reader))  # type: ignore[arg-type]
    rows = [portfolio_row(entry, sums, None) for entry in sums.latest_entries()]
    assert {r.entry.tenant_id for r in rows} >= {e.tenant_id for e in _latest(scenario)}
    assert reader.reads == []


@pytest.fixture
def forged_store(azurite: Azurite) -> Iterator[tuple[SnapshotStore, str, str]]:
    """Two tenants; the latest row of the first has its summary's secure score forged."""
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    ledger = EvidenceStore(
        BlobServiceClient.from_connection_string(azurite.connection_string),
        "evidence",
        identity_based=False,
    )
    store = SnapshotStore(service, "forge" + uuid.uuid4().hex[:10], ledger=ledger)
    forged, honest = tenant_id_for(41), tenant_id_for(42)
    at = datetime(2026, 11, 27, 2, tzinfo=UTC)
    for tenant in (forged, honest):
        entry = store.commit_snapshot(make_posture(tenant, seed=41), at, "c")
        assert entry.summary is not None and entry.summary.secure_score != FORGED
    table = service.get_table_client(store.tables.latest)
    row = table.get_entity(LATEST_PARTITION, forged)
    summary = json.loads(row["summary"])
    summary["secureScore"] = FORGED
    row["summary"] = json.dumps(summary, sort_keys=True, separators=(",", ":"))
    table.upsert_entity(row)
    try:
        yield store, forged, honest
    finally:
        store.close()


def test_a_forged_summary_is_shown_as_failing_verification_never_with_its_value(
    forged_store: tuple[SnapshotStore, str, str],
) -> None:
    store, forged, honest = forged_store
    app = create_app(SnapshotHistory(store), AccessPolicy.allow_all(), local_principal="local")
    client = TestClient(app, raise_server_exceptions=False)
    page = client.get("/")
    assert page.status_code == 200, page.text
    assert f"{FORGED}" not in page.text and f"{FORGED:.1f}%" not in page.text
    assert forged in page.text and "failed verification" in page.text
    assert "differ from what the attempt committed: summary" in page.text  # names what moved
    listed = client.get("/api/tenants")
    assert [t["tenantId"] for t in listed.json()["value"]] == [honest]
    assert str(FORGED) not in listed.text
    csv = client.get("/api/tenants?format=csv")
    assert forged not in csv.text and str(FORGED) not in csv.text


def test_a_tenant_failing_verification_is_not_named_to_a_caller_who_may_not_see_it(
    forged_store: tuple[SnapshotStore, str, str],
) -> None:
    store, forged, honest = forged_store
    alice = "a11ce000-0000-4000-8000-000000000001"
    policy = parse_policy(json.dumps({"grants": [{"principal": alice, "tenants": [honest]}]}))
    client = TestClient(create_app(SnapshotHistory(store), policy), raise_server_exceptions=False)
    page = client.get("/", headers=principal_header(Principal(alice)))
    assert page.status_code == 200, page.text
    assert honest in page.text and forged not in page.text
    assert "failed verification" not in page.text


def test_api_tenants_gives_the_stored_summary(local_client: TestClient, scenario: Scenario) -> None:
    items = {t["tenantId"]: t for t in local_client.get("/api/tenants").json()["value"]}
    a3 = scenario.a[2]
    assert a3.summary is not None
    figures = items[a3.tenant_id]["summary"]
    assert figures["regressions"] == a3.summary.regressions
    assert figures["secureScore"] == a3.summary.secure_score
    assert figures["previousCompliance"] == scenario.a[1].compliance_by_standard
    assert [p["snapshotId"] for p in figures["sparkline"]] == [e.snapshot_id for e in scenario.a]
    assert figures["sparklineComplete"] is True
    csv = local_client.get("/api/tenants?format=csv").text
    header = csv.splitlines()[0].split(",")
    assert "summary.regressions" in header and "summary.secureScore" in header
    assert "summary.sparkline" not in header


def test_api_tenants_answers_each_change_at_once_though_unchanged_lists_are_reused(
    forged_store: tuple[SnapshotStore, str, str],
) -> None:
    store, forged, honest = forged_store
    client = TestClient(
        create_app(SnapshotHistory(store), AccessPolicy.allow_all(), local_principal="local"),
        raise_server_exceptions=False,
    )
    first = client.get("/api/tenants")
    assert [t["tenantId"] for t in first.json()["value"]] == [honest]
    assert client.get("/api/tenants").content == first.content
    later = datetime(2026, 11, 28, 2, tzinfo=UTC)
    entry = store.commit_snapshot(make_posture(forged, seed=43), later, "c")
    items = {t["tenantId"]: t for t in client.get("/api/tenants").json()["value"]}
    assert items[forged]["snapshotId"] == entry.snapshot_id  # the new latest row, verified
    assert entry.summary is not None
    assert items[forged]["summary"]["secureScore"] == entry.summary.secure_score


def test_a_row_committed_before_summaries_shows_through_the_snapshot_path(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    from auditor.core import prepared

    service = TableServiceClient.from_connection_string(azurite.connection_string)
    ledger = EvidenceStore(
        BlobServiceClient.from_connection_string(azurite.connection_string),
        "evidence",
        identity_based=False,
    )
    tenant = tenant_id_for(44)
    with SnapshotStore(service, "legacy" + uuid.uuid4().hex[:10], ledger=ledger) as store:
        with monkeypatch.context() as patch:  # what the code before summaries wrote
            patch.setattr(prepared, "summarize_posture", lambda *a, **k: None)
            old = store.commit_snapshot(
                make_posture(tenant, seed=44), datetime(2026, 11, 27, 2, tzinfo=UTC), "old"
            )
        history = SnapshotHistory(store)
        row = portfolio_row(old, TenantSummaries(history), None)
        assert old.summary is None and isinstance(row.summary, TenantSummary)
        assert row.summary.secure_score is not None
        client = TestClient(
            create_app(history, AccessPolicy.allow_all(), local_principal="local"),
            raise_server_exceptions=False,
        )
        page = client.get("/")
        assert page.status_code == 200 and tenant in page.text
        assert "failed verification" not in page.text
        (item,) = client.get("/api/tenants").json()["value"]
        assert item["tenantId"] == tenant and item["summary"] is None


@pytest.mark.parametrize(
    "edit",
    [
        {"status": "bogus"},
        {"scheduled_at": "not a time"},
        {"counts": "[1, 2]"},
        {"content_hash": None},
    ],
    ids=["status", "scheduled_at", "counts", "no-content-hash"],
)
def test_an_unreadable_latest_row_is_shown_as_failing_and_the_other_tenants_still_list(
    forged_store: tuple[SnapshotStore, str, str], azurite: Azurite, edit: dict[str, Any]
) -> None:
    # One malformed row (anyone who can write the table) answered 500 for every tenant.
    store, forged, honest = forged_store
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    table = service.get_table_client(store.tables.latest)
    row = dict(table.get_entity(LATEST_PARTITION, forged))
    for name, value in edit.items():
        if value is None:
            row.pop(name, None)
        else:
            row[name] = value
    table.upsert_entity(row, mode=UpdateMode.REPLACE)
    app = create_app(SnapshotHistory(store), AccessPolicy.allow_all(), local_principal="local")
    client = TestClient(app, raise_server_exceptions=False)
    page = client.get("/")
    assert page.status_code == 200, page.text
    assert forged in page.text and "failed verification" in page.text and honest in page.text
    listed = client.get("/api/tenants")
    assert listed.status_code == 200, listed.text
    assert [t["tenantId"] for t in listed.json()["value"]] == [honest]
