"""JSON and CSV representations, and choosing between them.

A route that returns a table answers CSV when the query says ``format=csv``, or else when the
``Accept`` header prefers ``text/csv`` to ``application/json``; JSON otherwise. ``format`` wins
over ``Accept`` because links and spreadsheets cannot set headers.

CSV (RFC 4180, UTF-8, CRLF, a header row) holds exactly the rows of the JSON ``value`` array,
one per item, nested objects flattened into ``parent.child`` columns. Text loses its control
characters (auditor/core/text.py; line breaks and tabs stay). A text cell that a spreadsheet
would run as a formula is prefixed with an apostrophe: one that starts with ``=``, ``+``, ``-``,
``@`` or their full-width forms ``＝`` ``＋`` ``－`` ``＠`` (spreadsheets with East Asian input
read those as the ASCII ones), also after leading whitespace, or that starts with a tab or a
line break. Numbers are written as numbers and never prefixed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from auditor.core.text import plain_text

JSON = "application/json"
CSV = "text/csv"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8; header=present"

_FORMULA_START = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_LEADING_SPACE = ("\t", "\n", "\r")


class Format(StrEnum):
    JSON = "json"
    CSV = "csv"


class NotAcceptable(ValueError):
    """The Accept header allows none of the offered media types."""


def dump_json(document: Any) -> bytes:
    """Compact UTF-8 JSON (the wire format of every JSON body)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _accept_entries(header: str) -> list[tuple[str, float]]:
    entries = []
    for part in header.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        if not media:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        entries.append((media.lower(), quality))
    return entries


def _quality(entries: list[tuple[str, float]], media: str) -> float:
    kind = media.split("/")[0]
    best: tuple[int, float] = (-1, 0.0)  # (specificity, quality)
    for candidate, quality in entries:
        if candidate == media:
            specificity = 2
        elif candidate == f"{kind}/*":
            specificity = 1
        elif candidate == "*/*":
            specificity = 0
        else:
            continue
        if specificity > best[0]:
            best = (specificity, quality)
    return best[1]


def negotiate(accept: str | None, format_param: Format | None, *, csv_offered: bool) -> Format:
    """The representation to answer; NotAcceptable when Accept rules out every offered one."""
    if format_param is not None:
        return format_param
    if not accept or not accept.strip():
        return Format.JSON
    entries = _accept_entries(accept)
    json_q = max(_quality(entries, JSON), _quality(entries, "application/problem+json"))
    csv_q = _quality(entries, CSV) if csv_offered else 0.0
    if csv_q > json_q:
        return Format.CSV
    if json_q > 0:
        return Format.JSON
    raise NotAcceptable(accept)


def flatten(item: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects as ``parent.child`` keys (lists stay values)."""
    flat: dict[str, Any] = {}
    for key, value in item.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if value:
                flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def csv_cell(value: Any) -> str:
    """One CSV cell: empty for null, true/false, numbers as JSON spells them, lists joined by
    ``; ``, formula-looking text prefixed with an apostrophe."""
    if isinstance(value, str):
        text = plain_text(value, keep_layout=True)
        formula = text.lstrip().startswith(_FORMULA_START) or text.startswith(_LEADING_SPACE)
        return "'" + text if formula else text
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)  # as JSON spells it
    if isinstance(value, float):
        return repr(value)  # as JSON spells it (non-finite numbers never reach a document)
    if isinstance(value, list | tuple):
        return csv_cell("; ".join(csv_cell(v) for v in value))
    return csv_cell(str(value))


def _getter(column: str) -> Callable[[Mapping[str, Any]], Any]:
    """Reads a ``parent.child`` column from a nested item (None when any step is missing)."""
    head, dot, rest = column.partition(".")
    if not dot:
        return lambda item: item.get(column)

    def get(item: Mapping[str, Any]) -> Any:
        inner = item.get(head)
        if isinstance(inner, Mapping):
            # Map keys (standards) may hold dots themselves: try the whole rest first.
            if rest in inner:
                return inner[rest]
            return _getter(rest)(inner)
        return None

    return get


def render_csv(items: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> bytes:
    """The CSV document of `items` (nested objects as ``parent.child`` columns)."""
    getters = [_getter(column) for column in columns]
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([csv_cell(c) for c in columns])
    writer.writerows([csv_cell(get(item)) for get in getters] for item in items)
    return out.getvalue().encode("utf-8")


def columns_of(items: Iterable[Mapping[str, Any]], fixed: Sequence[str], *maps: str) -> list[str]:
    """Fixed columns, then for each map field (e.g. compliance by standard) its sorted
    ``{field}.{key}`` columns found in `items`."""
    found: dict[str, set[str]] = {name: set() for name in maps}
    for item in items:
        for key in flatten(item):
            head, dot, _ = key.partition(".")
            if dot and head in found:
                found[head].add(key)
    return [*fixed, *(column for name in maps for column in sorted(found[name]))]
