"""The diff of recommendations: recommendations newly unhealthy or healthy per subscription,
resources that became unhealthy; a capped list is never compared (nothing invented)."""

from __future__ import annotations

import dataclasses

from auditor.api import documents, schemas
from auditor.commands.diff import text_lines
from auditor.core import registry
from auditor.core.diff import Diff, diff_snapshots
from auditor.core.model import (
    Completeness,
    RecommendationSummary,
    Subscription,
    Tenant,
    TenantPosture,
)
from auditor.core.recommendation_diff import diff_recommendations
from tools.posture_factory import make_posture, make_snapshot, tenant_id_for

TENANT = tenant_id_for(9)
SUB = "s1"
DAY1, DAY2 = "20261125T020000Z", "20261126T020000Z"


def summary(key: str, unhealthy: tuple[str, ...], left_out: int = 0) -> RecommendationSummary:
    return RecommendationSummary(
        subscription_id=SUB,
        recommendation=key,
        display_name=f"Fix {key}",
        healthy=1,
        unhealthy=len(unhealthy) + left_out,
        not_applicable=0,
        severity="High",
        unhealthy_resources=unhealthy,
        unhealthy_left_out=left_out,
    )


def posture(*records: RecommendationSummary) -> TenantPosture:
    tenant = Tenant(TENANT, "t", (Subscription(SUB, TENANT, "s1"),))
    base = registry.empty_posture(tenant, Completeness((SUB,), (SUB,)))
    return registry.posture_of(base, {"recommendations": records})


def test_newly_unhealthy_newly_healthy_and_resources_that_became_unhealthy() -> None:
    before = posture(summary("a", ("r1",)), summary("b", ("r2",)), summary("c", ()))
    after = posture(summary("a", ("r1", "r3")), summary("b", ()), summary("c", ("r4",)))
    diff = diff_recommendations(before, after, {SUB})
    assert diff is not None
    assert [r.recommendation for r in diff.newly_unhealthy] == ["c"]
    assert [r.recommendation for r in diff.newly_healthy] == ["b"]
    assert [(r.recommendation, r.resource_id) for r in diff.resources_unhealthy] == [
        ("a", "r3"),
        ("c", "r4"),
    ]


def test_a_capped_list_is_counted_unlisted_never_compared() -> None:
    before = posture(summary("a", ("r1",), left_out=5))
    after = posture(summary("a", ("r9",), left_out=5))
    diff = diff_recommendations(before, after, {SUB})
    assert diff is not None
    assert diff.resources_unhealthy == () and diff.resources_unlisted == 1


def test_subscriptions_not_compared_and_older_snapshots_are_left_out() -> None:
    before = posture(summary("a", ()))
    after = posture(summary("a", ("r1",)))
    assert diff_recommendations(before, after, set()) == diff_recommendations(
        posture(), posture(), set()
    )
    old = dataclasses.replace(make_posture(TENANT), sections={})
    assert diff_recommendations(old, after, {SUB}) is None


def test_the_snapshot_diff_carries_recommendations_and_its_api_document_fits_the_schema() -> None:
    before = make_snapshot(posture(summary("a", ("r1",)), summary("b", ("r2",))), DAY1)
    after = make_snapshot(posture(summary("a", ("r1", "r3")), summary("b", ())), DAY2)
    diff = diff_snapshots(before, after)
    assert diff.summary.recommendations is not None
    assert diff.summary.recommendations_not_comparable == ""
    document = schemas.DiffSummary.model_validate(documents.diff_summary(diff.summary))
    recs = document.recommendations
    assert (recs.comparable, recs.reason) == (True, None)
    assert [r.recommendation for r in recs.newlyHealthy] == ["b"]
    assert [(r.recommendation, r.resourceId) for r in recs.resourcesBecameUnhealthy] == [
        ("a", "r3")
    ]


def test_a_diff_from_a_snapshot_before_recommendations_says_not_comparable_and_which_end() -> None:
    old = dataclasses.replace(posture(), sections={})
    diff = diff_snapshots(
        make_snapshot(old, DAY1), make_snapshot(posture(summary("a", ("r1",))), DAY2)
    )
    recs = documents.diff_summary(diff.summary)["recommendations"]
    assert recs["comparable"] is False
    assert recs["reason"] == (
        f"not comparable: the from snapshot ({DAY1}) predates the collection of recommendations"
    )
    assert recs["newlyUnhealthy"] == [] and recs["resourcesBecameUnhealthy"] == []
    lines = text_lines_of(diff)
    assert f"recommendations: {recs['reason']}" in lines


def text_lines_of(diff: Diff) -> list[str]:
    summary = documents.diff_summary(diff.summary)
    return text_lines(documents.diff_page(diff, summary, [], 0, None, []))
