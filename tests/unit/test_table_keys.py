"""Key spelling: any name is a safe key, round-trips, and index rows sort newest first."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditor.adapters.tables import keys

FORBIDDEN = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


@given(st.text())
def test_any_string_round_trips_through_escape(text: str) -> None:
    assert keys.unescape(keys.escape(text)) == text


@given(st.text())
def test_an_escaped_string_holds_no_character_a_key_forbids(text: str) -> None:
    escaped = keys.escape(text)
    assert not FORBIDDEN.search(escaped)
    assert keys.SEPARATOR not in escaped
    assert not any(0xD800 <= ord(ch) <= 0xDFFF for ch in escaped)


@given(st.lists(st.text(max_size=40), min_size=1, max_size=5))
def test_composite_keys_split_back_into_their_parts(parts: list[str]) -> None:
    assert keys.split(keys.join(*parts)) == parts


def test_names_with_every_forbidden_character_are_escaped_readably() -> None:
    assert keys.escape("PCI/DSS\\4#1?x~%\t\x85") == "PCI%2FDSS%5C4%231%3Fx%7E%25%09%85"
    assert keys.escape("ISO 27001:2013 — A.5") == "ISO 27001:2013 — A.5"


def test_a_key_over_one_kibibyte_is_refused() -> None:
    keys.join("x" * 512)
    with pytest.raises(keys.KeyFormatError):
        keys.join("x" * 513)
    with pytest.raises(keys.KeyFormatError):
        keys.join("/" * 200)  # 600 characters once escaped


def test_index_row_keys_sort_newest_first_and_name_the_snapshot() -> None:
    ids = ["20240101T020000Z", "20240102T020000Z", "20241231T235959Z", "20250101T000000Z"]
    row_keys = [keys.index_row_key(i) for i in ids]
    assert sorted(row_keys) == list(reversed(row_keys))
    assert keys.index_row_key("20240102T020000Z") == "79759897979999~20240102T020000Z"
    assert [keys.snapshot_id_of_row_key(k) for k in row_keys] == ids


def test_slot_bounds_bracket_exactly_the_slots_on_each_side() -> None:
    older, slot, newer = "20240101T020000Z", "20240102T020000Z", "20240103T020000Z"
    low, high = keys.index_row_key_bound(slot), keys.after_slot_bound(slot)
    assert keys.index_row_key(newer) < low <= keys.index_row_key(slot) < high
    assert high < keys.index_row_key(older)


def test_malformed_row_keys_are_rejected() -> None:
    with pytest.raises(keys.KeyFormatError):
        keys.index_row_key("2024-01-01")
    with pytest.raises(keys.KeyFormatError):
        keys.snapshot_id_of_row_key("00000000000000~20240102T020000Z")
