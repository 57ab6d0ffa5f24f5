"""Per-snapshot summaries: what a page shows of a snapshot's content, naming its source."""

from __future__ import annotations

import uuid

from azure.data.tables import TableServiceClient

from auditor.adapters.tables.store import SnapshotStore
from auditor.core import registry
from auditor.core.diff import ChangeKind
from auditor.core.model import State
from auditor.core.snapshot import slot_of
from auditor.services.history import SnapshotHistory
from auditor.web.summary import TenantSummaries, change_of, stale, summarize
from tests.api.scenario import Scenario
from tests.fixtures.alert_sections import with_alerts
from tools.devservices import Azurite
from tools.posture_factory import make_posture

TENANT = "d0000000-0000-4000-8000-00000000000e"


def test_a_summary_names_the_snapshot_and_hash_it_derives_from_and_counts_its_content(
    history: SnapshotHistory, scenario: Scenario
) -> None:
    day3 = history.snapshot(scenario.a[2])
    summary = summarize(day3)
    assert (
        summary.source
        == f"snapshot {scenario.a[2].snapshot_id} (SHA-256 {day3.index.content_hash})"
    )
    failed = [r for r in day3.posture.compliance if r.state is State.FAILED]
    assert sum(len(v) for v in summary.failing.values()) == len(failed)
    scores = day3.posture.secure_scores
    expected = round(100 * sum(s.current for s in scores) / sum(s.maximum for s in scores), 1)
    assert summary.secure_score == expected
    vm = next(p for p in summary.plans if p.plan == "VirtualMachines")
    # Day 2 downgraded S0's VirtualMachines plan to Free; S1 was not read on day 3.
    assert (vm.paid, vm.subscriptions) == (
        sum(1 for p in day3.posture.plans if p.plan == "VirtualMachines" and p.tier == "Standard"),
        sum(1 for p in day3.posture.plans if p.plan == "VirtualMachines"),
    )


def test_regressions_are_the_diffs_regressed_count_and_a_failed_snapshot_has_no_summary(
    history: SnapshotHistory, scenario: Scenario
) -> None:
    sums = TenantSummaries(history)
    recent = sums.recent(scenario.a[2])
    diff = history.diff(scenario.a[1], scenario.a[2])
    assert recent.previous == scenario.a[1]
    assert recent.regressions == diff.summary.posture[ChangeKind.REGRESSED] > 0
    assert sums.summary(scenario.c) is None
    assert sums.recent(scenario.b).regressions is None  # a single snapshot: nothing to compare


def test_change_since_previous_and_staleness(scenario: Scenario) -> None:
    a2, a3 = scenario.a[1], scenario.a[2]
    for standard, now in a3.compliance_by_standard.items():
        before = a2.compliance_by_standard.get(standard)
        expected = None if now is None or before is None else round(now - before, 2)
        assert change_of(a3, a2, standard) == expected
    assert change_of(a3, None, "PCI-DSS-4") is None
    assert stale(a3, a3.scheduled_at) is False
    assert stale(a2, a3.scheduled_at) is True
    assert stale(a2, None) is False


def test_the_chain_column_uses_verifys_link_check(scenario: Scenario) -> None:
    from dataclasses import replace

    from auditor.web.pages import chain_links

    a1, a2, a3 = scenario.a
    assert chain_links([a1, a2, a3]) == {a1.snapshot_id: "", a2.snapshot_id: "", a3.snapshot_id: ""}
    assert chain_links([a2, a3])[a2.snapshot_id] is None  # its predecessor is outside the list
    broken = chain_links([a1, replace(a2, previous_hash="0" * 64)])[a2.snapshot_id]
    assert broken is not None and "differs from" in broken


def test_open_alerts_per_severity_come_from_the_counts_and_older_snapshots_say_not_collected(
    azurite: Azurite,
) -> None:
    # Issue 13: the portfolio shows active alerts by severity once alerts are collected.
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    store = SnapshotStore(service, "websum" + uuid.uuid4().hex[:10])
    try:
        before = make_posture(TENANT)
        sub = before.tenant.subscriptions[0].subscription_id
        old = store.commit_snapshot(before, slot_of("20261127T020000Z"), "test/1")
        with_them = registry.posture_of(before, with_alerts(sub))
        new = store.commit_snapshot(with_them, slot_of("20261128T020000Z"), "test/1")
        history = SnapshotHistory(store)
        assert summarize(history.snapshot(old)).open_alerts is None
        # The fixture: High Active, Medium InProgress, Low Resolved, Informational Dismissed.
        assert summarize(history.snapshot(new)).open_alerts == (("High", 1), ("Medium", 1))
    finally:
        store.close()
