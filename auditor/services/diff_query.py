"""A tenant's diff as a caller asks for it: which two snapshots, which changes.

One place for what the API's diff route and the `diff` command both do: resolve the two ends
(defaults, the same not-found words), check every filter value against the two snapshots (an
unknown standard or subscription is named with the valid ones, never an empty answer), and
select the matching changes. Callers map the errors to their medium: a problem document, or one
line and an exit code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC
from enum import StrEnum
from typing import TypeVar

from auditor.core import wording
from auditor.core.diff import Change, ChangeKind, Diff, Level
from auditor.core.snapshot import TENANT_ID, SnapshotIndexEntry, SnapshotNotFound
from auditor.services.history import SnapshotHistory, SnapshotRef


class DiffQueryError(ValueError):
    """A request that cannot be answered, in words; `parameter` names what is at fault."""

    def __init__(self, parameter: str | None, detail: str) -> None:
        super().__init__(detail)
        self.parameter = parameter
        self.detail = detail


class BadValue(DiffQueryError):
    """A parameter value that is malformed or names nothing (API: 400)."""


class TenantUnknown(DiffQueryError):
    """The tenant has no committed snapshot (API: 404, worded like an invisible tenant)."""


class EndNotFound(DiffQueryError):
    """No committed snapshot answers `from` or `to` (API: 404)."""


MAX_STANDARD_LENGTH = 256
MAX_FILTER_VALUES = 100
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")

E = TypeVar("E", bound=StrEnum)


def _values(name: str, raw: Iterable[str] | None, *, split: bool) -> list[str]:
    out: list[str] = []
    for value in raw or ():
        parts = value.split(",") if split else [value]
        out.extend(part.strip() for part in parts)
    if len(out) > MAX_FILTER_VALUES:
        raise BadValue(name, f"{name}: at most {MAX_FILTER_VALUES} values")
    for value in out:
        if not value:
            raise BadValue(name, f"{name}: empty value")
    return out


def choices(name: str, raw: Iterable[str] | None, kind: type[E]) -> frozenset[E]:
    """Values of an enumerated filter (comma-separated or repeated)."""
    allowed = {member.value: member for member in kind}
    out = set()
    for value in _values(name, raw, split=True):
        if value not in allowed:
            words = wording.one_of(allowed)
            raise BadValue(name, f"{name}: unknown value {value!r}; {name} {words}")
        out.add(allowed[value])
    return frozenset(out)


def subscriptions(raw: Iterable[str] | None) -> frozenset[str]:
    """Subscription ids (comma-separated or repeated), lower-cased."""
    out = set()
    for value in _values("subscription", raw, split=True):
        if not TENANT_ID.match(value):
            raise BadValue(
                "subscription",
                f"subscription: {value!r} is not a subscription id; "
                f"subscription {wording.SUBSCRIPTION_IDS}",
            )
        out.add(value.lower())
    return frozenset(out)


def standards(raw: Iterable[str] | None) -> frozenset[str]:
    """Standard names, matched exactly (repeated, never split: names may hold commas)."""
    out = set()
    for value in _values("standard", raw, split=False):
        if len(value) > MAX_STANDARD_LENGTH or _CONTROL_CHARS.search(value):
            raise BadValue("standard", "standard: not a standard name")
        out.add(value)
    return frozenset(out)


def change_filter(
    standard: Iterable[str] | None = None,
    subscription: Iterable[str] | None = None,
    change: Iterable[str] | None = None,
    level: Iterable[str] | None = None,
) -> ChangeFilter:
    """The filter a caller's raw values name; BadValue naming the first bad one."""
    return ChangeFilter(
        standards=standards(standard),
        subscriptions=subscriptions(subscription),
        kinds=choices("change", change, ChangeKind),
        levels=choices("level", level, Level),
    )


@dataclass(frozen=True, slots=True)
class ChangeFilter:
    standards: frozenset[str]
    subscriptions: frozenset[str]
    kinds: frozenset[ChangeKind]
    levels: frozenset[Level]

    def __bool__(self) -> bool:
        return bool(self.standards or self.subscriptions or self.kinds or self.levels)

    def keep(self, change: Change) -> bool:
        return (
            (not self.standards or change.standard in self.standards)
            and (not self.subscriptions or change.subscription_id in self.subscriptions)
            and (not self.kinds or change.change in self.kinds)
            and (not self.levels or change.level in self.levels)
        )

    def canonical(self) -> list[list[str]]:
        return [
            sorted(self.standards),
            sorted(self.subscriptions),
            sorted(k.value for k in self.kinds),
            sorted(level.value for level in self.levels),
        ]

    def check_known(self, before: SnapshotIndexEntry, after: SnapshotIndexEntry) -> None:
        """BadValue for a standard or subscription that neither snapshot has."""
        ends = f"snapshots {before.snapshot_id} and {after.snapshot_id}"
        known_standards = set(before.compliance_by_standard) | set(after.compliance_by_standard)
        for value in sorted(self.standards - known_standards):
            raise BadValue(
                "standard",
                wording.unknown_value(
                    "standard", value, known_standards, f"the standards of {ends} are"
                ),
            )
        known_subscriptions = {
            *before.expected_subscriptions,
            *before.collected_subscriptions,
            *after.expected_subscriptions,
            *after.collected_subscriptions,
        }
        for value in sorted(self.subscriptions - known_subscriptions):
            raise BadValue(
                "subscription",
                wording.unknown_value(
                    "subscription", value, known_subscriptions, f"the subscriptions of {ends} are"
                ),
            )


def matching(diff: Diff, wanted: ChangeFilter) -> tuple[Change, ...] | list[Change]:
    """The changes of `diff` the filter keeps, in the diff's order."""
    if not wanted:
        return diff.changes
    return [change for change in diff.changes if wanted.keep(change)]


def resolve_end(
    history: SnapshotHistory, tenant_id: str, ref: SnapshotRef | None, name: str
) -> SnapshotIndexEntry:
    """The snapshot `ref` names (None: the latest); TenantUnknown for a tenant without any
    committed snapshot, EndNotFound for a known tenant without a matching one."""
    try:
        return history.resolve(tenant_id, ref)
    except SnapshotNotFound:
        pass
    if ref is None or not history.has_snapshots(tenant_id):
        raise TenantUnknown(None, "No tenant with this id has a snapshot.")
    if ref.snapshot_id is not None:
        raise EndNotFound(name, f"{name}: no committed snapshot {ref.snapshot_id}")
    moment = ref.moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    raise EndNotFound(name, f"{name}: no committed snapshot at or before {moment}")


def resolve_ends(
    history: SnapshotHistory,
    tenant_id: str,
    start: SnapshotRef | None,
    end: SnapshotRef | None,
) -> tuple[SnapshotIndexEntry, SnapshotIndexEntry]:
    """(before, after): `to` (default the latest) and `from` (default the snapshot just before
    `to`); BadValue when `from` is after `to` as given or once resolved."""
    if start is not None and end is not None and start.moment > end.moment:
        raise BadValue("from", "from is after to")
    after = resolve_end(history, tenant_id, end, "to")
    if start is None:
        try:
            before = history.previous(after)
        except SnapshotNotFound:
            raise EndNotFound(
                "from", f"from: no committed snapshot before {after.snapshot_id}; give from"
            ) from None
    else:
        before = resolve_end(history, tenant_id, start, "from")
    if before.scheduled_at > after.scheduled_at:
        raise BadValue("from", f"from ({before.snapshot_id}) is after to ({after.snapshot_id})")
    return before, after
