"""The per-tenant summary a committed index row carries: what the portfolio shows of a snapshot.

Pure. Computed once, when a snapshot is prepared (``auditor/core/prepared.py``), from the posture
being committed and what the store verified of its predecessor; stored as the ``summary``
property of the committed index row (and so of the tenant's latest row, its copy), which the
anchor's index digest covers like every other property. Listing every tenant then reads one
table and the anchors, never a snapshot's content.

Not part of the canonical content: the content hash is unchanged by it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from auditor.core.model import (
    OPEN_ALERT_STATUSES,
    AlertSeverity,
    HardeningStatus,
    State,
    TenantPosture,
)
from auditor.core.registry import ALERT_COUNTS, records_of

SUMMARY_FORMAT = 1
PAID_TIER = "Standard"
SPARKLINE_DAYS = 30
Key = tuple[str, str, str, str]


class SummaryFormatError(ValueError):
    """A stored summary this code cannot read (the reader falls back to the snapshot)."""


@dataclass(frozen=True, slots=True)
class PlanCoverage:
    plan: str
    paid: int  # subscriptions on the paid tier
    subscriptions: int


@dataclass(frozen=True, slots=True)
class SparkPoint:
    snapshot_id: str
    mean: float | None  # mean compliance over standards (None: no standard assessed)


@dataclass(frozen=True, slots=True)
class IndexSummary:
    """One snapshot's portfolio figures.

    ``spark`` holds the snapshots of the last SPARKLINE_DAYS, oldest first, this one last; it
    holds every snapshot since ``spark_since`` (a snapshot id; "" when since the tenant's first),
    so a reader knows whether it covers the whole window."""

    secure_score: float | None  # percent over the tenant's subscriptions (current / maximum)
    plans: tuple[PlanCoverage, ...]
    hardening_healthy: int
    hardening_unhealthy: int
    # Open (active, in-progress) alerts per severity, most severe first; None: not collected.
    open_alerts: tuple[tuple[str, int], ...] | None
    failing_controls: int  # (standard, control) pairs failing in at least one subscription
    # The diff's `regressed` count against the previous snapshot; None: no previous snapshot,
    # or its history could not be verified.
    regressions: int | None
    # Compliance per standard of the previous snapshot (None: no verified previous snapshot).
    previous_compliance: dict[str, float | None] | None
    spark: tuple[SparkPoint, ...]
    spark_since: str = ""

    @property
    def hardening_percent(self) -> float | None:
        total = self.hardening_healthy + self.hardening_unhealthy
        return round(100.0 * self.hardening_healthy / total, 1) if total else None

    def spark_covers(self, start: datetime) -> bool:
        """Whether `spark` holds every snapshot scheduled at or after `start`."""
        from auditor.core.snapshot import slot_of  # snapshot imports this module

        return not self.spark_since or slot_of(self.spark_since) <= start

    def to_json(self) -> dict[str, Any]:
        return {
            "v": SUMMARY_FORMAT,
            "secureScore": self.secure_score,
            "plans": [[p.plan, p.paid, p.subscriptions] for p in self.plans],
            "hardening": [self.hardening_healthy, self.hardening_unhealthy],
            "openAlerts": None if self.open_alerts is None else [list(a) for a in self.open_alerts],
            "failingControls": self.failing_controls,
            "regressions": self.regressions,
            "previousCompliance": self.previous_compliance,
            "spark": [[p.snapshot_id, p.mean] for p in self.spark],
            "sparkSince": self.spark_since,
        }

    @classmethod
    def from_json(cls, value: Any) -> IndexSummary:
        try:
            if value["v"] != SUMMARY_FORMAT:
                raise SummaryFormatError(f"summary format {value['v']!r} is not {SUMMARY_FORMAT}")
            alerts = value["openAlerts"]
            previous = value["previousCompliance"]
            return cls(
                secure_score=_number(value["secureScore"]),
                plans=tuple(PlanCoverage(str(n), int(p), int(s)) for n, p, s in value["plans"]),
                hardening_healthy=int(value["hardening"][0]),
                hardening_unhealthy=int(value["hardening"][1]),
                open_alerts=None if alerts is None else tuple((str(s), int(n)) for s, n in alerts),
                failing_controls=int(value["failingControls"]),
                regressions=None if value["regressions"] is None else int(value["regressions"]),
                previous_compliance=(
                    None if previous is None else {str(k): _number(v) for k, v in previous.items()}
                ),
                spark=tuple(SparkPoint(str(i), _number(m)) for i, m in value["spark"]),
                spark_since=str(value["sparkSince"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, SummaryFormatError):
                raise
            raise SummaryFormatError(f"unreadable summary: {exc!r}") from exc

    def encode(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the known values, to one decimal (None when none is known)."""
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 1) if known else None


def secure_score(posture: TenantPosture) -> float | None:
    scores = posture.secure_scores
    maximum = sum(s.maximum for s in scores)
    return round(100.0 * sum(s.current for s in scores) / maximum, 1) if maximum > 0 else None


def open_alerts(posture: TenantPosture) -> tuple[tuple[str, int], ...] | None:
    """Open alerts per severity from the counts (the cap limits listed alerts, never counts)."""
    counts = records_of(posture, ALERT_COUNTS)
    if counts is None:
        return None
    by_severity: dict[AlertSeverity, int] = defaultdict(int)
    for c in counts:
        if c.status in OPEN_ALERT_STATUSES:
            by_severity[c.severity] += c.alerts
    return tuple((s.value, by_severity[s]) for s in AlertSeverity if by_severity[s])


def plan_coverage(posture: TenantPosture) -> tuple[PlanCoverage, ...]:
    paid: dict[str, set[str]] = defaultdict(set)
    seen: dict[str, set[str]] = defaultdict(set)
    for plan in posture.plans:
        seen[plan.plan].add(plan.subscription_id)
        if plan.tier == PAID_TIER:
            paid[plan.plan].add(plan.subscription_id)
    return tuple(PlanCoverage(name, len(paid[name]), len(seen[name])) for name in sorted(seen))


def hardening_totals(posture: TenantPosture) -> tuple[int, int]:
    """(healthy, unhealthy) resources over the assessed hardening features."""
    assessed = [h for h in posture.hardening if h.status is HardeningStatus.ASSESSED]
    return sum(h.healthy for h in assessed), sum(h.unhealthy for h in assessed)


def failing_controls(posture: TenantPosture) -> int:
    return len({(c.standard, c.control) for c in posture.controls if c.state is State.FAILED})


def regressions(
    posture: TenantPosture,
    previous_collected: Collection[str],
    previous_states: Mapping[Key, State],
) -> int:
    """The diff's ``regressed`` count (auditor/core/diff.py) from the previous snapshot's
    observed states: assessments present at both ends, in subscriptions collected at both
    ends, that turned Failed. Appearances are ``added``, never regressions."""
    comparable = set(previous_collected) & set(posture.completeness.collected_subscriptions)
    count = 0
    for record in posture.compliance:
        if record.state is not State.FAILED or record.subscription_id not in comparable:
            continue
        before = previous_states.get(record.key)
        if before is not None and before is not State.FAILED:
            count += 1
    return count


@dataclass(frozen=True, slots=True)
class PreviousFigures:
    """What the summary needs of the previous snapshot, as the store verified it."""

    snapshot_id: str
    compliance: dict[str, float | None]
    collected_subscriptions: tuple[str, ...]
    summary: IndexSummary | None  # None: the previous row predates summaries
    # The previous snapshot's observed states (carried assessments excluded); None when its
    # history could not be verified.
    states: Mapping[Key, State] | None


def spark_of(
    snapshot_id: str,
    at: datetime,
    compliance: Mapping[str, float | None],
    previous: PreviousFigures | None,
    first: bool,
) -> tuple[tuple[SparkPoint, ...], str]:
    """The sparkline (oldest first, this snapshot last) and the snapshot id since which it is
    whole: carried forward from the previous summary, restarted when there is none (`first`:
    the tenant's first snapshot; else the previous one could not be verified)."""
    from auditor.core.snapshot import slot_of

    own = SparkPoint(snapshot_id, mean(compliance.values()))
    if previous is None:
        return (own,), "" if first else snapshot_id
    point = SparkPoint(previous.snapshot_id, mean(previous.compliance.values()))
    carried: tuple[SparkPoint, ...]
    if previous.summary is None:
        carried, since = (point,), previous.snapshot_id
    else:
        carried, since = previous.summary.spark, previous.summary.spark_since
    start = at - timedelta(days=SPARKLINE_DAYS)
    kept = tuple(p for p in carried if slot_of(p.snapshot_id) >= start)
    return (*kept, own), since


def summarize_posture(
    posture: TenantPosture,
    snapshot_id: str,
    at: datetime,
    compliance: Mapping[str, float | None],
    previous: PreviousFigures | None,
    *,
    first: bool,
) -> IndexSummary:
    """The summary of the snapshot `snapshot_id` of `posture` (slot `at`), on `previous` (None
    for the tenant's `first` snapshot, or when its predecessor could not be verified)."""
    healthy, unhealthy = hardening_totals(posture)
    spark, since = spark_of(snapshot_id, at, compliance, previous, first)
    regressed = None
    if previous is not None and previous.states is not None:
        regressed = regressions(posture, previous.collected_subscriptions, previous.states)
    return IndexSummary(
        secure_score=secure_score(posture),
        plans=plan_coverage(posture),
        hardening_healthy=healthy,
        hardening_unhealthy=unhealthy,
        open_alerts=open_alerts(posture),
        failing_controls=failing_controls(posture),
        regressions=regressed,
        previous_compliance=dict(previous.compliance) if previous is not None else None,
        spark=spark,
        spark_since=since,
    )
