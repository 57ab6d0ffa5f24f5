"""JSON from outside the process, parsed within a nesting bound. Pure.

Python's json module recurses once per nesting level: a document nested a few thousand deep
raises RecursionError (not ValueError), which a caller expecting "bad JSON" does not catch and
which answers a 500. ``loads`` measures the nesting first, without recursion, and refuses
anything deeper than ``max_depth`` with a ``JsonTooDeep`` (a ValueError), so every bad input is
one kind of error. No real request body or principal header nests beyond a handful of levels.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 32

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(r"[\[\]{}]")


class JsonTooDeep(ValueError):
    """The document nests deeper than the bound."""


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in `text` (brackets inside strings do not count)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def loads(raw: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads, with ValueError for every malformed input (undecodable bytes, bad JSON, a
    document nested deeper than `max_depth`)."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    depth = nesting_depth(text)
    if depth > max_depth:
        raise JsonTooDeep(f"nests {depth} levels deep, more than {max_depth}")
    return json.loads(text)
