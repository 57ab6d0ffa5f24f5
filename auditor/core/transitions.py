"""Assessment history carried from snapshot to snapshot: first seen, first failed, last changed.

Pure. Times are scheduled slots (not wall-clock), so rerunning a slot gives the same history and
the same content hash. The history of a snapshot depends only on the previous snapshot that has
content (complete or incomplete; a failed snapshot holds none) and on the current posture.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from auditor.core.model import CollectionStatus, ComplianceRecord, State, TenantPosture
from auditor.core.snapshot import CarriedAssessment, Snapshot, Transition

Key = tuple[str, str, str, str]


class Prior(Protocol):
    """What the next snapshot needs to know of an assessment from the previous one.

    Its last observed state and its history; the whole record only if it has to be carried
    (a store can then decode records lazily: most are never carried).
    """

    @property
    def state(self) -> State: ...

    @property
    def transition(self) -> Transition: ...

    def carry(self) -> CarriedAssessment: ...


History = Mapping[Key, Prior]


@dataclass(frozen=True, slots=True)
class KnownPrior:
    """A Prior from records already in memory."""

    item: CarriedAssessment

    @property
    def state(self) -> State:
        return self.item.record.state

    @property
    def transition(self) -> Transition:
        return self.item.transition

    def carry(self) -> CarriedAssessment:
        return self.item


def history_of(snapshot: Snapshot) -> dict[Key, Prior]:
    """The history a snapshot hands on: its observed assessments and those it carried."""
    history: dict[Key, Prior] = {key: KnownPrior(item) for key, item in snapshot.carried.items()}
    at = snapshot.index.scheduled_at
    for record in snapshot.posture.compliance:
        transition = snapshot.transitions.get(record.key)
        if transition is not None:
            history[record.key] = KnownPrior(CarriedAssessment(record, transition, at))
    return history


def first_transition(record: ComplianceRecord, at: datetime) -> Transition:
    return Transition(
        first_seen=at, last_changed=at, first_failed=at if record.state is State.FAILED else None
    )


def advance(previous: Prior, record: ComplianceRecord, at: datetime) -> Transition:
    """One assessment's history after observing `record` at `at`."""
    before = previous.state
    now = record.state
    old = previous.transition
    if now is State.FAILED:
        still_failing = before is State.FAILED and old.first_failed is not None
        first_failed: datetime | None = old.first_failed if still_failing else at
    else:
        first_failed = None
    return Transition(
        first_seen=old.first_seen,
        last_changed=old.last_changed if now is before else at,
        first_failed=first_failed,
    )


def next_history(
    previous: History, posture: TenantPosture, at: datetime
) -> tuple[dict[Key, Transition], dict[Key, CarriedAssessment]]:
    """(transitions of every observed record, assessments carried unobserved).

    An assessment the collection did not observe is carried with its last record and history
    when the collection was not complete (its subscription may simply not have been read) and
    its subscription is still expected; a complete collection that no longer shows it ends its
    history (the assessment is gone).
    """
    transitions: dict[Key, Transition] = {}
    for record in posture.compliance:
        before = previous.get(record.key)
        transitions[record.key] = (
            first_transition(record, at) if before is None else advance(before, record, at)
        )
    carried: dict[Key, CarriedAssessment] = {}
    completeness = posture.completeness
    if completeness.status is not CollectionStatus.COMPLETE:
        expected = set(completeness.expected_subscriptions)
        for key, item in previous.items():
            if key not in transitions and key[0] in expected:
                carried[key] = item.carry()
    return transitions, carried
