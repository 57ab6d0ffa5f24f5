"""PartitionKey and RowKey spelling: escaping, composition, newest-first ordering. Pure.

Table Storage forbids ``/ \\ # ?`` and control characters in keys and limits each key to 1 KiB.
Names that come from outside (tenant ids from discovery, slot ids) are escaped before they
become part of a key; ``~`` separates the parts of a composite key, so it is escaped inside a
part. Escapes: ``%XX`` for a character up to U+00FF, ``%uXXXX`` for a lone surrogate (which
UTF-8 cannot carry). Every string round-trips through ``escape``/``unescape``.

Standard, control and assessment names never become keys: records are packed many to an entity
(see ``packing``), keyed by section and sequence number.
"""

from __future__ import annotations

import re

from auditor.core.snapshot import SNAPSHOT_ID, slot_of

SEPARATOR = "~"
# Table Storage's key limit is 1 KiB; counted in UTF-16 code units × 2, as the service stores
# strings, that is 512 characters of the Basic Multilingual Plane.
MAX_KEY_BYTES = 1024

_ESCAPED = frozenset("%/\\#?" + SEPARATOR)
_ESCAPE = re.compile(r"%(?:u([0-9A-F]{4})|([0-9A-F]{2}))")


class KeyFormatError(ValueError):
    """A key would be empty, too long or malformed."""


def _needs_escape(ch: str) -> bool:
    code = ord(ch)
    return (
        ch in _ESCAPED
        or code < 0x20
        or 0x7F <= code <= 0x9F  # C1 controls and DEL
        or 0xD800 <= code <= 0xDFFF  # lone surrogates
    )


def escape(part: str) -> str:
    """`part` with every character a key may not hold (and ``%``, ``~``) escaped."""
    if not any(_needs_escape(ch) for ch in part):
        return part
    out = []
    for ch in part:
        if _needs_escape(ch):
            code = ord(ch)
            out.append(f"%{code:02X}" if code <= 0xFF else f"%u{code:04X}")
        else:
            out.append(ch)
    return "".join(out)


def unescape(part: str) -> str:
    """Inverse of escape."""
    if "%" not in part:
        return part
    return _ESCAPE.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), part)


def key_bytes(key: str) -> int:
    """Size of a key as the service counts it (UTF-16)."""
    return len(key.encode("utf-16-le", "surrogatepass"))


def join(*parts: str) -> str:
    """A composite key of escaped parts; KeyFormatError when it would exceed 1 KiB."""
    key = SEPARATOR.join(escape(part) for part in parts)
    if key_bytes(key) > MAX_KEY_BYTES:
        raise KeyFormatError(f"key longer than {MAX_KEY_BYTES} bytes: {key[:60]}...")
    return key


def split(key: str) -> list[str]:
    """Inverse of join."""
    return [unescape(part) for part in key.split(SEPARATOR)]


# Newest first: Table Storage returns a partition in ascending RowKey order, so a snapshot's
# index row is keyed by the complement of its slot's digits, followed by the readable id.
_DIGITS = 14
_TOP = 10**_DIGITS - 1


def _inverted(snapshot_id: str) -> str:
    digits = snapshot_id[0:8] + snapshot_id[9:15]
    return f"{_TOP - int(digits):0{_DIGITS}d}"


def index_row_key(snapshot_id: str) -> str:
    """RowKey of a snapshot in its tenant's index: sorts newest first, ends with the id."""
    if not SNAPSHOT_ID.match(snapshot_id):
        raise KeyFormatError(f"not a snapshot id: {snapshot_id!r}")
    return f"{_inverted(snapshot_id)}{SEPARATOR}{snapshot_id}"


def snapshot_id_of_row_key(row_key: str) -> str:
    """Inverse of index_row_key."""
    inverted, _, snapshot_id = row_key.partition(SEPARATOR)
    if not SNAPSHOT_ID.match(snapshot_id) or _inverted(snapshot_id) != inverted:
        raise KeyFormatError(f"not an index row key: {row_key!r}")
    return snapshot_id


def index_row_key_bound(snapshot_id: str) -> str:
    """The inverted-digit prefix alone: every row key of this slot sorts at or after it."""
    slot_of(snapshot_id)  # validates
    return _inverted(snapshot_id)


def after_slot_bound(snapshot_id: str) -> str:
    """A bound sorting after every row key of this slot and before any older slot's."""
    return _inverted(snapshot_id) + chr(ord(SEPARATOR) + 1)
