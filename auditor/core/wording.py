"""How the product says what a parameter must be: in words with an example, never a pattern.

One phrase per kind of value, shared by the API's problems, its OpenAPI descriptions and the
command line's errors and help, so that a caller reads the same sentence everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable

SNAPSHOT_ID_EXAMPLE = "20261127T020000Z"
INSTANT_EXAMPLE = "2026-11-27T02:00:00Z"
GUID_EXAMPLE = "a0000000-0000-4000-8000-00000000000a"
REPORT_ID_EXAMPLE = "20261201T040000Z-0a1b2c3d"

SNAPSHOT_REF = (
    f"must be a snapshot id like {SNAPSHOT_ID_EXAMPLE} or an instant with a zone like "
    f"{INSTANT_EXAMPLE}"
)
TENANT_ID = f"must be a tenant id (a GUID like {GUID_EXAMPLE})"
SUBSCRIPTION_IDS = f"must be subscription ids (GUIDs like {GUID_EXAMPLE}), comma-separated"
REPORT_ID = f"must be a report id like {REPORT_ID_EXAMPLE}"

# Shown where a list of valid values would be longer than a caller can read.
MAX_LISTED = 50


def one_of(values: Iterable[str]) -> str:
    """`must be one of a, b, c`, comma-separated (the words of an enumerated filter)."""
    return f"must be one of {', '.join(values)}, comma-separated"


def listing(values: Iterable[str]) -> str:
    """Values for a message: all of them, or the first MAX_LISTED and how many more."""
    items = sorted(values)
    if not items:
        return "none"
    shown = ", ".join(items[:MAX_LISTED])
    rest = len(items) - MAX_LISTED
    return f"{shown} and {rest} more" if rest > 0 else shown


def unknown_value(parameter: str, value: str, valid: Iterable[str], where: str) -> str:
    """The detail of an unknown filter value: the value, and the valid ones with where from."""
    return f"{parameter}: unknown value {value!r}; {where}: {listing(valid)}"
