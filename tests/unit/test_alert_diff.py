"""The diff of security alerts, on the simulator's estate (in process) against its ground truth:
new and resolved alerts, new High-severity ones in the summary; a cap never invents changes; a
snapshot taken before alerts were collected is not comparable."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from auditor.core import registry
from auditor.core.alert_diff import diff_alerts
from auditor.core.diff import diff_snapshots
from auditor.core.model import AlertSeverity, Completeness, Subscription, Tenant, TenantPosture
from auditor.core.registry import ALERTS, Batch, Derivation
from tools.azure_sim.estate import Estate, now_for_day
from tools.posture_factory import make_snapshot

ESTATE = Estate("tiny", seed=3)
TENANT = ESTATE.tenants(0)[0]
SUBS = tuple(s["subscriptionId"] for s in TENANT["subscriptions"])


def posture_on(day: int, cap: int | None = None, **context: Any) -> TenantPosture:
    batch = Batch()
    batch.extend(
        row
        for row in ESTATE.rows("securityresources", day, SUBS)
        if row["type"] == "microsoft.security/locations/alerts"
    )
    caps = {} if cap is None else {"alerts": cap}
    sections = batch.derive(
        Derivation(frozenset(SUBS), now=now_for_day(day), caps=caps, lookback_days=60)
    )
    tenant = Tenant(
        TENANT["tenantId"],
        "sim",
        tuple(Subscription(s, TENANT["tenantId"], s) for s in SUBS),
    )
    base = registry.empty_posture(tenant, Completeness(SUBS, SUBS))
    alerts_only = {name: sections[name] for name in ("alert_counts", "alerts")}
    return registry.posture_of(base, alerts_only)


def open_ids(day: int) -> set[str]:
    """Ground truth, as /_sim/estate serves it for the tenant on `day`."""
    (tenant,) = [t for t in ESTATE.summary(day)["tenants"] if t["tenantId"] == TENANT["tenantId"]]
    return {i for s in tenant["subscriptions"] for i in s["alerts"]["openIds"]}


def test_new_and_resolved_alerts_are_those_the_estate_opened_and_closed() -> None:
    diff = diff_alerts(posture_on(3), posture_on(9), set(SUBS))
    assert diff is not None
    assert {a.alert_id for a in diff.new} == open_ids(9) - open_ids(3)
    assert {a.alert_id for a in diff.resolved} == open_ids(3) - open_ids(9)
    assert diff.new and diff.resolved and diff.unlisted == 0
    assert diff.new_high == sum(1 for a in diff.new if a.severity is AlertSeverity.HIGH)
    ranks = [list(AlertSeverity).index(a.severity) for a in diff.new]
    assert ranks == sorted(ranks), "most severe first"


def test_the_summary_of_a_snapshot_diff_names_new_high_alerts() -> None:
    before = make_snapshot(posture_on(3), "20261104T020000Z")
    after = make_snapshot(posture_on(9), "20261110T020000Z", previous=before.index)
    alerts = diff_snapshots(before, after).summary.alerts
    assert alerts is not None
    assert alerts.new_high == len([a for a in alerts.new if a.severity is AlertSeverity.HIGH])
    assert {a.alert_id for a in alerts.new} == open_ids(9) - open_ids(3)


def test_a_cap_makes_unmatched_alerts_unlisted_never_new_or_resolved() -> None:
    diff = diff_alerts(posture_on(3, cap=3), posture_on(9, cap=3), set(SUBS))
    assert diff is not None
    truly_new = open_ids(9) - open_ids(3)
    assert {a.alert_id for a in diff.new} <= truly_new
    assert {a.alert_id for a in diff.resolved} <= open_ids(3) - open_ids(9)
    assert diff.unlisted > 0


def test_a_snapshot_from_before_alerts_were_collected_is_not_comparable() -> None:
    old = dataclasses.replace(posture_on(3), sections={})  # as stored before alerts existed
    assert registry.records_of(old, ALERTS) is None
    assert diff_alerts(old, posture_on(9), set(SUBS)) is None
    before = make_snapshot(old, "20261104T020000Z")
    after = make_snapshot(posture_on(9), "20261110T020000Z", previous=before.index)
    assert diff_snapshots(before, after).summary.alerts is None


def test_alerts_of_subscriptions_not_compared_are_left_out() -> None:
    diff = diff_alerts(posture_on(3), posture_on(9), {SUBS[0]})
    assert diff is not None
    assert {a.subscription_id for a in (*diff.new, *diff.resolved)} <= {SUBS[0]}


def test_day_times_are_utc() -> None:
    assert now_for_day(3) == datetime(2026, 11, 4, tzinfo=UTC)
