"""Sections added after format 1, in the store: stored and verified when collected; a snapshot
without them (as every snapshot before them) reads them as not collected, verifies and diffs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from auditor.adapters.tables import SnapshotStore
from auditor.core import registry
from auditor.core.canonical import snapshot_content_hash
from auditor.core.diff import diff_snapshots
from auditor.core.registry import ALERT_COUNTS, ALERTS, records_of
from tests.fixtures.alert_sections import with_alerts
from tools.posture_factory import make_posture, tenant_id_for

DAY1 = datetime(2026, 11, 27, 2, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
TENANT = tenant_id_for(41)


def test_alerts_are_stored_verified_and_diffed_after_a_snapshot_without_them(
    store: SnapshotStore,
) -> None:
    before = make_posture(TENANT)
    sub = before.tenant.subscriptions[0].subscription_id
    after = registry.posture_of(before, with_alerts(sub))
    old = store.commit_snapshot(before, DAY1, "test/1")
    new = store.commit_snapshot(after, DAY2, "test/1")

    first = store.get_snapshot(TENANT, old.snapshot_id)
    second = store.get_snapshot(TENANT, new.snapshot_id)
    assert records_of(first.posture, ALERTS) is None  # not collected, not empty
    assert "alerts" not in old.counts and "alert_counts" not in old.counts
    assert snapshot_content_hash(first) == old.content_hash
    assert sorted(records_of(second.posture, ALERTS) or (), key=lambda a: a.alert_id) == sorted(
        records_of(after, ALERTS) or (), key=lambda a: a.alert_id
    )
    assert set(records_of(second.posture, ALERT_COUNTS) or ()) == set(
        records_of(after, ALERT_COUNTS) or ()
    )
    assert snapshot_content_hash(second) == new.content_hash
    assert new.previous_hash == old.content_hash
    assert (new.counts["alerts"], new.counts["alerts_open"]) == (2, 2)
    # History carries across the format change: the compliance records were first seen on day 1.
    assert {t.first_seen for t in second.transitions.values()} == {DAY1}
    diff = diff_snapshots(first, second)
    assert diff.summary.alerts is None  # not comparable with a snapshot from before alerts
    assert sum(diff.summary.posture.values()) == 0
