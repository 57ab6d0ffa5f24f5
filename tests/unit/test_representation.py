"""Choosing JSON or CSV, and writing CSV cells a spreadsheet opens safely."""

from __future__ import annotations

import csv
import io

import pytest

from auditor.api.representation import (
    Format,
    NotAcceptable,
    columns_of,
    csv_cell,
    negotiate,
    render_csv,
)


@pytest.mark.parametrize(
    ("accept", "format_param", "expected"),
    [
        (None, None, Format.JSON),
        ("", None, Format.JSON),
        ("*/*", None, Format.JSON),
        ("application/json", None, Format.JSON),
        ("text/csv", None, Format.CSV),
        ("text/*", None, Format.CSV),
        ("text/csv;q=0.5, application/json", None, Format.JSON),
        ("application/json;q=0.2, text/csv;q=0.9", None, Format.CSV),
        ("application/problem+json", None, Format.JSON),
        ("text/csv", Format.JSON, Format.JSON),
        ("application/json", Format.CSV, Format.CSV),
    ],
)
def test_format_wins_over_accept_and_accept_picks_by_quality(
    accept: str | None, format_param: Format | None, expected: Format
) -> None:
    assert negotiate(accept, format_param, csv_offered=True) is expected


def test_an_accept_header_allowing_nothing_offered_is_not_acceptable() -> None:
    with pytest.raises(NotAcceptable):
        negotiate("text/html", None, csv_offered=True)
    with pytest.raises(NotAcceptable):
        negotiate("text/csv", None, csv_offered=False)
    with pytest.raises(NotAcceptable):
        negotiate("application/json;q=0", None, csv_offered=False)


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, ""),
        (True, "true"),
        (3, "3"),
        (-0.25, "-0.25"),
        (["a", "b"], "a; b"),
        ("=HYPERLINK(1)", "'=HYPERLINK(1)"),
        ("+1", "'+1"),
        ("-x", "'-x"),
        ("@SUM", "'@SUM"),
        ("\tx", "'\tx"),
        ("plain", "plain"),
        # Issue 9 §5: full-width signs and whitespace before a formula are formulas too.
        ("\uff1dHYPERLINK(1)", "'\uff1dHYPERLINK(1)"),
        ("\uff0b1", "'\uff0b1"),
        ("\uff0dx", "'\uff0dx"),
        ("\uff20SUM", "'\uff20SUM"),
        (" =1+1", "' =1+1"),
        ("\u3000@SUM(A1)", "'\u3000@SUM(A1)"),
        ("\n-x", "'\n-x"),
        # Control characters go first, so they cannot hide a formula or reach the sheet.
        ("\x1b=cmd", "'=cmd"),
        ("name\x1b[2J\x07", "name[2J"),
        ("a - b", "a - b"),
    ],
)
def test_cells_are_plain_text_and_formulas_are_defused(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


def test_csv_flattens_nested_objects_and_reads_back_with_a_csv_reader() -> None:
    items = [
        {"id": "x", "before": {"state": "Passed", "n": 1}, "after": None, "note": 'a "b", c\nd'},
        {"id": "y", "before": None, "after": {"state": "Failed", "n": 2}, "note": ""},
    ]
    columns = ["id", "before.state", "before.n", "after.state", "after.n", "note"]
    text = render_csv(items, columns).decode()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows == [
        columns,
        ["x", "Passed", "1", "", "", 'a "b", c\nd'],
        ["y", "", "", "Failed", "2", ""],
    ]


def test_map_columns_are_added_sorted_after_the_fixed_ones() -> None:
    items = [{"id": 1, "compliance": {"b": 1.0}}, {"id": 2, "compliance": {"a": None}}]
    assert columns_of(items, ["id"], "compliance") == ["id", "compliance.a", "compliance.b"]
