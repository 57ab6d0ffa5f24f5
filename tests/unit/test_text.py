"""The one sanitiser of customer text (auditor/core/text.py) and bounded JSON parsing."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditor.core.jsonlimits import JsonTooDeep, loads, nesting_depth
from auditor.core.text import has_controls, plain_text

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


@pytest.mark.parametrize(
    ("value", "line", "cell"),
    [
        ("plain", "plain", "plain"),
        ("\x1b[31mred\x1b[0m", "[31mred[0m", "[31mred[0m"),
        ("title\x1b]0;owned\x07!", "title]0;owned!", "title]0;owned!"),
        ("c1\x9b31m\x85x", "c131m x", "c131m\nx"),
        ("a\rOK: forged", "a OK: forged", "a\nOK: forged"),
        ("a\r\nb\tc", "a b c", "a\nb\tc"),
        ("\u202eevil\u2066", "evil", "evil"),
        ("del\x7f", "del", "del"),
        ("日本語 ok", "日本語 ok", "日本語 ok"),
    ],
)
def test_control_characters_go_and_line_breaks_stay_only_in_cells(
    value: str, line: str, cell: str
) -> None:
    assert plain_text(value) == line
    assert plain_text(value, keep_layout=True) == cell


@given(st.text())
def test_no_control_character_survives(value: str) -> None:
    line = plain_text(value)
    assert not [c for c in line if unicodedata.category(c) == "Cc" or c in BIDI]
    cell = plain_text(value, keep_layout=True)
    assert not [c for c in cell if (unicodedata.category(c) == "Cc" and c not in "\n\t")]
    assert not has_controls(cell)
    assert plain_text(line) == line


def test_nesting_is_measured_without_recursion_and_bounded() -> None:
    assert nesting_depth('{"a": ["[[[", {"b": 1}]}') == 3
    deep = "[" * 100_000 + "]" * 100_000
    assert nesting_depth(deep) == 100_000
    with pytest.raises(JsonTooDeep):
        loads(deep)
    with pytest.raises(ValueError):
        loads(b"\xff")
    assert loads('{"a": [1]}') == {"a": [1]}
