"""Resource-level assessments drift in the simulator from day to day (resources becoming
unhealthy and healthy, recommendations appearing); collected with the real SDK on two days, the
diff's recommendation changes and newly unhealthy resources are the ground truth's
(/_sim/estate): nothing missed, nothing invented."""

from __future__ import annotations

from typing import Any

from auditor.core.recommendation_diff import diff_recommendations
from auditor.core.registry import RECOMMENDATIONS, records_of
from tests.integration.helpers import truth_tenants
from tests.integration.test_alerts import collected
from tools.azure_sim.launcher import Simulator

FIRST, LATER = 0, 30


def unhealthy_truth(tenant: dict[str, Any]) -> dict[str, dict[str, set[str]]]:
    """subscription -> recommendation key -> its unhealthy resource ids, as the estate says."""
    return {
        sub["subscriptionId"].lower(): {
            key: set(ids) for key, ids in sub["recommendations"]["unhealthyResources"].items()
        }
        for sub in tenant["subscriptions"]
    }


def test_the_diff_of_two_days_reports_the_recommendation_changes_the_estate_made(
    fresh: Simulator,
) -> None:
    before_all, after_all = collected(fresh, FIRST), collected(fresh, LATER)
    truth_before, truth_after = truth_tenants(fresh, FIRST), truth_tenants(fresh, LATER)
    seen = {"newly unhealthy": 0, "newly healthy": 0, "resources": 0, "appeared": 0}
    for tenant_id, before in before_all.items():
        if tenant_id not in after_all:
            continue
        was = unhealthy_truth(truth_before[tenant_id])
        now = unhealthy_truth(truth_after[tenant_id])
        comparable = was.keys() & now.keys()
        diff = diff_recommendations(before, after_all[tenant_id], comparable)
        assert diff is not None
        expected_unhealthy = {(s, k) for s in comparable for k in now[s] if k not in was[s]}
        expected_healthy = {(s, k) for s in comparable for k in was[s] if k not in now[s]}
        expected_resources = {
            (s, k, rid)
            for s in comparable
            for k, ids in now[s].items()
            for rid in ids - was[s].get(k, set())
        }
        assert {(r.subscription_id, r.recommendation) for r in diff.newly_unhealthy} == (
            expected_unhealthy
        )
        assert {(r.subscription_id, r.recommendation) for r in diff.newly_healthy} == (
            expected_healthy
        )
        got = {
            (r.subscription_id, r.recommendation, r.resource_id) for r in diff.resources_unhealthy
        }
        assert got == expected_resources
        assert diff.resources_unlisted == 0  # the tiny estate stays under the cap
        known = {
            (r.subscription_id, r.recommendation) for r in records_of(before, RECOMMENDATIONS) or ()
        }
        seen["newly unhealthy"] += len(expected_unhealthy)
        seen["newly healthy"] += len(expected_healthy)
        seen["resources"] += len(expected_resources)
        seen["appeared"] += len(expected_unhealthy - known)
    # The drift did each kind of change: the comparison above was not of empty sets.
    assert all(seen.values()), seen
