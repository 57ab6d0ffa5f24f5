"""Per-tenant summaries the dashboard shows, derived once per committed snapshot.

The portfolio reads the summary each committed index row stores (auditor/core/index_summary.py,
covered by the anchor); what follows serves the tenant page, *Where to act first* (every
failing control) and rows committed before summaries were stored.

A page must not decode whole snapshots on every view (a 100,000-record tenant takes seconds),
so what a page shows of a snapshot's content is derived once, from the content the anchored
store verified, and kept in process under the snapshot's id, attempt and content hash: a
committed snapshot never changes, so the summary never goes stale, and every summary names the
snapshot id and content hash it derives from (``TenantSummary.source``). Nothing is stored: no
new mutable table, nothing to tamper with; rebuilding one is reading the snapshot again.

The index-level figures (status, compliance per standard, counts) are read from the anchored
index entries themselves: the latest row of every tenant at most once per LATEST_TTL (a new
snapshot shows within a minute), a tenant's recent entries under its latest entry (and for at
most HISTORY_TTL, so a late backfill of an older slot shows within minutes).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from auditor.core.diff import ChangeKind
from auditor.core.index_summary import (
    SPARKLINE_DAYS,
    PlanCoverage,
    open_alerts,
    plan_coverage,
    secure_score,
)
from auditor.core.model import HardeningStatus, State
from auditor.core.snapshot import Snapshot, SnapshotIndexEntry, SnapshotNotFound, UnverifiedLatest
from auditor.services.bounded_cache import BoundedCache
from auditor.services.history import SnapshotHistory

__all__ = ["SPARKLINE_DAYS", "PlanCoverage"]  # re-exported: the pages' names for them
HISTORY_TTL = 300.0  # seconds
# The latest row of every tenant is listed at most this often for the pages (a light query of
# keys and ETags, changed rows read and verified again: about 120 ms for 1,000 tenants on
# Azurite, which would be most of the portfolio's warm time).
LATEST_TTL = 60.0  # seconds
MAX_SUMMARIES = 20_000  # summaries are small (a few KB); failing rows are weighed below


@dataclass(frozen=True, slots=True)
class FailingAssessment:
    subscription_id: str
    assessment: str
    description: str
    failed_resources: int
    days_failing: int | None


@dataclass(frozen=True, slots=True)
class ControlRow:
    standard: str
    control: str
    description: str
    failing_subscriptions: int
    passing_subscriptions: int
    failing_assessments: int


@dataclass(frozen=True, slots=True)
class HardeningRow:
    feature: str
    healthy: int
    unhealthy: int
    assessed_subscriptions: int
    missing_subscriptions: int
    retired_subscriptions: int


@dataclass(frozen=True, slots=True)
class TenantSummary:
    """What the dashboard shows of one snapshot's content; `source` names what it derives from."""

    tenant_id: str
    snapshot_id: str
    content_hash: str
    secure_score: float | None  # percent over the tenant's subscriptions (current / maximum)
    plans: tuple[PlanCoverage, ...]
    hardening: tuple[HardeningRow, ...]
    controls: tuple[ControlRow, ...]  # failing controls first
    failing: dict[tuple[str, str], tuple[FailingAssessment, ...]]  # (standard, control)
    # Open (active, in-progress) alerts per severity, most severe first, from the counts (the
    # cap limits the listed alerts, never the counts); None: taken before alerts were collected.
    open_alerts: tuple[tuple[str, int], ...] | None = None

    @property
    def source(self) -> str:
        return f"snapshot {self.snapshot_id} (SHA-256 {self.content_hash})"

    @property
    def hardening_percent(self) -> float | None:
        healthy = sum(h.healthy for h in self.hardening)
        total = healthy + sum(h.unhealthy for h in self.hardening)
        return round(100.0 * healthy / total, 1) if total else None

    @property
    def failing_controls(self) -> int:
        return sum(1 for c in self.controls if c.failing_subscriptions)


def _hardening(snapshot: Snapshot) -> tuple[HardeningRow, ...]:
    rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for item in snapshot.posture.hardening:
        row = rows[item.feature]
        if item.status is HardeningStatus.ASSESSED:
            row[0] += item.healthy
            row[1] += item.unhealthy
            row[2] += 1
        elif item.status is HardeningStatus.MISSING:
            row[3] += 1
        else:
            row[4] += 1
    return tuple(HardeningRow(feature, *counts) for feature, counts in sorted(rows.items()))


def _controls(
    snapshot: Snapshot,
) -> tuple[tuple[ControlRow, ...], dict[tuple[str, str], tuple[FailingAssessment, ...]]]:
    at = snapshot.index.scheduled_at
    failing: dict[tuple[str, str], list[FailingAssessment]] = defaultdict(list)
    for record in snapshot.posture.compliance:
        if record.state is not State.FAILED:
            continue
        transition = snapshot.transitions.get(record.key)
        since = transition.first_failed if transition else None
        failing[(record.standard, record.control)].append(
            FailingAssessment(
                subscription_id=record.subscription_id,
                assessment=record.assessment,
                description=record.description,
                failed_resources=record.failed_resources,
                days_failing=max(0, (at - since).days) if since else None,
            )
        )
    states: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    descriptions: dict[tuple[str, str], str] = {}
    for control in snapshot.posture.controls:
        key = (control.standard, control.control)
        descriptions.setdefault(key, control.description)
        if control.state is State.FAILED:
            states[key][0] += 1
        elif control.state is State.PASSED:
            states[key][1] += 1
    rows = [
        ControlRow(s, c, descriptions[(s, c)], fail, ok, len(failing.get((s, c), ())))
        for (s, c), (fail, ok) in states.items()
    ]
    rows.sort(key=lambda r: (r.failing_subscriptions == 0, r.standard, r.control))
    ordered = {
        key: tuple(sorted(items, key=lambda f: (-(f.days_failing or 0), f.subscription_id)))
        for key, items in failing.items()
    }
    return tuple(rows), ordered


def summarize(snapshot: Snapshot) -> TenantSummary:
    """The summary of one verified snapshot (pure)."""
    controls, failing = _controls(snapshot)
    return TenantSummary(
        tenant_id=snapshot.index.tenant_id,
        snapshot_id=snapshot.index.snapshot_id,
        content_hash=snapshot.index.content_hash,
        secure_score=secure_score(snapshot.posture),
        plans=plan_coverage(snapshot.posture),
        hardening=_hardening(snapshot),
        controls=controls,
        failing=failing,
        open_alerts=open_alerts(snapshot.posture),
    )


Latest = tuple[float, list[SnapshotIndexEntry], list[UnverifiedLatest]]


def has_content(entry: SnapshotIndexEntry) -> bool:
    """Whether the snapshot holds content to summarise (a failed one holds none)."""
    return entry.counts.get("compliance", 0) > 0 or bool(entry.collected_subscriptions)


def _key(entry: SnapshotIndexEntry) -> tuple[str, str, str, str]:
    return (entry.tenant_id, entry.snapshot_id, entry.attempt, entry.content_hash)


@dataclass(frozen=True, slots=True)
class Recent:
    """A tenant's snapshots of the last SPARKLINE_DAYS (newest first) and the regressions
    of its latest snapshot against the one before (None: no previous snapshot)."""

    entries: tuple[SnapshotIndexEntry, ...]
    regressions: int | None
    previous: SnapshotIndexEntry | None


class TenantSummaries:
    """Summaries and recent history per tenant, cached under immutable snapshot keys."""

    def __init__(self, history: SnapshotHistory, *, max_weight: int = MAX_SUMMARIES) -> None:
        self.history = history
        self._summaries: BoundedCache[tuple[str, str, str, str], TenantSummary] = BoundedCache(
            max_weight, lambda s: 1 + sum(len(v) for v in s.failing.values()) // 100
        )
        self._recent: dict[str, tuple[tuple[str, str, str, str], float, Recent]] = {}
        self._lock = threading.Lock()
        self._latest: Latest | None = None
        self._latest_lock = threading.Lock()

    def _listing(self) -> Latest:
        with self._latest_lock:
            now = time.monotonic()
            if self._latest is None or now - self._latest[0] >= LATEST_TTL:
                entries, unverified = self.history.list_latest()
                self._latest = (now, entries, unverified)
            return self._latest

    def latest_entries(self) -> list[SnapshotIndexEntry]:
        """Every tenant's latest committed snapshot (all tenants: callers filter by grant),
        read from the anchored store at most once per LATEST_TTL."""
        return list(self._listing()[1])

    def unverified(self) -> list[UnverifiedLatest]:
        """Latest rows that failed verification (all tenants: callers filter by grant)."""
        return list(self._listing()[2])

    def summary(self, entry: SnapshotIndexEntry) -> TenantSummary | None:
        """The summary of `entry` (None for a failed snapshot, which holds no content)."""
        if not has_content(entry):
            return None
        return self._summaries.get_or_load(
            _key(entry), lambda: summarize(self.history.snapshot(entry))
        )

    def recent(self, latest: SnapshotIndexEntry) -> Recent:
        """Recent snapshots and regressions of the tenant whose latest snapshot is `latest`."""
        now = time.monotonic()
        with self._lock:
            cached = self._recent.get(latest.tenant_id)
        if cached and cached[0] == _key(latest) and now - cached[1] < HISTORY_TTL:
            return cached[2]
        since = latest.scheduled_at - timedelta(days=SPARKLINE_DAYS)
        entries = tuple(self.history.list_snapshots(latest.tenant_id, since=since))
        previous = next((e for e in entries if e.scheduled_at < latest.scheduled_at), None)
        if previous is None:
            try:
                previous = self.history.previous(latest)
            except SnapshotNotFound:
                previous = None
        regressions = None
        if previous is not None:
            diff = self.history.diff(previous, latest)
            regressions = diff.summary.posture.get(ChangeKind.REGRESSED, 0)
        recent = Recent(entries=entries, regressions=regressions, previous=previous)
        with self._lock:
            self._recent[latest.tenant_id] = (_key(latest), now, recent)
        return recent


def change_of(
    latest: SnapshotIndexEntry, previous: SnapshotIndexEntry | None, standard: str
) -> float | None:
    """Compliance points gained (+) or lost (-) since the previous snapshot (None: unknown)."""
    if previous is None:
        return None
    return change_from(latest, previous.compliance_by_standard, standard)


def change_from(
    latest: SnapshotIndexEntry, before: Mapping[str, float | None] | None, standard: str
) -> float | None:
    """change_of, from the previous snapshot's compliance per standard (None: unknown)."""
    if before is None:
        return None
    now, then = latest.compliance_by_standard.get(standard), before.get(standard)
    return None if now is None or then is None else round(now - then, 2)


def stale(entry: SnapshotIndexEntry, expected_slot: datetime | None) -> bool:
    """No complete snapshot for the slot the schedule says should exist."""
    return expected_slot is not None and entry.scheduled_at < expected_slot
