"""What changed in a tenant's recommendations between two snapshots. Pure.

Per subscription collected at both ends: recommendations *newly unhealthy* (no unhealthy
resource before, some now; or absent before), *newly healthy* (unhealthy before, none now), and
the resources that *became unhealthy* (listed unhealthy now, not before). Recommendations are
matched on the registry's identity key (subscription, assessment key).

A capped list cannot prove absence: where either end's list of a recommendation's unhealthy
resources was capped, its resources are not compared (counted in ``resources_unlisted``), never
guessed. A snapshot taken before recommendations were collected is not comparable (None).
"""

from __future__ import annotations

from dataclasses import dataclass

from auditor.core.model import RecommendationSummary, TenantPosture
from auditor.core.registry import RECOMMENDATIONS, records_of


@dataclass(frozen=True, slots=True)
class ResourceBecameUnhealthy:
    subscription_id: str
    recommendation: str
    display_name: str
    severity: str
    resource_id: str


@dataclass(frozen=True, slots=True)
class RecommendationDiff:
    newly_unhealthy: tuple[RecommendationSummary, ...]  # as at the later end
    newly_healthy: tuple[RecommendationSummary, ...]  # as at the earlier end
    resources_unhealthy: tuple[ResourceBecameUnhealthy, ...]
    resources_unlisted: int = 0  # recommendations whose capped lists kept resources unmatched


def diff_recommendations(
    before: TenantPosture, after: TenantPosture, comparable: set[str]
) -> RecommendationDiff | None:
    """The changes over `comparable` subscriptions; None when an end has no recommendations."""
    old_list, new_list = records_of(before, RECOMMENDATIONS), records_of(after, RECOMMENDATIONS)
    if old_list is None or new_list is None:
        return None
    identity = RECOMMENDATIONS.identity
    old = {identity(r): r for r in old_list if r.subscription_id in comparable}
    new = {identity(r): r for r in new_list if r.subscription_id in comparable}
    newly_unhealthy: list[RecommendationSummary] = []
    newly_healthy: list[RecommendationSummary] = []
    resources: list[ResourceBecameUnhealthy] = []
    unlisted = 0
    for key in sorted(new.keys() | old.keys()):
        was, now = old.get(key), new.get(key)
        if now is not None and now.unhealthy and (was is None or not was.unhealthy):
            newly_unhealthy.append(now)
        if was is not None and was.unhealthy and (now is None or not now.unhealthy):
            newly_healthy.append(was)
        if now is None or not now.unhealthy:
            continue
        if now.unhealthy_left_out or (was is not None and was.unhealthy_left_out):
            unlisted += 1
            continue
        before_ids = set(was.unhealthy_resources) if was is not None else set()
        resources.extend(
            ResourceBecameUnhealthy(
                now.subscription_id, now.recommendation, now.display_name, now.severity, rid
            )
            for rid in now.unhealthy_resources
            if rid not in before_ids
        )
    return RecommendationDiff(
        tuple(newly_unhealthy), tuple(newly_healthy), tuple(resources), unlisted
    )
