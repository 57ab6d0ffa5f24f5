"""The simulator's `wide` estate (issue 15 §2): a thousand tenants of 1-5 subscriptions each."""

from __future__ import annotations

from collections import Counter

from tools.azure_sim.estate import WIDE_SUBSCRIPTIONS, Estate


def test_wide_has_a_thousand_tenants_of_one_to_five_subscriptions_deterministically() -> None:
    tenants = Estate("wide", seed=1).tenants(0)
    again = Estate("wide", seed=1).tenants(0)
    assert tenants == again
    assert len(tenants) == 1000
    sizes = Counter(len(t["subscriptions"]) for t in tenants)
    assert set(sizes) == set(range(WIDE_SUBSCRIPTIONS[0], WIDE_SUBSCRIPTIONS[1] + 1))
    total = sum(n * count for n, count in sizes.items())
    assert 2700 <= total <= 3300  # about 3,000 subscriptions
    assert len({t["tenantId"] for t in tenants}) == 1000
    assert Estate("wide", seed=2).tenants(0) != tenants


def test_wide_keeps_the_daily_delegation_changes_without_emptying_a_tenant() -> None:
    estate = Estate("wide", seed=1)
    day0 = {t["tenantId"]: len(t["subscriptions"]) for t in estate.tenants(0)}
    day1 = {t["tenantId"]: len(t["subscriptions"]) for t in estate.tenants(1)}
    changed = {t: (day0[t], day1[t]) for t in day0 if day0[t] != day1[t]}
    assert sorted(after - before for before, after in changed.values()) == [-1, 1]
    assert all(after >= 1 for _, after in changed.values())


def test_wide_subscriptions_hold_about_a_thousand_compliance_rows_like_the_others() -> None:
    from tools.azure_sim.estate import T_COMPLIANCE

    estate = Estate("wide", seed=1)
    sample = estate.subscriptions(0)[:60]
    per_sub = [estate.type_count(s.sid, 0, T_COMPLIANCE) for s in sample]
    assert 800 <= sum(per_sub) / len(per_sub) <= 1200
