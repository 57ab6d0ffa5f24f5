"""Assessment history: first seen, first failed (start of the failing streak), last changed."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from auditor.core.model import ComplianceRecord, State, TenantPosture
from auditor.core.snapshot import CarriedAssessment, Transition
from auditor.core.transitions import KnownPrior, Prior, next_history
from tools.posture_factory import make_posture, missing_subscription, tenant_id_for, with_states

DAY1 = datetime(2024, 5, 1, 2, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
DAY3 = DAY2 + timedelta(days=1)
Key = tuple[str, str, str, str]


def history(posture: TenantPosture, at: datetime, previous: dict[Key, Prior] | None = None):  # type: ignore[no-untyped-def]
    """Run next_history and return (transitions, carried, the history the next day sees)."""
    transitions, carried = next_history(previous or {}, posture, at)
    seen: dict[Key, Prior] = {k: KnownPrior(v) for k, v in carried.items()}
    for record in posture.compliance:
        seen[record.key] = KnownPrior(CarriedAssessment(record, transitions[record.key], at))
    return transitions, carried, seen


def one_of(posture: TenantPosture, state: State) -> ComplianceRecord:
    return next(r for r in posture.compliance if r.state is state)


def test_a_new_assessment_is_first_seen_now_and_failing_since_now_if_failed() -> None:
    posture = make_posture(tenant_id_for(1))
    transitions, carried, _ = history(posture, DAY1)
    failed, passed = one_of(posture, State.FAILED), one_of(posture, State.PASSED)
    assert transitions[failed.key] == Transition(DAY1, DAY1, DAY1)
    assert transitions[passed.key] == Transition(DAY1, DAY1, None)
    assert carried == {}


def test_a_failing_streak_keeps_its_start_and_an_unchanged_state_its_last_change() -> None:
    posture = make_posture(tenant_id_for(1))
    _, _, seen = history(posture, DAY1)
    transitions, _, _ = history(posture, DAY2, seen)
    failed, passed = one_of(posture, State.FAILED), one_of(posture, State.PASSED)
    assert transitions[failed.key] == Transition(DAY1, DAY1, DAY1)
    assert transitions[passed.key] == Transition(DAY1, DAY1, None)


def test_a_state_change_moves_last_changed_and_starts_or_ends_the_failing_streak() -> None:
    posture = make_posture(tenant_id_for(1))
    failed, passed = one_of(posture, State.FAILED), one_of(posture, State.PASSED)
    _, _, seen = history(posture, DAY1)
    day2 = with_states(posture, {failed.key: State.PASSED, passed.key: State.FAILED})
    transitions, _, seen = history(day2, DAY2, seen)
    assert transitions[failed.key] == Transition(DAY1, DAY2, None)
    assert transitions[passed.key] == Transition(DAY1, DAY2, DAY2)
    day3 = with_states(day2, {passed.key: State.FAILED})
    transitions, _, _ = history(day3, DAY3, seen)
    assert transitions[passed.key] == Transition(DAY1, DAY2, DAY2)  # still failing since day 2


def test_failed_to_skipped_ends_the_streak_and_counts_as_a_change() -> None:
    posture = make_posture(tenant_id_for(1))
    failed = one_of(posture, State.FAILED)
    _, _, seen = history(posture, DAY1)
    transitions, _, _ = history(with_states(posture, {failed.key: State.SKIPPED}), DAY2, seen)
    assert transitions[failed.key] == Transition(DAY1, DAY2, None)


def test_an_unreadable_subscription_carries_its_assessments_with_their_history() -> None:
    posture = make_posture(tenant_id_for(1), subscriptions=2)
    lost = posture.tenant.subscriptions[1].subscription_id
    failed = next(
        r for r in posture.compliance if r.subscription_id == lost and r.state is State.FAILED
    )
    _, _, seen = history(posture, DAY1)

    transitions, carried, seen = history(missing_subscription(posture, lost), DAY2, seen)
    assert failed.key not in transitions
    assert carried[failed.key] == CarriedAssessment(failed, Transition(DAY1, DAY1, DAY1), DAY1)
    assert {key[0] for key in carried} == {lost}

    # Back on day 3, still failing: the streak started on day 1, not day 3.
    transitions, carried, _ = history(posture, DAY3, seen)
    assert transitions[failed.key] == Transition(DAY1, DAY1, DAY1)
    assert carried == {}


def test_a_complete_collection_ends_the_history_of_assessments_it_no_longer_sees() -> None:
    posture = make_posture(tenant_id_for(1))
    gone = posture.compliance[0]
    _, _, seen = history(posture, DAY1)
    fewer = dataclasses.replace(posture, compliance=posture.compliance[1:])
    transitions, carried, seen = history(fewer, DAY2, seen)
    assert gone.key not in transitions and carried == {}
    transitions, _, _ = history(posture, DAY3, seen)
    assert transitions[gone.key].first_seen == DAY3  # a new life


def test_subscriptions_no_longer_delegated_are_not_carried() -> None:
    posture = make_posture(tenant_id_for(1), subscriptions=2)
    lost = posture.tenant.subscriptions[1].subscription_id
    _, _, seen = history(posture, DAY1)
    incomplete = missing_subscription(posture, posture.tenant.subscriptions[0].subscription_id)
    c = incomplete.completeness
    undelegated = dataclasses.replace(
        incomplete,
        compliance=(),
        completeness=dataclasses.replace(
            c, expected_subscriptions=tuple(s for s in c.expected_subscriptions if s != lost)
        ),
    )
    _, carried, _ = history(undelegated, DAY2, seen)
    assert carried and all(key[0] != lost for key in carried)
