"""Control-plane text quoted inside the auditor's own messages (reasons, warnings). Pure.

Reasons and warnings are stored with a snapshot and shown by every output: text a server chose
(an id, a URL, an error message) is made printable and kept short before it goes into one, so
a hostile answer can neither break a line nor fill the record. Outputs still sanitise on their
own; this only keeps our messages one bounded line.
"""

from __future__ import annotations

MAX_QUOTED = 200


def quote(text: object, limit: int = MAX_QUOTED) -> str:
    """`text` printable (other characters as \\xNN / \\uNNNN escapes), at most `limit` chars."""
    raw = str(text)
    if raw.isprintable() and len(raw) <= limit:
        return raw
    shown = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in raw[: limit + 1])
    return shown if len(shown) <= limit else shown[:limit] + "..."


def first_line(exc: BaseException) -> str:
    """An exception's message for a reason or a log line: its first line, quoted."""
    text = str(exc).strip()
    return quote(text.splitlines()[0], 300) if text else type(exc).__name__
