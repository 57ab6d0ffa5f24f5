"""Records to the product's JSON documents and CSV columns: one serializer per shape.

The API answers these documents (auditor/api/schemas.py is their OpenAPI contract) and the
command line's ``--json`` and ``--csv`` print the same ones, so a field has one name and one
unit everywhere (``compliance``, percentages 0-100, times as ``2026-11-27T02:00:00Z``).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from auditor.core.diff import Change, ChangeKind, Diff, DiffSummary, Side
from auditor.core.index_summary import SPARKLINE_DAYS
from auditor.core.model import CollectionStatus, RecommendationSummary
from auditor.core.runs import Delegation
from auditor.core.snapshot import Snapshot, SnapshotIndexEntry, slot_of


def instant(value: datetime) -> str:
    """RFC 3339 UTC, to the second: ``2026-11-27T02:00:00Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(value: float | None) -> float | None:
    """A JSON number, or null for a missing or non-finite value (JSON has no NaN)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def percent_of(fraction: float | None) -> float | None:
    """A fraction (Defender's secure-score percentage, 0-1) as a percentage 0-100, the one unit
    of every percentage the API, the CLI, CSV and the workbook show."""
    number = _number(fraction)
    return None if number is None else round(number * 100.0, 2)


def snapshot_summary(entry: SnapshotIndexEntry) -> dict[str, Any]:
    return {
        "snapshotId": entry.snapshot_id,
        "scheduledAt": instant(entry.scheduled_at),
        "finishedAt": instant(entry.finished_at),
        "status": entry.status.value,
        "complete": entry.status is CollectionStatus.COMPLETE,
        "reasons": list(entry.reasons),
        "subscriptionsExpected": len(entry.expected_subscriptions),
        "subscriptionsCollected": len(entry.collected_subscriptions),
        "counts": dict(sorted(entry.counts.items())),
        "compliance": {k: _number(v) for k, v in sorted(entry.compliance_by_standard.items())},
        "contentHash": entry.content_hash,
        "previousSnapshotId": entry.previous_snapshot_id,
        "previousHash": entry.previous_hash,
        "collectorVersion": entry.collector_version,
        "backfill": entry.backfill,
    }


def snapshot_detail(entry: SnapshotIndexEntry) -> dict[str, Any]:
    return {
        **snapshot_summary(entry),
        "expectedSubscriptions": list(entry.expected_subscriptions),
        "collectedSubscriptions": list(entry.collected_subscriptions),
    }


SNAPSHOT_COLUMNS = (
    "snapshotId",
    "scheduledAt",
    "finishedAt",
    "status",
    "complete",
    "reasons",
    "subscriptionsExpected",
    "subscriptionsCollected",
    "contentHash",
    "previousSnapshotId",
    "previousHash",
    "collectorVersion",
    "backfill",
)


def tenant_item(
    entry: SnapshotIndexEntry, delegation: Delegation | None = None, now: datetime | None = None
) -> dict[str, Any]:
    delegated = None if delegation is None else delegation.delegated(entry.tenant_id)
    left_at = delegation.left_at.get(entry.tenant_id) if delegation and not delegated else None
    age = None
    if delegated is False:
        age = max(0, ((now or datetime.now(UTC)) - entry.scheduled_at).days)
    return {
        "tenantId": entry.tenant_id,
        "tenantName": entry.tenant_name,
        "snapshotId": entry.snapshot_id,
        "scheduledAt": instant(entry.scheduled_at),
        "status": entry.status.value,
        "complete": entry.status is CollectionStatus.COMPLETE,
        "reasons": list(entry.reasons),
        "contentHash": entry.content_hash,
        "compliance": {k: _number(v) for k, v in sorted(entry.compliance_by_standard.items())},
        "delegated": delegated,
        "leftDelegationAt": instant(slot_of(left_at)) if left_at else None,
        "snapshotAgeDays": age,
        "summary": tenant_figures(entry),
    }


def tenant_figures(entry: SnapshotIndexEntry) -> dict[str, Any] | None:
    """The summary stored in the tenant's anchored latest row (None: a row that predates
    stored summaries; the tenant's own routes give the same figures from its snapshot)."""
    summary = entry.summary
    if summary is None:
        return None
    window = entry.scheduled_at - timedelta(days=SPARKLINE_DAYS)
    alerts = summary.open_alerts
    previous = summary.previous_compliance
    return {
        "secureScore": _number(summary.secure_score),
        "defenderPlans": {
            p.plan: {"paid": p.paid, "subscriptions": p.subscriptions} for p in summary.plans
        },
        "hardeningCoverage": _number(summary.hardening_percent),
        # Maps are never null (a CSV column is a map's key or a value, never both).
        "alertsCollected": alerts is not None,
        "openAlerts": dict(alerts or ()),
        "failingControls": summary.failing_controls,
        "regressions": summary.regressions,
        "previousCompliance": {k: _number(v) for k, v in sorted((previous or {}).items())},
        "sparkline": [
            {"snapshotId": p.snapshot_id, "meanCompliance": _number(p.mean)} for p in summary.spark
        ],
        "sparklineComplete": summary.spark_covers(window),
    }


TENANT_COLUMNS = (
    "tenantId",
    "tenantName",
    "snapshotId",
    "scheduledAt",
    "status",
    "complete",
    "reasons",
    "contentHash",
    "delegated",
    "leftDelegationAt",
    "snapshotAgeDays",
)


def _side(side: Side | None) -> dict[str, Any] | None:
    if side is None:
        return None
    return {
        "state": side.state.value if side.state is not None else None,
        "passedResources": side.passed_resources,
        "failedResources": side.failed_resources,
        "skippedResources": side.skipped_resources,
        "assessments": side.assessments,
    }


def change_item(change: Change) -> dict[str, Any]:
    return {
        "subscriptionId": change.subscription_id,
        "level": change.level.value,
        "change": change.change.value,
        "standard": change.standard,
        "control": change.control,
        "assessment": change.assessment,
        "description": change.description,
        "before": _side(change.before),
        "after": _side(change.after),
        "failingSince": instant(change.failing_since) if change.failing_since else None,
        "failingDays": change.failing_days,
        "reason": change.reason,
    }


_SIDE_FIELDS = ("state", "passedResources", "failedResources", "skippedResources", "assessments")
CHANGE_COLUMNS = (
    "subscriptionId",
    "level",
    "change",
    "standard",
    "control",
    "assessment",
    "description",
    *(f"before.{name}" for name in _SIDE_FIELDS),
    *(f"after.{name}" for name in _SIDE_FIELDS),
    "failingSince",
    "failingDays",
    "reason",
)


def _end(entry: SnapshotIndexEntry) -> dict[str, Any]:
    return {"snapshotId": entry.snapshot_id, "contentHash": entry.content_hash}


# A CSV row stands alone (a spreadsheet loses the envelope): every row names both snapshots.
DIFF_END_COLUMNS = ("from.snapshotId", "from.contentHash", "to.snapshotId", "to.contentHash")
DIFF_CSV_COLUMNS = (*CHANGE_COLUMNS, *DIFF_END_COLUMNS)


def diff_csv_rows(page: dict[str, Any]) -> list[dict[str, Any]]:
    """The CSV rows of a diff page: its changes, each with both ends' ids and hashes."""
    ends = {
        "from": {k: page["from"][k] for k in ("snapshotId", "contentHash")},
        "to": {k: page["to"][k] for k in ("snapshotId", "contentHash")},
    }
    return [{**item, **ends} for item in page["value"]]


def diff_summary(summary: DiffSummary) -> dict[str, Any]:
    return {
        "posture": {kind.value: count for kind, count in summary.posture.items()},
        "scope": {
            "subscriptionsAdded": summary.subscriptions_added,
            "subscriptionsRemoved": summary.subscriptions_removed,
            "subscriptionsIncomparable": summary.subscriptions_incomparable,
            "subscriptionsCompared": summary.subscriptions_compared,
            "standardsAssigned": sum(
                1 for a in summary.assignments if a.change is ChangeKind.ADDED
            ),
            "standardsUnassigned": sum(
                1 for a in summary.assignments if a.change is ChangeKind.REMOVED
            ),
        },
        "assignments": [
            {"subscriptionId": a.subscription_id, "standard": a.standard, "change": a.change.value}
            for a in summary.assignments
        ],
        "compliance": [
            {
                "standard": c.standard,
                "before": _number(c.before),
                "after": _number(c.after),
                "delta": _number(c.delta),
                "comparableBefore": _number(c.comparable_before),
                "comparableAfter": _number(c.comparable_after),
                "comparableDelta": _number(c.comparable_delta),
            }
            for c in summary.compliance
        ],
        "planDowngrades": [
            {
                "subscriptionId": d.subscription_id,
                "plan": d.plan,
                "before": {"tier": d.before_tier, "subPlan": d.before_sub_plan},
                "after": {"tier": d.after_tier, "subPlan": d.after_sub_plan},
            }
            for d in summary.plan_downgrades
        ],
        "secureScoreDrops": [
            {
                "subscriptionId": d.subscription_id,
                "before": percent_of(d.before),
                "after": percent_of(d.after),
                "delta": percent_of(d.delta),
            }
            for d in summary.secure_score_drops
        ],
        "recommendations": recommendation_changes(summary),
        "alerts": _alert_changes(summary),
    }


def _alert_changes(summary: DiffSummary) -> dict[str, Any]:
    # documents_alerts builds on this module's instant/snapshot_detail: imported when called.
    from auditor.api.documents_alerts import alert_changes

    return alert_changes(summary)


def _recommendation(r: RecommendationSummary) -> dict[str, Any]:
    return {
        "subscriptionId": r.subscription_id,
        "recommendation": r.recommendation,
        "displayName": r.display_name,
        "severity": r.severity,
        "unhealthyResources": r.unhealthy,
    }


def recommendation_changes(summary: DiffSummary) -> dict[str, Any]:
    """The diff's recommendations; ``comparable`` false (with the reason) when an end predates
    them, so that "nothing changed" is never said of data that was not collected."""
    diff = summary.recommendations
    return {
        "comparable": diff is not None,
        "reason": summary.recommendations_not_comparable or None,
        "newlyUnhealthy": [_recommendation(r) for r in diff.newly_unhealthy] if diff else [],
        "newlyHealthy": [_recommendation(r) for r in diff.newly_healthy] if diff else [],
        "resourcesBecameUnhealthy": [
            {
                "subscriptionId": r.subscription_id,
                "recommendation": r.recommendation,
                "displayName": r.display_name,
                "severity": r.severity,
                "resourceId": r.resource_id,
            }
            for r in (diff.resources_unhealthy if diff else ())
        ],
        "resourcesUnlisted": diff.resources_unlisted if diff else 0,
    }


def diff_page(
    diff: Diff,
    summary: dict[str, Any],
    changes: list[Change],
    matching: int,
    next_link: str | None,
    warnings: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "tenantId": diff.after.tenant_id,
        "from": snapshot_detail(diff.before),
        "to": snapshot_detail(diff.after),
        "complete": diff.complete,
        "summary": summary,
        "matchingChanges": matching,
        "value": [change_item(c) for c in changes],
        "nextLink": next_link,
        "warnings": list(warnings or ()),
    }


def coverage(snapshot: Snapshot) -> dict[str, Any]:
    posture = snapshot.posture
    return {
        "tenantId": snapshot.index.tenant_id,
        "snapshot": snapshot_detail(snapshot.index),
        "complete": snapshot.index.status is CollectionStatus.COMPLETE,
        "hardening": [
            {
                "subscriptionId": h.subscription_id,
                "recommendation": h.recommendation,
                "feature": h.feature,
                "displayName": h.display_name,
                "status": h.status.value,
                "healthy": h.healthy,
                "unhealthy": h.unhealthy,
                "notApplicable": h.not_applicable,
                "severity": h.severity,
                "remediation": h.remediation,
                "jitCoveredVms": h.jit_covered_vms,
            }
            for h in sorted(posture.hardening, key=lambda h: (h.subscription_id, h.feature))
        ],
        "plans": [
            {
                "subscriptionId": p.subscription_id,
                "plan": p.plan,
                "tier": p.tier,
                "subPlan": p.sub_plan,
                "deprecated": p.deprecated,
                "replacedBy": list(p.replaced_by),
                "enablementTime": p.enablement_time,
            }
            for p in sorted(posture.plans, key=lambda p: (p.subscription_id, p.plan))
        ],
        "secureScores": [
            {
                "subscriptionId": s.subscription_id,
                "current": _number(s.current),
                "maximum": _number(s.maximum),
                "percentage": percent_of(s.percentage),
                "weight": s.weight,
            }
            for s in sorted(posture.secure_scores, key=lambda s: s.subscription_id)
        ],
    }


_COVERAGE_TABLES = (("hardening", "hardening"), ("plans", "plan"), ("secureScores", "secureScore"))
COVERAGE_COLUMNS = (
    "table",
    "subscriptionId",
    "recommendation",
    "feature",
    "displayName",
    "status",
    "healthy",
    "unhealthy",
    "notApplicable",
    "severity",
    "remediation",
    "jitCoveredVms",
    "plan",
    "tier",
    "subPlan",
    "deprecated",
    "replacedBy",
    "enablementTime",
    "current",
    "maximum",
    "percentage",
    "weight",
    "snapshot.snapshotId",
    "snapshot.contentHash",
)


def coverage_csv_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The CSV rows of a coverage document: its three tables in one, each row saying its
    `table` (hardening, plan, secureScore) and the snapshot's id and hash."""
    snapshot = {k: document["snapshot"][k] for k in ("snapshotId", "contentHash")}
    return [
        {"table": kind, **item, "snapshot": snapshot}
        for field, kind in _COVERAGE_TABLES
        for item in document[field]
    ]


def trend_point(entry: SnapshotIndexEntry, standard: str) -> dict[str, Any]:
    return {
        "snapshotId": entry.snapshot_id,
        "scheduledAt": instant(entry.scheduled_at),
        "status": entry.status.value,
        "complete": entry.status is CollectionStatus.COMPLETE,
        "standard": standard,
        "compliance": _number(entry.compliance_by_standard.get(standard)),
    }


TREND_COLUMNS = ("snapshotId", "scheduledAt", "status", "complete", "standard", "compliance")
