"""Many records to few entities, within Table Storage's limits. Pure.

Entity count, not bytes, dominates Table Storage's cost and time, so a snapshot's records are
never stored one per entity. Each section (compliance, controls, plans, ...) is one zlib stream
of its canonical lines (one JSON line per record), cut into binary properties ``p00``, ``p01``...
of at most 64,000 bytes, at most ``MAX_PARTS`` to an entity; the entities of a section are keyed
``{section}~{sequence}``, so a partition query returns them in stream order and a reader can
decompress them as they arrive (a large snapshot streams in bounded memory).

Limits respected (azure-facts.md): a property ≤ 64 KiB, an entity ≤ 1 MiB and ≤ 255 properties,
a transaction ≤ 100 entities of one partition with a request body < 4 MiB. The body is estimated
conservatively (binary travels base64-encoded, strings JSON-escaped, plus per-operation MIME
headers) and capped well below the limit.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from auditor.adapters.tables.keys import SEPARATOR, key_bytes

MAX_PROPERTY_BYTES = 65_536  # service limit for a string (UTF-16) or binary property
PART_BYTES = 64_000  # what we put in one binary property
MAX_PARTS = 12  # 768,000 bytes of payload: an entity stays far below 1 MiB
MAX_ENTITY_BYTES = 1_048_576
MAX_PROPERTIES = 255  # PartitionKey, RowKey and Timestamp included
MAX_BATCH_ENTITIES = 100
MAX_BATCH_REQUEST_BYTES = 3 * 1024 * 1024  # the service allows < 4 MiB; leave a wide margin
# Fastest level: bytes are cheap next to entities; level 6 saves a fifth of them for 2.5x the CPU.
COMPRESSION_LEVEL = 1

SECTION_PROPERTY = "section"
_PART = re.compile(r"^p(\d{2})$")
_SYSTEM_PROPERTIES = 3  # PartitionKey, RowKey, Timestamp
_OPERATION_OVERHEAD = 1024  # MIME part headers, request line, changeset boundary
Entity = dict[str, Any]


class PackingError(ValueError):
    """An entity or batch would break a Table Storage limit, or a stored stream is damaged."""


# ---------------------------------------------------------------------------------------------
# Sections: lines <-> entities


def compress_lines(lines: Iterable[str], level: int = COMPRESSION_LEVEL) -> bytes:
    """One zlib stream of the lines, each ended by a newline (lines must not contain one)."""
    compressor = zlib.compressobj(level)
    out: list[bytes] = []
    buffer: list[str] = []
    size = 0
    for line in lines:
        buffer.append(line)
        size += len(line) + 1
        if size >= 1 << 18:
            out.append(compressor.compress(("\n".join(buffer) + "\n").encode("utf-8")))
            buffer, size = [], 0
    if buffer:
        out.append(compressor.compress(("\n".join(buffer) + "\n").encode("utf-8")))
    out.append(compressor.flush())
    return b"".join(out)


def section_row_key(section: str, sequence: int) -> str:
    return f"{section}{SEPARATOR}{sequence:05d}"


def section_prefix(section: str) -> tuple[str, str]:
    """RowKey range [low, high) holding every entity of a section."""
    return f"{section}{SEPARATOR}", f"{section}{chr(ord(SEPARATOR) + 1)}"


def section_entities(partition_key: str, section: str, lines: Iterable[str]) -> list[Entity]:
    """The entities holding a section's lines (at least one, even for no lines)."""
    if not re.fullmatch(r"[a-z_]+", section):
        raise PackingError(f"section names are lower-case words: {section!r}")
    stream = compress_lines(lines)
    parts = [stream[i : i + PART_BYTES] for i in range(0, len(stream), PART_BYTES)]
    entities = []
    for sequence, start in enumerate(range(0, len(parts), MAX_PARTS)):
        entity: Entity = {
            "PartitionKey": partition_key,
            "RowKey": section_row_key(section, sequence),
            SECTION_PROPERTY: section,
        }
        for number, part in enumerate(parts[start : start + MAX_PARTS]):
            entity[f"p{number:02d}"] = part
        entities.append(entity)
    return entities


def entity_parts(entity: Mapping[str, Any]) -> list[bytes]:
    """The binary parts of one entity, in order."""
    numbered = sorted((int(m.group(1)), name) for name in entity if (m := _PART.match(name)))
    parts = []
    for expected, (number, name) in enumerate(numbered):
        if number != expected:
            raise PackingError(f"entity {entity.get('RowKey')!r} lacks part p{expected:02d}")
        value = entity[name]
        if not isinstance(value, bytes | bytearray):
            raise PackingError(f"entity {entity.get('RowKey')!r}: {name} is not binary")
        parts.append(bytes(value))
    return parts


def iter_section_lines(entities: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """Lines of one section from its entities in RowKey order, decompressed as they arrive.

    PackingError when the stream is cut short or damaged (a missing or corrupted entity).
    """
    decompressor = zlib.decompressobj()
    # The unfinished line, in pieces: a projection's line runs to megabytes, and joining each
    # part onto it as it arrives would copy it once a part.
    pending: list[bytes] = []
    for entity in entities:
        for part in entity_parts(entity):
            try:
                data = decompressor.decompress(part)
            except zlib.error as exc:
                raise PackingError(f"damaged section stream: {exc}") from exc
            if b"\n" not in data:
                pending.append(data)
                continue
            pending.append(data)
            *complete, last = b"".join(pending).split(b"\n")
            pending = [last]
            for line in complete:
                yield line.decode("utf-8")
    try:
        tail = b"".join(pending) + decompressor.flush()
    except zlib.error as exc:  # pragma: no cover - flush of a decompressor rarely fails
        raise PackingError(f"damaged section stream: {exc}") from exc
    if not decompressor.eof or tail or decompressor.unused_data:
        raise PackingError("section stream is incomplete or has trailing data")


# ---------------------------------------------------------------------------------------------
# Large JSON values in ordinary properties


_SMALL_TEXT = 16 * 1024  # characters kept as a plain, readable string property


def put_text(entity: Entity, name: str, text: str) -> None:
    """Store text as a string property, or as compressed binary parts ``{name}_zNN`` when long."""
    if len(text) <= _SMALL_TEXT:
        entity[name] = text
        return
    data = zlib.compress(text.encode("utf-8", "surrogatepass"), COMPRESSION_LEVEL)
    for number, start in enumerate(range(0, len(data), PART_BYTES)):
        entity[f"{name}_z{number:02d}"] = data[start : start + PART_BYTES]


def get_text(entity: Mapping[str, Any], name: str) -> str | None:
    """Inverse of put_text (None when absent)."""
    value = entity.get(name)
    if isinstance(value, str):
        return value
    pieces = sorted(key for key in entity if re.fullmatch(rf"{re.escape(name)}_z\d\d", key))
    if not pieces:
        return None
    try:
        data = zlib.decompress(b"".join(bytes(entity[key]) for key in pieces))
    except zlib.error as exc:
        raise PackingError(f"property {name}: damaged compressed value") from exc
    return data.decode("utf-8", "surrogatepass")


def put_json(entity: Entity, name: str, value: Any) -> None:
    """Store a JSON value (see put_text)."""
    put_text(entity, name, json.dumps(value, sort_keys=True, separators=(",", ":")))


def get_json(entity: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """Inverse of put_json (`default` when absent)."""
    text = get_text(entity, name)
    return default if text is None else json.loads(text)


# ---------------------------------------------------------------------------------------------
# Limits


def _value_bytes(value: Any) -> int:
    """Size of a property value as the service counts it towards the 1 MiB entity limit."""
    if isinstance(value, bytes | bytearray):
        return len(value) + 4
    if isinstance(value, str):
        return key_bytes(value) + 4
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return 8
    if isinstance(value, float | datetime):
        return 8
    return key_bytes(str(value)) + 4


def entity_bytes(entity: Mapping[str, Any]) -> int:
    """Entity size by the service's formula (4 + keys in UTF-16 + per property 8 + name + value)."""
    size = 4 + key_bytes(entity["PartitionKey"]) + key_bytes(entity["RowKey"])
    for name, value in entity.items():
        if name in ("PartitionKey", "RowKey"):
            continue
        size += 8 + 2 * len(name) + _value_bytes(value)
    return size


def check_entity(entity: Mapping[str, Any]) -> None:
    """PackingError unless the entity fits every Table Storage limit."""
    if len(entity) + 1 > MAX_PROPERTIES:
        raise PackingError(f"entity {entity['RowKey']!r} has {len(entity) + 1} properties")
    for name, value in entity.items():
        if isinstance(value, str) and key_bytes(value) > MAX_PROPERTY_BYTES:
            raise PackingError(f"entity {entity['RowKey']!r}: string {name} exceeds 64 KiB")
        if isinstance(value, bytes | bytearray) and len(value) > MAX_PROPERTY_BYTES:
            raise PackingError(f"entity {entity['RowKey']!r}: binary {name} exceeds 64 KiB")
    if entity_bytes(entity) > MAX_ENTITY_BYTES:
        raise PackingError(f"entity {entity['RowKey']!r} exceeds 1 MiB")


def request_bytes(entity: Mapping[str, Any]) -> int:
    """Upper estimate of an entity's share of a transaction's request body."""
    # Keys appear in the request line (percent-encoded UTF-8) and in the body (JSON-escaped):
    # at most 12 bytes per character each time.
    size = _OPERATION_OVERHEAD + 24 * (len(entity["PartitionKey"]) + len(entity["RowKey"]))
    for name, value in entity.items():
        size += 2 * len(name) + 48  # "name":..., "name@odata.type":"Edm.Xxx",
        if isinstance(value, bytes | bytearray):
            size += 4 * math.ceil(len(value) / 3) + 2
        elif isinstance(value, str):
            size += len(json.dumps(value))
        else:
            size += 40
    return size


def plan_batches(entities: Sequence[Entity]) -> list[list[Entity]]:
    """Group entities into transactions: one partition, ≤ 100 entities, a body well under 4 MiB.

    Order is kept; a new batch starts whenever the partition changes.
    """
    batches: list[list[Entity]] = []
    current: list[Entity] = []
    current_bytes = 0
    for entity in entities:
        check_entity(entity)
        size = request_bytes(entity)
        if size > MAX_BATCH_REQUEST_BYTES:
            raise PackingError(f"entity {entity['RowKey']!r} alone exceeds a transaction")
        if current and (
            len(current) >= MAX_BATCH_ENTITIES
            or current_bytes + size > MAX_BATCH_REQUEST_BYTES
            or current[0]["PartitionKey"] != entity["PartitionKey"]
        ):
            batches.append(current)
            current, current_bytes = [], 0
        current.append(entity)
        current_bytes += size
    if current:
        batches.append(current)
    return batches
