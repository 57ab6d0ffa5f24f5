"""The project's own fixtures keep the fields and types of Microsoft's published examples.

The own fixtures (tests/fixtures) are what every test reads; this contract checks, when the
shared folder of Microsoft's examples is present beside the repository, that each own fixture
has exactly the paths and JSON types of the example it follows. Without that folder (a clone
from the project's public home) it skips and says so: nothing else depends on it.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import SPECS
from tests.fixtures import EXAMPLES, body, shape


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_own_fixture_has_the_fields_and_types_of_microsofts_example(name: str) -> None:
    published = SPECS / EXAMPLES[name]
    if not published.is_file():
        pytest.skip(f"Microsoft's example {EXAMPLES[name]} is not under {SPECS}: not compared")
    theirs = shape(json.loads(published.read_text(encoding="utf-8"))["responses"]["200"]["body"])
    ours = shape(body(name))
    assert sorted(set(ours) - set(theirs)) == [], "paths Microsoft's example does not have"
    assert sorted(set(theirs) - set(ours)) == [], "paths of Microsoft's example we lack"
    differing = {path: (ours[path], theirs[path]) for path in ours if ours[path] != theirs[path]}
    assert differing == {}, "paths whose JSON types differ (ours, theirs)"


def test_shape_lists_paths_and_types() -> None:
    assert shape({"a": [1, "x"], "b": {"c": None, "d": True}}) == {
        "$": {"object"},
        "$.a": {"array"},
        "$.a[]": {"number", "string"},
        "$.b": {"object"},
        "$.b.c": {"null"},
        "$.b.d": {"boolean"},
    }
