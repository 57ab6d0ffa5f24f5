"""GET /api/where-to-act: the cross-tenant ranking over the tenants a caller may see, JSON and
CSV, paged; the access policy applies to every row and total (hypothesis, as
tests/api/test_access_properties.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.data.tables import TableServiceClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.adapters.tables.store import SnapshotStore
from auditor.api import create_app
from auditor.core.access import AccessPolicy, Principal, parse_policy
from auditor.core.snapshot import slot_of
from auditor.services.history import SnapshotHistory
from auditor.services.ranking import rank_where_to_act
from tests.api.conftest import TestClient, principal_header
from tests.api.helpers import all_pages, as_csv_row, csv_rows, problem
from tests.unit.test_ranking import ESTATE, EVERYTHING, TENANTS, Latest
from tools.devservices import Azurite

PATH = "/api/where-to-act"
CALLER = Principal("a11ce000-0000-4000-8000-000000000001")


@pytest.fixture(scope="module")
def history(azurite: Azurite) -> Iterator[SnapshotHistory]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    store = SnapshotStore(service, "rank" + uuid.uuid4().hex[:10])
    for posture in ESTATE:
        store.commit_snapshot(posture, slot_of("20261127T020000Z"), "test/1")
    try:
        yield SnapshotHistory(store)
    finally:
        store.close()


@pytest.fixture(scope="module")
def client(history: SnapshotHistory) -> TestClient:
    app = create_app(history, AccessPolicy.allow_all(), local_principal="local-dev")
    return TestClient(app, raise_server_exceptions=False)


def test_the_ranking_puts_high_severity_first_with_per_tenant_counts(client: TestClient) -> None:
    document = client.get(PATH, params={"kind": "recommendation"}).json()
    assert [i["key"] for i in document["value"]] == ["k-high", "k-medium", "k-low"]
    first = document["value"][0]
    assert (first["rank"], first["severity"], first["tenantCount"]) == (1, "High", 3)
    assert first["unhealthyResources"] == sum(t["unhealthyResources"] for t in first["tenants"])
    assert document["tenantsNotCollected"] == [TENANTS[3]]
    assert document["total"] == 3


def test_pages_follow_next_links_and_csv_rows_are_the_json_items(client: TestClient) -> None:
    pages = all_pages(client, f"{PATH}?$top=2")
    items = [item for page in pages for item in page["value"]]
    assert [i["rank"] for i in items] == list(range(1, pages[0]["total"] + 1))
    response = client.get(PATH, params={"format": "csv", "$top": "1000"})
    rows = csv_rows(response)
    assert rows == [as_csv_row(item, list(rows[0])) for item in items]
    assert "tenants" not in rows[0]


def test_a_token_of_another_query_is_a_precise_400(client: TestClient) -> None:
    token = client.get(PATH, params={"$top": "1"}).json()["nextLink"].split("$skipToken=")[1]
    bad = client.get(PATH, params={"kind": "control", "$skipToken": token})
    assert problem(bad, 400)["parameter"] == "$skipToken"
    assert problem(client.get(PATH, params={"kind": "bogus"}), 400)["parameter"] == "kind"


def _answer(client: TestClient, as_csv: bool) -> Any:
    response = client.get(
        PATH, params={"format": "csv"} if as_csv else {}, headers=principal_header(CALLER)
    )
    assert response.status_code == 200
    return csv_rows(response) if as_csv else response.json()


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(granted=st.sets(st.sampled_from(TENANTS)), as_csv=st.booleans())
def test_every_row_and_total_comes_from_granted_tenants_only(
    history: SnapshotHistory, granted: set[str], as_csv: bool
) -> None:
    policy = {"grants": [{"principal": CALLER.object_id, "tenants": sorted(granted)}]}
    hosted = TestClient(create_app(history, parse_policy(json.dumps(policy))))
    answer = _answer(hosted, as_csv)
    # The same as an estate that holds only the granted tenants.
    alone = [p for p in ESTATE if p.tenant.tenant_id in granted]
    expected = rank_where_to_act(Latest(alone), EVERYTHING, limit=1000)
    if as_csv:
        assert [(r["key"], int(r["unhealthyResources"])) for r in answer] == [
            (i.key, i.unhealthy_resources) for i in expected.items
        ]
        return
    assert answer["total"] == expected.total
    assert answer["tenantsRanked"] == expected.tenants_ranked
    assert set(answer["tenantsNotCollected"]) <= granted
    assert {t["tenantId"] for i in answer["value"] for t in i["tenants"]} <= granted
    assert [(i["key"], i["unhealthyResources"]) for i in answer["value"]] == [
        (i.key, i.unhealthy_resources) for i in expected.items
    ]
