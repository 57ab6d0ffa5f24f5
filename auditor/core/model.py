"""Typed records of one tenant's Defender for Cloud posture.

Pure data: no I/O. Every other layer (collector, store, diff, workbook) speaks in these records.
Records are frozen so a snapshot, once built, cannot be changed in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class State(StrEnum):
    """Regulatory compliance state, spelled as the API spells it."""

    PASSED = "Passed"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    UNSUPPORTED = "Unsupported"


class HardeningStatus(StrEnum):
    """How a hardening recommendation stands in a subscription.

    ``retired`` is for features Microsoft retired (never reported as passed or failed);
    ``missing`` is for a recommendation with no data (never reported as passed).
    """

    ASSESSED = "assessed"
    RETIRED = "retired"
    MISSING = "missing"


class CollectionStatus(StrEnum):
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Subscription:
    subscription_id: str
    tenant_id: str
    display_name: str
    state: str = "Enabled"


@dataclass(frozen=True, slots=True)
class Tenant:
    """A delegated tenant and the subscriptions the managing tenant can see in it."""

    tenant_id: str
    display_name: str
    subscriptions: tuple[Subscription, ...]


@dataclass(frozen=True, slots=True)
class ComplianceRecord:
    """One regulatory compliance assessment: subscription → standard → control → assessment."""

    subscription_id: str
    standard: str
    control: str
    assessment: str
    state: State
    passed_resources: int
    failed_resources: int
    skipped_resources: int
    description: str
    assessment_type: str = ""
    details_link: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.subscription_id, self.standard, self.control, self.assessment)


@dataclass(frozen=True, slots=True)
class StandardSummary:
    """A standard's state per subscription, as Defender for Cloud reports it."""

    subscription_id: str
    standard: str
    state: State
    passed_controls: int
    failed_controls: int
    skipped_controls: int
    unsupported_controls: int


@dataclass(frozen=True, slots=True)
class ControlSummary:
    subscription_id: str
    standard: str
    control: str
    description: str
    state: State
    passed_assessments: int
    failed_assessments: int
    skipped_assessments: int


@dataclass(frozen=True, slots=True)
class DefenderPlan:
    """A Defender for Cloud plan (pricing) of one subscription."""

    subscription_id: str
    plan: str
    tier: str  # Free | Standard
    sub_plan: str = ""
    deprecated: bool = False
    replaced_by: tuple[str, ...] = ()
    enablement_time: str = ""


@dataclass(frozen=True, slots=True)
class SecureScore:
    subscription_id: str
    current: float
    maximum: float
    percentage: float
    weight: int


@dataclass(frozen=True, slots=True)
class SecureScoreControl:
    subscription_id: str
    control_id: str
    display_name: str
    current: float
    maximum: float
    percentage: float
    healthy_resources: int
    unhealthy_resources: int
    not_applicable_resources: int
    weight: int


@dataclass(frozen=True, slots=True)
class RecommendationMetadata:
    """Tenant-level metadata of a Defender recommendation (assessment key)."""

    key: str
    display_name: str
    severity: str = ""
    remediation: str = ""
    categories: tuple[str, ...] = ()
    description: str = ""
    threats: tuple[str, ...] = ()
    user_impact: str = ""  # Low | Moderate | High
    implementation_effort: str = ""  # Low | Moderate | High


@dataclass(frozen=True, slots=True)
class AssessmentResult:
    """One resource-level Defender assessment row (microsoft.security/assessments)."""

    subscription_id: str
    key: str  # assessment key (the recommendation), lower-case
    code: str  # Healthy | Unhealthy | NotApplicable
    resource_id: str  # lower-case
    cause: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class RecommendationSummary:
    """Per subscription and recommendation: resources by status, with the metadata joined and
    the unhealthy resources (listed up to a cap per recommendation; ``unhealthy_left_out``
    counts the rest, never silently)."""

    subscription_id: str
    recommendation: str  # assessment key
    display_name: str
    healthy: int
    unhealthy: int
    not_applicable: int
    severity: str = ""
    unhealthy_resources: tuple[str, ...] = ()
    unhealthy_left_out: int = 0
    remediation: str = ""
    categories: tuple[str, ...] = ()
    threats: tuple[str, ...] = ()
    user_impact: str = ""
    implementation_effort: str = ""


@dataclass(frozen=True, slots=True)
class HardeningCoverage:
    """Per subscription and hardening recommendation: resource counts by status."""

    subscription_id: str
    recommendation: str  # assessment key (GUID)
    feature: str  # short name, e.g. "just-in-time VM access"
    display_name: str
    status: HardeningStatus
    healthy: int
    unhealthy: int
    not_applicable: int
    severity: str = ""
    remediation: str = ""
    # Only for just-in-time access: VMs that an actual JIT policy covers (None when not read).
    jit_covered_vms: int | None = None


@dataclass(frozen=True, slots=True)
class Evidence:
    description: str
    source_url: str


@dataclass(frozen=True, slots=True)
class StandardAssignment:
    """A 2024-08-01 standard assignment: Audit (assigned standard), Exempt or Attest."""

    subscription_id: str
    assignment_id: str
    display_name: str
    standard_id: str
    effect: str  # Audit | Exempt | Attest | ...
    assessment_key: str = ""
    expires_on: str = ""  # ISO-8601 or ""
    exemption_category: str = ""
    compliance_state: str = ""  # for attestations
    compliance_date: str = ""
    evidence: tuple[Evidence, ...] = ()
    description: str = ""


class AlertStatus(StrEnum):
    """A security alert's status, spelled as the API spells it."""

    ACTIVE = "Active"
    IN_PROGRESS = "InProgress"
    RESOLVED = "Resolved"
    DISMISSED = "Dismissed"


class AlertSeverity(StrEnum):
    HIGH = "High"
    MEDIUM = "Medium"
    LOW = "Low"
    INFORMATIONAL = "Informational"


OPEN_ALERT_STATUSES = (AlertStatus.ACTIVE, AlertStatus.IN_PROGRESS)
_SEVERITY_RANK = {severity: rank for rank, severity in enumerate(AlertSeverity)}


@dataclass(frozen=True, slots=True)
class SecurityAlert:
    """One Defender for Cloud security alert (microsoft.security/locations/alerts)."""

    subscription_id: str
    alert_id: str  # the alert's resource id, lower-cased (its identity across snapshots)
    alert_type: str
    display_name: str
    severity: AlertSeverity
    status: AlertStatus
    start_time: datetime
    end_time: datetime | None = None
    intent: str = ""
    techniques: tuple[str, ...] = ()
    compromised_entity: str = ""
    resource_ids: tuple[str, ...] = ()
    product: str = ""
    portal_link: str = ""
    incident: bool = False

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_ALERT_STATUSES

    @property
    def order(self) -> tuple[int, float, str]:
        """Sort key of every list of alerts: most severe first, then newest, then by id."""
        return (_SEVERITY_RANK[self.severity], -self.start_time.timestamp(), self.alert_id)


@dataclass(frozen=True, slots=True)
class AlertCount:
    """Alerts of one subscription, severity and status: all of them counted (resolved and
    dismissed ones within the look-back); ``listed`` of them kept in the snapshot's alerts
    (open ones, up to the per-tenant cap): ``alerts - listed`` is what the cap left out."""

    subscription_id: str
    severity: AlertSeverity
    status: AlertStatus
    alerts: int
    listed: int = 0

    @property
    def left_out(self) -> int:
        """Open alerts the cap left out of the list (closed ones are only ever counted)."""
        return self.alerts - self.listed if self.status in OPEN_ALERT_STATUSES else 0


# Keys of Completeness.malformed besides the record kinds (compliance, controls, ...).
MALFORMED_PAGES = "pages"  # answers not in the documented shape (the rest of that read stopped)
MALFORMED_ROWS = "rows"  # rows that are not JSON objects (of no known kind)


@dataclass(frozen=True, slots=True)
class Completeness:
    """What a collection expected and got, as data: never a silent pass.

    Status rule: failed when nothing of what was expected could be read; incomplete when a
    subscription is missing, an error was recorded, or any row or page was malformed (dropped:
    counted per kind in ``malformed``, described in ``warnings``); complete otherwise. A pack of
    a tenant with dropped rows therefore never reads as complete.
    """

    expected_subscriptions: tuple[str, ...]
    collected_subscriptions: tuple[str, ...]
    missing: dict[str, str] = field(default_factory=dict)  # subscription id -> reason
    queries: int = 0
    pages: int = 0
    rest_calls: int = 0
    throttles: int = 0
    retries: int = 0
    errors: tuple[str, ...] = ()
    malformed: dict[str, int] = field(default_factory=dict)  # record kind -> count
    warnings: tuple[str, ...] = ()
    duration_seconds: float = 0.0

    @property
    def status(self) -> CollectionStatus:
        if not self.collected_subscriptions and self.expected_subscriptions:
            return CollectionStatus.FAILED
        if (
            self.missing
            or self.errors
            or self.malformed_count
            or set(self.expected_subscriptions) - set(self.collected_subscriptions)
        ):
            return CollectionStatus.INCOMPLETE
        return CollectionStatus.COMPLETE

    @property
    def malformed_count(self) -> int:
        return sum(count for count in self.malformed.values() if count > 0)

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why the collection is not complete (empty when it is)."""
        out = [f"subscription {sub}: {why}" for sub, why in sorted(self.missing.items())]
        out.extend(self.errors)
        if self.malformed_count:
            kinds = ", ".join(
                f"{kind} {count}" for kind, count in sorted(self.malformed.items()) if count > 0
            )
            out.append(
                f"{self.malformed_count} malformed rows or pages dropped ({kinds}); "
                "see the warnings"
            )
        return tuple(out)


@dataclass(frozen=True, slots=True)
class TenantPosture:
    """Everything collected for one tenant in one run."""

    tenant: Tenant
    compliance: tuple[ComplianceRecord, ...]
    standards: tuple[StandardSummary, ...]
    controls: tuple[ControlSummary, ...]
    plans: tuple[DefenderPlan, ...]
    secure_scores: tuple[SecureScore, ...]
    secure_score_controls: tuple[SecureScoreControl, ...]
    hardening: tuple[HardeningCoverage, ...]
    assignments: tuple[StandardAssignment, ...]
    completeness: Completeness
    # Sections declared after format 1 (auditor/core/registry.py), by name. A section that is
    # absent was not collected (a snapshot taken before it existed): never read as empty.
    sections: dict[str, tuple[Any, ...]] = field(default_factory=dict)
