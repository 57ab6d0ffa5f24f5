"""GET /api/tenants/{tenantId}/coverage and /trend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from azure.data.tables import TableServiceClient

from auditor.adapters.tables.store import SnapshotStore
from auditor.api import create_app
from auditor.core.access import AccessPolicy
from auditor.services.history import SnapshotHistory
from tests.api.conftest import TestClient
from tests.api.helpers import as_csv_row, csv_rows, problem
from tests.api.scenario import DAY1, DAY2, DAY3, TENANT_A, TENANT_C, TENANT_X, Scenario
from tools.devservices import Azurite
from tools.posture_factory import make_sized_posture

COVERAGE = f"/api/tenants/{TENANT_A}/coverage"
TREND = f"/api/tenants/{TENANT_A}/trend"


def test_coverage_of_the_latest_snapshot_has_hardening_plans_and_scores(
    local_client: TestClient, scenario: Scenario
) -> None:
    s0, _, s2 = scenario.subscriptions
    body = local_client.get(COVERAGE).json()
    assert body["snapshot"]["snapshotId"] == DAY3
    assert body["complete"] is False and body["snapshot"]["status"] == "incomplete"
    day3 = scenario.postures[2]
    assert [h["subscriptionId"] for h in body["hardening"]] == sorted(
        h.subscription_id for h in day3.hardening
    )
    jit = body["hardening"][0]
    assert jit["feature"] == "just-in-time VM access"
    assert jit["status"] == "assessed"
    assert {"healthy", "unhealthy", "notApplicable", "jitCoveredVms"} <= set(jit)
    vm = next(
        p for p in body["plans"] if (p["subscriptionId"], p["plan"]) == (s0, "VirtualMachines")
    )
    assert (vm["tier"], vm["subPlan"]) == ("Free", "")
    assert {s["subscriptionId"] for s in body["secureScores"]} == {s0, s2}
    # One unit for every percentage: 0-100, as compliance (Defender reports a fraction).
    fractions = {s.subscription_id: s.percentage for s in day3.secure_scores}
    for score in body["secureScores"]:
        assert score["percentage"] == round(fractions[score["subscriptionId"]] * 100, 2)
        assert score["percentage"] > 1


def test_coverage_of_a_named_snapshot_or_instant(
    local_client: TestClient, scenario: Scenario
) -> None:
    s0 = scenario.subscriptions[0]
    for ref in (DAY1, "2026-11-25T20:00:00Z"):
        body = local_client.get(COVERAGE, params={"snapshot": ref}).json()
        assert body["snapshot"]["snapshotId"] == DAY1
        vm = next(
            p for p in body["plans"] if (p["subscriptionId"], p["plan"]) == (s0, "VirtualMachines")
        )
        assert vm["tier"] == "Standard"


def test_coverage_answers_csv_like_the_diff_and_has_an_etag_per_representation(
    local_client: TestClient, scenario: Scenario
) -> None:
    # Issue 11: coverage was JSON only (406 / 400 for CSV).
    body = local_client.get(COVERAGE).json()
    by_accept = local_client.get(COVERAGE, headers={"Accept": "text/csv"})
    by_format = local_client.get(COVERAGE, params={"format": "csv"})
    assert by_accept.content == by_format.content
    rows = csv_rows(by_format)
    snapshot = {k: body["snapshot"][k] for k in ("snapshotId", "contentHash")}
    expected = [
        {"table": kind, **item, "snapshot": snapshot}
        for field, kind in (("hardening", "hardening"), ("plans", "plan"),
                            ("secureScores", "secureScore"))
        for item in body[field]
    ]  # fmt: skip
    assert rows == [as_csv_row(item, list(rows[0])) for item in expected]
    assert {row["table"] for row in rows} == {"hardening", "plan", "secureScore"}
    assert {row["snapshot.snapshotId"] for row in rows} == {DAY3}
    problem(local_client.get(COVERAGE, headers={"Accept": "application/xml"}), 406)
    etag = local_client.get(COVERAGE).headers["etag"]
    assert local_client.get(COVERAGE, headers={"If-None-Match": etag}).status_code == 304
    assert by_format.headers["etag"] != etag


def test_coverage_of_a_failed_snapshot_is_served_with_its_status(
    local_client: TestClient, scenario: Scenario
) -> None:
    body = local_client.get(f"/api/tenants/{TENANT_C}/coverage").json()
    assert body["snapshot"]["status"] == "failed"
    assert body["complete"] is False
    assert body["hardening"] == [] and body["plans"] == []


def test_coverage_errors(local_client: TestClient, scenario: Scenario) -> None:
    assert problem(local_client.get(COVERAGE, params={"snapshot": "x"}), 400)["parameter"] == (
        "snapshot"
    )
    assert (
        problem(local_client.get(COVERAGE, params={"snapshot": "2020-01-01T00:00:00Z"}), 404)[
            "type"
        ]
        == "urn:auditor:problem:snapshot-not-found"
    )
    problem(local_client.get(f"/api/tenants/{TENANT_X}/coverage"), 404)


def test_trend_is_one_point_per_snapshot_and_standard_oldest_first(
    local_client: TestClient, scenario: Scenario
) -> None:
    body = local_client.get(TREND).json()
    standards = sorted({s for e in scenario.a for s in e.compliance_by_standard})
    assert body["standards"] == standards
    assert [(p["snapshotId"], p["standard"]) for p in body["value"]] == [
        (day, s) for day in (DAY1, DAY2, DAY3) for s in standards
    ]
    for point in body["value"]:
        entry = {DAY1: scenario.a[0], DAY2: scenario.a[1], DAY3: scenario.a[2]}[point["snapshotId"]]
        assert point["compliance"] == entry.compliance_by_standard.get(point["standard"])
        assert point["complete"] is (point["snapshotId"] != DAY3)


def test_trend_filters_by_standard_and_time(local_client: TestClient, scenario: Scenario) -> None:
    body = local_client.get(
        TREND, params={"standard": "SOC-2", "from": "2026-11-25T12:00:00Z", "to": DAY3}
    ).json()
    assert body["standards"] == ["SOC-2"]
    assert [p["snapshotId"] for p in body["value"]] == [DAY2, DAY3]


def test_trend_as_csv_has_the_json_rows(local_client: TestClient, scenario: Scenario) -> None:
    items = local_client.get(TREND).json()["value"]
    rows = csv_rows(local_client.get(TREND, headers={"Accept": "text/csv"}))
    assert rows == [as_csv_row(item, list(rows[0])) for item in items]


def test_trend_errors(local_client: TestClient, scenario: Scenario) -> None:
    after = local_client.get(TREND, params={"from": DAY3, "to": DAY1})
    assert problem(after, 400)["parameter"] == "from"
    missing = local_client.get(TREND, params={"from": "20261101T020000Z"})
    assert problem(missing, 404)["type"] == "urn:auditor:problem:snapshot-not-found"
    problem(local_client.get(f"/api/tenants/{TENANT_X}/trend"), 404)


def test_a_trend_after_a_failed_day_ends_with_the_last_snapshot(
    azurite: Azurite, table_prefix: str
) -> None:
    """Issue 11: after a failed day the trend must still reach the period's last snapshot."""
    tenant = "f0000000-0000-4000-8000-0000000000f1"
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    with SnapshotStore(service, table_prefix) as store:
        posture = make_sized_posture(tenant, subscriptions=1, records=40, seed=7)
        first = datetime(2026, 11, 1, 2, tzinfo=UTC)
        store.commit_snapshot(posture, first, "test")
        store.commit_failed(posture.tenant, first + timedelta(days=1), "503 three times", "test")
        store.commit_snapshot(posture, first + timedelta(days=2), "test")
        client = TestClient(
            create_app(SnapshotHistory(store), AccessPolicy.allow_all(), local_principal="dev"),
            raise_server_exceptions=False,
        )
        ids = ["20261101T020000Z", "20261102T020000Z", "20261103T020000Z"]
        for query in (
            {},
            {"to": "20261103T020000Z"},
            {"from": "2026-11-01T00:00:00Z", "to": "2026-11-03T02:00:00Z"},
            {"to": "2026-11-03T23:59:59Z"},
        ):
            body = client.get(f"/api/tenants/{tenant}/trend", params=query).json()
            standards = body["standards"]
            assert standards
            points = [p["snapshotId"] for p in body["value"]]
            assert points == [i for i in ids for _ in standards], query
            assert body["value"][-1]["compliance"] is not None
            assert {p["status"] for p in body["value"] if p["snapshotId"] == ids[1]} == {"failed"}
