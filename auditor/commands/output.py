"""What commands print: customer text on one line, and nothing a terminal would run.

``shown`` is for a field that comes from a tenant (a display name, a standard, a reason): its
control characters go and its line breaks become spaces, so it cannot forge a line of its own.
``PlainTextStream`` wraps standard output for the whole command (auditor/cli.py) as the
backstop: whatever a command prints, no escape sequence reaches the terminal. Both use the one
sanitiser, auditor/core/text.py. JSON output needs neither: json escapes control characters.
"""

from __future__ import annotations

from typing import TextIO

from auditor.core.text import plain_text


def shown(value: str) -> str:
    """A tenant-provided value as one printable line."""
    return plain_text(value)


class PlainTextStream:
    """A text stream that drops control characters (line breaks and tabs stay) on write."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(plain_text(text, keep_layout=True))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)
