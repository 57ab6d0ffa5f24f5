"""Response schemas of the API: they are the OpenAPI document's contract.

Routes (and the command line) build plain dicts (auditor/api/documents.py) for speed; these
models describe exactly those dicts, and the schema tests (schemathesis) check every response
against them. Names are camelCase on the wire; times are RFC 3339 UTC (``2026-11-27T02:00:00Z``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from auditor.core.diff import ChangeKind, Level
from auditor.core.model import CollectionStatus, HardeningStatus, State

_PERCENT_TEXT = "percent (0-100) of passed controls among passed and failed ones; null when none."


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Health(Strict):
    status: Literal["ok"]
    version: str


class SnapshotSummary(Strict):
    """One committed snapshot as its index describes it."""

    snapshotId: str = Field(pattern=r"^\d{8}T\d{6}Z$", examples=["20261127T020000Z"])
    scheduledAt: datetime
    finishedAt: datetime
    status: CollectionStatus = Field(
        description="complete, incomplete (served with its reasons) or failed."
    )
    complete: bool = Field(description="True only when status is complete.")
    reasons: list[str] = Field(description="Why the snapshot is not complete (empty if it is).")
    subscriptionsExpected: int
    subscriptionsCollected: int
    counts: dict[str, int] = Field(description="Records per kind.")
    compliance: dict[str, float | None] = Field(
        description="Per standard: percent (0-100) of passed controls among passed and failed "
        "controls; null when the standard has none."
    )
    contentHash: str = Field(description="SHA-256 of the snapshot's canonical content.")
    previousSnapshotId: str | None
    previousHash: str | None
    collectorVersion: str
    backfill: bool = Field(
        description="Collected after its slot's successor had begun (a late fill)."
    )


class SnapshotDetail(SnapshotSummary):
    """A snapshot at one end of a diff (or of coverage), with its subscriptions."""

    expectedSubscriptions: list[str]
    collectedSubscriptions: list[str]


class PlanFigures(Strict):
    paid: int = Field(description="Subscriptions on the plan's paid (Standard) tier.")
    subscriptions: int = Field(description="Subscriptions that report the plan.")


class SparkPoint(Strict):
    snapshotId: str
    meanCompliance: float | None = Field(description="Mean compliance over standards (%).")


class TenantFigures(Strict):
    """What the portfolio shows of the latest snapshot, stored in its anchored index row."""

    secureScore: float | None = Field(description="Secure score, % of the maximum.")
    defenderPlans: dict[str, PlanFigures] = Field(description="Per Defender plan.")
    hardeningCoverage: float | None = Field(description="Healthy hardening resources, %.")
    alertsCollected: bool = Field(
        description="Whether the snapshot collected security alerts (taken before: false)."
    )
    openAlerts: dict[str, int] = Field(
        description="Active and in-progress alerts per severity (empty when none or not collected)."
    )
    failingControls: int = Field(description="Controls failing in at least one subscription.")
    regressions: int | None = Field(
        description=(
            "The diff's `regressed` count since the previous snapshot; null: no previous "
            "snapshot, or its history could not be verified."
        )
    )
    previousCompliance: dict[str, float | None] = Field(
        description="Compliance per standard of the previous snapshot (empty: none, or failed)."
    )
    sparkline: list[SparkPoint] = Field(
        description="The snapshots of the last 30 days, oldest first, this one last."
    )
    sparklineComplete: bool = Field(
        description=(
            "Whether `sparkline` holds every snapshot of the 30 days (false while the window "
            "reaches back before summaries were stored: `/snapshots` lists them all)."
        )
    )


class TenantItem(Strict):
    tenantId: str
    tenantName: str
    snapshotId: str = Field(description="The tenant's latest committed snapshot.")
    scheduledAt: datetime
    status: CollectionStatus
    complete: bool
    reasons: list[str]
    contentHash: str
    compliance: dict[str, float | None] = Field(description=f"Per standard: {_PERCENT_TEXT}")
    delegated: bool | None = Field(
        description="Whether the latest full run found the tenant delegated; null before any run."
    )
    leftDelegationAt: datetime | None = Field(
        description="When it left: the slot of the first full run that no longer found it."
    )
    snapshotAgeDays: int | None = Field(
        description="For a tenant no longer delegated: whole days since its latest snapshot."
    )
    summary: TenantFigures | None = Field(
        description=(
            "The latest snapshot's summary, covered by its anchor like every index property; "
            "null for a snapshot committed before summaries were stored."
        )
    )


class TenantList(Strict):
    value: list[TenantItem]
    nextLink: str | None = Field(description="Absolute URL of the next page; null on the last.")


class SnapshotList(Strict):
    tenantId: str
    value: list[SnapshotSummary]
    nextLink: str | None


class Side(Strict):
    """One end of a change. Counts are summed for a standard- or control-level change."""

    state: State | None
    passedResources: int
    failedResources: int
    skippedResources: int
    assessments: int


class ChangeItem(Strict):
    subscriptionId: str
    level: Level = Field(description="subscription (scope), standard, control or assessment.")
    change: ChangeKind
    standard: str | None
    control: str | None
    assessment: str | None
    description: str
    before: Side | None
    after: Side | None
    failingSince: datetime | None = Field(
        description="Where the later end is Failed: when the current failing streak began."
    )
    failingDays: int | None = Field(description="Whole days failing, at the later snapshot.")
    reason: str | None = Field(description="For scope changes: why.")


class PostureCounts(Strict):
    regressed: int
    improved: int
    changed: int
    added: int
    removed: int


class ScopeCounts(Strict):
    subscriptionsAdded: int
    subscriptionsRemoved: int
    subscriptionsIncomparable: int
    subscriptionsCompared: int
    standardsAssigned: int = Field(
        description="Standards assigned to a subscription collected at both ends (scope)."
    )
    standardsUnassigned: int = Field(
        description="Standards unassigned from a subscription collected at both ends (scope)."
    )


class AssignmentChange(Strict):
    """A standard assigned to (added) or unassigned from (removed) a compared subscription:
    a scope change, not counted in posture and excluded from the comparable figures."""

    subscriptionId: str
    standard: str
    change: Literal["added", "removed"]


_PERCENT = "Percent (0-100) of passed controls among passed and failed ones; null when none."
_COMPARABLE = (
    " Only (subscription, standard) pairs present at both ends, in subscriptions collected at "
    "both ends: scope and assignment changes do not move it."
)


class StandardCompliance(Strict):
    standard: str
    before: float | None = Field(description=f"{_PERCENT} As the from snapshot reports it.")
    after: float | None = Field(description=f"{_PERCENT} As the to snapshot reports it.")
    delta: float | None = Field(description="after - before, in percentage points.")
    comparableBefore: float | None = Field(description=_PERCENT + _COMPARABLE)
    comparableAfter: float | None = Field(description=_PERCENT + _COMPARABLE)
    comparableDelta: float | None = Field(
        description="comparableAfter - comparableBefore, in percentage points." + _COMPARABLE
    )


class PlanTier(Strict):
    tier: str
    subPlan: str


class PlanDowngrade(Strict):
    subscriptionId: str
    plan: str
    before: PlanTier
    after: PlanTier


class SecureScoreDrop(Strict):
    subscriptionId: str
    before: float | None = Field(description="Secure score percentage (0-100), from snapshot.")
    after: float | None = Field(description="Secure score percentage (0-100), to snapshot.")
    delta: float | None = Field(description="after - before, in percentage points.")


class RecommendationChange(Strict):
    subscriptionId: str
    recommendation: str = Field(description="Assessment key (the recommendation's GUID).")
    displayName: str
    severity: str = Field(description="High, Medium or Low, as Defender gives it.")
    unhealthyResources: int = Field(
        description="Unhealthy resources at the end that shows it: the to snapshot for "
        "newlyUnhealthy, the from snapshot for newlyHealthy."
    )


class ResourceBecameUnhealthy(Strict):
    subscriptionId: str
    recommendation: str = Field(description="Assessment key (the recommendation's GUID).")
    displayName: str
    severity: str
    resourceId: str


class RecommendationChanges(Strict):
    comparable: bool = Field(
        description="False when an end was taken before recommendations were collected: then "
        "the lists are empty and `reason` says which end; it never means nothing changed."
    )
    reason: str | None = Field(description="Why the recommendations are not comparable.")
    newlyUnhealthy: list[RecommendationChange] = Field(
        description="No unhealthy resource (or absent) in the from snapshot, some in the to one."
    )
    newlyHealthy: list[RecommendationChange] = Field(
        description="Unhealthy resources in the from snapshot, none (or absent) in the to one."
    )
    resourcesBecameUnhealthy: list[ResourceBecameUnhealthy] = Field(
        description="Resources listed unhealthy in the to snapshot and not in the from one."
    )
    resourcesUnlisted: int = Field(
        description="Recommendations whose resources were not compared because an end's list of "
        "unhealthy resources was capped (a capped list cannot prove absence)."
    )


class DiffSummary(Strict):
    posture: PostureCounts = Field(description="Posture changes per category (scope excluded).")
    scope: ScopeCounts
    assignments: list[AssignmentChange] = Field(
        description="Standard assignment changes (scope), by subscription and standard."
    )
    compliance: list[StandardCompliance]
    planDowngrades: list[PlanDowngrade]
    secureScoreDrops: list[SecureScoreDrop]
    recommendations: RecommendationChanges = Field(
        description="Recommendations per subscription, in subscriptions collected at both ends."
    )
    alerts: AlertChanges = Field(
        description="Security alerts new and resolved, in subscriptions collected at both ends."
    )


class DiffPage(Strict):
    tenantId: str
    from_: SnapshotDetail = Field(alias="from")
    to: SnapshotDetail
    complete: bool = Field(description="Both snapshots are complete.")
    summary: DiffSummary = Field(description="The whole diff, whatever the filters and page.")
    matchingChanges: int = Field(description="Changes matching the filters, over all pages.")
    value: list[ChangeItem]
    nextLink: str | None
    warnings: list[str] = Field(
        description="E.g. an end asked for by instant whose snapshot is older than asked."
    )


class HardeningItem(Strict):
    subscriptionId: str
    recommendation: str
    feature: str
    displayName: str
    status: HardeningStatus
    healthy: int
    unhealthy: int
    notApplicable: int
    severity: str
    remediation: str
    jitCoveredVms: int | None


class PlanItem(Strict):
    subscriptionId: str
    plan: str
    tier: str
    subPlan: str
    deprecated: bool
    replacedBy: list[str]
    enablementTime: str


class SecureScoreItem(Strict):
    subscriptionId: str
    current: float | None = Field(
        description="Secure score points; null when Defender reported no number."
    )
    maximum: float | None = Field(description="Maximum secure score points.")
    percentage: float | None = Field(
        description="Percent (0-100): current / maximum as Defender reports it."
    )
    weight: int = Field(description="Resources that weigh in the score (Defender's weight).")


class Coverage(Strict):
    tenantId: str
    snapshot: SnapshotDetail
    complete: bool
    hardening: list[HardeningItem]
    plans: list[PlanItem]
    secureScores: list[SecureScoreItem]


class TrendPoint(Strict):
    snapshotId: str
    scheduledAt: datetime
    status: CollectionStatus
    complete: bool
    standard: str
    compliance: float | None = Field(description=f"{_PERCENT_TEXT}")


class Trend(Strict):
    tenantId: str
    standards: list[str] = Field(description="Standards in the series (the filter, or all seen).")
    value: list[TrendPoint] = Field(description="Oldest first; one point per snapshot×standard.")


class AlertItem(Strict):
    """An open (active or in-progress) security alert."""

    subscriptionId: str
    alertId: str = Field(description="The alert's resource id, lower-case.")
    alertType: str
    displayName: str
    severity: Literal["High", "Medium", "Low", "Informational"]
    status: Literal["Active", "InProgress"]
    startTime: datetime
    endTime: datetime | None
    intent: str
    techniques: str = Field(description="MITRE ATT&CK techniques, space-separated.")
    compromisedEntity: str
    resourceIds: str = Field(description="Affected Azure resource ids, space-separated.")
    product: str
    portalLink: str = Field(description="The alert in the Azure portal (alertUri).")
    incident: bool


class AlertChanges(Strict):
    comparable: bool = Field(
        description="False when an end was taken before security alerts were collected: then "
        "the lists are empty and `reason` says which end; it never means nothing changed."
    )
    reason: str | None = Field(description="Why the alerts are not comparable.")
    new: list[AlertItem] = Field(
        description="Open at the to snapshot and not at the from one, most severe first."
    )
    resolved: list[AlertItem] = Field(
        description="Open at the from snapshot and no longer open at the to one (as last seen)."
    )
    newHigh: int = Field(description="Of the new alerts, those of High severity.")
    unlisted: int = Field(
        description="Alerts not matched because an end's list was capped "
        "(`AUDITOR_ALERTS_MAX_PER_TENANT`): a capped list cannot prove an alert new or resolved."
    )


class AlertCountItem(Strict):
    subscriptionId: str
    severity: Literal["High", "Medium", "Low", "Informational"]
    status: Literal["Active", "InProgress", "Resolved", "Dismissed"]
    alerts: int = Field(description="Alerts counted (resolved, dismissed: within the look-back).")
    listed: int = Field(description="Of those, listed in `value`.")
    leftOut: int = Field(description="Open alerts the per-tenant cap left out of `value`.")


class AlertsDocument(Strict):
    tenantId: str
    snapshot: SnapshotDetail
    complete: bool
    collected: bool = Field(
        description="False when the snapshot was taken before alerts were collected: then "
        "`counts` and `value` are empty because nothing was read, not because none existed."
    )
    counts: list[AlertCountItem]
    leftOut: int = Field(description="Open alerts the per-tenant cap left out of `value`.")
    value: list[AlertItem] = Field(description="Open alerts, most severe and newest first.")


class RankedTenant(Strict):
    tenantId: str
    tenantName: str
    unhealthyResources: int
    subscriptions: int = Field(description="Subscriptions of the tenant the item applies to.")


class RankedItem(Strict):
    rank: int = Field(description="1 for the first place to act, over every page.")
    kind: Literal["recommendation", "control"]
    key: str = Field(description="Assessment key, or standard/control.")
    displayName: str
    severity: str = Field(description="High, Medium, Low, or empty when unknown.")
    unhealthyResources: int = Field(
        description="Unhealthy resources (recommendation) or failed resources (control)."
    )
    tenantCount: int
    remediation: str
    tenants: list[RankedTenant] = Field(description="Most unhealthy resources first.")


class WhereToAct(Strict):
    total: int = Field(description="Items over every tenant the caller may see.")
    tenantsRanked: int
    tenantsNotCollected: list[str] = Field(
        description="Visible tenants whose latest snapshot predates recommendations."
    )
    value: list[RankedItem]
    nextLink: str | None
