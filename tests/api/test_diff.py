"""GET /api/tenants/{tenantId}/diff against snapshots committed through the store."""

from __future__ import annotations

from typing import Any

import pytest

from auditor.core.diff import diff_snapshots
from auditor.services.history import SnapshotHistory
from tests.api.conftest import TestClient
from tests.api.helpers import all_pages, as_csv_row, csv_rows, problem
from tests.api.scenario import DAY1, DAY2, DAY3, TENANT_A, TENANT_B, TENANT_X, Scenario

DIFF = f"/api/tenants/{TENANT_A}/diff"


def get(client: TestClient, url: str = DIFF, **params: Any) -> dict[str, Any]:
    response = client.get(url, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_by_default_to_is_the_latest_and_from_the_snapshot_before_it(
    local_client: TestClient, scenario: Scenario
) -> None:
    body = get(local_client)
    assert (body["from"]["snapshotId"], body["to"]["snapshotId"]) == (DAY2, DAY3)
    assert body["tenantId"] == TENANT_A


def test_both_ends_carry_ids_times_statuses_hashes_and_subscriptions(
    local_client: TestClient, scenario: Scenario
) -> None:
    body = get(local_client, **{"from": DAY2, "to": DAY3})
    to = body["to"]
    assert to["scheduledAt"] == "2026-11-27T02:00:00Z"
    assert (to["status"], to["complete"]) == ("incomplete", False)
    assert to["contentHash"] == scenario.a[2].content_hash
    assert to["reasons"] == list(scenario.a[2].reasons) != []
    assert to["collectedSubscriptions"] == list(scenario.a[2].collected_subscriptions)
    assert body["from"]["contentHash"] == scenario.a[1].content_hash
    # An incomplete end is never served as complete.
    assert body["complete"] is False


def test_a_subscription_missing_from_one_end_is_incomparable_and_not_a_posture_change(
    local_client: TestClient, scenario: Scenario
) -> None:
    s0, s1, _ = scenario.subscriptions
    body = get(local_client, **{"from": DAY2, "to": DAY3})
    [scope] = [c for c in body["value"] if c["level"] == "subscription"]
    assert (scope["subscriptionId"], scope["change"]) == (s1, "incomparable")
    assert "403 Forbidden" in scope["reason"]
    assert body["summary"]["scope"]["subscriptionsIncomparable"] == 1
    posture = [c for c in body["value"] if c["level"] != "subscription"]
    assert {c["subscriptionId"] for c in posture} == {s0}
    assert body["summary"]["posture"]["regressed"] == 2
    assert all(c["change"] == "regressed" for c in posture)


def test_day_one_to_day_two_has_every_category_where_it_belongs(
    local_client: TestClient, scenario: Scenario, history: SnapshotHistory
) -> None:
    s0, _, s2 = scenario.subscriptions
    body = get(local_client, **{"from": DAY1, "to": DAY2, "$top": 5000})
    changes = body["value"]
    assert body["complete"] is True
    # The subscription that entered the scope is one scope change, none of its records count.
    scope = [c for c in changes if c["level"] == "subscription"]
    assert [(c["subscriptionId"], c["change"]) for c in scope] == [(s2, "added")]
    assert not [c for c in changes if c["subscriptionId"] == s2 and c["level"] != "subscription"]
    # The standard version change: one removal and one addition at standard level.
    standards = [(c["standard"], c["change"]) for c in changes if c["level"] == "standard"]
    assert standards == [("PCI-DSS-4", "removed"), ("PCI-DSS-4.0.1", "added")]
    removed = next(c for c in changes if c["level"] == "standard" and c["change"] == "removed")
    assert removed["subscriptionId"] == s0
    assert removed["before"]["assessments"] > 1 and removed["after"] is None
    # Every other change is a state transition of one assessment, exactly as the core diff says.
    reference = diff_snapshots(history.snapshot(scenario.a[0]), history.snapshot(scenario.a[1]))
    assert len(changes) == len(reference.changes)
    transitions = [c for c in changes if c["level"] == "assessment"]
    assert transitions
    for change in transitions:
        assert change["change"] in ("regressed", "improved", "changed")
        before, after = change["before"]["state"], change["after"]["state"]
        assert before != after
        if after == "Failed":
            assert change["change"] == "regressed"
            assert change["failingSince"] == "2026-11-26T02:00:00Z"
            assert change["failingDays"] == 0
        elif (before, after) == ("Failed", "Passed"):
            assert change["change"] == "improved"
            assert change["failingSince"] is None
        else:
            assert change["change"] == "changed"
    counts = body["summary"]["posture"]
    # The version change is an assignment change: scope, reported apart from posture.
    assert counts["added"] == counts["removed"] == 0
    assert body["summary"]["assignments"] == [
        {"subscriptionId": s0, "standard": "PCI-DSS-4", "change": "removed"},
        {"subscriptionId": s0, "standard": "PCI-DSS-4.0.1", "change": "added"},
    ]
    assert counts["regressed"] + counts["improved"] + counts["changed"] == len(transitions)
    assert body["matchingChanges"] == len(changes)


def test_failing_duration_runs_from_the_start_of_the_streak(
    local_client: TestClient, scenario: Scenario
) -> None:
    s0 = scenario.subscriptions[0]
    # Records failing since day 1 and still failing on day 3 regressed nowhere, but a record
    # that regressed on day 3 started failing on day 3.
    body = get(local_client, **{"from": DAY2, "to": DAY3})
    for change in body["value"]:
        if change["level"] == "assessment":
            assert change["subscriptionId"] == s0
            assert change["failingSince"] == "2026-11-27T02:00:00Z"
            assert change["failingDays"] == 0


def test_summary_has_compliance_at_both_ends_downgrades_and_secure_score_drops(
    local_client: TestClient, scenario: Scenario
) -> None:
    s0, s1, _ = scenario.subscriptions
    summary = get(local_client, **{"from": DAY1, "to": DAY2})["summary"]
    compliance = {c["standard"]: c for c in summary["compliance"]}
    before, after = scenario.a[0].compliance_by_standard, scenario.a[1].compliance_by_standard
    for standard, figures in compliance.items():
        assert figures["before"] == before.get(standard)
        assert figures["after"] == after.get(standard)
        if figures["before"] is not None and figures["after"] is not None:
            assert figures["delta"] == pytest.approx(figures["after"] - figures["before"], abs=0.01)
    assert compliance["PCI-DSS-4.0.1"]["before"] is None
    assert compliance["PCI-DSS-4.0.1"]["after"] is not None
    assert summary["planDowngrades"] == [
        {
            "subscriptionId": s0,
            "plan": "VirtualMachines",
            "before": {"tier": "Standard", "subPlan": "P2"},
            "after": {"tier": "Free", "subPlan": ""},
        }
    ]
    # Percentages are 0-100 everywhere (Defender's fraction 0.6667 is 66.67 %).
    assert summary["secureScoreDrops"] == [
        {"subscriptionId": s1, "before": 66.67, "after": 55.0, "delta": -11.67}
    ]
    assert summary["scope"] == {
        "subscriptionsAdded": 1,
        "subscriptionsRemoved": 0,
        "subscriptionsIncomparable": 0,
        "subscriptionsCompared": 2,
        "standardsAssigned": 1,
        "standardsUnassigned": 1,
    }


def test_from_and_to_accept_instants_meaning_the_latest_snapshot_at_or_before(
    local_client: TestClient, scenario: Scenario
) -> None:
    body = get(local_client, **{"from": "2026-11-25T23:59:59Z", "to": "2026-11-26T03:30:00+01:00"})
    assert (body["from"]["snapshotId"], body["to"]["snapshotId"]) == (DAY1, DAY2)
    exact = get(local_client, **{"from": "2026-11-25T02:00:00Z", "to": DAY2})
    assert exact["from"]["snapshotId"] == DAY1


def test_filters_select_changes_but_the_summary_stays_whole(
    local_client: TestClient, scenario: Scenario
) -> None:
    s2 = scenario.subscriptions[2]
    whole = get(local_client, **{"from": DAY1, "to": DAY2, "$top": 5000})
    only = get(local_client, **{"from": DAY1, "to": DAY2, "change": "regressed,improved"})
    assert {c["change"] for c in only["value"]} == {"regressed", "improved"}
    assert only["summary"] == whole["summary"]
    assert only["matchingChanges"] == sum(
        1 for c in whole["value"] if c["change"] in ("regressed", "improved")
    )
    by_sub = get(local_client, **{"from": DAY1, "to": DAY2, "subscription": s2})
    assert [c["level"] for c in by_sub["value"]] == ["subscription"]
    by_standard = local_client.get(
        DIFF,
        params=[("from", DAY1), ("to", DAY2), ("standard", "SOC-2"), ("standard", "PCI-DSS-4")],
    ).json()
    assert {c["standard"] for c in by_standard["value"]} == {"SOC-2", "PCI-DSS-4"}
    levels = get(local_client, **{"from": DAY1, "to": DAY2, "level": "standard"})
    assert [c["change"] for c in levels["value"]] == ["removed", "added"]
    scope_only = get(local_client, **{"from": DAY1, "to": DAY2, "level": "subscription"})
    assert [c["subscriptionId"] for c in scope_only["value"]] == [s2]


def test_pages_follow_next_link_pinned_to_the_resolved_snapshots(
    local_client: TestClient, scenario: Scenario
) -> None:
    whole = get(local_client, **{"from": DAY1, "to": DAY3, "$top": 5000})["value"]
    pages = all_pages(local_client, f"{DIFF}?from=2026-11-25T12:00:00Z&$top=2&code=KEY")
    assert len(pages) > 2
    assert [c for p in pages for c in p["value"]] == whole
    link = pages[0]["nextLink"]
    assert "from=20261125T020000Z" in link and "to=20261127T020000Z" in link
    assert "code=" not in link
    # Without `to` the pages are pinned to the latest at the time of the first page.
    assert all(p["to"]["snapshotId"] == DAY3 for p in pages)
    assert sum(len(p["value"]) for p in pages) == pages[0]["matchingChanges"]
    keys = [
        (c["subscriptionId"], c["standard"] or "", c["control"] or "", c["assessment"] or "")
        for p in pages
        for c in p["value"]
    ]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


def test_a_token_from_another_query_is_rejected_naming_it(
    local_client: TestClient, scenario: Scenario
) -> None:
    first = get(local_client, **{"from": DAY1, "to": DAY2, "$top": 5})
    token = first["nextLink"].rsplit("$skipToken=", 1)[1]
    other = local_client.get(DIFF, params={"from": DAY1, "to": DAY3, "$skipToken": token})
    assert problem(other, 400)["parameter"] == "$skipToken"


def test_diff_as_csv_has_the_rows_of_the_json_page(
    local_client: TestClient, scenario: Scenario
) -> None:
    params = {"from": DAY1, "to": DAY2, "$top": 6}
    page = get(local_client, **params)
    response = local_client.get(DIFF, params={**params, "format": "csv"})
    rows = csv_rows(response)
    assert list(rows[0])[:6] == ["subscriptionId", "level", "change", "standard", "control",
                                 "assessment"]  # fmt: skip
    ends = {end: {k: page[end][k] for k in ("snapshotId", "contentHash")} for end in ("from", "to")}
    assert rows == [as_csv_row({**item, **ends}, list(rows[0])) for item in page["value"]]
    assert response.headers["link"].endswith('>; rel="next"')


def test_every_diff_csv_row_names_both_snapshots_by_id_and_hash(
    local_client: TestClient, scenario: Scenario
) -> None:
    # Issue 11: a CSV saved alone did not say which two snapshots it compared.
    rows = csv_rows(local_client.get(DIFF, params={"from": DAY1, "to": DAY2, "format": "csv"}))
    assert rows and list(rows[0])[-4:] == ["from.snapshotId", "from.contentHash",
                                           "to.snapshotId", "to.contentHash"]  # fmt: skip
    before, after = scenario.a[0], scenario.a[1]
    for row in rows:
        assert (row["from.snapshotId"], row["from.contentHash"]) == (DAY1, before.content_hash)
        assert (row["to.snapshotId"], row["to.contentHash"]) == (DAY2, after.content_hash)


def test_diff_has_a_strong_etag_from_hashes_and_query_and_honours_if_none_match(
    local_client: TestClient, scenario: Scenario
) -> None:
    first = local_client.get(DIFF, params={"from": DAY1, "to": DAY2})
    etag = first.headers["etag"]
    assert not etag.startswith("W/")
    same = local_client.get(DIFF, params={"from": "2026-11-25T05:00:00Z", "to": DAY2})
    assert same.headers["etag"] == etag and same.content == first.content
    filtered = local_client.get(DIFF, params={"from": DAY1, "to": DAY2, "change": "regressed"})
    assert filtered.headers["etag"] != etag
    cached = local_client.get(
        DIFF, params={"from": DAY1, "to": DAY2}, headers={"If-None-Match": f'"x", {etag}'}
    )
    assert cached.status_code == 304 and cached.content == b""


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-11-27"}, "to"),
        ({"to": "2026-11-27T02:00:00"}, "to"),
        ({"from": "2026-02-30T00:00:00Z"}, "from"),
        ({"from": "20261399T020000Z"}, "from"),
        ({"from": DAY3, "to": DAY1}, "from"),
        ({"from": "2026-11-27T00:00:00Z", "to": "2026-11-26T00:00:00Z"}, "from"),
        ({"change": "worse"}, "change"),
        ({"change": "regressed,worse"}, "change"),
        ({"level": "tenant"}, "level"),
        ({"subscription": "not-a-guid"}, "subscription"),
        ({"$top": "0"}, "$top"),
        ({"$top": "5001"}, "$top"),
        ({"$top": "ten"}, "$top"),
        ({"format": "xml"}, "format"),
        ({"colour": "blue"}, "colour"),
        ({"$skipToken": "!!"}, "$skipToken"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(
    local_client: TestClient, scenario: Scenario, params: dict[str, str], parameter: str
) -> None:
    body = problem(local_client.get(DIFF, params=params), 400)
    assert body["type"] == "urn:auditor:problem:invalid-parameter"
    assert body["parameter"] == parameter


def test_from_after_to_once_resolved_is_400(local_client: TestClient, scenario: Scenario) -> None:
    body = problem(local_client.get(DIFF, params={"from": DAY3, "to": "2026-11-26T12:00:00Z"}), 400)
    assert body["parameter"] == "from"


def test_a_single_valued_parameter_given_twice_is_400(local_client: TestClient) -> None:
    response = local_client.get(DIFF, params=[("to", DAY2), ("to", DAY3)])
    assert problem(response, 400)["parameter"] == "to"


def test_unknown_tenant_and_missing_snapshots_are_404(
    local_client: TestClient, scenario: Scenario
) -> None:
    unknown = problem(local_client.get(f"/api/tenants/{TENANT_X}/diff"), 404)
    assert unknown["type"] == "urn:auditor:problem:tenant-not-found"
    before_all = problem(local_client.get(DIFF, params={"from": "2026-01-01T00:00:00Z"}), 404)
    assert before_all["type"] == "urn:auditor:problem:snapshot-not-found"
    assert "2026-01-01T00:00:00Z" in before_all["detail"]
    no_such = problem(local_client.get(DIFF, params={"from": "20261124T020000Z"}), 404)
    assert no_such["type"] == "urn:auditor:problem:snapshot-not-found"
    only_one = problem(local_client.get(f"/api/tenants/{TENANT_B}/diff"), 404)
    assert only_one["type"] == "urn:auditor:problem:snapshot-not-found"


def test_a_snapshot_diffed_with_itself_has_no_changes(
    local_client: TestClient, scenario: Scenario
) -> None:
    body = get(local_client, **{"from": DAY2, "to": DAY2})
    assert body["value"] == [] and body["matchingChanges"] == 0 and body["nextLink"] is None


def test_snapshots_taken_before_recommendations_say_not_comparable_never_no_change(
    local_client: TestClient, scenario: Scenario
) -> None:
    recs = get(local_client, **{"from": DAY1, "to": DAY2})["summary"]["recommendations"]
    assert recs["comparable"] is False
    assert recs["reason"] == (
        f"not comparable: the from snapshot ({DAY1}) and the to snapshot ({DAY2}) predate the "
        "collection of recommendations"
    )
    assert recs["newlyUnhealthy"] == recs["newlyHealthy"] == []
