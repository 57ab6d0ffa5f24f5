"""A snapshot's diff projection: what a diff needs of its compliance records and controls. Pure.

Decoding a 100,000-record snapshot's compliance lines takes seconds; a diff needs only each
record's identity, state, resource counts, description and the start of its failing streak, and
each control's identity and state. The projection holds exactly these, column by column, as one
canonical JSON line (integers into one table of strings, so the repeated identifiers and
descriptions are stored once): it decodes in tens of milliseconds.

It is derived, not evidence of its own: it is stored as its own content section beside the
canonical sections (never in the content hash, so every hash is unchanged), covered by the
anchor's content digest like every content entity, and ``verify`` recomputes it from the
canonical content and reports any difference. A snapshot stored before the projection existed
has none; its diff decodes the records (docs/schema.md, "Diff projection").
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from auditor.core.canonical import CanonicalFormatError, dumps, format_time, parse_time
from auditor.core.model import ComplianceRecord, ControlSummary, State
from auditor.core.snapshot import Snapshot, Transition

SECTION = "projection"
FORMAT = "auditor-projection/1"
# Sections a diff view does not read: the projection stands for them (and a diff never needs
# the carried assessments).
STANDS_FOR: tuple[str, ...] = ("compliance", "carried", "controls")

RecordKey = tuple[str, str, str, str]
_RECORD_COLUMNS = (
    "subscription",
    "standard",
    "control",
    "assessment",
    "state",
    "passed",
    "failed",
    "skipped",
    "description",
    "first_failed",  # index of the time's text, -1 when not failing
)
_TEXT_COLUMNS = ("subscription", "standard", "control", "assessment", "state", "description")
_CONTROL_COLUMNS = ("subscription", "standard", "control", "state")
_STATES = {state.value: state for state in State}


class ControlState(NamedTuple):
    """A control's identity and state: what a diff needs of a ControlSummary."""

    subscription_id: str
    standard: str
    control: str
    state: State


@dataclass(frozen=True, slots=True)
class ProjectedRecord:
    """What a diff reads of one compliance record."""

    state: State
    passed_resources: int
    failed_resources: int
    skipped_resources: int
    description: str
    first_failed: datetime | None


class _Strings:
    """Strings numbered in order of first use (the same content gives the same table)."""

    def __init__(self) -> None:
        self.numbers: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        number = self.numbers.get(text)
        if number is None:
            number = self.numbers[text] = len(self.numbers)
        return number


def projection_lines(
    compliance: Iterable[ComplianceRecord],
    transitions: Mapping[RecordKey, Transition],
    controls: Iterable[ControlSummary],
) -> list[str]:
    """The projection of a snapshot's content (its one line): records in canonical order
    (key, then state), controls in key order."""
    strings = _Strings()
    records: dict[str, list[int]] = {name: [] for name in _RECORD_COLUMNS}
    for r in sorted(compliance, key=lambda r: (*r.key, r.state.value)):
        transition = transitions.get(r.key)  # every stored record has one; pure tests may not
        first = None if transition is None else transition.first_failed
        for name, value in zip(
            _RECORD_COLUMNS,
            (
                strings(r.subscription_id),
                strings(r.standard),
                strings(r.control),
                strings(r.assessment),
                strings(r.state.value),
                r.passed_resources,
                r.failed_resources,
                r.skipped_resources,
                strings(r.description),
                -1 if first is None else strings(format_time(first)),
            ),
            strict=True,
        ):
            records[name].append(value)
    control_columns: dict[str, list[int]] = {name: [] for name in _CONTROL_COLUMNS}
    for c in sorted(controls, key=lambda c: (c.subscription_id, c.standard, c.control)):
        for name, text in zip(
            _CONTROL_COLUMNS, (c.subscription_id, c.standard, c.control, c.state.value), strict=True
        ):
            control_columns[name].append(strings(text))
    return [
        dumps(
            {
                "format": FORMAT,
                "strings": list(strings.numbers),
                "records": records,
                "controls": control_columns,
            }
        )
    ]


class Projection:
    """A decoded projection: record keys and (key, state) pairs built with C-level maps; a
    record's other fields built only when a diff asks for it."""

    __slots__ = ("_columns", "_strings", "_text", "controls", "keys", "state_values")

    def __init__(
        self, strings: list[str], records: dict[str, list[int]], controls: list[ControlState]
    ) -> None:
        self._strings = strings
        self._columns = records
        text = {name: list(map(strings.__getitem__, records[name])) for name in _TEXT_COLUMNS[:5]}
        self._text = text
        self.keys: list[RecordKey] = list(
            zip(
                text["subscription"],
                text["standard"],
                text["control"],
                text["assessment"],
                strict=True,
            )
        )
        self.state_values: list[str] = text["state"]
        self.controls = controls

    def keys_and_states(self) -> Iterator[tuple[str, str, str, str, str]]:
        """(subscription, standard, control, assessment, state value) of every record."""
        text = self._text
        return zip(
            text["subscription"],
            text["standard"],
            text["control"],
            text["assessment"],
            text["state"],
            strict=True,
        )

    def __len__(self) -> int:
        return len(self.keys)

    def record(self, position: int) -> ProjectedRecord:
        columns, strings = self._columns, self._strings
        first = columns["first_failed"][position]
        return ProjectedRecord(
            state=_STATES[self.state_values[position]],
            passed_resources=columns["passed"][position],
            failed_resources=columns["failed"][position],
            skipped_resources=columns["skipped"][position],
            description=strings[columns["description"][position]],
            first_failed=None if first == -1 else parse_time(strings[first]),
        )


def _columns(
    obj: Any, names: Sequence[str], strings: int, texts: Sequence[str]
) -> dict[str, list[int]]:
    if not isinstance(obj, dict) or set(obj) != set(names):
        raise CanonicalFormatError(f"projection columns are not {', '.join(names)}")
    lengths = {len(column) for column in obj.values() if isinstance(column, list)}
    if len(lengths) != 1 or not all(isinstance(column, list) for column in obj.values()):
        raise CanonicalFormatError("projection columns are not lists of one length")
    for name in names:
        column = obj[name]
        if not set(map(type, column)) <= {int}:  # C-level: no Python loop per value
            raise CanonicalFormatError(f"projection column {name} holds a non-integer")
        low = -1 if name == "first_failed" else 0
        if name in texts and column and (min(column) < low or max(column) >= strings):
            raise CanonicalFormatError(f"projection column {name} names no string")
    return obj


def decode_projection(lines: Sequence[str]) -> Projection:
    """The projection a stored section holds; CanonicalFormatError when it is malformed."""
    if len(lines) != 1:
        raise CanonicalFormatError(f"a projection is one line, not {len(lines)}")
    try:
        obj = json.loads(lines[0])
    except ValueError as exc:
        raise CanonicalFormatError(f"projection: not JSON ({exc})") from exc
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CanonicalFormatError(f"projection: not {FORMAT}")
    strings = obj.get("strings")
    if not isinstance(strings, list) or not all(type(s) is str for s in strings):
        raise CanonicalFormatError("projection: strings are not a list of strings")
    texts = (*_TEXT_COLUMNS, "first_failed")
    records = _columns(obj.get("records"), _RECORD_COLUMNS, len(strings), texts)
    control_columns = _columns(
        obj.get("controls"), _CONTROL_COLUMNS, len(strings), _CONTROL_COLUMNS
    )
    for name, column in (("state", records["state"]), ("state", control_columns["state"])):
        if any(strings[n] not in _STATES for n in set(column)):
            raise CanonicalFormatError(f"projection column {name} names no state")
    for n in set(records["first_failed"]) - {-1}:
        parse_time(strings[n])
    controls = [
        ControlState(strings[s], strings[t], strings[c], _STATES[strings[v]])
        for s, t, c, v in zip(*(control_columns[name] for name in _CONTROL_COLUMNS), strict=True)
    ]
    return Projection(strings, records, controls)


@dataclass(frozen=True, slots=True)
class DiffView:
    """A snapshot as a diff reads it: its index, every section but those the projection stands
    for (so the posture holds no compliance records and no controls, and no history), and the
    projection. Never a snapshot to show: only a diff's input."""

    snapshot: Snapshot
    projection: Projection
