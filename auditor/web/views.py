"""View models of the dashboard's pages: plain data the templates render, nothing else.

Built from the anchored index entries (status, compliance, counts) and the per-snapshot
summaries (auditor/web/summary.py); every list holds only tenants the caller may see, so a
template cannot reveal another one whatever it renders.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from auditor.core.index_summary import SPARKLINE_DAYS, IndexSummary
from auditor.core.index_summary import mean as _mean
from auditor.core.model import AlertSeverity, CollectionStatus
from auditor.core.snapshot import SnapshotIndexEntry, UnverifiedLatest
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


@dataclass(frozen=True, slots=True)
class ActionRow:
    """A failing control across the visible estate: how many tenants and subscriptions."""

    standard: str
    control: str
    description: str
    tenants: tuple[tuple[str, str], ...]  # (tenant id, display name)
    subscriptions: int
    failing_assessments: int


def where_to_act(rows: list[PortfolioRow], limit: int = 200) -> list[ActionRow]:
    """Failing controls ranked by the tenants, then subscriptions, they affect.

    The seam for the cross-tenant ranking service (issue 12): it replaces this function's
    body; the page only needs ActionRow items in ranked order.
    """
    tenants: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    subs: Counter[tuple[str, str]] = Counter()
    failing: Counter[tuple[str, str]] = Counter()
    descriptions: dict[tuple[str, str], str] = {}
    for row in rows:
        if not isinstance(row.summary, TenantSummary):
            continue  # rows built with detail=True carry controls
        for control in row.summary.controls:
            if not control.failing_subscriptions:
                continue
            key = (control.standard, control.control)
            tenants[key].append((row.entry.tenant_id, row.name))
            subs[key] += control.failing_subscriptions
            failing[key] += control.failing_assessments
            descriptions.setdefault(key, control.description)
    ranked = sorted(tenants, key=lambda k: (-len(tenants[k]), -subs[k], k))
    return [
        ActionRow(k[0], k[1], descriptions[k], tuple(tenants[k]), subs[k], failing[k])
        for k in ranked[:limit]
    ]


def complete(entry: SnapshotIndexEntry) -> bool:
    return entry.status is CollectionStatus.COMPLETE
