"""The summary stored in the committed index row: computed once at commit, equal to what the
snapshot path derives, covered by the anchor, small, and absent only from older rows."""

from __future__ import annotations

import dataclasses
import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableClient

from auditor.adapters.storage import table_service_client
from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.packing import entity_bytes
from auditor.adapters.tables.rows import (
    LATEST_PARTITION,
    ContentLayout,
    committed_entity,
    index_entry,
)
from auditor.core import prepared
from auditor.core.diff import ChangeKind
from auditor.core.model import CollectionStatus, DefenderPlan, State, TenantPosture
from auditor.services.history import SnapshotHistory
from auditor.settings import Settings, require_storage
from tools.posture_factory import make_posture, tenant_id_for, with_states

DAY1 = datetime(2024, 5, 1, 2, tzinfo=UTC)
TENANT = tenant_id_for(7)


def _day(n: int) -> datetime:
    return DAY1 + timedelta(days=n - 1)


def _incomplete_without(posture: TenantPosture, key: tuple[str, str, str, str]) -> TenantPosture:
    """An incomplete collection that read every subscription but did not see one assessment:
    the snapshot carries it (in a collected subscription) rather than observing it."""
    return dataclasses.replace(
        posture,
        compliance=tuple(r for r in posture.compliance if r.key != key),
        completeness=dataclasses.replace(
            posture.completeness, errors=("regulatory compliance page 2: 500 InternalError",)
        ),
    )


def _latest_table(settings: Settings, store: SnapshotStore) -> TableClient:
    service = table_service_client(require_storage(settings))
    return service.get_table_client(store.tables.latest)


def test_regressions_equal_the_diffs_regressed_count_carried_assessments_excluded(
    store: SnapshotStore,
) -> None:
    day1 = make_posture(TENANT, subscriptions=3, seed=3)
    passed = [r for r in day1.compliance if r.state is State.PASSED]
    carried, turned = passed[0], passed[1:4]
    # Day 2 does not observe `carried` (carried, in a collected subscription) and turns three
    # assessments Failed; day 3 observes `carried` again, Failed: the diff calls that added.
    day2 = _incomplete_without(
        with_states(day1, {r.key: State.FAILED for r in turned}), carried.key
    )
    day3 = with_states(day1, {carried.key: State.FAILED, turned[0].key: State.PASSED})
    entries = [
        store.commit_snapshot(posture, _day(n), "c")
        for n, posture in enumerate((day1, day2, day3), start=1)
    ]
    assert entries[1].status is CollectionStatus.INCOMPLETE
    history = SnapshotHistory(store)
    assert history.snapshot(entries[1]).carried.keys() == {carried.key}
    assert entries[0].summary is not None and entries[0].summary.regressions is None
    for before, after in itertools.pairwise(entries):
        diff = history.diff(before, after)
        assert after.summary is not None
        assert after.summary.regressions == diff.summary.posture[ChangeKind.REGRESSED]
        assert after.summary.previous_compliance == before.compliance_by_standard
    assert entries[1].summary is not None and entries[1].summary.regressions == 3
    # Not a regression by the diff (it was not observed on day 2): the summary agrees.
    assert entries[2].summary is not None and entries[2].summary.regressions == 0
    (change,) = [
        c
        for c in history.diff(entries[1], entries[2]).changes
        if (c.subscription_id, c.standard, c.control) == carried.key[:3]
        and c.assessment in (None, carried.assessment)
    ]
    assert change.change is ChangeKind.ADDED


def test_a_failed_snapshot_and_its_successor_count_no_regressions_like_the_diff(
    store: SnapshotStore,
) -> None:
    day1 = make_posture(TENANT, seed=4)
    first = store.commit_snapshot(day1, _day(1), "c")
    failed = store.commit_failed(day1.tenant, _day(2), "Resource Graph: 403")
    flipped = with_states(day1, {r.key: State.FAILED for r in day1.compliance})
    after = store.commit_snapshot(flipped, _day(3), "c")
    history = SnapshotHistory(store)
    for before, entry in ((first, failed), (failed, after)):
        expected = history.diff(before, entry).summary.posture[ChangeKind.REGRESSED]
        assert entry.summary is not None and entry.summary.regressions == expected == 0


def test_the_sparkline_is_carried_forward_over_thirty_days_of_index_rows(
    store: SnapshotStore,
) -> None:
    posture = make_posture(TENANT, seed=5)
    entries = [store.commit_snapshot(posture, _day(n), "c") for n in range(1, 36)]
    latest = entries[-1]
    since = latest.scheduled_at - timedelta(days=30)
    listed = list(reversed(store.list_snapshots(TENANT, since=since)))
    assert latest.summary is not None and latest.summary.spark_covers(since)
    assert [p.snapshot_id for p in latest.summary.spark] == [e.snapshot_id for e in listed]
    assert len(latest.summary.spark) == 31
    assert store.list_tenants() == [latest]  # the latest row carries the same summary


def test_tampering_with_the_stored_summary_fails_the_anchor_check(
    store: SnapshotStore, settings: Settings
) -> None:
    entry = store.commit_snapshot(make_posture(TENANT, seed=6), _day(1), "c")
    table = _latest_table(settings, store)
    row = table.get_entity(LATEST_PARTITION, TENANT)
    forged = json.loads(row["summary"])
    forged["secureScore"] = 99.9
    row["summary"] = json.dumps(forged, sort_keys=True, separators=(",", ":"))
    table.upsert_entity(row)
    entries, unverified = store.list_latest()
    assert entries == []
    assert [u.tenant_id for u in unverified] == [TENANT]
    assert "summary" in unverified[0].problem
    assert entry.summary is not None and entry.summary.secure_score != 99.9


def test_a_tenant_with_many_standards_and_plans_keeps_its_summary_small() -> None:
    posture = make_posture(TENANT, subscriptions=2, standards=300, controls=1, assessments=1)
    plans = tuple(
        DefenderPlan(subscription_id=s.subscription_id, plan=f"Plan-{n:03d}", tier="Standard")
        for s in posture.tenant.subscriptions
        for n in range(60)
    )
    posture = dataclasses.replace(posture, plans=plans)
    first = prepared.prepare_snapshot(
        posture,
        "20240501T020000Z",
        collector_version="c",
        status=CollectionStatus.COMPLETE,
        predecessor=prepared.Predecessor(),
    )
    second = prepared.prepare_snapshot(
        posture,
        "20240502T020000Z",
        collector_version="c",
        status=CollectionStatus.COMPLETE,
        predecessor=prepared.Predecessor(first.entry, {}, verified=True),
    )
    summary = second.entry.summary
    assert summary is not None and len(summary.plans) == 60
    assert summary.previous_compliance is not None and len(summary.previous_compliance) == 300
    encoded = summary.encode()
    assert len(encoded.encode()) < 32 * 1024  # well under a property's 64 KiB
    row = committed_entity(second.entry, "attempt", ContentLayout("p", {}, {}), "now")
    assert all(len(v) <= 64 * 1024 for v in row.values() if isinstance(v, str | bytes))
    assert entity_bytes(row) < 1024 * 1024
    assert index_entry(row).summary == summary


def test_a_row_committed_before_summaries_still_reads_and_verifies(
    store: SnapshotStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Older code wrote no summary: such rows (and their successors) read and verify."""
    posture = make_posture(TENANT, seed=8)
    with monkeypatch.context() as patch:
        patch.setattr(prepared, "summarize_posture", lambda *a, **k: None)
        old = store.commit_snapshot(posture, _day(1), "old")
    assert old.summary is None
    assert store.list_tenants() == [old] and store.get_index(TENANT, old.snapshot_id) == old
    assert store.get_snapshot(TENANT, old.snapshot_id).index == old
    new = store.commit_snapshot(posture, _day(2), "new")
    assert new.summary is not None
    assert new.summary.previous_compliance == old.compliance_by_standard
    # The sparkline starts at the older row: not whole for the 30 days (readers then list).
    assert [p.snapshot_id for p in new.summary.spark] == [old.snapshot_id, new.snapshot_id]
    assert not new.summary.spark_covers(new.scheduled_at - timedelta(days=30))


def test_a_failure_record_never_carries_figures_of_a_predecessor_that_fails_its_anchor(
    store: SnapshotStore, settings: Settings
) -> None:
    posture = make_posture(TENANT, seed=9)
    day1 = store.commit_snapshot(posture, _day(1), "c")
    service = table_service_client(require_storage(settings))
    index = service.get_table_client(store.tables.index)
    row = next(iter(index.list_entities()))
    forged = json.loads(row["summary"])
    forged["spark"] = [[day1.snapshot_id, 100.0]]
    row["summary"] = json.dumps(forged, sort_keys=True, separators=(",", ":"))
    index.upsert_entity(row)
    failed = store.commit_failed(posture.tenant, _day(2), "Resource Graph: 403")
    assert failed.summary is not None
    assert failed.summary.previous_compliance is None and failed.summary.regressions is None
    assert [p.snapshot_id for p in failed.summary.spark] == [failed.snapshot_id]
    assert failed.summary.spark_since == failed.snapshot_id  # not whole: readers list the rows


def test_the_latest_listing_rereads_only_changed_rows_and_sees_every_change(
    store: SnapshotStore, settings: Settings
) -> None:
    """The listing keeps verified rows by ETag: an edit, a new snapshot, a new tenant and a
    removed row all show on the very next call of the same store."""
    other = tenant_id_for(8)
    first = store.commit_snapshot(make_posture(TENANT, seed=10), _day(1), "c")
    assert store.list_latest() == ([first], [])
    table = _latest_table(settings, store)
    row = table.get_entity(LATEST_PARTITION, TENANT)
    row["tenant_name"] = "Renamed by hand"
    table.upsert_entity(row)
    entries, unverified = store.list_latest()
    assert entries == [] and [u.tenant_id for u in unverified] == [TENANT]
    second = store.commit_snapshot(make_posture(TENANT, seed=10), _day(2), "c")
    newcomer = store.commit_snapshot(make_posture(other, seed=11), _day(2), "c")
    assert store.list_latest() == (sorted([second, newcomer], key=lambda e: e.tenant_id), [])
    table.delete_entity(LATEST_PARTITION, other)
    assert store.list_latest() == ([second], [])
