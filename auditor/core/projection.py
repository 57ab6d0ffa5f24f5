"""A snapshot's diff projection: what a diff needs of its compliance records and controls. Pure.

Decoding a 100,000-record snapshot's compliance lines takes seconds; a diff needs only each
record's identity, state, resource counts, description and the start of its failing streak, and
each control's identity and state. The projection holds exactly these, column by column: one
table of strings (so the repeated identifiers and descriptions are stored once) and, per
column, its integers (numbers into the table, or counts) as base64 of little-endian machine
integers, which decode without a Python step per value: tens of milliseconds.

It is derived, not evidence of its own: it is stored as its own content section beside the
canonical sections (never in the content hash, so every hash is unchanged), covered by the
anchor's content digest like every content entity, and ``verify`` recomputes it from the
canonical content and reports any difference. A snapshot stored before the projection existed
has none; its diff decodes the records (docs/schema.md, "Diff projection").
"""

from __future__ import annotations

import array
import base64
import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain, count
from operator import attrgetter, itemgetter

from auditor.core.canonical import CanonicalFormatError, dumps, format_time, parse_time
from auditor.core.model import ComplianceRecord, ControlSummary, State
from auditor.core.snapshot import Snapshot, Transition

SECTION = "projection"
FORMAT = "auditor-projection/2"
# Sections a diff view does not read: the projection stands for them (and a diff never needs
# the carried assessments).
STANDS_FOR: tuple[str, ...] = ("compliance", "carried", "controls")

RecordKey = tuple[str, str, str, str]
ControlRow = tuple[str, str, str, State]  # subscription, standard, control, state
# Columns of integers: numbers of strings (s) or counts (c); first_failed is the number of the
# time's text, or -1 when the record is not failing.
_RECORD_COLUMNS = (
    ("subscription", "s"),
    ("standard", "s"),
    ("control", "s"),
    ("assessment", "s"),
    ("state", "s"),
    ("passed", "c"),
    ("failed", "c"),
    ("skipped", "c"),
    ("description", "s"),
    ("first_failed", "s"),
)
_CONTROL_COLUMNS = (("subscription", "s"), ("standard", "s"), ("control", "s"), ("state", "s"))
_GROUPS = (("records", _RECORD_COLUMNS), ("controls", _CONTROL_COLUMNS))
# Array typecodes a column may be stored with: 32-bit (i) or, for counts above it, 64-bit (q):
# counts are at most 2**53 - 1 (normalize.MAX_COUNT).
_TYPECODES = {"s": ("i",), "c": ("i", "q")}
_INT32 = 2**31 - 1
_STATES = {state.value: state for state in State}
assert array.array("i").itemsize == 4 and array.array("q").itemsize == 8


@dataclass(frozen=True, slots=True)
class ProjectedRecord:
    """What a diff reads of one compliance record."""

    state: State
    passed_resources: int
    failed_resources: int
    skipped_resources: int
    description: str
    first_failed: datetime | None


_RECORD_FIELDS = attrgetter(
    "subscription_id", "standard", "control", "assessment", "state._value_"
)  # fmt: skip
_RECORD_TEXT = {
    "subscription": attrgetter("subscription_id"),
    "standard": attrgetter("standard"),
    "control": attrgetter("control"),
    "assessment": attrgetter("assessment"),
    "state": attrgetter("state._value_"),
    "description": attrgetter("description"),
}
_RECORD_COUNTS = {
    "passed": attrgetter("passed_resources"),
    "failed": attrgetter("failed_resources"),
    "skipped": attrgetter("skipped_resources"),
}


def _column_line(group: str, name: str, values: list[int]) -> str:
    typecode = "q" if values and max(values) > _INT32 else "i"
    packed = array.array(typecode, values)
    if sys.byteorder != "little":  # pragma: no cover - the stored bytes are little-endian
        packed.byteswap()
    return f"{group}.{name}={typecode}:{base64.b64encode(packed.tobytes()).decode('ascii')}"


def _failing_since(
    records: Sequence[ComplianceRecord], transitions: Mapping[RecordKey, Transition]
) -> list[str | None]:
    out: list[str | None] = []
    for record in records:
        transition = transitions.get(record.key)  # every stored record has one; tests may not
        first = None if transition is None else transition.first_failed
        out.append(None if first is None else format_time(first))
    return out


def projection_lines(
    compliance: Iterable[ComplianceRecord],
    transitions: Mapping[RecordKey, Transition],
    controls: Iterable[ControlSummary],
) -> list[str]:
    """The projection of a snapshot's content: a header line, the table of strings (JSON), then
    one line per column (``group.name=``, the typecode ``i:`` or ``q:`` and the base64 of its
    little-endian 32- or 64-bit integers). Records in canonical order (key, then state),
    controls in (key, state) order; strings numbered in order of first use, column by column.

    Built column by column with C-level maps (a commit of 100,000 records pays for it once)."""
    records = sorted(compliance, key=_RECORD_FIELDS)
    ordered = sorted((c.subscription_id, c.standard, c.control, c.state.value) for c in controls)
    texts = {name: list(map(get, records)) for name, get in _RECORD_TEXT.items()}
    failing = _failing_since(records, transitions)
    control_texts = [list(map(itemgetter(n), ordered)) for n in range(len(_CONTROL_COLUMNS))]
    table = dict.fromkeys(
        chain(
            *texts.values(),
            (t for t in failing if t is not None),
            *control_texts,
        )
    )
    numbers = dict(zip(table, count()))
    number = numbers.__getitem__
    columns: dict[str, list[int]] = {}
    for name, _ in _RECORD_COLUMNS:
        if name in _RECORD_COUNTS:
            columns[name] = list(map(_RECORD_COUNTS[name], records))
        elif name == "first_failed":
            columns[name] = [-1 if t is None else numbers[t] for t in failing]
        else:
            columns[name] = list(map(number, texts[name]))
    header = {"format": FORMAT, "records": len(records), "controls": len(ordered)}
    lines = [dumps(header), dumps(list(table))]
    lines += [_column_line("records", name, columns[name]) for name, _ in _RECORD_COLUMNS]
    lines += [
        _column_line("controls", name, list(map(number, column)))
        for (name, _), column in zip(_CONTROL_COLUMNS, control_texts, strict=True)
    ]
    return lines


class Projection:
    """A decoded projection: record keys and (key, state) pairs built with C-level maps; a
    record's other fields built only when a diff asks for it."""

    __slots__ = ("_records", "_strings", "_text", "controls", "keys")

    def __init__(
        self, strings: list[str], records: dict[str, array.array[int]], controls: list[ControlRow]
    ) -> None:
        self._strings = strings
        self._records = records
        self._text = {
            name: list(map(strings.__getitem__, records[name]))
            for name in ("subscription", "standard", "control", "assessment", "state")
        }
        text = self._text
        self.keys: list[RecordKey] = list(
            zip(text["subscription"], text["standard"], text["control"], text["assessment"],
                strict=True)
        )  # fmt: skip
        self.controls = controls

    def keys_and_states(self) -> Iterator[tuple[str, str, str, str, str]]:
        """(subscription, standard, control, assessment, state value) of every record."""
        text = self._text
        return zip(
            text["subscription"], text["standard"], text["control"], text["assessment"],
            text["state"], strict=True,
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.keys)

    def record(self, position: int) -> ProjectedRecord:
        columns, strings = self._records, self._strings
        first = columns["first_failed"][position]
        return ProjectedRecord(
            state=_STATES[self._text["state"][position]],
            passed_resources=columns["passed"][position],
            failed_resources=columns["failed"][position],
            skipped_resources=columns["skipped"][position],
            description=strings[columns["description"][position]],
            first_failed=None if first == -1 else parse_time(strings[first]),
        )


def _decode_column(line: str, group: str, name: str, kind: str, length: int) -> array.array[int]:
    prefix = f"{group}.{name}="
    typecode, colon = line[len(prefix) : len(prefix) + 1], line[len(prefix) + 1 : len(prefix) + 2]
    if not line.startswith(prefix) or colon != ":" or typecode not in _TYPECODES[kind]:
        raise CanonicalFormatError(f"projection: expected column {group}.{name}")
    try:
        raw = base64.b64decode(line[len(prefix) + 2 :], validate=True)
        column = array.array(typecode)
        column.frombytes(raw)
    except ValueError as exc:  # binascii.Error is a ValueError; so is a ragged byte count
        raise CanonicalFormatError(f"projection column {group}.{name}: {exc}") from exc
    if sys.byteorder != "little":  # pragma: no cover
        column.byteswap()
    if len(column) != length:
        raise CanonicalFormatError(
            f"projection column {group}.{name} holds {len(column)} values, the header says {length}"
        )
    return column


def _checked_numbers(column: array.array[int], name: str, strings: int, low: int = 0) -> None:
    if column and (min(column) < low or max(column) >= strings):
        raise CanonicalFormatError(f"projection column {name} names no string")


def decode_projection(lines: Sequence[str]) -> Projection:
    """The projection a stored section holds; CanonicalFormatError when it is malformed."""
    expected = 2 + len(_RECORD_COLUMNS) + len(_CONTROL_COLUMNS)
    if len(lines) != expected:
        raise CanonicalFormatError(f"a projection has {expected} lines, not {len(lines)}")
    try:
        header, strings = json.loads(lines[0]), json.loads(lines[1])
    except ValueError as exc:
        raise CanonicalFormatError(f"projection: not JSON ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CanonicalFormatError(f"projection: not {FORMAT}")
    if not isinstance(strings, list) or not set(map(type, strings)) <= {str}:
        raise CanonicalFormatError("projection: strings are not a list of strings")
    sizes: list[int] = []
    for size in (header.get("records"), header.get("controls")):
        if type(size) is not int or size < 0:
            raise CanonicalFormatError("projection: the header's counts are not counts")
        sizes.append(size)
    columns: list[dict[str, array.array[int]]] = []
    position = 2
    for (group, declared), size in zip(_GROUPS, sizes, strict=True):
        decoded = {}
        for name, kind in declared:
            column = _decode_column(lines[position], group, name, kind, size)
            if kind == "s":
                _checked_numbers(column, name, len(strings), -1 if name == "first_failed" else 0)
            decoded[name] = column
            position += 1
        columns.append(decoded)
    records, control_columns = columns
    for column in (records["state"], control_columns["state"]):
        if any(strings[n] not in _STATES for n in set(column)):
            raise CanonicalFormatError("projection: a state column names no state")
    for n in set(records["first_failed"]) - {-1}:
        parse_time(strings[n])
    text = {name: map(strings.__getitem__, control_columns[name]) for name, _ in _CONTROL_COLUMNS}
    controls = list(
        zip(text["subscription"], text["standard"], text["control"],
            map(_STATES.__getitem__, text["state"]), strict=True)
    )  # fmt: skip
    return Projection(strings, records, controls)


@dataclass(frozen=True, slots=True)
class DiffView:
    """A snapshot as a diff reads it: its index, every section but those the projection stands
    for (so the posture holds no compliance records and no controls, and no history), and the
    projection. Never a snapshot to show: only a diff's input."""

    snapshot: Snapshot
    projection: Projection
