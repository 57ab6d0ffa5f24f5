"""Text from customer tenants made safe to show: one sanitiser for every output path. Pure.

Display names, resource names, descriptions and reasons come from tenants we do not control. A
terminal runs the escape sequences they may carry (cursor moves, colour, title changes, a
forged line after a carriage return); a spreadsheet or XML writer chokes on some, and bidi
overrides make text read differently from what it is. ``plain_text`` removes every control
character (Unicode category Cc: C0, DEL, C1) and the bidirectional embedding, override and
isolate marks, before the text reaches a terminal (auditor/commands), a CSV
(auditor/api/representation.py) or a workbook cell (auditor/core/workbook.py).
"""

from __future__ import annotations

import re

# Bidi embeddings/overrides (U+202A-U+202E) and isolates (U+2066-U+2069): "Trojan source".
_BIDI = "\u202a-\u202e\u2066-\u2069"
_CONTROLS = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
# Where layout is kept (CSV and workbook cells hold multi-line text): line feed and tab stay.
_CONTROLS_BUT_LAYOUT = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
_LINE_BREAKS = re.compile(r"\r\n?|[\n\x0b\x0c\x85\u2028\u2029]")


def plain_text(value: str, *, keep_layout: bool = False) -> str:
    """`value` without control characters or bidi controls.

    Line breaks (CR, LF, CRLF, VT, FF, NEL and the Unicode line/paragraph separators) become
    one space on a terminal line; with ``keep_layout`` (a CSV or workbook cell) they become a
    line feed and tabs stay. Everything else of categories Cc and the bidi controls is
    removed. Text without any of them is returned as is (the common case costs one search).
    """
    pattern = _CONTROLS_BUT_LAYOUT if keep_layout else _CONTROLS
    if not pattern.search(value) and "\u2028" not in value and "\u2029" not in value:
        return value
    value = _LINE_BREAKS.sub("\n" if keep_layout else " ", value)
    if not keep_layout:
        value = value.replace("\t", " ")
    return pattern.sub("", value)


def has_controls(value: str) -> bool:
    """True when plain_text would change `value` (keeping layout)."""
    return bool(_CONTROLS_BUT_LAYOUT.search(value)) or "\u2028" in value or "\u2029" in value
