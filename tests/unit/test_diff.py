"""The diff of two snapshots: every change in exactly one category, scope apart from posture."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.core.diff import (
    AssignmentChange,
    Change,
    ChangeKind,
    ComplianceIndex,
    Level,
    PlanDowngrade,
    SecureScoreDrop,
    Side,
    diff_snapshots,
)
from auditor.core.model import (
    Completeness,
    ComplianceRecord,
    ControlSummary,
    DefenderPlan,
    SecureScore,
    State,
    Tenant,
    TenantPosture,
)
from auditor.core.snapshot import Snapshot, Transition
from tools.posture_factory import flip_states, index_entry, make_sized_posture, make_snapshot

TENANT = "11111111-1111-1111-1111-111111111111"
S1 = "aaaaaaaa-0000-0000-0000-000000000001"
S2 = "aaaaaaaa-0000-0000-0000-000000000002"
S3 = "aaaaaaaa-0000-0000-0000-000000000003"
A1, A2, A3, A4 = (f"0000000{n}-0000-0000-0000-000000000000" for n in range(1, 5))
DAY1, DAY2 = "20261126T020000Z", "20261127T020000Z"

P, F, K, U = State.PASSED, State.FAILED, State.SKIPPED, State.UNSUPPORTED


def rec(
    sub: str, standard: str, control: str, assessment: str, state: State, failed: int = 0
) -> ComplianceRecord:
    return ComplianceRecord(
        subscription_id=sub,
        standard=standard,
        control=control,
        assessment=assessment,
        state=state,
        passed_resources=5,
        failed_resources=failed if failed else (2 if state is F else 0),
        skipped_resources=0,
        description=f"{standard}/{control}/{assessment[:1]}",
    )


def snap(
    snapshot_id: str,
    records: list[ComplianceRecord],
    *,
    expected: tuple[str, ...] = (S1, S2),
    collected: tuple[str, ...] | None = None,
    missing: dict[str, str] | None = None,
    plans: tuple[DefenderPlan, ...] = (),
    scores: tuple[SecureScore, ...] = (),
    controls: tuple[ControlSummary, ...] = (),
    first_failed: dict[tuple[str, str, str, str], datetime] | None = None,
) -> Snapshot:
    posture = TenantPosture(
        tenant=Tenant(TENANT, "Contoso", ()),
        compliance=tuple(records),
        standards=(),
        controls=controls,
        plans=plans,
        secure_scores=scores,
        secure_score_controls=(),
        hardening=(),
        assignments=(),
        completeness=Completeness(
            expected_subscriptions=expected,
            collected_subscriptions=expected if collected is None else collected,
            missing=missing or {},
        ),
    )
    since = first_failed or {}
    transitions = {
        key: Transition(first_seen=at, last_changed=at, first_failed=at)
        for key, at in since.items()
    }
    return Snapshot(index_entry(posture, snapshot_id), posture, transitions)


def test_identical_snapshots_have_no_changes() -> None:
    records = [rec(S1, "PCI", "1.1", A1, P), rec(S2, "PCI", "1.1", A1, F)]
    diff = diff_snapshots(snap(DAY1, records), snap(DAY2, records))
    assert diff.changes == ()
    assert set(diff.summary.posture.values()) == {0}
    assert diff.summary.subscriptions_compared == 2


@pytest.mark.parametrize(
    ("before", "after", "kind"),
    [
        (P, F, ChangeKind.REGRESSED),
        (K, F, ChangeKind.REGRESSED),
        (U, F, ChangeKind.REGRESSED),
        (F, P, ChangeKind.IMPROVED),
        (K, P, ChangeKind.CHANGED),
        (P, K, ChangeKind.CHANGED),
        (F, K, ChangeKind.CHANGED),
        (P, U, ChangeKind.CHANGED),
    ],
)
def test_a_state_transition_is_regressed_improved_or_changed(
    before: State, after: State, kind: ChangeKind
) -> None:
    diff = diff_snapshots(
        snap(DAY1, [rec(S1, "PCI", "1.1", A1, before)]),
        snap(DAY2, [rec(S1, "PCI", "1.1", A1, after)]),
    )
    [change] = diff.changes
    assert (change.level, change.change) == (Level.ASSESSMENT, kind)
    assert change.before is not None and change.before.state is before
    assert change.after is not None and change.after.state is after
    assert diff.summary.posture[kind] == 1
    assert sum(diff.summary.posture.values()) == 1


def test_a_regression_carries_its_resource_counts_and_how_long_it_has_been_failing() -> None:
    key = (S1, "PCI", "1.1", A1)
    since = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    diff = diff_snapshots(
        snap(DAY1, [rec(S1, "PCI", "1.1", A1, P)]),
        snap(DAY2, [rec(S1, "PCI", "1.1", A1, F, failed=7)], first_failed={key: since}),
    )
    [change] = diff.changes
    assert change.before == Side(P, 5, 0, 0, 1)
    assert change.after == Side(F, 5, 7, 0, 1)
    assert change.failing_since == since
    assert change.failing_days == 7
    assert change.description == "PCI/1.1/0"


def test_an_improvement_has_no_failing_duration() -> None:
    diff = diff_snapshots(
        snap(DAY1, [rec(S1, "PCI", "1.1", A1, F)]),
        snap(DAY2, [rec(S1, "PCI", "1.1", A1, P)]),
    )
    assert diff.changes[0].failing_since is None
    assert diff.changes[0].failing_days is None


def test_resource_counts_moving_under_the_same_state_are_not_a_change() -> None:
    diff = diff_snapshots(
        snap(DAY1, [rec(S1, "PCI", "1.1", A1, F, failed=2)]),
        snap(DAY2, [rec(S1, "PCI", "1.1", A1, F, failed=9)]),
    )
    assert diff.changes == ()


def test_an_assessment_added_to_a_known_control_is_an_assessment_level_addition() -> None:
    base = [rec(S1, "PCI", "1.1", A1, P)]
    diff = diff_snapshots(
        snap(DAY1, base),
        snap(DAY2, [*base, rec(S1, "PCI", "1.1", A2, F)]),
    )
    [change] = diff.changes
    assert (change.level, change.change, change.assessment) == (
        Level.ASSESSMENT,
        ChangeKind.ADDED,
        A2,
    )
    assert change.before is None
    assert change.after == Side(F, 5, 2, 0, 1)


def test_a_new_control_is_one_control_level_addition_with_summed_counts() -> None:
    base = [rec(S1, "PCI", "1.1", A1, P)]
    new_control = [rec(S1, "PCI", "2.1", A2, F), rec(S1, "PCI", "2.1", A3, P)]
    diff = diff_snapshots(snap(DAY1, base), snap(DAY2, base + new_control))
    [change] = diff.changes
    assert (change.level, change.change, change.control, change.assessment) == (
        Level.CONTROL,
        ChangeKind.ADDED,
        "2.1",
        None,
    )
    assert change.after == Side(None, 10, 2, 0, 2)


def test_a_standard_version_change_is_one_removal_and_one_addition() -> None:
    old = [rec(S1, "PCI-DSS-3.2.1", "1.1", A1, P), rec(S1, "PCI-DSS-3.2.1", "1.2", A2, F)]
    new = [rec(S1, "PCI-DSS-4", "1.1", A1, P), rec(S1, "PCI-DSS-4", "1.2.1", A3, P)]
    diff = diff_snapshots(snap(DAY1, old), snap(DAY2, new))
    assert [(c.level, c.change, c.standard, c.control) for c in diff.changes] == [
        (Level.STANDARD, ChangeKind.REMOVED, "PCI-DSS-3.2.1", None),
        (Level.STANDARD, ChangeKind.ADDED, "PCI-DSS-4", None),
    ]
    removed = diff.changes[0]
    assert removed.before == Side(None, 10, 2, 0, 2)
    assert removed.after is None
    # An assignment change is scope: reported apart, never counted as a posture change.
    assert diff.summary.posture[ChangeKind.ADDED] == 0
    assert diff.summary.posture[ChangeKind.REMOVED] == 0
    assert diff.summary.assignments == (
        AssignmentChange(S1, "PCI-DSS-3.2.1", ChangeKind.REMOVED),
        AssignmentChange(S1, "PCI-DSS-4", ChangeKind.ADDED),
    )


def test_a_subscription_entering_or_leaving_scope_is_a_scope_change_not_a_posture_change() -> None:
    diff = diff_snapshots(
        snap(DAY1, [rec(S1, "PCI", "1.1", A1, P), rec(S2, "PCI", "1.1", A1, F)], expected=(S1, S2)),
        snap(DAY2, [rec(S1, "PCI", "1.1", A1, P), rec(S3, "PCI", "1.1", A1, F)], expected=(S1, S3)),
    )
    assert [(c.subscription_id, c.level, c.change) for c in diff.changes] == [
        (S2, Level.SUBSCRIPTION, ChangeKind.REMOVED),
        (S3, Level.SUBSCRIPTION, ChangeKind.ADDED),
    ]
    assert set(diff.summary.posture.values()) == {0}
    assert (diff.summary.subscriptions_added, diff.summary.subscriptions_removed) == (1, 1)
    assert diff.summary.subscriptions_compared == 1


def test_a_subscription_missing_from_either_snapshot_is_incomparable_with_the_reason() -> None:
    diff = diff_snapshots(
        snap(DAY1, [rec(S1, "PCI", "1.1", A1, P), rec(S2, "PCI", "1.1", A1, P)]),
        snap(
            DAY2,
            [rec(S1, "PCI", "1.1", A1, P)],
            collected=(S1,),
            missing={S2: "403 Forbidden"},
        ),
    )
    [change] = diff.changes
    assert (change.subscription_id, change.level, change.change) == (
        S2,
        Level.SUBSCRIPTION,
        ChangeKind.INCOMPARABLE,
    )
    assert change.reason == f"not collected in the to snapshot ({DAY2}): 403 Forbidden"
    assert diff.summary.subscriptions_incomparable == 1
    assert set(diff.summary.posture.values()) == {0}
    assert not diff.complete


def test_plan_downgrades_to_free_are_in_the_summary_and_upgrades_are_not() -> None:
    before = (
        DefenderPlan(S1, "VirtualMachines", "Standard", "P2"),
        DefenderPlan(S1, "KeyVaults", "Free"),
        DefenderPlan(S2, "VirtualMachines", "Standard", "P1"),
    )
    after = (
        DefenderPlan(S1, "VirtualMachines", "Free"),
        DefenderPlan(S1, "KeyVaults", "Standard"),
        DefenderPlan(S2, "VirtualMachines", "Standard", "P1"),
    )
    diff = diff_snapshots(snap(DAY1, [], plans=before), snap(DAY2, [], plans=after))
    assert diff.summary.plan_downgrades == (
        PlanDowngrade(S1, "VirtualMachines", "Standard", "Free", "P2", ""),
    )


def test_secure_score_drops_are_in_the_summary() -> None:
    before = (SecureScore(S1, 30, 60, 0.5, 60), SecureScore(S2, 30, 60, 0.5, 60))
    after = (SecureScore(S1, 24, 60, 0.4, 60), SecureScore(S2, 36, 60, 0.6, 60))
    diff = diff_snapshots(snap(DAY1, [], scores=before), snap(DAY2, [], scores=after))
    assert diff.summary.secure_score_drops == (SecureScoreDrop(S1, 0.5, 0.4, -0.1),)


def _control(sub: str, control: str, state: State) -> ControlSummary:
    return ControlSummary(sub, "PCI", control, "", state, 0, 0, 0)


def test_compliance_per_standard_at_both_ends_and_over_comparable_subscriptions() -> None:
    before = (_control(S1, "1", P), _control(S1, "2", F))
    after = (_control(S1, "1", P), _control(S1, "2", P), _control(S3, "1", F), _control(S3, "2", F))
    diff = diff_snapshots(
        snap(DAY1, [], expected=(S1,), controls=before),
        snap(DAY2, [], expected=(S1, S3), controls=after),
    )
    [pci] = diff.summary.compliance
    assert (pci.standard, pci.before, pci.after, pci.delta) == ("PCI", 50.0, 50.0, 0.0)
    # The added subscription S3 does not move the comparable figures.
    assert (pci.comparable_before, pci.comparable_after, pci.comparable_delta) == (
        50.0,
        100.0,
        50.0,
    )


def test_comparable_change_ignores_a_standard_unassigned_from_one_subscription() -> None:
    # NIST on two subscriptions; S2 (all failing) loses the assignment, S1 moves 3/4 -> 2/4.
    def nist(sub: str, states: tuple[State, ...]) -> tuple[ControlSummary, ...]:
        return tuple(
            ControlSummary(sub, "NIST", str(n), "", state, 0, 0, 0)
            for n, state in enumerate(states)
        )

    before = nist(S1, (P, P, P, F)) + nist(S2, (F, F, F, F))
    after = (*nist(S1, (P, P, F, F)), ControlSummary(S2, "PCI", "1", "", P, 0, 0, 0))
    diff = diff_snapshots(
        snap(DAY1, [rec(S2, "NIST", "0", A1, F)], expected=(S1, S2), controls=before),
        snap(DAY2, [rec(S2, "PCI", "1", A1, P)], expected=(S1, S2), controls=after),
    )
    nist_figures = {c.standard: c for c in diff.summary.compliance}["NIST"]
    # Reported figures include the unassignment; the comparable ones only S1's own change.
    assert (nist_figures.before, nist_figures.after) == (37.5, 50.0)
    assert (nist_figures.comparable_before, nist_figures.comparable_after) == (75.0, 50.0)
    assert nist_figures.comparable_delta == -25.0
    assert diff.summary.assignments == (
        AssignmentChange(S2, "NIST", ChangeKind.REMOVED),
        AssignmentChange(S2, "PCI", ChangeKind.ADDED),
    )
    assert diff.summary.posture[ChangeKind.REMOVED] == 0


def test_changes_are_ordered_by_subscription_standard_control_assessment() -> None:
    before = [rec(s, std, c, a, P) for s in (S2, S1) for std in ("B", "A") for c in ("2", "1")
              for a in (A2, A1)]  # fmt: skip
    after = [rec(r.subscription_id, r.standard, r.control, r.assessment, F) for r in before]
    diff = diff_snapshots(snap(DAY1, before), snap(DAY2, after))
    keys = [c.sort_key for c in diff.changes]
    assert keys == sorted(keys)
    assert len(keys) == 16


def test_snapshots_of_two_tenants_cannot_be_diffed() -> None:
    other = make_snapshot(make_sized_posture("22222222-2222-2222-2222-222222222222"), DAY2)
    with pytest.raises(ValueError, match="same tenant"):
        diff_snapshots(snap(DAY1, []), other)


def test_a_two_percent_change_on_a_large_posture_gives_exactly_those_changes() -> None:
    posture = make_sized_posture(TENANT, subscriptions=4, records=5000, seed=3)
    changed = flip_states(posture, 0.02, seed=4)
    before, after = make_snapshot(posture, DAY1), make_snapshot(changed, DAY2)
    diff = diff_snapshots(before, after)
    assert len(diff.changes) == 100
    assert all(c.level is Level.ASSESSMENT for c in diff.changes)
    indexed = diff_snapshots(
        before,
        after,
        before_index=ComplianceIndex(posture.compliance),
        after_index=ComplianceIndex(changed.compliance),
    )
    assert indexed == diff


def _reference_kind(was: State, now: State) -> ChangeKind:
    if now is F:
        return ChangeKind.REGRESSED
    if was is F and now is P:
        return ChangeKind.IMPROVED
    return ChangeKind.CHANGED


states = st.sampled_from(list(State))
cells = st.dictionaries(
    st.tuples(
        st.sampled_from([S1, S2]),
        st.sampled_from(["X", "Y"]),
        st.sampled_from(["1", "2"]),
        st.sampled_from([A1, A2, A3, A4]),
    ),
    states,
    max_size=20,
)


def _covers(change: Change, key: tuple[str, str, str, str]) -> bool:
    """The change is an appearance at the key's assessment or at its control or standard."""
    return (
        change.change in (ChangeKind.ADDED, ChangeKind.REMOVED)
        and change.level is not Level.SUBSCRIPTION
        and (change.subscription_id, change.standard) == key[:2]
        and change.control in (None, key[2])
        and change.assessment in (None, key[3])
    )


@settings(max_examples=200)
@given(old=cells, new=cells)
def test_every_difference_is_reported_once_in_the_right_category(
    old: dict[tuple[str, str, str, str], State], new: dict[tuple[str, str, str, str], State]
) -> None:
    diff = diff_snapshots(
        snap(DAY1, [rec(*key, state) for key, state in old.items()]),
        snap(DAY2, [rec(*key, state) for key, state in new.items()]),
    )
    transitions = {
        key: _reference_kind(old[key], new[key])
        for key in old.keys() & new.keys()
        if old[key] is not new[key]
    }
    reported = {c.sort_key: c.change for c in diff.changes if c.level is Level.ASSESSMENT}
    for key, kind in transitions.items():
        assert reported[key] is kind
    # Every key present at one end only is covered by exactly one addition or removal.
    for key in old.keys() ^ new.keys():
        covering = [c for c in diff.changes if _covers(c, key)]
        assert len(covering) == 1
        assert covering[0].change is (ChangeKind.ADDED if key in new else ChangeKind.REMOVED)
    assert sum(diff.summary.posture.values()) + len(diff.summary.assignments) == len(diff.changes)
    keys = [c.sort_key for c in diff.changes]
    assert len(keys) == len(set(keys))


def test_values_that_would_run_together_when_joined_are_still_told_apart() -> None:
    # The index joins each record's values with NUL (strings cost the cyclic collector
    # nothing); a value holding NUL must not make two records one.
    before = [rec(S1, "PCI\0x", "1.1", A1, P), rec(S1, "PCI", "x\x001.1", A1, F)]
    after = [rec(S1, "PCI\0x", "1.1", A1, F), rec(S1, "PCI", "x\x001.1", A1, P)]
    diff = diff_snapshots(snap(DAY1, before), snap(DAY2, after))
    kinds = sorted((c.standard, c.change) for c in diff.changes if c.level is Level.ASSESSMENT)
    assert kinds == [("PCI", ChangeKind.IMPROVED), ("PCI\0x", ChangeKind.REGRESSED)]
    assert ComplianceIndex(before).joined is None
    assert ComplianceIndex(before[:1]).joined is None
    assert ComplianceIndex([rec(S1, "PCI", "1.1", A1, P)]).joined is not None


def test_a_joined_index_and_a_tuple_index_diff_as_two_tuple_indexes() -> None:
    plain = [rec(S1, "PCI", "1.1", A1, P), rec(S1, "PCI", "1.2", A2, F)]
    odd = [
        rec(S1, "PCI", "1.1", A1, F),
        rec(S1, "PCI", "1.2", A2, F),
        rec(S1, "PCI", "1.2", "a\0b", P),
    ]
    diff = diff_snapshots(snap(DAY1, plain), snap(DAY2, odd))
    changed = sorted((c.assessment, c.change) for c in diff.changes if c.level is Level.ASSESSMENT)
    assert changed == [(A1, ChangeKind.REGRESSED), ("a\0b", ChangeKind.ADDED)]
    assert ComplianceIndex(odd).joined is None and ComplianceIndex(plain).joined is not None
