"""Per-tenant summaries the dashboard shows, derived once per committed snapshot.

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
from dataclasses import dataclass
from datetime import datetime, timedelta

from auditor.core.diff import ChangeKind
from auditor.core.model import OPEN_ALERT_STATUSES, AlertSeverity, HardeningStatus, State
from auditor.core.registry import ALERT_COUNTS, records_of
from auditor.core.snapshot import Snapshot, SnapshotIndexEntry, SnapshotNotFound
from auditor.services.bounded_cache import BoundedCache
from auditor.services.history import SnapshotHistory

PAID_TIER = "Standard"
SPARKLINE_DAYS = 30
HISTORY_TTL = 300.0  # seconds
# The latest row of every tenant (one table query, each row checked against its anchor: about
# 0.9 s for 1,000 tenants on Azurite) is read at most this often for the pages.
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
class PlanCoverage:
    plan: str
    paid: int  # subscriptions on the paid tier
    subscriptions: int


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


def _secure_score(snapshot: Snapshot) -> float | None:
    scores = snapshot.posture.secure_scores
    maximum = sum(s.maximum for s in scores)
    return round(100.0 * sum(s.current for s in scores) / maximum, 1) if maximum > 0 else None


def _open_alerts(snapshot: Snapshot) -> tuple[tuple[str, int], ...] | None:
    counts = records_of(snapshot.posture, ALERT_COUNTS)
    if counts is None:
        return None
    by_severity: dict[AlertSeverity, int] = defaultdict(int)
    for c in counts:
        if c.status in OPEN_ALERT_STATUSES:
            by_severity[c.severity] += c.alerts
    return tuple((s.value, by_severity[s]) for s in AlertSeverity if by_severity[s])


def _plans(snapshot: Snapshot) -> tuple[PlanCoverage, ...]:
    paid: dict[str, set[str]] = defaultdict(set)
    seen: dict[str, set[str]] = defaultdict(set)
    for plan in snapshot.posture.plans:
        seen[plan.plan].add(plan.subscription_id)
        if plan.tier == PAID_TIER:
            paid[plan.plan].add(plan.subscription_id)
    return tuple(PlanCoverage(name, len(paid[name]), len(seen[name])) for name in sorted(seen))


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
        secure_score=_secure_score(snapshot),
        plans=_plans(snapshot),
        hardening=_hardening(snapshot),
        controls=controls,
        failing=failing,
        open_alerts=_open_alerts(snapshot),
    )


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
        self._latest: tuple[float, list[SnapshotIndexEntry]] | None = None
        self._latest_lock = threading.Lock()

    def latest_entries(self) -> list[SnapshotIndexEntry]:
        """Every tenant's latest committed snapshot (all tenants: callers filter by grant),
        read from the anchored store at most once per LATEST_TTL."""
        with self._latest_lock:
            now = time.monotonic()
            if self._latest is None or now - self._latest[0] >= LATEST_TTL:
                self._latest = (now, self.history.list_tenants())
            return list(self._latest[1])

    def summary(self, entry: SnapshotIndexEntry) -> TenantSummary | None:
        """The summary of `entry` (None for a failed snapshot, which holds no content)."""
        if entry.counts.get("compliance", 0) == 0 and not entry.collected_subscriptions:
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
    now, before = (
        latest.compliance_by_standard.get(standard),
        previous.compliance_by_standard.get(standard),
    )
    return None if now is None or before is None else round(now - before, 2)


def stale(entry: SnapshotIndexEntry, expected_slot: datetime | None) -> bool:
    """No complete snapshot for the slot the schedule says should exist."""
    return expected_slot is not None and entry.scheduled_at < expected_slot
