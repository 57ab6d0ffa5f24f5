"""GET /api/tenants and GET /api/tenants/{tenantId}/snapshots."""

from __future__ import annotations

from auditor.core.access import AccessPolicy, Principal, parse_policy
from tests.api.conftest import HostedClient, TestClient, principal_header
from tests.api.helpers import all_pages, as_csv_row, csv_rows, problem
from tests.api.scenario import DAY1, DAY2, DAY3, TENANT_A, TENANT_B, TENANT_C, TENANT_X, Scenario

ALICE = "a11ce000-0000-4000-8000-000000000001"


def test_tenants_lists_every_tenant_with_its_latest_snapshot_status_and_compliance(
    local_client: TestClient, scenario: Scenario
) -> None:
    response = local_client.get("/api/tenants")
    assert response.status_code == 200
    body = response.json()
    mine = [t for t in body["value"] if t["tenantId"] in (TENANT_A, TENANT_B, TENANT_C)]
    assert [t["tenantId"] for t in mine] == [TENANT_A, TENANT_B, TENANT_C]
    a, b, c = mine
    assert (a["snapshotId"], a["status"], a["complete"]) == (DAY3, "incomplete", False)
    assert a["reasons"] == [
        f"subscription {scenario.subscriptions[1]}: 403 Forbidden: Reader role missing"
    ]
    assert a["compliance"] == scenario.a[2].compliance_by_standard
    assert a["contentHash"] == scenario.a[2].content_hash
    assert (b["status"], b["complete"]) == ("complete", True)
    assert (c["status"], c["complete"], c["compliance"]) == ("failed", False, {})
    assert body["nextLink"] is None


def test_tenants_are_paged_with_next_links_that_cover_every_tenant_once(
    local_client: TestClient, scenario: Scenario
) -> None:
    pages = all_pages(local_client, "/api/tenants?$top=1")
    ids = [t["tenantId"] for page in pages for t in page["value"]]
    assert ids == sorted(ids)
    assert len(ids) == len(set(ids))
    assert {TENANT_A, TENANT_B, TENANT_C} <= set(ids)
    assert all(len(page["value"]) == 1 for page in pages)
    assert pages[0]["nextLink"].startswith("http://testserver/api/tenants?$top=1&$skipToken=")


def test_tenants_shows_only_what_the_policy_grants(
    hosted: HostedClient, scenario: Scenario
) -> None:
    policy = parse_policy(f'{{"grants": [{{"principal": "{ALICE}", "tenants": ["{TENANT_B}"]}}]}}')
    client = hosted(policy)
    response = client.get("/api/tenants", headers=principal_header(Principal(ALICE)))
    assert [t["tenantId"] for t in response.json()["value"]] == [TENANT_B]
    other = client.get(
        "/api/tenants", headers=principal_header(Principal("b0b00000-0000-4000-8000-000000000002"))
    )
    assert other.json() == {"value": [], "nextLink": None}


def test_tenants_without_a_caller_in_azure_is_401(hosted: HostedClient) -> None:
    body = problem(hosted(AccessPolicy.allow_all()).get("/api/tenants"), 401)
    assert body["type"] == "urn:auditor:problem:unauthenticated"


def test_tenants_as_csv_has_the_json_rows(local_client: TestClient, scenario: Scenario) -> None:
    items = local_client.get("/api/tenants").json()["value"]
    rows = csv_rows(local_client.get("/api/tenants?format=csv"))
    assert len(rows) == len(items)
    columns = list(rows[0])
    assert columns[:3] == ["tenantId", "tenantName", "snapshotId"]
    assert rows == [as_csv_row(item, columns) for item in items]
    by_accept = local_client.get("/api/tenants", headers={"Accept": "text/csv"})
    assert by_accept.content == local_client.get("/api/tenants?format=csv").content


def test_snapshots_are_newest_first_with_status_hashes_and_chain(
    local_client: TestClient, scenario: Scenario
) -> None:
    body = local_client.get(f"/api/tenants/{TENANT_A}/snapshots").json()
    assert body["tenantId"] == TENANT_A
    assert [s["snapshotId"] for s in body["value"]] == [DAY3, DAY2, DAY1]
    newest = body["value"][0]
    assert newest["status"] == "incomplete"
    assert newest["previousSnapshotId"] == DAY2
    assert newest["previousHash"] == scenario.a[1].content_hash
    assert newest["subscriptionsExpected"] == 3
    assert newest["subscriptionsCollected"] == 2
    assert newest["scheduledAt"] == "2026-11-27T02:00:00Z"
    assert body["value"][2]["previousSnapshotId"] is None


def test_snapshots_are_paged_and_pages_are_stable(
    local_client: TestClient, scenario: Scenario
) -> None:
    pages = all_pages(local_client, f"/api/tenants/{TENANT_A}/snapshots?$top=2")
    assert [[s["snapshotId"] for s in p["value"]] for p in pages] == [[DAY3, DAY2], [DAY1]]


def test_snapshots_as_csv_has_the_json_rows(local_client: TestClient, scenario: Scenario) -> None:
    items = local_client.get(f"/api/tenants/{TENANT_A}/snapshots").json()["value"]
    rows = csv_rows(local_client.get(f"/api/tenants/{TENANT_A}/snapshots?format=csv"))
    assert rows == [as_csv_row(item, list(rows[0])) for item in items]


def test_snapshots_of_an_unknown_tenant_is_404(local_client: TestClient) -> None:
    body = problem(local_client.get(f"/api/tenants/{TENANT_X}/snapshots"), 404)
    assert body["type"] == "urn:auditor:problem:tenant-not-found"


def test_lists_carry_a_strong_etag_and_answer_304_to_it(
    local_client: TestClient, scenario: Scenario
) -> None:
    for url in ("/api/tenants", f"/api/tenants/{TENANT_A}/snapshots"):
        first = local_client.get(url)
        etag = first.headers["etag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        again = local_client.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag
        csv_etag = local_client.get(url + "?format=csv").headers["etag"]
        assert csv_etag != etag


def test_tenant_ids_are_matched_case_insensitively(local_client: TestClient) -> None:
    body = local_client.get(f"/api/tenants/{TENANT_A.upper()}/snapshots").json()
    assert body["tenantId"] == TENANT_A
