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
import gc
import json
import sys
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from itertools import chain, compress, count, repeat
from operator import add, attrgetter, itemgetter, ne
from typing import TypeVar

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
# Columns of unsigned integers: numbers of strings (s) or counts (c); first_failed is 1 + the
# number of the time's text, 0 when the record is not failing.
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
KEY_COLUMNS = ("subscription", "standard", "control", "assessment")
# Joins a record's key (and state) into one string: it sorts before every other character, so
# joined keys sort as the key tuples do; a table holding it is searched as tuples instead.
SEP = "\0"
_GROUPS = (("records", _RECORD_COLUMNS), ("controls", _CONTROL_COLUMNS))
# Array typecodes a column may be stored with: unsigned 32-bit (I) or, for counts above it,
# unsigned 64-bit (Q): counts are at most 2**53 - 1 (normalize.MAX_COUNT). Unsigned, so that
# no stored number can index the table of strings from its end.
_TYPECODES = {"s": ("I",), "c": ("I", "Q")}
_UINT32 = 2**32 - 1
_STATES = {state.value: state for state in State}
assert array.array("I").itemsize == 4 and array.array("Q").itemsize == 8


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


@contextmanager
def acyclic_build() -> Iterator[None]:
    """Pause the cyclic garbage collector while building large containers of strings and
    tuples (which form no cycles): otherwise every few hundred allocations start a collection
    that walks the whole heap, which doubles the time of a 100,000-record build. It runs again
    afterwards (unless the caller had paused it)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _column_line(group: str, name: str, values: list[int]) -> str:
    typecode = "Q" if values and max(values) > _UINT32 else "I"
    packed = array.array(typecode, values)
    if sys.byteorder != "little":  # pragma: no cover - the stored bytes are little-endian
        packed.byteswap()
    return f"{group}.{name}={typecode}:{base64.b64encode(packed.tobytes()).decode('ascii')}"


_KEY = attrgetter("subscription_id", "standard", "control", "assessment")
_FIRST_FAILED = attrgetter("first_failed")
# Every stored record has a transition; a pure test's may not: it reads as never failing.
_NO_TRANSITION = Transition(first_seen=datetime.min, last_changed=datetime.min, first_failed=None)


def _failing_since(
    records: Sequence[ComplianceRecord], transitions: Mapping[RecordKey, Transition]
) -> list[str | None]:
    """The text of each record's first_failed (None when not failing), with C-level maps."""
    found = map(transitions.get, map(_KEY, records), repeat(_NO_TRANSITION))
    return [None if first is None else format_time(first) for first in map(_FIRST_FAILED, found)]


def projection_lines(
    compliance: Iterable[ComplianceRecord],
    transitions: Mapping[RecordKey, Transition],
    controls: Iterable[ControlSummary],
) -> list[str]:
    """The projection of a snapshot's content: a header line, the table of strings (JSON), then
    one line per column (``group.name=``, the typecode ``I:`` or ``Q:`` and the base64 of its
    little-endian unsigned 32- or 64-bit integers). Records in canonical order (key, then state),
    controls in (key, state) order; strings numbered in order of first use, column by column.

    Built column by column with C-level maps (a commit of 100,000 records pays for it once)."""
    with acyclic_build():
        return _projection_lines(compliance, transitions, controls)


def _projection_lines(
    compliance: Iterable[ComplianceRecord],
    transitions: Mapping[RecordKey, Transition],
    controls: Iterable[ControlSummary],
) -> list[str]:
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
            columns[name] = [0 if t is None else numbers[t] + 1 for t in failing]
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
    """A decoded projection: its integer columns and table of strings. Nothing is built per
    record until asked for: two ends holding the same records (the usual day to day) are
    diffed by comparing their state columns (``same_keys``, ``changed_positions``); the keys
    as tuples, and a record's other fields, are built only when a diff needs them."""

    __slots__ = (
        "_joined_keys",
        "_key_strings",
        "_keys",
        "_records",
        "_strings",
        "controls",
        "joinable",
    )

    def __init__(
        self,
        strings: list[str],
        records: dict[str, array.array[int]],
        controls: list[ControlRow],
        key_strings: int,
    ) -> None:
        self._strings = strings
        self._records = records
        self._key_strings = key_strings  # the key columns number strings below this
        self._keys: list[RecordKey] | None = None
        self._joined_keys: list[str] | None = None
        # Whether keys can be joined by SEP (no string holds it, so no two keys join alike).
        self.joinable = SEP not in "".join(strings)
        self.controls = controls

    def _text(self, name: str) -> Iterator[str]:
        return map(self._strings.__getitem__, self._records[name])

    @property
    def keys(self) -> list[RecordKey]:
        """Every record's key in record order, built on first use."""
        if self._keys is None:
            with acyclic_build():
                self._keys = list(zip(*map(self._text, KEY_COLUMNS), strict=True))
        return self._keys

    @property
    def keys_built(self) -> bool:
        """Whether a key per record was built (tuples, or joined): a diff in place builds none."""
        return self._keys is not None or self._joined_keys is not None

    def keys_and_states(self) -> Iterator[tuple[str, str, str, str, str]]:
        """(subscription, standard, control, assessment, state value) of every record."""
        return zip(*map(self._text, (*KEY_COLUMNS, "state")), strict=True)

    def _keys_joined(self) -> list[str]:
        """Every record's key joined by SEP, in record order (``joinable`` only): searched in
        place of the key tuples, which the cyclic collector would walk."""
        if self._joined_keys is None:
            self._joined_keys = list(map(SEP.join, zip(*map(self._text, KEY_COLUMNS), strict=True)))
        return self._joined_keys

    def joined_states(self) -> frozenset[str] | None:
        """Every record's key and state value joined by SEP; None unless ``joinable``."""
        if not self.joinable:
            return None
        suffixes = {n: SEP + self._strings[n] for n in set(self._records["state"])}
        states = map(suffixes.__getitem__, self._records["state"])
        with acyclic_build():
            return frozenset(map(add, self._keys_joined(), states))

    def _distinct(self, names: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        """The distinct values of the records' `names` columns together: told apart by their
        numbers (one C-level pass), then named."""
        get = self._strings.__getitem__
        found = set(zip(*(self._records[name] for name in names), strict=True))
        return (tuple(map(get, numbers)) for numbers in found)

    def standards(self) -> frozenset[tuple[str, str]]:
        """(subscription, standard) of the records."""
        return frozenset((s, t) for s, t in self._distinct(KEY_COLUMNS[:2]))

    def control_keys(self) -> frozenset[tuple[str, str, str]]:
        """(subscription, standard, control) of the records."""
        return frozenset((s, t, c) for s, t, c in self._distinct(KEY_COLUMNS[:3]))

    @property
    def strings(self) -> list[str]:
        """The table of strings: every value a key or state may hold."""
        return self._strings

    def __len__(self) -> int:
        return len(self._records["state"])

    def key_at(self, position: int) -> RecordKey:
        strings, columns = self._strings, self._records
        return (
            strings[columns["subscription"][position]],
            strings[columns["standard"][position]],
            strings[columns["control"][position]],
            strings[columns["assessment"][position]],
        )

    def state_at(self, position: int) -> str:
        return self._strings[self._records["state"][position]]

    def same_keys(self, other: Projection) -> bool:
        """Whether `other` holds the same record keys in the same order. Decided on numbers:
        equal key columns that number the same strings (the first `used` of both tables)."""
        mine, theirs = self._records, other._records
        if any(mine[name] != theirs[name] for name in KEY_COLUMNS):
            return False
        used = self._key_strings  # equal columns: the same bound at both ends
        return self._strings[:used] == other._strings[:used]

    def changed_positions(self, other: Projection) -> list[int]:
        """Positions whose state differs in `other` (meaningful when ``same_keys``)."""
        return list(compress(count(), map(ne, self._text("state"), other._text("state"))))

    def run_of(self, position: int) -> range:
        """The positions holding the key at `position`: records are in key order, so they are
        adjacent (one, unless the content holds a key twice)."""
        key, low, high = self.key_at(position), position, position + 1
        while low > 0 and self.key_at(low - 1) == key:
            low -= 1
        while high < len(self) and self.key_at(high) == key:
            high += 1
        return range(low, high)

    def position_of(self, key: RecordKey) -> int:
        """Where the record of `key` is (KeyError when none is): records are in key order, so
        a binary search, not a map of every key (the last of equal keys, as a dict keeps)."""
        if self.joinable:
            return _position(self._keys_joined(), SEP.join(key), key)
        return _position(self.keys, key, key)

    def record(self, position: int) -> ProjectedRecord:
        columns, strings = self._records, self._strings
        first = columns["first_failed"][position]  # 0: not failing
        return ProjectedRecord(
            state=_STATES[self.state_at(position)],
            passed_resources=columns["passed"][position],
            failed_resources=columns["failed"][position],
            skipped_resources=columns["skipped"][position],
            description=strings[columns["description"][position]],
            first_failed=None if first == 0 else parse_time(strings[first - 1]),
        )


_Searched = TypeVar("_Searched", str, RecordKey)


def _position(keys: Sequence[_Searched], probe: _Searched, key: RecordKey) -> int:
    position = bisect_right(keys, probe) - 1
    if position < 0 or keys[position] != probe:
        raise KeyError(key)
    return position


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


def _checked_numbers(column: array.array[int], name: str, strings: int) -> int:
    """1 + the highest number in `column` (0 when empty); a format error past `strings`."""
    bound = max(column, default=-1) + 1
    if bound > strings:
        raise CanonicalFormatError(f"projection column {name} names no string")
    return bound


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
            decoded[name] = _decode_column(lines[position], group, name, kind, size)
            position += 1
        columns.append(decoded)
    records, control_columns = columns
    # The record columns are mapped to strings only when a diff asks (the controls' columns,
    # mapped below, raise IndexError for a number past the table): checked here.
    key_strings = max(_checked_numbers(records[name], name, len(strings)) for name in KEY_COLUMNS)
    _checked_numbers(records["description"], "description", len(strings))
    _checked_numbers(records["first_failed"], "first_failed", len(strings) + 1)
    for column in (records["state"], control_columns["state"]):
        if any(n >= len(strings) or strings[n] not in _STATES for n in set(column)):
            raise CanonicalFormatError("projection: a state column names no state")
    for n in set(records["first_failed"]) - {0}:
        parse_time(strings[n - 1])
    text = {name: map(strings.__getitem__, control_columns[name]) for name, _ in _CONTROL_COLUMNS}
    try:
        with acyclic_build():
            controls = list(
                zip(text["subscription"], text["standard"], text["control"],
                    map(_STATES.__getitem__, text["state"]), strict=True)
            )  # fmt: skip
            return Projection(strings, records, controls, key_strings)
    except IndexError:
        raise CanonicalFormatError("projection: a column names no string") from None


@dataclass(frozen=True, slots=True)
class DiffView:
    """A snapshot as a diff reads it: its index, every section but those the projection stands
    for (so the posture holds no compliance records and no controls, and no history), and the
    projection. Never a snapshot to show: only a diff's input."""

    snapshot: Snapshot
    projection: Projection
