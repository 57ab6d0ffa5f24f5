"""View models of the dashboard's pages: plain data the templates render, nothing else.

Built from the anchored index entries (status, compliance, counts) and the per-snapshot
summaries (auditor/web/summary.py); every list holds only tenants the caller may see, so a
template cannot reveal another one whatever it renders.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from auditor.core.access import TenantScope
from auditor.core.index_summary import SPARKLINE_DAYS, IndexSummary
from auditor.core.index_summary import mean as _mean
from auditor.core.model import AlertSeverity, CollectionStatus
from auditor.core.snapshot import Snapshot, SnapshotIndexEntry, UnverifiedLatest
from auditor.services.bounded_cache import BoundedCache
from auditor.services.ranking import Kind, LatestSnapshots, RankedItem, Ranking, rank_where_to_act
from auditor.web.summary import (
    Recent,
    TenantSummaries,
    TenantSummary,
    change_from,
    change_of,
    has_content,
    stale,
)

STALE = "stale"
STATUSES = ("complete", "incomplete", "failed", STALE)
SORTS = ("name", "status", "compliance", "score", "regressions")


@dataclass(frozen=True, slots=True)
class StandardCell:
    standard: str
    value: float | None
    change: float | None


@dataclass(frozen=True, slots=True)
class PortfolioRow:
    entry: SnapshotIndexEntry
    status: str
    standards: tuple[StandardCell, ...]
    # The stored summary of the latest index row (anchored with it); the summary derived from
    # the snapshot's content for rows that predate stored ones, or when the page needs detail.
    summary: TenantSummary | IndexSummary | None
    regressions: int | None
    spark: tuple[float | None, ...]

    @property
    def name(self) -> str:
        return self.entry.tenant_name or self.entry.tenant_id

    @property
    def key(self) -> tuple[object, ...]:
        """Everything the row shows: equal keys render the same HTML."""
        e = self.entry
        return (e.tenant_id, e.snapshot_id, e.attempt, e.content_hash, self.status,
                self.standards, self.regressions, self.spark)  # fmt: skip

    @property
    def mean_compliance(self) -> float | None:
        values = [c.value for c in self.standards if c.value is not None]
        return round(sum(values) / len(values), 2) if values else None


@dataclass(frozen=True, slots=True)
class Totals:
    tenants: int
    by_status: dict[str, int]
    regressions: int
    failing_controls: int
    mean_compliance: float | None
    mean_score: float | None
    open_high_alerts: int = 0  # over the tenants whose latest snapshot holds alerts


@dataclass(frozen=True, slots=True)
class Portfolio:
    rows: tuple[PortfolioRow, ...]
    totals: Totals
    standards: tuple[str, ...]  # every standard of the visible tenants (filter options)
    shown: int
    filters: dict[str, str] = field(default_factory=dict)
    # Visible tenants whose latest row fails verification: shown as such, with no figure.
    unverified: tuple[UnverifiedLatest, ...] = ()


def mean(values: list[float | None]) -> float | None:
    return _mean(values)


def status_of(entry: SnapshotIndexEntry, expected_slot: datetime | None) -> str:
    if stale(entry, expected_slot):
        return STALE
    return entry.status.value


def spark_values(recent: Recent) -> tuple[float | None, ...]:
    """Mean compliance over standards per snapshot, oldest first."""
    return tuple(mean(list(e.compliance_by_standard.values())) for e in reversed(recent.entries))


def portfolio_row(
    entry: SnapshotIndexEntry,
    summaries: TenantSummaries,
    expected_slot: datetime | None,
    *,
    detail: bool = False,
) -> PortfolioRow:
    """A tenant's row: from the summary its anchored latest row stores (no other read), else
    (a row that predates stored summaries, or `detail`: controls wanted) from its snapshots."""
    stored = entry.summary
    if stored is not None and not detail:
        return stored_row(entry, stored, summaries, expected_slot)
    recent = summaries.recent(entry)
    cells = tuple(
        StandardCell(standard, value, change_of(entry, recent.previous, standard))
        for standard, value in sorted(entry.compliance_by_standard.items())
    )
    return PortfolioRow(
        entry=entry,
        status=status_of(entry, expected_slot),
        standards=cells,
        summary=summaries.summary(entry),
        regressions=recent.regressions,
        spark=spark_values(recent),
    )


def stored_row(
    entry: SnapshotIndexEntry,
    stored: IndexSummary,
    summaries: TenantSummaries,
    expected_slot: datetime | None,
) -> PortfolioRow:
    before = stored.previous_compliance
    cells = tuple(
        StandardCell(standard, value, change_from(entry, before, standard))
        for standard, value in sorted(entry.compliance_by_standard.items())
    )
    if stored.spark_covers(entry.scheduled_at - timedelta(days=SPARKLINE_DAYS)):
        spark = tuple(point.mean for point in stored.spark)
    else:  # the window reaches back before summaries were stored: read the index rows
        spark = spark_values(summaries.recent(entry))
    return PortfolioRow(
        entry=entry,
        status=status_of(entry, expected_slot),
        standards=cells,
        summary=stored if has_content(entry) else None,
        regressions=stored.regressions,
        spark=spark,
    )


def _sort_key(sort: str):  # type: ignore[no-untyped-def]
    low = float("-inf")
    keys = {
        "name": lambda r: (r.name.casefold(), r.entry.tenant_id),
        "status": lambda r: (STATUSES.index(r.status), r.name.casefold()),
        "compliance": lambda r: (
            r.mean_compliance if r.mean_compliance is not None else low,
            r.name.casefold(),
        ),
        "score": lambda r: (
            r.summary.secure_score if r.summary and r.summary.secure_score is not None else low,
            r.name.casefold(),
        ),
        "regressions": lambda r: (r.regressions or 0, r.name.casefold()),
    }
    return keys[sort]


def build_portfolio(
    rows: list[PortfolioRow],
    *,
    status: str | None,
    standard: str | None,
    name: str | None,
    sort: str,
    descending: bool,
) -> Portfolio:
    """Totals over every visible tenant; the rows filtered and sorted as asked."""
    by_status = Counter(r.status for r in rows)
    totals = Totals(
        tenants=len(rows),
        by_status={s: by_status.get(s, 0) for s in STATUSES},
        regressions=sum(r.regressions or 0 for r in rows),
        failing_controls=sum(r.summary.failing_controls for r in rows if r.summary),
        mean_compliance=mean([r.mean_compliance for r in rows]),
        mean_score=mean([r.summary.secure_score for r in rows if r.summary]),
        open_high_alerts=sum(
            n
            for r in rows
            if r.summary and r.summary.open_alerts
            for severity, n in r.summary.open_alerts
            if severity == AlertSeverity.HIGH.value
        ),
    )
    standards = tuple(sorted({c.standard for r in rows for c in r.standards}))
    wanted = (name or "").casefold()
    kept = [
        r
        for r in rows
        if (not status or r.status == status)
        and (not standard or any(c.standard == standard for c in r.standards))
        and (not wanted or wanted in r.name.casefold() or wanted in r.entry.tenant_id)
    ]
    kept.sort(key=_sort_key(sort), reverse=descending)
    return Portfolio(tuple(kept), totals, standards, len(kept))


ACTIONS_PER_PAGE = 50


@dataclass(frozen=True, slots=True)
class ActionPage:
    """One page of the where-to-act ranking over the visible estate."""

    items: tuple[tuple[int, RankedItem], ...]  # (rank over every item, item)
    total: int  # items over every visible tenant
    tenants_ranked: int
    not_collected: tuple[tuple[str, str], ...]  # visible tenants without recommendations
    page: int
    pages: int
    kind: Kind | None


# Rankings kept per (kinds, visible tenants' latest snapshots), weighed by their items.
MAX_RANKED_ITEMS = 200_000
ALL_ITEMS = 10**9
RankingKey = tuple[tuple[Kind, ...], tuple[tuple[str, str, str], ...]]


def ranking_cache() -> BoundedCache[RankingKey, Ranking]:
    return BoundedCache(MAX_RANKED_ITEMS, lambda r: len(r.items) + 1)


class VisibleLatest:
    """The latest snapshots ranking reads: the visible tenants' entries, content from history."""

    def __init__(self, entries: list[SnapshotIndexEntry], history: LatestSnapshots) -> None:
        self.entries, self.history = entries, history

    def list_tenants(self) -> list[SnapshotIndexEntry]:
        return self.entries

    def snapshot(self, entry: SnapshotIndexEntry) -> Snapshot:
        return self.history.snapshot(entry)


def where_to_act(
    latest: LatestSnapshots,
    scope: TenantScope,
    *,
    kind: Kind | None = None,
    page: int = 1,
    per_page: int | None = None,
    cache: BoundedCache[RankingKey, Ranking] | None = None,
) -> ActionPage:
    """Recommendations and failing controls ranked by severity, then unhealthy resources,
    over the tenants in `scope` only (services/ranking.py, the API's /api/where-to-act).

    The whole ranking is kept in `cache` under the visible tenants' latest snapshots (ids and
    content hashes): a new snapshot, or another grant, is another key, so a page never shows
    a stale or foreign ranking; paging slices it."""
    kinds: tuple[Kind, ...] = (kind,) if kind else ("recommendation", "control")
    per_page = per_page or ACTIONS_PER_PAGE
    visible = [e for e in latest.list_tenants() if e.tenant_id in scope]
    key: RankingKey = (kinds, tuple((e.tenant_id, e.snapshot_id, e.content_hash) for e in visible))

    def rank() -> Ranking:
        return rank_where_to_act(
            VisibleLatest(visible, latest), scope, kinds=kinds, limit=ALL_ITEMS
        )

    ranking = cache.get_or_load(key, rank) if cache is not None else rank()
    offset = (page - 1) * per_page
    names = {e.tenant_id: e.tenant_name for e in visible}
    return ActionPage(
        items=tuple(
            (offset + n + 1, item)
            for n, item in enumerate(ranking.items[offset : offset + per_page])
        ),
        total=ranking.total,
        tenants_ranked=ranking.tenants_ranked,
        not_collected=tuple((t, names.get(t, t)) for t in ranking.tenants_not_collected),
        page=page,
        pages=max(1, -(-ranking.total // per_page)),
        kind=kind,
    )


def control_place(item: RankedItem) -> tuple[str, str]:
    """(standard, control) of a control item (its key is "standard/control")."""
    standard, _, control = item.key.partition("/")
    return standard, control


def complete(entry: SnapshotIndexEntry) -> bool:
    return entry.status is CollectionStatus.COMPLETE
