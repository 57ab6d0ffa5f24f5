"""Canonical content of a snapshot and its SHA-256: the bytes a tenant's hash chain is built on.

Pure. The same snapshot gives the same lines and the same hash in any process:

- a record becomes one JSON object: sorted keys, compact separators, ASCII only (anything else
  is escaped, so even a lone surrogate is representable), fields left out when they hold their
  default value, so that a field added later with a default leaves older hashes unchanged;
- floats are always floats (``3.0``, never ``3``); NaN and infinities are the strings "NaN",
  "Infinity" and "-Infinity" (JSON has no spelling for them);
- sections come in the order of ``SECTIONS``; compliance lines in record-key order, the lines of
  every other section in text order;
- operational counters of the collection (queries, pages, REST calls, throttles, retries,
  duration) are not content: they describe how the run went, not what the tenant looked like.

The store writes exactly these lines (compressed), so reading a snapshot back and hashing it
again needs no re-serialisation of records; ``snapshot_content_hash`` recomputes the same hash
from records for anyone who holds a ``Snapshot``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

from auditor.core import registry
from auditor.core.model import (
    CollectionStatus,
    Completeness,
    ComplianceRecord,
    State,
    Tenant,
    TenantPosture,
)
from auditor.core.snapshot import (
    CarriedAssessment,
    Snapshot,
    SnapshotIndexEntry,
    Transition,
    slot_of,
)

FORMAT = "auditor-snapshot/1"

Key = tuple[str, str, str, str]

Registry = Sequence[registry.Section[Any]]


def section_order(sections: Registry = registry.REGISTRY) -> tuple[str, ...]:
    """Order of sections in the hashed content (and in the store): the tenant, its
    completeness, the compliance records and the assessments carried beside them, then every
    other registered section in registry order (auditor/core/registry.py)."""
    return (
        "tenant",
        "completeness",
        registry.COMPLIANCE.name,
        "carried",
        *(section.name for section in sections if section is not registry.COMPLIANCE),
    )


def always_hashed(sections: Registry = registry.REGISTRY) -> frozenset[str]:
    """Sections hashed even when empty (format 1); any other is hashed only when collected."""
    return frozenset(
        {"tenant", "completeness", "carried"}
        | {section.name for section in sections if section.legacy}
    )


SECTIONS: tuple[str, ...] = section_order()
ALWAYS_HASHED: frozenset[str] = always_hashed()


def _record_sections(sections: Registry) -> Iterator[registry.Section[Any]]:
    """The list-valued sections besides compliance (which carries transitions)."""
    return (section for section in sections if section is not registry.COMPLIANCE)


# Completeness fields that describe the run, not the tenant: stored beside the content, not hashed.
OPERATIONAL_FIELDS: tuple[str, ...] = (
    "queries",
    "pages",
    "rest_calls",
    "throttles",
    "retries",
    "duration_seconds",
)

R = TypeVar("R")

_TRANSITION = "transition"  # key of a compliance line holding the assessment's history


class CanonicalFormatError(ValueError):
    """A stored line does not decode to the record it should hold."""


# ---------------------------------------------------------------------------------------------
# Values


def _float_out(value: Any) -> Any:
    number = float(value)
    if math.isfinite(number):
        return number
    if math.isnan(number):
        return "NaN"
    return "Infinity" if number > 0 else "-Infinity"


def _float_in(value: Any) -> float:
    if isinstance(value, str):
        if value not in ("NaN", "Infinity", "-Infinity"):
            raise CanonicalFormatError(f"not a number: {value!r}")
        return float(value.replace("Infinity", "inf"))
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CanonicalFormatError(f"not a number: {value!r}")
    return float(value)


# Snapshots repeat a few instants (slot times) tens of thousands of times: remember spellings.
_TIME_TEXT: dict[datetime, str] = {}
_TEXT_TIME: dict[str, datetime] = {}
_TIME_CACHE_SIZE = 4096


def format_time(value: datetime) -> str:
    """A UTC instant as ISO-8601 (``2024-05-01T02:00:00+00:00``)."""
    text = _TIME_TEXT.get(value)
    if text is None:
        if value.tzinfo is None:
            raise ValueError("datetimes in snapshots must be timezone-aware")
        text = value.astimezone(UTC).isoformat()
        if len(_TIME_TEXT) >= _TIME_CACHE_SIZE:
            _TIME_TEXT.clear()
        _TIME_TEXT[value] = text
    return text


def parse_time(value: str) -> datetime:
    parsed = _TEXT_TIME.get(value)
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(value)
        except (TypeError, ValueError) as exc:
            raise CanonicalFormatError(f"not a time: {value!r}") from exc
        if parsed.tzinfo is None:
            raise CanonicalFormatError(f"time without zone: {value!r}")
        parsed = parsed.astimezone(UTC)
        if len(_TEXT_TIME) >= _TIME_CACHE_SIZE:
            _TEXT_TIME.clear()
        _TEXT_TIME[value] = parsed
    return parsed


Conv = Callable[[Any], Any] | None  # None: the value is already JSON (str, int, bool)


def _identity(value: Any) -> Any:
    return value


def _optional(conv: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else conv(v)


def _sequence(conv: Callable[[Any], Any], container: Callable[[Iterable[Any]], Any]) -> Conv:
    return lambda v: container(conv(x) for x in v)


def _mapping(conv: Callable[[Any], Any]) -> Conv:
    return lambda v: {k: conv(x) for k, x in v.items()}


def _converters(hint: Any) -> tuple[Conv, Conv]:
    """(encode, decode) for a type annotation; None where the JSON value is the value itself."""
    if hint in (str, int, bool):
        return None, None
    if hint is float:
        return _float_out, _float_in
    if hint is datetime:
        return format_time, parse_time
    if isinstance(hint, type) and issubclass(hint, Enum):
        members = {member.value: member for member in hint}  # Enum(value) is a slow path
        return (lambda v: v.value), members.__getitem__
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _encoder(hint), _decoder(hint)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        enc, dec = _converters(args[0] if args[1] is type(None) else args[1])
        return (_optional(enc) if enc else None), (_optional(dec) if dec else None)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        enc, dec = _converters(args[0])
        return _sequence(enc or _identity, list), _sequence(dec or _identity, tuple)
    if origin is dict and args[0] is str:
        enc, dec = _converters(args[1])
        return _mapping(enc or _identity), _mapping(dec or _identity)
    raise TypeError(f"no canonical form for {hint!r}")


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    encode: Conv
    decode: Conv
    has_default: bool
    default: Any  # encoded: a value is left out when it encodes to this


_FIELDS: dict[tuple[type, tuple[str, ...]], tuple[_Field, ...]] = {}
_ENCODERS: dict[tuple[type, tuple[str, ...]], Callable[[Any], dict[str, Any]]] = {}
_DECODERS: dict[tuple[type, tuple[str, ...]], Callable[[Mapping[str, Any]], Any]] = {}


def _fields(cls: type, exclude: tuple[str, ...] = ()) -> tuple[_Field, ...]:
    cached = _FIELDS.get((cls, exclude))
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        enc, dec = _converters(hints[f.name])
        if f.default is not dataclasses.MISSING:
            has_default, default = True, f.default
        elif f.default_factory is not dataclasses.MISSING:
            has_default, default = True, f.default_factory()
        else:
            has_default, default = False, None
        if has_default and enc is not None:
            default = enc(default)
        out.append(_Field(f.name, enc, dec, has_default, default))
    _FIELDS[(cls, exclude)] = result = tuple(out)
    return result


# Encoders and decoders are compiled per record type (as `dataclasses` compiles __init__): a
# snapshot encodes tens of thousands of records, and a loop over field descriptors per record
# costs twice as much as straight-line code.


def _compile(name: str, source: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    exec(compile(source, f"<canonical {name}>", "exec"), namespace)  # noqa: S102 - our own source
    function: Callable[..., Any] = namespace[name]
    return function


def _encoder(cls: type, exclude: tuple[str, ...] = ()) -> Callable[[Any], dict[str, Any]]:
    """record -> JSON object: fields at their default are left out."""
    cached = _ENCODERS.get((cls, exclude))
    if cached is not None:
        return cached
    namespace: dict[str, Any] = {}
    lines = ["def encode(r):", "    out = {}"]
    for i, f in enumerate(_fields(cls, exclude)):
        value = f"r.{f.name}"
        if f.encode is not None:
            namespace[f"enc{i}"] = f.encode
            value = f"enc{i}({value})"
        if f.has_default:
            namespace[f"default{i}"] = f.default
            namespace[f"type{i}"] = type(f.default)
            lines += [
                f"    v = {value}",
                f"    if not (v == default{i} and type(v) is type{i}):",
                f"        out[{f.name!r}] = v",
            ]
        else:
            lines.append(f"    out[{f.name!r}] = {value}")
    lines.append("    return out")
    encode = _compile("encode", "\n".join(lines), namespace)
    _ENCODERS[(cls, exclude)] = encode
    return encode


def _decoder(cls: type, exclude: tuple[str, ...] = ()) -> Callable[[Mapping[str, Any]], Any]:
    """JSON object -> record; CanonicalFormatError for a missing, unknown or mistyped field."""
    cached = _DECODERS.get((cls, exclude))
    if cached is not None:
        return cached
    fields = _fields(cls, exclude)
    namespace: dict[str, Any] = {"cls": cls}
    lines = ["def build(o):", "    kw = {}"]
    for i, f in enumerate(fields):
        value = f"o[{f.name!r}]"
        if f.decode is not None:
            namespace[f"dec{i}"] = f.decode
            value = f"dec{i}({value})"
        if f.has_default:
            lines += [f"    if {f.name!r} in o:", f"        kw[{f.name!r}] = {value}"]
        else:
            lines.append(f"    kw[{f.name!r}] = {value}")
    lines += ["    if len(kw) != len(o):", "        raise LookupError", "    return cls(**kw)"]
    build = _compile("build", "\n".join(lines), namespace)
    known = {f.name for f in fields}
    required = [f.name for f in fields if not f.has_default]

    def decode(obj: Mapping[str, Any]) -> Any:
        try:
            return build(obj)
        except (LookupError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, CanonicalFormatError):
                raise
            if not isinstance(obj, Mapping):
                problem = f"expected an object, got {obj!r}"
            elif missing := [name for name in required if name not in obj]:
                problem = f"missing fields {missing}"
            elif unknown := sorted(set(obj) - known):
                problem = f"unknown fields {unknown}"
            else:
                problem = str(exc)
            raise CanonicalFormatError(f"{cls.__name__}: {problem}") from exc

    _DECODERS[(cls, exclude)] = decode
    return decode


_JSON_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
)
_JSON_DECODER = json.JSONDecoder()


def dumps(obj: Any) -> str:
    """The one JSON spelling of a value in canonical content."""
    return _JSON_ENCODER.encode(obj)


def _loads(line: str) -> Any:
    try:
        return _JSON_DECODER.decode(line)
    except json.JSONDecodeError as exc:
        raise CanonicalFormatError(f"not JSON: {exc.msg}") from exc


def encode_record(record: Any) -> str:
    """One record (any posture dataclass) as its canonical line."""
    return dumps(_encoder(type(record))(record))


def decode_record(cls: type[R], line: str) -> R:
    """The record of type `cls` that a canonical line holds."""
    record: R = _decoder(cls)(_loads(line))
    return record


# ---------------------------------------------------------------------------------------------
# Sections


def encode_completeness(completeness: Completeness) -> str:
    return dumps(_encoder(Completeness, OPERATIONAL_FIELDS)(completeness))


def decode_completeness(line: str, operations: Mapping[str, float] | None = None) -> Completeness:
    base: Completeness = _decoder(Completeness, OPERATIONAL_FIELDS)(_loads(line))
    if not operations:
        return base

    def counter(name: str) -> int:
        return int(operations.get(name, 0))

    return dataclasses.replace(
        base,
        queries=counter("queries"),
        pages=counter("pages"),
        rest_calls=counter("rest_calls"),
        throttles=counter("throttles"),
        retries=counter("retries"),
        duration_seconds=float(operations.get("duration_seconds", 0.0)),
    )


def operations_of(completeness: Completeness) -> dict[str, float]:
    """The operational counters left out of the hash (stored beside the content)."""
    return {name: getattr(completeness, name) for name in OPERATIONAL_FIELDS}


_STATES = {state.value: state for state in State}
_encode_transition = _encoder(Transition)
_decode_transition = _decoder(Transition)
_encode_compliance = _encoder(ComplianceRecord)
_decode_compliance = _decoder(ComplianceRecord)


def encode_compliance(record: ComplianceRecord, transition: Transition) -> str:
    obj = _encode_compliance(record)
    obj[_TRANSITION] = _encode_transition(transition)
    return dumps(obj)


def decode_compliance_prior(line: str) -> tuple[Key, State, Transition, dict[str, Any]]:
    """(key, state, transition, undecoded record fields) of a compliance line: what history
    needs, without building the record (see decode_compliance_fields)."""
    obj = _loads(line)
    try:
        transition = _decode_transition(obj.pop(_TRANSITION))
        key = (obj["subscription_id"], obj["standard"], obj["control"], obj["assessment"])
        state = _STATES[obj["state"]]
    except (AttributeError, KeyError, TypeError) as exc:
        raise CanonicalFormatError(f"compliance line: {exc!r}") from exc
    return key, state, transition, obj


def decode_compliance_fields(fields: Mapping[str, Any]) -> ComplianceRecord:
    record: ComplianceRecord = _decode_compliance(fields)
    return record


def decode_compliance(line: str) -> tuple[ComplianceRecord, Transition]:
    obj = _loads(line)
    if not isinstance(obj, dict) or _TRANSITION not in obj:
        raise CanonicalFormatError("compliance line without its transition")
    transition = _decode_transition(obj.pop(_TRANSITION))
    return _decode_compliance(obj), transition


def canonical_sections(
    posture: TenantPosture,
    transitions: Mapping[Key, Transition],
    carried: Mapping[Key, CarriedAssessment],
    sections_registry: Registry = registry.REGISTRY,
) -> dict[str, list[str]]:
    """Every section's lines, in canonical order. Every compliance record needs a transition.

    A section the posture did not collect (None) has no entry: it is not hashed."""
    missing = [r.key for r in posture.compliance if r.key not in transitions]
    if missing:
        raise ValueError(f"{len(missing)} compliance records have no transition, e.g. {missing[0]}")
    sections: dict[str, list[str]] = {
        "tenant": [encode_record(posture.tenant)],
        "completeness": [encode_completeness(posture.completeness)],
        "compliance": [
            encode_compliance(r, transitions[r.key])
            for r in sorted(posture.compliance, key=_compliance_order)
        ],
        "carried": [encode_record(carried[key]) for key in sorted(carried)],
    }
    for section in _record_sections(sections_registry):
        records = registry.records_of(posture, section)
        if records is not None:
            sections[section.name] = sorted(encode_record(r) for r in records)
    return sections


def _compliance_order(record: ComplianceRecord) -> tuple[str, str, str, str, str]:
    return (*record.key, record.state.value)


@dataclass(frozen=True, slots=True)
class DecodedContent:
    posture: TenantPosture
    transitions: dict[Key, Transition]
    carried: dict[Key, CarriedAssessment]


def decode_sections(
    sections: Mapping[str, Iterable[str]],
    operations: Mapping[str, float] | None = None,
    sections_registry: Registry = registry.REGISTRY,
) -> DecodedContent:
    """Records back from their lines (the inverse of canonical_sections); a section without an
    entry in `sections` was not collected (read as None, not as empty)."""
    tenant_lines = list(sections.get("tenant", ()))
    completeness_lines = list(sections.get("completeness", ()))
    if len(tenant_lines) != 1 or len(completeness_lines) != 1:
        raise CanonicalFormatError("a snapshot holds exactly one tenant and one completeness line")
    compliance: list[ComplianceRecord] = []
    transitions: dict[Key, Transition] = {}
    for line in sections.get("compliance", ()):
        record, transition = decode_compliance(line)
        compliance.append(record)
        transitions[record.key] = transition
    carried: dict[Key, CarriedAssessment] = {}
    for line in sections.get("carried", ()):
        item = decode_record(CarriedAssessment, line)
        carried[item.record.key] = item
    legacy: dict[str, tuple[Any, ...]] = {}
    later: dict[str, tuple[Any, ...]] = {}
    for section in _record_sections(sections_registry):
        lines = sections.get(section.name)
        if lines is None and not section.legacy:
            continue  # not collected
        records = tuple(decode_record(section.record, line) for line in lines or ())
        (legacy if section.legacy else later)[section.name] = records
    posture = TenantPosture(
        tenant=decode_record(Tenant, tenant_lines[0]),
        compliance=tuple(compliance),
        completeness=decode_completeness(completeness_lines[0], operations),
        sections=later,
        **legacy,
    )
    return DecodedContent(posture, transitions, carried)


# ---------------------------------------------------------------------------------------------
# Hash


@dataclass(frozen=True, slots=True)
class SnapshotHeader:
    """What the hash binds besides the records: whose, when, what status, and its predecessor."""

    tenant_id: str
    snapshot_id: str
    status: CollectionStatus
    collector_version: str
    previous_snapshot_id: str | None
    previous_hash: str | None
    # The failed attempt of the same slot this one retook; only spelled when set, so the hashes
    # of every snapshot that retook nothing are unchanged.
    supersedes: str = ""

    def line(self) -> str:
        fields: dict[str, Any] = {
            "format": FORMAT,
            "tenant_id": self.tenant_id,
            "snapshot_id": self.snapshot_id,
            "scheduled_at": format_time(slot_of(self.snapshot_id)),
            "status": self.status.value,
            "collector_version": self.collector_version,
            "previous_snapshot_id": self.previous_snapshot_id,
            "previous_hash": self.previous_hash,
        }
        if self.supersedes:
            fields["supersedes"] = self.supersedes
        return dumps(fields)


def iter_canonical_bytes(
    header: SnapshotHeader,
    sections: Mapping[str, Sequence[str]],
    sections_registry: Registry = registry.REGISTRY,
) -> Iterator[bytes]:
    """The exact bytes hashed: header line, then per section ``#name count`` and its lines
    (a section added after format 1 only when collected, so older hashes are unchanged)."""
    yield (header.line() + "\n").encode("ascii")
    hashed = always_hashed(sections_registry)
    for section in section_order(sections_registry):
        if section not in sections and section not in hashed:
            continue  # not collected
        lines = sections.get(section, ())
        yield f"#{section} {len(lines)}\n".encode("ascii")
        if lines:
            yield ("\n".join(lines) + "\n").encode("ascii")


def content_hash(
    header: SnapshotHeader,
    sections: Mapping[str, Sequence[str]],
    sections_registry: Registry = registry.REGISTRY,
) -> str:
    """SHA-256 (hex) of the canonical content."""
    digest = hashlib.sha256()
    for chunk in iter_canonical_bytes(header, sections, sections_registry):
        digest.update(chunk)
    return digest.hexdigest()


def header_of_entry(entry: SnapshotIndexEntry) -> SnapshotHeader:
    """What the hash binds besides the records, as the index entry states it."""
    return SnapshotHeader(
        tenant_id=entry.tenant_id,
        snapshot_id=entry.snapshot_id,
        status=entry.status,
        collector_version=entry.collector_version,
        previous_snapshot_id=entry.previous_snapshot_id,
        previous_hash=entry.previous_hash,
        supersedes=entry.supersedes,
    )


def header_of(snapshot: Snapshot) -> SnapshotHeader:
    return header_of_entry(snapshot.index)


def snapshot_content_hash(snapshot: Snapshot) -> str:
    """Recompute a snapshot's content hash from its records (compare with index.content_hash)."""
    sections = canonical_sections(snapshot.posture, snapshot.transitions, snapshot.carried)
    return content_hash(header_of(snapshot), sections)
