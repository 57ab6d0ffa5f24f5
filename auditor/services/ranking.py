"""Where to act first: recommendations and failing controls ranked over every tenant a caller
may see, by severity, then unhealthy resources.

Over each visible tenant's latest snapshot:

- a *recommendation* (assessment key) counts its unhealthy resources (the ``recommendations``
  section), its severity from Defender's metadata;
- a *failing control* (standard, control) counts the failed resources of its failed
  assessments; its severity is the highest severity of those assessments' recommendations in
  the same snapshot (a regulatory assessment is named by its assessment key), else none.

The access policy applies to every row and every total: only tenants in the caller's scope are
read at all, so a tenant the caller may not see contributes nothing, not even to a count. A
visible tenant whose latest snapshot predates recommendations is named in
``tenants_not_collected`` (absent is not zero).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from auditor.core.access import TenantScope
from auditor.core.model import RecommendationSummary, State
from auditor.core.registry import RECOMMENDATIONS, records_of
from auditor.core.snapshot import Snapshot, SnapshotIndexEntry

SEVERITIES = ("High", "Medium", "Low")  # Defender's; anything else ranks after them
Kind = Literal["recommendation", "control"]


class LatestSnapshots(Protocol):
    """What ranking reads (auditor.services.history.SnapshotHistory provides it)."""

    def list_tenants(self) -> list[SnapshotIndexEntry]: ...

    def snapshot(self, entry: SnapshotIndexEntry) -> Snapshot: ...


@dataclass(frozen=True, slots=True)
class TenantCount:
    tenant_id: str
    tenant_name: str
    unhealthy_resources: int
    subscriptions: int


@dataclass(frozen=True, slots=True)
class RankedItem:
    kind: Kind
    key: str  # recommendation: assessment key; control: "standard/control"
    display_name: str
    severity: str  # High | Medium | Low | "" (unknown)
    unhealthy_resources: int  # over every visible tenant
    tenants: tuple[TenantCount, ...]  # most unhealthy resources first
    remediation: str = ""

    @property
    def sort_key(self) -> tuple[int, int, str, str]:
        rank = SEVERITIES.index(self.severity) if self.severity in SEVERITIES else len(SEVERITIES)
        return (rank, -self.unhealthy_resources, self.kind, self.key)


@dataclass(frozen=True, slots=True)
class Ranking:
    items: tuple[RankedItem, ...]  # the page asked for
    total: int  # items over every visible tenant
    tenants_ranked: int  # visible tenants whose latest snapshot holds recommendations
    tenants_not_collected: tuple[str, ...]  # visible tenants whose latest snapshot predates them
    next_offset: int | None  # where the next page starts; None on the last page


def rank_where_to_act(
    snapshots: LatestSnapshots,
    scope: TenantScope,
    *,
    kinds: Iterable[Kind] = ("recommendation", "control"),
    offset: int = 0,
    limit: int = 100,
) -> Ranking:
    """The ranked items over the latest snapshot of every tenant in `scope`, paged."""
    if offset < 0 or limit < 1:
        raise ValueError("offset must be >= 0 and limit >= 1")
    wanted = set(kinds)
    builders: dict[tuple[Kind, str], _Item] = {}
    ranked, not_collected = 0, []
    for entry in snapshots.list_tenants():
        if entry.tenant_id not in scope:
            continue  # never read: contributes nothing, not even to a total
        snapshot = snapshots.snapshot(entry)
        recommendations = records_of(snapshot.posture, RECOMMENDATIONS)
        if recommendations is None:
            not_collected.append(entry.tenant_id)
            continue
        ranked += 1
        if "recommendation" in wanted:
            _add_recommendations(builders, entry, recommendations)
        if "control" in wanted:
            _add_controls(builders, entry, snapshot, recommendations)
    items = sorted((b.item() for b in builders.values()), key=lambda i: i.sort_key)
    page = tuple(items[offset : offset + limit])
    more = offset + limit < len(items)
    return Ranking(page, len(items), ranked, tuple(not_collected), offset + limit if more else None)


class _Item:
    def __init__(self, kind: Kind, key: str, name: str, severity: str, remediation: str) -> None:
        self.kind, self.key, self.name = kind, key, name
        self.severity, self.remediation = severity, remediation
        self.per_tenant: dict[str, list[int]] = {}  # tenant -> [unhealthy, subscriptions]
        self.names: dict[str, str] = {}

    def add(self, entry: SnapshotIndexEntry, unhealthy: int) -> None:
        counts = self.per_tenant.setdefault(entry.tenant_id, [0, 0])
        counts[0] += unhealthy
        counts[1] += 1
        self.names[entry.tenant_id] = entry.tenant_name

    def item(self) -> RankedItem:
        tenants = sorted(
            (TenantCount(t, self.names[t], c[0], c[1]) for t, c in self.per_tenant.items()),
            key=lambda t: (-t.unhealthy_resources, t.tenant_id),
        )
        return RankedItem(
            kind=self.kind,
            key=self.key,
            display_name=self.name,
            severity=self.severity,
            unhealthy_resources=sum(t.unhealthy_resources for t in tenants),
            tenants=tuple(tenants),
            remediation=self.remediation,
        )


def _add_recommendations(
    builders: dict[tuple[Kind, str], _Item],
    entry: SnapshotIndexEntry,
    recommendations: Iterable[RecommendationSummary],
) -> None:
    for r in recommendations:
        if not r.unhealthy:
            continue
        item = builders.get(("recommendation", r.recommendation))
        if item is None:
            item = _Item("recommendation", r.recommendation, r.display_name, r.severity, "")
            item.remediation = r.remediation
            builders[("recommendation", r.recommendation)] = item
        item.add(entry, r.unhealthy)


def _add_controls(
    builders: dict[tuple[Kind, str], _Item],
    entry: SnapshotIndexEntry,
    snapshot: Snapshot,
    recommendations: Iterable[RecommendationSummary],
) -> None:
    severity_of = {r.recommendation: r.severity for r in recommendations}
    names = {(c.standard, c.control): c.description for c in snapshot.posture.controls}
    failing: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)  # control -> sub -> n
    severities: dict[tuple[str, str], set[str]] = defaultdict(set)
    for record in snapshot.posture.compliance:
        if record.state is not State.FAILED:
            continue
        place = (record.standard, record.control)
        by_sub = failing[place]
        by_sub[record.subscription_id] = by_sub.get(record.subscription_id, 0) + (
            record.failed_resources
        )
        severities[place].add(severity_of.get(record.assessment, ""))
    for (standard, control), by_sub in failing.items():
        key = f"{standard}/{control}"
        item = builders.get(("control", key))
        severity = next((s for s in SEVERITIES if s in severities[(standard, control)]), "")
        if item is None:
            name = names.get((standard, control)) or f"{standard} {control}"
            item = _Item("control", key, name, severity, "")
            builders[("control", key)] = item
        elif severity and (item.severity not in SEVERITIES or _worse(severity, item.severity)):
            item.severity = severity
        for failed in by_sub.values():
            item.add(entry, failed)


def _worse(severity: str, than: str) -> bool:
    return SEVERITIES.index(severity) < SEVERITIES.index(than)
