"""Where to act first (auditor/services/ranking.py): recommendations and failing controls ranked
by severity then unhealthy resources over the tenants a caller may see; a tenant outside the
scope contributes nothing, to any row or total (property-tested)."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from auditor.core import registry
from auditor.core.access import TenantScope
from auditor.core.model import RecommendationSummary, State, TenantPosture
from auditor.core.snapshot import Snapshot, SnapshotIndexEntry
from auditor.services.ranking import Ranking, rank_where_to_act
from tools.posture_factory import make_posture, make_snapshot, tenant_id_for

TENANTS = [tenant_id_for(n) for n in range(1, 5)]
KEYS = {"High": "k-high", "Medium": "k-medium", "Low": "k-low"}


def posture(tenant: str, n: int, with_recommendations: bool = True) -> TenantPosture:
    base = make_posture(tenant, seed=n)
    if not with_recommendations:
        return base
    subs = [s.subscription_id for s in base.tenant.subscriptions]
    records = tuple(
        RecommendationSummary(
            subscription_id=sub,
            recommendation=key,
            display_name=f"Fix {severity}",
            healthy=1,
            unhealthy=(n + i) * (3 if severity == "Low" else 1),
            not_applicable=0,
            severity=severity,
            remediation=f"Do {severity}",
        )
        for i, sub in enumerate(subs)
        for severity, key in KEYS.items()
    )
    # Failed compliance assessments named by a recommendation key carry its severity.
    compliance = tuple(
        dataclasses.replace(r, assessment=KEYS["High"]) if r.state is State.FAILED else r
        for r in base.compliance
    )
    return registry.posture_of(
        dataclasses.replace(base, compliance=compliance), {"recommendations": records}
    )


class Latest:
    """Latest snapshots held in memory (the SnapshotHistory interface ranking reads)."""

    def __init__(self, postures: list[TenantPosture]) -> None:
        self.by_tenant = {
            p.tenant.tenant_id: make_snapshot(p, "20261127T020000Z") for p in postures
        }

    def list_tenants(self) -> list[SnapshotIndexEntry]:
        return [s.index for _, s in sorted(self.by_tenant.items())]

    def snapshot(self, entry: SnapshotIndexEntry) -> Snapshot:
        return self.by_tenant[entry.tenant_id]


ESTATE = [posture(t, n) for n, t in enumerate(TENANTS[:3], start=1)] + [
    posture(TENANTS[3], 4, with_recommendations=False)
]
EVERYTHING = TenantScope(everything=True, tenants=frozenset())


def only(*tenants: str) -> TenantScope:
    return TenantScope(everything=False, tenants=frozenset(tenants))


def test_items_rank_by_severity_then_unhealthy_resources_with_per_tenant_counts() -> None:
    ranking = rank_where_to_act(Latest(ESTATE), EVERYTHING, kinds=("recommendation",))
    assert [i.key for i in ranking.items] == ["k-high", "k-medium", "k-low"]
    high = ranking.items[0]
    # Tenant n has subscriptions with n and n+1 unhealthy resources.
    assert high.unhealthy_resources == (1 + 2) + (2 + 3) + (3 + 4)
    assert [(t.tenant_id, t.unhealthy_resources) for t in high.tenants] == [
        (TENANTS[2], 7),
        (TENANTS[1], 5),
        (TENANTS[0], 3),
    ]
    assert high.remediation == "Do High"
    assert ranking.tenants_ranked == 3
    assert ranking.tenants_not_collected == (TENANTS[3],)


def test_failing_controls_take_the_severity_of_their_assessments_recommendation() -> None:
    ranking = rank_where_to_act(Latest(ESTATE), EVERYTHING, kinds=("control",))
    assert ranking.items and all(i.kind == "control" for i in ranking.items)
    assert {i.severity for i in ranking.items} == {"High"}
    resources = [i.unhealthy_resources for i in ranking.items]
    assert resources == sorted(resources, reverse=True)


def test_pages_cover_the_ranking_once() -> None:
    whole = rank_where_to_act(Latest(ESTATE), EVERYTHING)
    seen, offset = [], 0
    while True:
        page = rank_where_to_act(Latest(ESTATE), EVERYTHING, offset=offset, limit=2)
        seen.extend(page.items)
        if page.next_offset is None:
            break
        offset = page.next_offset
    assert tuple(seen) == whole.items and whole.total == len(seen)


def _visible(ranking: Ranking) -> set[str]:
    return {t.tenant_id for item in ranking.items for t in item.tenants}


@given(st.sets(st.sampled_from(TENANTS)))
def test_a_tenant_outside_the_scope_contributes_nothing_to_rows_or_totals(
    granted: set[str],
) -> None:
    scoped = rank_where_to_act(Latest(ESTATE), only(*granted), limit=1000)
    alone = rank_where_to_act(
        Latest([p for p in ESTATE if p.tenant.tenant_id in granted]), EVERYTHING, limit=1000
    )
    assert scoped == alone
    assert _visible(scoped) <= granted
    assert set(scoped.tenants_not_collected) <= granted
