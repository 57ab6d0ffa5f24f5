"""Times on the command line: one parser per kind of value, used as argparse ``type=``.

Every option that takes a time accepts what its help shows: an instant with a zone
(``2026-11-27T02:00:00Z`` or ``2026-11-27T03:00:00+01:00``) or a date alone (``2026-11-27``,
meaning 00:00Z that day); options that name a snapshot also take a snapshot id
(``20261127T020000Z``). A bad value is argparse's usage error (exit 2) in words.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime

from auditor.core import wording
from auditor.core.snapshot import SNAPSHOT_ID, slot_of
from auditor.services.history import SnapshotRef

DATE_EXAMPLE = "2026-11-27"
INSTANT_HELP = (
    f"an instant with a zone like {wording.INSTANT_EXAMPLE}, or a date like {DATE_EXAMPLE} "
    "(meaning 00:00Z that day)"
)
REF_HELP = f"a snapshot id like {wording.SNAPSHOT_ID_EXAMPLE}, {INSTANT_HELP}"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INSTANT_WORDS = f"must be {INSTANT_HELP}"


def instant(text: str) -> datetime:
    """An instant with its zone, or a date alone (00:00Z), as UTC."""
    return _instant(text, _INSTANT_WORDS)


def _instant(text: str, words: str) -> datetime:
    value = text.strip()
    try:
        if _DATE.match(value):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {words}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} names no zone (ambiguous): add one, e.g. {value}Z for UTC"
        )
    return moment.astimezone(UTC)


def snapshot_ref(text: str) -> SnapshotRef:
    """A snapshot id (exactly that snapshot), or an instant or date (the latest snapshot at or
    before it)."""
    value = text.strip()
    if SNAPSHOT_ID.match(value):
        try:
            slot_of(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} names no real time") from None
        return SnapshotRef(snapshot_id=value)
    return SnapshotRef(instant=_instant(value, f"must be {REF_HELP}"))


def period_ref(text: str) -> str:
    """A pack period's end as the report service takes it: a snapshot id as given, or the
    instant (a date alone: 00:00Z) spelt in UTC with ``Z``."""
    ref = snapshot_ref(text)
    if ref.snapshot_id is not None:
        return ref.snapshot_id
    assert ref.instant is not None
    return ref.instant.strftime("%Y-%m-%dT%H:%M:%SZ")
