"""Security alerts collected with the real SDK against the simulator, compared with its ground
truth (/_sim/estate): counts per subscription, severity and status; the open alerts listed;
day by day, alerts appear and resolve; a cap lists fewer and says how many it left out."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from auditor.core.model import OPEN_ALERT_STATUSES, CollectionStatus, TenantPosture
from auditor.core.registry import ALERT_COUNTS, ALERTS, records_of
from auditor.settings import load_settings
from tests.integration.helpers import make_collector, truth_tenants
from tools.azure_sim.estate import ALERT_HISTORY_DAYS
from tools.azure_sim.launcher import Simulator


def collected(sim: Simulator, day: int, **settings: Any) -> dict[str, TenantPosture]:
    sim.set_day(day)
    config = dataclasses.replace(load_settings(), **settings)
    with make_collector(config, day=day) as collector:
        return {t.tenant_id: collector.collect(t) for t in collector.discover()}


def truth_counts(tenant: dict[str, Any], lookback_days: int) -> Counter[tuple[str, str, str]]:
    """Ground truth; the simulator lists alerts for ALERT_HISTORY_DAYS, so with a look-back at
    least that long every listed alert counts."""
    assert lookback_days >= ALERT_HISTORY_DAYS
    out: Counter[tuple[str, str, str]] = Counter()
    for sub in tenant["subscriptions"]:
        for severity, by_status in sub["alerts"]["bySeverityStatus"].items():
            for status, n in by_status.items():
                out[(sub["subscriptionId"], severity, status)] += n
    return out


def test_every_alert_is_counted_and_every_open_one_listed_as_the_estate_says(
    fresh: Simulator,
) -> None:
    postures = collected(fresh, 3, alerts_lookback_days=60)
    truth = truth_tenants(fresh, 3)
    assert postures
    for tenant_id, posture in postures.items():
        counts = records_of(posture, ALERT_COUNTS)
        alerts = records_of(posture, ALERTS)
        assert counts is not None and alerts is not None
        got = Counter(
            {(c.subscription_id, c.severity.value, c.status.value): c.alerts for c in counts}
        )
        assert got == truth_counts(truth[tenant_id], 60)
        expected_open = sorted(
            i for s in truth[tenant_id]["subscriptions"] for i in s["alerts"]["openIds"]
        )
        assert sorted(a.alert_id for a in alerts) == expected_open
        assert all(c.left_out == 0 for c in counts)


def test_alerts_appear_and_resolve_from_day_to_day(fresh: Simulator) -> None:
    first = collected(fresh, 3, alerts_lookback_days=60)
    later = collected(fresh, 9, alerts_lookback_days=60)
    for tenant_id, posture in first.items():
        before = {a.alert_id for a in records_of(posture, ALERTS) or ()}
        after = {a.alert_id for a in records_of(later[tenant_id], ALERTS) or ()}
        assert after - before, "new alerts appeared"
        assert before - after, "some alerts were resolved or dismissed"


def test_the_cap_lists_the_most_severe_and_counts_what_it_left_out(fresh: Simulator) -> None:
    postures = collected(fresh, 3, alerts_max_per_tenant=2, alerts_lookback_days=60)
    truth = truth_tenants(fresh, 3)
    for tenant_id, posture in postures.items():
        counts = records_of(posture, ALERT_COUNTS) or ()
        listed = records_of(posture, ALERTS) or ()
        open_total = sum(s["alerts"]["open"] for s in truth[tenant_id]["subscriptions"])
        assert len(listed) == min(2, open_total)
        assert sum(c.left_out for c in counts) == open_total - len(listed)
        assert sum(c.alerts for c in counts if c.status in OPEN_ALERT_STATUSES) == open_total
        # The cap is a documented bound, not a fault: the tenant stays complete.
        if not truth[tenant_id]["malformedRows"]:
            assert posture.completeness.status is CollectionStatus.COMPLETE
