"""GET /api/tenants/{tenantId}/alerts: a snapshot's security alerts, JSON and CSV, for callers
the access policy grants the tenant; a snapshot from before alerts says "not collected"."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from auditor.adapters.tables.store import SnapshotStore
from auditor.api import create_app
from auditor.core import registry
from auditor.core.access import AccessPolicy, Principal, parse_policy
from auditor.core.snapshot import slot_of
from auditor.services.history import SnapshotHistory
from tests.api.conftest import TestClient, principal_header
from tests.api.helpers import as_csv_row, csv_rows, problem
from tests.fixtures.alert_sections import HOSTILE, with_alerts
from tools.devservices import Azurite
from tools.posture_factory import make_posture

TENANT = "d0000000-0000-4000-8000-00000000000d"
DAY1, DAY2, DAY3 = "20261127T020000Z", "20261128T020000Z", "20261129T020000Z"
ALERTS = f"/api/tenants/{TENANT}/alerts"


NEW_HIGH = "new-high-alert"


def _resolve_high_and_raise_another(rows: list[dict[str, Any]]) -> None:
    """Day 3: the High alert of day 2 is resolved; another High alert is raised."""
    high = next(r for r in rows if r["properties"]["severity"] == "High")
    raised = json.loads(json.dumps(high))
    high["properties"]["status"] = "Resolved"
    raised["id"] = raised["id"].rsplit("/", 1)[0] + "/" + NEW_HIGH
    raised["name"] = NEW_HIGH
    rows.append(raised)


@dataclass(frozen=True)
class Stored:
    client: TestClient
    history: SnapshotHistory
    sub: str


@pytest.fixture(scope="module")
def stored(azurite: Azurite) -> Iterator[Stored]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    store = SnapshotStore(service, "alerts" + uuid.uuid4().hex[:10])
    before = make_posture(TENANT)  # as collected before alerts existed
    sub = before.tenant.subscriptions[0].subscription_id
    store.commit_snapshot(before, slot_of(DAY1), "test/1")
    store.commit_snapshot(registry.posture_of(before, with_alerts(sub)), slot_of(DAY2), "test/1")
    day3 = registry.posture_of(before, with_alerts(sub, _resolve_high_and_raise_another))
    store.commit_snapshot(day3, slot_of(DAY3), "test/1")
    history = SnapshotHistory(store)
    app = create_app(history, AccessPolicy.allow_all(), local_principal="local-dev")
    try:
        yield Stored(TestClient(app, raise_server_exceptions=False), history, sub)
    finally:
        store.close()


def test_the_latest_snapshot_lists_open_alerts_and_counts_by_severity_and_status(
    stored: Stored,
) -> None:
    document = stored.client.get(ALERTS, params={"snapshot": DAY2}).json()
    assert document["snapshot"]["snapshotId"] == DAY2
    assert document["collected"] is True
    assert [(a["severity"], a["status"]) for a in document["value"]] == [
        ("High", "Active"),
        ("Medium", "InProgress"),
    ]
    assert document["value"][0]["portalLink"].startswith("https://portal.azure.com/")
    assert document["value"][0]["techniques"] == "T1003"
    assert {(c["severity"], c["status"], c["alerts"]) for c in document["counts"]} == {
        ("High", "Active", 1),
        ("Medium", "InProgress", 1),
        ("Low", "Resolved", 1),
        ("Informational", "Dismissed", 1),
    }
    assert document["leftOut"] == 0
    assert document["snapshot"]["counts"]["alerts_open"] == 2


def test_a_snapshot_from_before_alerts_says_not_collected_not_none(stored: Stored) -> None:
    document = stored.client.get(ALERTS, params={"snapshot": DAY1}).json()
    assert document["collected"] is False
    assert document["value"] == [] and document["counts"] == []
    assert "alerts" not in document["snapshot"]["counts"]


def test_the_csv_rows_are_the_json_items_with_hostile_text_neutralised(stored: Stored) -> None:
    document = stored.client.get(ALERTS, params={"snapshot": DAY2}).json()
    response = stored.client.get(ALERTS, params={"format": "csv", "snapshot": DAY2})
    rows = csv_rows(response)
    columns = list(rows[0])
    assert rows == [as_csv_row(item, columns) for item in document["value"]]
    assert rows[0]["displayName"] == "'" + HOSTILE
    etag = response.headers["etag"]
    assert etag != stored.client.get(ALERTS, params={"snapshot": DAY2}).headers["etag"]
    again = stored.client.get(
        ALERTS, params={"format": "csv", "snapshot": DAY2}, headers={"If-None-Match": etag}
    )
    assert again.status_code == 304


def test_a_caller_without_the_tenant_gets_the_404_of_a_tenant_that_does_not_exist(
    stored: Stored,
) -> None:
    policy = parse_policy(json.dumps({"grants": [{"principal": "*", "tenants": []}]}))
    client = TestClient(create_app(stored.history, policy), raise_server_exceptions=False)
    who = principal_header(Principal("a11ce000-0000-4000-8000-000000000001"))
    hidden = problem(client.get(ALERTS, headers=who), 404)
    nowhere = problem(
        client.get("/api/tenants/e0000000-0000-4000-8000-00000000000e/alerts", headers=who), 404
    )
    assert hidden["detail"].replace(TENANT, "") == nowhere["detail"].replace(
        "e0000000-0000-4000-8000-00000000000e", ""
    )


def test_a_bad_snapshot_reference_is_a_precise_400(stored: Stored) -> None:
    assert problem(stored.client.get(ALERTS, params={"snapshot": "soon"}), 400)["parameter"] == (
        "snapshot"
    )


def test_the_diff_names_new_and_resolved_alerts_and_counts_new_high_ones(stored: Stored) -> None:
    # Issue 12: the diff reports new and resolved alerts, and new High alerts in its summary.
    diff = f"/api/tenants/{TENANT}/diff"
    alerts = stored.client.get(diff, params={"from": DAY2, "to": DAY3}).json()["summary"]["alerts"]
    assert alerts["comparable"] is True and alerts["reason"] is None
    assert [a["alertId"].rsplit("/", 1)[1] for a in alerts["new"]] == [NEW_HIGH]
    assert alerts["newHigh"] == 1
    assert [(a["severity"], a["displayName"]) for a in alerts["resolved"]] == [("High", HOSTILE)]
    assert alerts["unlisted"] == 0


def test_a_diff_from_a_snapshot_before_alerts_says_not_comparable_naming_it(stored: Stored) -> None:
    diff = f"/api/tenants/{TENANT}/diff"
    alerts = stored.client.get(diff, params={"from": DAY1, "to": DAY2}).json()["summary"]["alerts"]
    assert alerts["comparable"] is False
    assert alerts["new"] == [] and alerts["resolved"] == [] and alerts["newHigh"] == 0
    assert alerts["reason"] == (
        f"not comparable: the from snapshot ({DAY1}) predates the collection of security alerts"
    )
