"""What changed for one tenant between two snapshots. Pure: no I/O.

Every change falls in exactly one category:

- scope changes, per subscription: ``added`` / ``removed`` (the subscription entered or left
  the tenant's delegated scope) and ``incomparable`` (in scope at both ends, but either snapshot
  lacks its data); and per (subscription, standard): a standard assigned (``added``) or
  unassigned (``removed``), reported at level ``standard``. None is counted as a posture change,
  and none moves the ``comparable`` compliance figures;
- posture changes, inside subscriptions collected at both ends: ``regressed`` (to Failed),
  ``improved`` (Failed to Passed), ``changed`` (any other state transition), and ``added`` /
  ``removed`` when a control or assessment appeared or vanished. A change is reported at the
  highest level that appeared or vanished: a new standard is one change, not one per
  assessment.

Resource counts that move while the state stays the same are not changes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Any, Protocol

from auditor.core.alert_diff import AlertDiff, diff_alerts
from auditor.core.model import (
    ComplianceRecord,
    DefenderPlan,
    SecureScore,
    State,
)
from auditor.core.projection import (
    SEP,
    ControlRow,
    ProjectedRecord,
    Projection,
    acyclic_build,
)
from auditor.core.recommendation_diff import RecommendationDiff, diff_recommendations
from auditor.core.registry import ALERTS, RECOMMENDATIONS, Section, records_of
from auditor.core.snapshot import Snapshot, SnapshotIndexEntry, compliance_of_states

RecordKey = tuple[str, str, str, str]


class DiffRecord(Protocol):
    """What a diff reads of a compliance record (a ComplianceRecord, or a projection's)."""

    @property
    def state(self) -> State: ...
    @property
    def passed_resources(self) -> int: ...
    @property
    def failed_resources(self) -> int: ...
    @property
    def skipped_resources(self) -> int: ...
    @property
    def description(self) -> str: ...


class ChangeKind(StrEnum):
    REGRESSED = "regressed"
    IMPROVED = "improved"
    CHANGED = "changed"
    ADDED = "added"
    REMOVED = "removed"
    INCOMPARABLE = "incomparable"


class Level(StrEnum):
    """What a change is about: a whole subscription (scope), or a posture element."""

    SUBSCRIPTION = "subscription"
    STANDARD = "standard"
    CONTROL = "control"
    ASSESSMENT = "assessment"


POSTURE_KINDS: tuple[ChangeKind, ...] = (
    ChangeKind.REGRESSED,
    ChangeKind.IMPROVED,
    ChangeKind.CHANGED,
    ChangeKind.ADDED,
    ChangeKind.REMOVED,
)


@dataclass(frozen=True, slots=True)
class Side:
    """One end of a change: the state and resource counts (summed for a standard or control)."""

    state: State | None
    passed_resources: int
    failed_resources: int
    skipped_resources: int
    assessments: int


@dataclass(frozen=True, slots=True)
class Change:
    subscription_id: str
    level: Level
    change: ChangeKind
    standard: str | None
    control: str | None
    assessment: str | None
    before: Side | None
    after: Side | None
    description: str = ""
    # Where the later end is Failed: start of the current failing streak and its length.
    failing_since: datetime | None = None
    failing_days: int | None = None
    # Scope changes: why (e.g. the reason a subscription was not collected).
    reason: str | None = None

    @property
    def sort_key(self) -> tuple[str, str, str, str]:
        return (
            self.subscription_id,
            self.standard or "",
            self.control or "",
            self.assessment or "",
        )


@dataclass(frozen=True, slots=True)
class StandardCompliance:
    """Compliance of one standard at both ends (percent of passed controls; None = no data).

    ``before`` / ``after`` are what each snapshot reports for the tenant; the ``comparable_``
    figures count only (subscription, standard) pairs present at both ends, in subscriptions
    collected at both ends: neither a subscription entering or leaving the scope nor a standard
    assigned to or unassigned from a subscription moves them (both are scope changes).
    """

    standard: str
    before: float | None
    after: float | None
    delta: float | None
    comparable_before: float | None
    comparable_after: float | None
    comparable_delta: float | None


@dataclass(frozen=True, slots=True)
class AssignmentChange:
    """A standard assigned to (``added``) or unassigned from (``removed``) a subscription
    collected at both ends: a change of scope, not of posture."""

    subscription_id: str
    standard: str
    change: ChangeKind


@dataclass(frozen=True, slots=True)
class PlanDowngrade:
    subscription_id: str
    plan: str
    before_tier: str
    after_tier: str
    before_sub_plan: str
    after_sub_plan: str


@dataclass(frozen=True, slots=True)
class SecureScoreDrop:
    subscription_id: str
    before: float
    after: float
    delta: float


@dataclass(frozen=True, slots=True)
class DiffSummary:
    # regressed, improved, changed, added, removed; standard assignments are scope, not counted
    posture: dict[ChangeKind, int]
    subscriptions_added: int
    subscriptions_removed: int
    subscriptions_incomparable: int
    subscriptions_compared: int
    compliance: tuple[StandardCompliance, ...]
    plan_downgrades: tuple[PlanDowngrade, ...]
    secure_score_drops: tuple[SecureScoreDrop, ...]
    assignments: tuple[AssignmentChange, ...] = ()  # by subscription, standard
    # Security alerts new and resolved; None when an end was taken before alerts were collected.
    alerts: AlertDiff | None = None
    # Recommendations newly unhealthy / healthy and resources that became unhealthy; None when
    # an end was taken before recommendations were collected (not comparable, never "no change").
    recommendations: RecommendationDiff | None = None
    recommendations_not_comparable: str = ""  # why `recommendations` is None, in words
    alerts_not_comparable: str = ""  # why `alerts` is None, in words


@dataclass(frozen=True, slots=True)
class Diff:
    before: SnapshotIndexEntry
    after: SnapshotIndexEntry
    summary: DiffSummary
    changes: tuple[Change, ...]  # ordered by subscription, standard, control, assessment

    @property
    def complete(self) -> bool:
        """Both ends were committed complete."""
        return self.before.status.value == "complete" and self.after.status.value == "complete"


def _delta(before: float | None, after: float | None) -> float | None:
    if before is None or after is None:
        return None
    return round(after - before, 2)


def _scope(snapshot: Snapshot) -> set[str]:
    index = snapshot.index
    return set(index.expected_subscriptions) | set(index.collected_subscriptions)


def _missing_reason(snapshot: Snapshot, subscription_id: str, end: str) -> str:
    why = snapshot.posture.completeness.missing.get(subscription_id)
    detail = f": {why}" if why else ""
    return f"not collected in the {end} snapshot ({snapshot.index.snapshot_id}){detail}"


def _predating(before: Snapshot, after: Snapshot, section: Section[Any], what: str) -> str:
    """Which end predates a later section, in words ("" when both hold it)."""
    ends = [
        f"the {end} snapshot ({snap.index.snapshot_id})"
        for end, snap in (("from", before), ("to", after))
        if records_of(snap.posture, section) is None
    ]
    if not ends:
        return ""
    verb = "predates" if len(ends) == 1 else "predate"
    return f"not comparable: {' and '.join(ends)} {verb} the collection of {what}"


_KEY = attrgetter("subscription_id", "standard", "control", "assessment")
_KEY_AND_STATE = attrgetter("subscription_id", "standard", "control", "assessment", "state._value_")
_STANDARD = itemgetter(0, 1)
_CONTROL = itemgetter(0, 1, 2)


class _ProjectedRecords(Mapping[RecordKey, ProjectedRecord]):
    """A projection's records by key, each built when a diff asks for it."""

    def __init__(self, projection: Projection) -> None:
        self.projection = projection
        # Positions found so far (a memo: the projection never changes); a diff of two ends
        # holding the same records fills it with the positions it compared.
        self._positions: dict[RecordKey, int] = {}

    def __getitem__(self, key: RecordKey) -> ProjectedRecord:
        position = self._positions.get(key)
        if position is None:
            position = self._positions[key] = self.projection.position_of(key)
        return self.projection.record(position)

    def remember(self, key: RecordKey, position: int) -> None:
        self._positions[key] = position

    def __iter__(self) -> Iterator[RecordKey]:
        return iter(dict.fromkeys(self.projection.keys))  # each key once, as a dict's keys

    def __len__(self) -> int:
        return len(self.projection)


StateTuple = tuple[str, str, str, str, str]


def _joined(states: Iterable[StateTuple], values: Iterable[str]) -> frozenset[str] | None:
    """Each (key, state) as one string, its values joined by SEP; None when one of `values`
    (every value the states hold) contains SEP, which would make two keys one."""
    if SEP in "".join(values):
        return None
    return frozenset(map(SEP.join, states))


def _split_keys(joined: Iterable[str], comparable: set[str]) -> set[RecordKey]:
    parts = (t.split(SEP) for t in joined)
    return {(p[0], p[1], p[2], p[3]) for p in parts if p[0] in comparable}


def differing(
    old: ComplianceIndex, new: ComplianceIndex, comparable: set[str]
) -> tuple[set[RecordKey], set[RecordKey]]:
    """Keys of the records whose (key, state) is found only in `old`, and only in `new`, of
    the `comparable` subscriptions."""
    if old.projected is not None and new.projected is not None:
        found = _differing_in_place(old.projected, new.projected, comparable)
        if found is not None:
            return found
    if old.joined is not None and new.joined is not None:
        return (
            _split_keys(old.joined - new.joined, comparable),
            _split_keys(new.joined - old.joined, comparable),
        )
    return (
        {t[:4] for t in old.states - new.states if t[0] in comparable},
        {t[:4] for t in new.states - old.states if t[0] in comparable},
    )


def _differing_in_place(
    old: _ProjectedRecords, new: _ProjectedRecords, comparable: set[str]
) -> tuple[set[RecordKey], set[RecordKey]] | None:
    """`differing` for two projections holding the same keys in the same order (None when
    they do not): their state columns compared position by position, no key built but those
    of the records that changed. For each, the states of every record of its key at both ends
    are compared as sets, which is what `differing` compares. Equal keys are adjacent: the
    commit writes the records sorted, the anchor covers what it wrote, and ``verify``
    recomputes the projection from the content."""
    before, after = old.projection, new.projection
    if not before.same_keys(after):
        return None
    gone: set[RecordKey] = set()
    came: set[RecordKey] = set()
    walked = 0  # positions before this are in a run already compared
    for position in before.changed_positions(after):
        if position < walked:
            continue  # a key held more than once: its run is compared once, not per change
        key = before.key_at(position)
        if key[0] not in comparable:
            continue
        run = before.run_of(position)
        walked = run.stop
        was = {before.state_at(p) for p in run}
        now = {after.state_at(p) for p in run}
        if was - now:
            gone.add(key)
        if now - was:
            came.add(key)
        old.remember(key, run[-1])  # the last of equal keys, as a dict keeps
        new.remember(key, run[-1])
    return gone, came


class ComplianceIndex:
    """A snapshot's compliance records arranged for diffing; build once per snapshot and reuse.

    Built with C-level maps (no Python loop per record): diffing two 100,000-record snapshots
    then costs set differences, not a walk over every record.
    """

    __slots__ = (
        "_controls",
        "_joined",
        "_ready",
        "_standards",
        "_tuples",
        "control_rows",
        "projected",
        "records",
    )

    def __init__(self, records: Sequence[ComplianceRecord]) -> None:
        self.records: Mapping[RecordKey, DiffRecord] = dict(
            zip(map(_KEY, records), records, strict=True)
        )
        # Each record's (subscription, standard, control, assessment, state) joined by SEP into
        # one string (strings are not tracked by the cyclic collector, 5-tuples are: a diff of
        # two 100,000-record snapshots otherwise pays a collection walking 200,000 of them);
        # None when a value holds SEP, which would make two keys one: then 5-tuples.
        states: list[StateTuple] = list(map(_KEY_AND_STATE, records))
        self._joined: frozenset[str] | None = _joined(states, chain.from_iterable(states))
        self._tuples: frozenset[StateTuple] | None = (
            None if self._joined is not None else frozenset(states)
        )
        self._ready = True  # a projection's are built on first use (``joined``)
        # From a projection: its controls and records (else the snapshot's are read).
        self.control_rows: Sequence[ControlRow] | None = None
        self.projected: _ProjectedRecords | None = None
        self._standards: frozenset[tuple[str, str]] | None = None
        self._controls: frozenset[tuple[str, str, str]] | None = None

    @classmethod
    def from_projection(cls, projection: Projection) -> ComplianceIndex:
        """The index of a snapshot's diff projection: the same keys and states as the index
        of its records, with a record's fields built only for the keys a diff reports, and
        its (key, state) strings only when a diff cannot compare state columns in place."""
        index = cls(())
        index.projected = index.records = _ProjectedRecords(projection)
        index.control_rows = projection.controls
        index._ready = False
        return index

    def _build(self) -> None:
        assert self.projected is not None
        projection = self.projected.projection
        joined = projection.joined_states()
        if joined is None:
            with acyclic_build():
                self._tuples = frozenset(projection.keys_and_states())
        self._joined = joined
        self._ready = True  # last: a concurrent reader sees both built, or builds them too

    @property
    def joined(self) -> frozenset[str] | None:
        """Each (key, state) as one string (None when a value holds SEP: see ``states``)."""
        if not self._ready:
            self._build()
        return self._joined

    @property
    def states(self) -> frozenset[StateTuple]:
        """(subscription, standard, control, assessment, state) of every record."""
        if not self._ready:
            self._build()
        if self._tuples is None:
            parts = (t.split(SEP) for t in self._joined or ())
            self._tuples = frozenset((p[0], p[1], p[2], p[3], p[4]) for p in parts)
        return self._tuples

    @property
    def standards(self) -> frozenset[tuple[str, str]]:
        """(subscription, standard) pairs that have at least one record."""
        if self._standards is None:
            projected = self.projected
            self._standards = (
                frozenset(map(_STANDARD, self.records))
                if projected is None
                else projected.projection.standards()
            )
        return self._standards

    @property
    def controls(self) -> frozenset[tuple[str, str, str]]:
        """(subscription, standard, control) triples that have at least one record."""
        if self._controls is None:
            projected = self.projected
            self._controls = (
                frozenset(map(_CONTROL, self.records))
                if projected is None
                else projected.projection.control_keys()
            )
        return self._controls

    def controls_of(self, snapshot: Snapshot) -> Sequence[ControlRow]:
        """The snapshot's controls: (subscription, standard, control, state), from the
        projection when the index was built from one."""
        if self.control_rows is not None:
            return self.control_rows
        controls = snapshot.posture.controls
        return [(c.subscription_id, c.standard, c.control, c.state) for c in controls]

    def first_failed(self, snapshot: Snapshot, key: RecordKey) -> datetime | None:
        """Start of the record's failing streak, from the projection or the snapshot's history."""
        if self.projected is not None:
            return self.projected[key].first_failed
        transition = snapshot.transitions.get(key)
        return None if transition is None else transition.first_failed

    def __len__(self) -> int:
        return len(self.records)


def _side(record: DiffRecord) -> Side:
    return Side(
        state=record.state,
        passed_resources=record.passed_resources,
        failed_resources=record.failed_resources,
        skipped_resources=record.skipped_resources,
        assessments=1,
    )


def _sum_side(state: State | None, records: list[DiffRecord]) -> Side:
    return Side(
        state=state,
        passed_resources=sum(r.passed_resources for r in records),
        failed_resources=sum(r.failed_resources for r in records),
        skipped_resources=sum(r.skipped_resources for r in records),
        assessments=len(records),
    )


def _kind(before: State, after: State) -> ChangeKind:
    if after is State.FAILED:
        return ChangeKind.REGRESSED
    if before is State.FAILED and after is State.PASSED:
        return ChangeKind.IMPROVED
    return ChangeKind.CHANGED


class _Appearance:
    """Groups keys present at only one end into standard-, control- or assessment-level changes."""

    def __init__(self, snapshot: Snapshot, index: ComplianceIndex, other: ComplianceIndex) -> None:
        self.records = index.records
        self.other_standards = other.standards
        self.other_controls = other.controls
        self.standard_states = {
            (s.subscription_id, s.standard): s.state for s in snapshot.posture.standards
        }
        self.control_states = {
            (sub, standard, control): state
            for sub, standard, control, state in index.controls_of(snapshot)
        }

    def changes(self, keys: Iterable[RecordKey], kind: ChangeKind, at_after: bool) -> list[Change]:
        groups: dict[tuple[str, ...], list[DiffRecord]] = defaultdict(list)
        for key in keys:
            if key[:2] not in self.other_standards:
                groups[key[:2]].append(self.records[key])
            elif key[:3] not in self.other_controls:
                groups[key[:3]].append(self.records[key])
            else:
                groups[key].append(self.records[key])
        out: list[Change] = []
        for group, records in groups.items():
            if len(group) == 2:
                level = Level.STANDARD
                side = _sum_side(self.standard_states.get((group[0], group[1])), records)
                description = ""
            elif len(group) == 3:
                level = Level.CONTROL
                side = _sum_side(self.control_states.get((group[0], group[1], group[2])), records)
                description = ""
            else:
                level = Level.ASSESSMENT
                side = _side(records[0])
                description = records[0].description
            out.append(
                Change(
                    subscription_id=group[0],
                    level=level,
                    change=kind,
                    standard=group[1],
                    control=group[2] if len(group) > 2 else None,
                    assessment=group[3] if len(group) > 3 else None,
                    before=None if at_after else side,
                    after=side if at_after else None,
                    description=description,
                )
            )
        return out


def _failing(
    snapshot: Snapshot, index: ComplianceIndex, key: RecordKey, state: State | None
) -> tuple[datetime | None, int | None]:
    if state is not State.FAILED:
        return None, None
    first_failed = index.first_failed(snapshot, key)
    if first_failed is None:
        return None, None
    elapsed = snapshot.index.scheduled_at - first_failed
    return first_failed, max(0, math.floor(elapsed.total_seconds() / 86400))


def _with_failing(snapshot: Snapshot, index: ComplianceIndex, change: Change) -> Change:
    if change.level is not Level.ASSESSMENT or change.after is None:
        return change
    assert change.standard is not None and change.control is not None
    assert change.assessment is not None
    key = (change.subscription_id, change.standard, change.control, change.assessment)
    since, days = _failing(snapshot, index, key, change.after.state)
    if since is None:
        return change
    return Change(
        subscription_id=change.subscription_id,
        level=change.level,
        change=change.change,
        standard=change.standard,
        control=change.control,
        assessment=change.assessment,
        before=change.before,
        after=change.after,
        description=change.description,
        failing_since=since,
        failing_days=days,
    )


def _compliance(
    before: Snapshot,
    after: Snapshot,
    comparable: set[str],
    controls: tuple[Sequence[ControlRow], Sequence[ControlRow]],
) -> tuple[StandardCompliance, ...]:
    controls_before, controls_after = controls
    pairs_before = set(map(_STANDARD, controls_before))
    pairs_after = set(map(_STANDARD, controls_after))
    # Only pairs present at both ends: an unassignment must not read as a compliance drop.
    both = {pair for pair in pairs_before & pairs_after if pair[0] in comparable}

    def comparable_only(controls: Iterable[ControlRow]) -> dict[str, float | None]:
        return compliance_of_states((c[1], c[3]) for c in controls if (c[0], c[1]) in both)

    reported_before = before.index.compliance_by_standard
    reported_after = after.index.compliance_by_standard
    cmp_before = comparable_only(controls_before)
    cmp_after = comparable_only(controls_after)
    standards = sorted(
        set(reported_before) | set(reported_after) | set(cmp_before) | set(cmp_after)
    )
    return tuple(
        StandardCompliance(
            standard=standard,
            before=reported_before.get(standard),
            after=reported_after.get(standard),
            delta=_delta(reported_before.get(standard), reported_after.get(standard)),
            comparable_before=cmp_before.get(standard),
            comparable_after=cmp_after.get(standard),
            comparable_delta=_delta(cmp_before.get(standard), cmp_after.get(standard)),
        )
        for standard in standards
    )


def _assignments(changes: Iterable[Change]) -> tuple[AssignmentChange, ...]:
    """Standard-level appearances inside compared subscriptions, as assignment changes."""
    return tuple(
        AssignmentChange(c.subscription_id, c.standard, c.change)
        for c in changes
        if c.level is Level.STANDARD and c.standard is not None
    )


def plan_downgrades(
    before: Iterable[DefenderPlan], after: Iterable[DefenderPlan], subscriptions: set[str]
) -> tuple[PlanDowngrade, ...]:
    """Plans that were Standard and are now Free, in the given subscriptions."""
    later = {(p.subscription_id, p.plan): p for p in after}
    out: list[PlanDowngrade] = []
    for plan in before:
        if plan.subscription_id not in subscriptions or plan.tier != "Standard":
            continue
        now = later.get((plan.subscription_id, plan.plan))
        if now is not None and now.tier == "Free":
            out.append(
                PlanDowngrade(
                    subscription_id=plan.subscription_id,
                    plan=plan.plan,
                    before_tier=plan.tier,
                    after_tier=now.tier,
                    before_sub_plan=plan.sub_plan,
                    after_sub_plan=now.sub_plan,
                )
            )
    return tuple(sorted(out, key=lambda d: (d.subscription_id, d.plan)))


def secure_score_drops(
    before: Iterable[SecureScore], after: Iterable[SecureScore], subscriptions: set[str]
) -> tuple[SecureScoreDrop, ...]:
    """Subscriptions whose secure score percentage went down."""
    later = {s.subscription_id: s for s in after}
    out: list[SecureScoreDrop] = []
    for score in before:
        now = later.get(score.subscription_id)
        if score.subscription_id not in subscriptions or now is None:
            continue
        if now.percentage < score.percentage:
            out.append(
                SecureScoreDrop(
                    subscription_id=score.subscription_id,
                    before=score.percentage,
                    after=now.percentage,
                    delta=round(now.percentage - score.percentage, 4),
                )
            )
    return tuple(sorted(out, key=lambda d: d.subscription_id))


def _scope_change(subscription_id: str, kind: ChangeKind, reason: str) -> Change:
    return Change(
        subscription_id=subscription_id,
        level=Level.SUBSCRIPTION,
        change=kind,
        standard=None,
        control=None,
        assessment=None,
        before=None,
        after=None,
        reason=reason,
    )


def _scope_changes(before: Snapshot, after: Snapshot) -> tuple[list[Change], set[str]]:
    """Subscription-level changes, and the subscriptions whose posture can be compared."""
    scope_before, scope_after = _scope(before), _scope(after)
    collected_before = set(before.index.collected_subscriptions)
    collected_after = set(after.index.collected_subscriptions)
    changes = [
        _scope_change(sub, ChangeKind.ADDED, "entered the tenant's delegated scope")
        for sub in sorted(scope_after - scope_before)
    ]
    changes += [
        _scope_change(sub, ChangeKind.REMOVED, "left the tenant's delegated scope")
        for sub in sorted(scope_before - scope_after)
    ]
    comparable: set[str] = set()
    for sub in sorted(scope_before & scope_after):
        reasons = []
        if sub not in collected_before:
            reasons.append(_missing_reason(before, sub, "from"))
        if sub not in collected_after:
            reasons.append(_missing_reason(after, sub, "to"))
        if reasons:
            changes.append(_scope_change(sub, ChangeKind.INCOMPARABLE, "; ".join(reasons)))
        else:
            comparable.add(sub)
    return changes, comparable


def diff_snapshots(
    before: Snapshot,
    after: Snapshot,
    *,
    before_index: ComplianceIndex | None = None,
    after_index: ComplianceIndex | None = None,
) -> Diff:
    """The diff from `before` to `after` (two snapshots of one tenant): summary and changes.

    Changes are ordered by subscription, standard, control and assessment; a subscription's
    scope change comes before anything else about it. Pass each snapshot's ComplianceIndex when
    it is at hand (a cache keeps them): the result is the same, only faster.
    """
    if before.index.tenant_id != after.index.tenant_id:
        raise ValueError("a diff compares two snapshots of the same tenant")
    # `is None`, not `or`: an index of no records is falsy, and may carry a projection's controls.
    old = ComplianceIndex(before.posture.compliance) if before_index is None else before_index
    new = ComplianceIndex(after.posture.compliance) if after_index is None else after_index
    changes, comparable = _scope_changes(before, after)
    scope_changes = list(changes)

    # Records whose (key, state) is found at one end only: a transition, or an appearance.
    old_keys, new_keys = differing(old, new, comparable)
    for key in old_keys & new_keys:
        was, now = old.records[key], new.records[key]
        since, days = _failing(after, new, key, now.state)
        changes.append(
            Change(
                subscription_id=key[0],
                level=Level.ASSESSMENT,
                change=_kind(was.state, now.state),
                standard=key[1],
                control=key[2],
                assessment=key[3],
                before=_side(was),
                after=_side(now),
                description=now.description,
                failing_since=since,
                failing_days=days,
            )
        )
    if new_keys - old_keys:
        appeared = _Appearance(after, new, old).changes(
            new_keys - old_keys, ChangeKind.ADDED, at_after=True
        )
        changes.extend(_with_failing(after, new, change) for change in appeared)
    if old_keys - new_keys:
        changes.extend(
            _Appearance(before, old, new).changes(
                old_keys - new_keys, ChangeKind.REMOVED, at_after=False
            )
        )
    changes.sort(key=lambda c: c.sort_key)
    counts = dict.fromkeys(POSTURE_KINDS, 0)
    for change in changes:
        if change.level not in (Level.SUBSCRIPTION, Level.STANDARD):
            counts[change.change] += 1
    summary = DiffSummary(
        posture=counts,
        subscriptions_added=sum(1 for c in scope_changes if c.change is ChangeKind.ADDED),
        subscriptions_removed=sum(1 for c in scope_changes if c.change is ChangeKind.REMOVED),
        subscriptions_incomparable=sum(
            1 for c in scope_changes if c.change is ChangeKind.INCOMPARABLE
        ),
        subscriptions_compared=len(comparable),
        compliance=_compliance(
            before, after, comparable, (old.controls_of(before), new.controls_of(after))
        ),
        plan_downgrades=plan_downgrades(before.posture.plans, after.posture.plans, comparable),
        secure_score_drops=secure_score_drops(
            before.posture.secure_scores, after.posture.secure_scores, comparable
        ),
        assignments=_assignments(changes),
        alerts=diff_alerts(before.posture, after.posture, comparable),
        recommendations=diff_recommendations(before.posture, after.posture, comparable),
        recommendations_not_comparable=_predating(
            before, after, RECOMMENDATIONS, "recommendations"
        ),
        alerts_not_comparable=_predating(before, after, ALERTS, "security alerts"),
    )
    return Diff(before=before.index, after=after.index, summary=summary, changes=tuple(changes))
