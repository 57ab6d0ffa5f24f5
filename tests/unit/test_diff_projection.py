"""The diff projection: a diff that reads it instead of the records says exactly the same."""

from __future__ import annotations

import array
import base64
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.core.canonical import CanonicalFormatError, canonical_sections, decode_sections
from auditor.core.diff import ChangeKind, ComplianceIndex, Diff, Level, diff_snapshots
from auditor.core.model import (
    Completeness,
    ComplianceRecord,
    ControlSummary,
    StandardSummary,
    State,
    Tenant,
    TenantPosture,
)
from auditor.core.projection import (
    STANDS_FOR,
    Projection,
    RecordKey,
    decode_projection,
    projection_lines,
)
from auditor.core.snapshot import Snapshot, Transition
from auditor.services.diff_query import ChangeFilter, matching
from tools.posture_factory import flip_states, index_entry, make_sized_posture, transitions_since

TENANT = "11111111-1111-1111-1111-111111111111"
SUBS = tuple(f"aaaaaaaa-0000-0000-0000-00000000000{n}" for n in range(1, 4))
ASSESSMENTS = tuple(f"0000000{n}-0000-0000-0000-000000000000" for n in range(1, 5))
DAY1, DAY2 = "20261126T020000Z", "20261127T020000Z"
EPOCH = datetime(2026, 10, 1, 2, tzinfo=UTC)

Key = tuple[str, str, str, str]


def snapshot(
    snapshot_id: str,
    records: dict[Key, tuple[State, int, int, int, str, int | None]],
    controls: dict[tuple[str, str, str], State],
    standards: dict[tuple[str, str], State],
    collected: tuple[str, ...],
) -> Snapshot:
    compliance = tuple(
        ComplianceRecord(*key, state, passed, failed, skipped, description, "BuiltIn", "")
        for key, (state, passed, failed, skipped, description, _) in records.items()
    )
    posture = TenantPosture(
        tenant=Tenant(TENANT, "Contoso", ()),
        compliance=compliance,
        standards=tuple(
            StandardSummary(s, t, state, 1, 0, 0, 0) for (s, t), state in standards.items()
        ),
        controls=tuple(
            ControlSummary(s, t, c, f"control {c}", state, 1, 0, 0)
            for (s, t, c), state in controls.items()
        ),
        plans=(),
        secure_scores=(),
        secure_score_controls=(),
        hardening=(),
        assignments=(),
        completeness=Completeness(
            expected_subscriptions=SUBS,
            collected_subscriptions=collected,
            missing={s: "403 AuthorizationFailed" for s in SUBS if s not in collected},
        ),
    )
    transitions = {
        key: Transition(
            first_seen=EPOCH,
            last_changed=EPOCH,
            first_failed=None if days is None else EPOCH + timedelta(days=days),
        )
        for key, (*_, days) in records.items()
    }
    return Snapshot(index_entry(posture, snapshot_id), posture, transitions)


def as_stored(full: Snapshot) -> tuple[Snapshot, ComplianceIndex]:
    """What the store's diff view gives for a snapshot: every section but those the projection
    stands for, decoded from its canonical lines, and the projection's index."""
    lines = canonical_sections(full.posture, full.transitions, full.carried)
    kept = {name: section for name, section in lines.items() if name not in STANDS_FOR}
    posture = decode_sections(kept).posture
    stored = projection_lines(full.posture.compliance, full.transitions, full.posture.controls)
    index = ComplianceIndex.from_projection(decode_projection(stored))
    return Snapshot(full.index, posture), index


def both_paths(before: Snapshot, after: Snapshot) -> tuple[Diff, Diff]:
    (old, old_index), (new, new_index) = as_stored(before), as_stored(after)
    projected = diff_snapshots(old, new, before_index=old_index, after_index=new_index)
    return diff_snapshots(before, after), projected


keys = st.tuples(
    st.sampled_from(SUBS), st.sampled_from(["PCI", "ISO"]), st.sampled_from(["1", "2"]),
    st.sampled_from(ASSESSMENTS),
)  # fmt: skip
records = st.dictionaries(
    keys,
    st.tuples(
        st.sampled_from(list(State)),
        st.integers(0, 3),
        st.integers(0, 3),
        st.integers(0, 2),
        st.sampled_from(["", "Encrypt disks", 'quote " and \\ and é\u2028']),
        st.one_of(st.none(), st.integers(0, 40)),
    ),
    max_size=24,
)
controls = st.dictionaries(
    st.tuples(st.sampled_from(SUBS), st.sampled_from(["PCI", "ISO"]), st.sampled_from("12")),
    st.sampled_from(list(State)),
    max_size=8,
)
standards = st.dictionaries(
    st.tuples(st.sampled_from(SUBS), st.sampled_from(["PCI", "ISO"])),
    st.sampled_from(list(State)),
    max_size=4,
)
collected = st.lists(st.sampled_from(SUBS), unique=True).map(tuple)
filters = st.builds(
    ChangeFilter,
    standards=st.frozensets(st.sampled_from(["PCI", "ISO"]), max_size=1),
    subscriptions=st.frozensets(st.sampled_from(SUBS), max_size=1),
    kinds=st.frozensets(st.sampled_from(list(ChangeKind)), max_size=2),
    levels=st.frozensets(st.sampled_from(list(Level)), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(
    old=records,
    new=records,
    old_controls=controls,
    new_controls=controls,
    old_standards=standards,
    new_standards=standards,
    old_collected=collected,
    new_collected=collected,
    wanted=filters,
)
def test_a_diff_of_the_projections_equals_the_diff_of_the_records(
    old: dict[Key, tuple[State, int, int, int, str, int | None]],
    new: dict[Key, tuple[State, int, int, int, str, int | None]],
    old_controls: dict[tuple[str, str, str], State],
    new_controls: dict[tuple[str, str, str], State],
    old_standards: dict[tuple[str, str], State],
    new_standards: dict[tuple[str, str], State],
    old_collected: tuple[str, ...],
    new_collected: tuple[str, ...],
    wanted: ChangeFilter,
) -> None:
    before = snapshot(DAY1, old, old_controls, old_standards, old_collected)
    after = snapshot(DAY2, new, new_controls, new_standards, new_collected)
    full, projected = both_paths(before, after)
    assert projected == full
    assert list(matching(projected, wanted)) == list(matching(full, wanted))


def test_a_diff_of_large_projections_equals_the_diff_of_the_records() -> None:
    posture = make_sized_posture(TENANT, subscriptions=4, records=4_000, seed=3)
    changed = flip_states(posture, 0.05, seed=4)
    since = datetime(2026, 11, 20, 2, tzinfo=UTC)
    before = Snapshot(index_entry(posture, DAY1), posture, transitions_since(posture, since))
    after = Snapshot(index_entry(changed, DAY2), changed, transitions_since(changed, since))
    full, projected = both_paths(before, after)
    assert projected == full
    assert any(c.failing_days == 7 for c in full.changes)  # the failing streak is compared too


def test_the_projection_is_the_same_for_the_same_content_in_any_order() -> None:
    posture = make_sized_posture(TENANT, subscriptions=2, records=200, seed=1)
    transitions = transitions_since(posture, EPOCH)
    first = projection_lines(posture.compliance, transitions, posture.controls)
    again = projection_lines(reversed(posture.compliance), transitions, posture.controls[::-1])
    assert first == again
    assert all(line.isascii() and "\n" not in line for line in first)


def _projection() -> list[str]:
    posture = make_sized_posture(TENANT, subscriptions=1, records=20, seed=1)
    return projection_lines(posture.compliance, transitions_since(posture, EPOCH), ())


def _column(lines: list[str], name: str) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith(name + "="))


def _set_column(lines: list[str], name: str, values: list[int], typecode: str = "I") -> list[str]:
    edited = list(lines)
    data = base64.b64encode(array.array(typecode, values).tobytes()).decode()
    edited[_column(lines, name)] = f"{name}={typecode}:{data}"
    return edited


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda ls: [ls[0].replace("auditor-projection/2", "x"), *ls[1:]], "not auditor"),
        (lambda ls: [ls[0], '["a",7]', *ls[2:]], "not a list of strings"),
        (lambda ls: [ls[0][:-3], *ls[1:]], "not JSON"),
        (lambda ls: ls[:-1], "has 16 lines, not 15"),
        (lambda ls: _set_column(ls, "records.passed", [1, 2], "Q"), "holds 2 values"),
        (lambda ls: _set_column(ls, "records.assessment", [10_000] * 20), "names no string"),
        (lambda ls: _set_column(ls, "records.first_failed", [10_000] * 20), "names no string"),
        (lambda ls: _set_column(ls, "records.standard", [10_000] * 20), "names no string"),
        (lambda ls: _set_column(ls, "records.state", [0] * 20), "names no state"),
        (lambda ls: [*ls[:2], "records.oops=", *ls[3:]], "expected column records.subscription"),
        (lambda ls: [*ls[:2], "records.subscription=I:@@", *ls[3:]], "records.subscription"),
        (lambda ls: [*ls[:2], "records.subscription=Q:AAAA", *ls[3:]], "expected column"),
    ],
)
def test_a_malformed_projection_is_a_format_error(
    edit: Callable[[list[str]], list[str]], problem: str
) -> None:
    with pytest.raises(CanonicalFormatError, match=problem):
        decode_projection(edit(_projection()))


def projected_indexes(before: Snapshot, after: Snapshot) -> tuple[Diff, ComplianceIndex, ...]:
    (old, old_index), (new, new_index) = as_stored(before), as_stored(after)
    diff = diff_snapshots(old, new, before_index=old_index, after_index=new_index)
    return diff, old_index, new_index


values = st.tuples(
    st.sampled_from(list(State)),
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(0, 2),
    st.sampled_from(["", "Encrypt disks"]),
    st.one_of(st.none(), st.integers(0, 40)),
)


@settings(max_examples=300, deadline=None)
@given(
    old=records,
    new_values=st.lists(values, min_size=24, max_size=24),
    old_collected=collected,
    new_collected=collected,
)
def test_ends_holding_the_same_records_are_compared_in_place_and_say_the_same(
    old: dict[Key, tuple[State, int, int, int, str, int | None]],
    new_values: list[tuple[State, int, int, int, str, int | None]],
    old_collected: tuple[str, ...],
    new_collected: tuple[str, ...],
) -> None:
    # The usual day to day: the same assessments, some in another state, counts or streak.
    new = dict(zip(old, new_values, strict=False))
    control_states = {key[:3]: State.PASSED for key in old}
    before = snapshot(DAY1, old, control_states, {}, old_collected)
    after = snapshot(DAY2, new, control_states, {}, new_collected)
    projected, old_index, new_index = projected_indexes(before, after)
    assert projected == diff_snapshots(before, after)
    # Compared in place: neither projection built its list of keys (nor the (key, state)
    # strings), so the cold diff costs no step per record.
    assert old_index.projected is not None and new_index.projected is not None
    assert old_index.projected.projection.keys_built is False
    assert new_index.projected.projection.keys_built is False


def test_a_key_held_twice_is_compared_in_place_as_its_set_of_states() -> None:
    # A content holding one key twice (never collected so: rows are de-duplicated by id; a
    # stored snapshot is read as it is) diffs as before: the key's states compared as sets.
    key = (SUBS[0], "PCI", "1", ASSESSMENTS[0])
    other = (SUBS[0], "PCI", "1", ASSESSMENTS[1])
    cases = [
        ((State.PASSED, State.FAILED), (State.FAILED, State.FAILED)),  # one state left
        ((State.PASSED, State.FAILED), (State.PASSED, State.SKIPPED)),
        ((State.FAILED, State.PASSED), (State.PASSED, State.FAILED)),  # the same set
    ]
    for was, now in cases:
        ends = []
        for snapshot_id, states in ((DAY1, was), (DAY2, now)):
            posture = snapshot(snapshot_id, {other: (State.PASSED, 1, 0, 0, "", None)}, {}, {},
                               SUBS).posture  # fmt: skip
            twice = tuple(
                ComplianceRecord(*key, state, 1, 0, 0, "", "BuiltIn", "") for state in states
            )
            posture = dataclasses.replace(posture, compliance=posture.compliance + twice)
            streaks = {k: Transition(EPOCH, EPOCH, None) for k in (key, other)}
            ends.append(Snapshot(index_entry(posture, snapshot_id), posture, streaks))
        projected, old_index, _ = projected_indexes(*ends)
        assert old_index.projected is not None
        assert old_index.projected.projection.keys_built is False, (was, now)
        full = diff_snapshots(*(as_canonical(end) for end in ends))
        assert projected.changes == full.changes, (was, now)
        assert projected.summary == full.summary, (was, now)


def as_canonical(end: Snapshot) -> Snapshot:
    """`end` with its records in canonical order (key, then state), as the store reads them."""
    ordered = sorted(end.posture.compliance, key=lambda r: (*r.key, r.state.value))
    posture = dataclasses.replace(end.posture, compliance=tuple(ordered))
    return dataclasses.replace(end, posture=posture)


def test_equal_key_columns_that_number_other_strings_are_not_the_same_records() -> None:
    # The same shape in another subscription: every column holds the same numbers, but they
    # number other strings; the diff must see one subscription's records leave, another's come.
    shape = {(SUBS[0], "PCI", "1", ASSESSMENTS[0]): (State.PASSED, 1, 0, 0, "", None)}
    moved = {(SUBS[1], *key[1:]): value for key, value in shape.items()}
    before = snapshot(DAY1, shape, {}, {}, SUBS)
    after = snapshot(DAY2, moved, {}, {}, SUBS)
    projected, old_index, _ = projected_indexes(before, after)
    assert projected == diff_snapshots(before, after)
    assert old_index.projected is not None and old_index.projected.projection.keys_built
    assert {(c.subscription_id, c.change) for c in projected.changes} == {
        (SUBS[0], ChangeKind.REMOVED),
        (SUBS[1], ChangeKind.ADDED),
    }


def test_keys_that_would_join_alike_are_told_apart_by_a_projection() -> None:
    # Joined by NUL, (…, "1\0x", "a") and (…, "1", "x\0a") are one string: a projection whose
    # strings hold NUL searches and compares its keys as tuples.
    first = (SUBS[0], "PCI", "1\0x", "a")
    second = (SUBS[0], "PCI", "1", "x\0a")
    gone = (SUBS[0], "PCI", "2", "b")
    old = {
        first: (State.PASSED, 1, 0, 0, "", None),
        second: (State.FAILED, 0, 1, 0, "", 3),
        gone: (State.PASSED, 1, 0, 0, "", None),
    }
    new = {first: (State.FAILED, 0, 2, 0, "", 5), second: (State.FAILED, 0, 1, 0, "", 3)}
    before = snapshot(DAY1, old, {}, {}, SUBS)
    after = snapshot(DAY2, new, {}, {}, SUBS)
    projected, old_index, _ = projected_indexes(before, after)
    assert old_index.projected is not None and not old_index.projected.projection.joinable
    assert projected == diff_snapshots(before, after)
    assert [(c.control, c.assessment, c.change) for c in projected.changes] == [
        ("1\0x", "a", ChangeKind.REGRESSED),
        ("2", None, ChangeKind.REMOVED),
    ]


def test_a_key_held_many_times_is_walked_once_however_many_of_its_records_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Walking the key's run for each of its changed records made this quadratic: a stored
    # snapshot holding one key 8,000 times took 25 s to diff. Counted, not timed.
    held = 400
    key = (SUBS[0], "PCI", "1", ASSESSMENTS[0])
    ends = []
    for snapshot_id, state in ((DAY1, State.PASSED), (DAY2, State.FAILED)):
        posture = snapshot(snapshot_id, {}, {}, {}, SUBS).posture
        records = tuple(
            ComplianceRecord(*key, state, n, 0, 0, "", "BuiltIn", "") for n in range(held)
        )
        posture = dataclasses.replace(posture, compliance=records)
        streaks = {key: Transition(EPOCH, EPOCH, None)}
        ends.append(Snapshot(index_entry(posture, snapshot_id), posture, streaks))
    (old, old_index), (new, new_index) = as_stored(ends[0]), as_stored(ends[1])
    calls = [0]
    key_at = Projection.key_at

    def counted(self: Projection, position: int) -> RecordKey:
        calls[0] += 1
        return key_at(self, position)

    monkeypatch.setattr(Projection, "key_at", counted)
    projected = diff_snapshots(old, new, before_index=old_index, after_index=new_index)
    assert [(c.assessment, c.change) for c in projected.changes] == [
        (ASSESSMENTS[0], ChangeKind.REGRESSED)
    ]
    assert calls[0] <= 2 * held + 10  # one walk of the run, not one per changed record
