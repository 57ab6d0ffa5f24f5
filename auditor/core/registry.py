"""The one declaration of what a snapshot holds: its posture sections and the rows they come from.

Pure. Every other place that needs the list of sections derives it from ``REGISTRY``: the
normalised batch of rows (``Batch``), the collector's Resource Graph queries, the canonical
content (``canonical.SECTIONS``), the store's record counts and failure records, the diff's
identity keys. It follows Cloud Custodian's model: each kind is declared once, and one generic
reader fetches them all.

- A ``RowKind`` is one Resource Graph type: the name its rows are counted under (in ``Batch`` and
  in ``Completeness.malformed``), the pure normalizer turning a row into a record, and the query
  group that reads it (one query per group, so adding a type to an existing group costs no query).
- A ``Section`` is one list of records stored in a snapshot: its name (in the hashed content, the
  store and the index's counts), its record type, the row kinds it is made from, how its records
  are derived from them (by default: the rows of collected subscriptions), its identity key for
  diffs and any extra counts.

Sections of format 1 (``legacy``) are always hashed, even when empty, exactly as before. Sections
declared later are stored and hashed only when collected: a snapshot taken before a section
existed reads it as *not collected* (None), never as empty, and its hash is unchanged.

Adding a section is one ``Section`` entry (with its ``RowKind``), one pure normalizer and tests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from hashlib import blake2b as _blake2b
from typing import Any, Generic, TypeVar

from auditor.core import hardening, normalize
from auditor.core.model import (
    MALFORMED_ROWS,
    OPEN_ALERT_STATUSES,
    AlertCount,
    AlertSeverity,
    AlertStatus,
    AssessmentResult,
    Completeness,
    ComplianceRecord,
    ControlSummary,
    DefenderPlan,
    HardeningCoverage,
    RecommendationMetadata,
    RecommendationSummary,
    SecureScore,
    SecureScoreControl,
    SecurityAlert,
    StandardAssignment,
    StandardSummary,
    State,
    Tenant,
    TenantPosture,
)
from auditor.core.quoted import quote

R = TypeVar("R")
Row = normalize.Row

POSTURE_QUERY = "posture"  # the query group of every type read in full


@dataclass(frozen=True, slots=True)
class RowKind:
    """One Resource Graph type (lower-case, as Resource Graph spells `type`) and its normalizer."""

    name: str
    graph_type: str
    normalizer: Callable[[Row], Any]
    query: str = POSTURE_QUERY
    # Extra KQL condition of its query (our own constants only, never caller input).
    where: str = ""


@dataclass(frozen=True, slots=True)
class Derivation:
    """What a section's records may be derived from besides its rows: collected at run time."""

    collected: frozenset[str]  # subscriptions read in full
    metadata: Mapping[str, RecommendationMetadata] = field(default_factory=dict)
    jit_covered_vms: Mapping[str, int] = field(default_factory=dict)
    now: datetime | None = None  # when the collection ran (look-backs count from here)
    caps: Mapping[str, int] = field(default_factory=dict)  # section name -> per-tenant cap
    # Closed records (resolved, dismissed alerts) count when they ended within this look-back.
    lookback_days: int = 30


def _rows_of_collected(rows: Sequence[Any], context: Derivation) -> tuple[Any, ...]:
    return tuple(r for r in rows if r.subscription_id in context.collected)


@dataclass(frozen=True, slots=True)
class Section(Generic[R]):
    """One list of records in a snapshot, declared once."""

    name: str
    record: type[R]
    kinds: tuple[RowKind, ...]
    # Identity of a record across snapshots (what a diff matches on).
    identity: Callable[[R], tuple[str, ...]]
    # rows of its kinds (in declaration order, concatenated) -> its records.
    derive: Callable[[Sequence[Any], Derivation], Iterable[R]] = _rows_of_collected
    # Part of format 1: always in the hashed content, even empty (hashes stay unchanged).
    legacy: bool = False
    # Counts besides the number of records, for the index (e.g. compliance per state).
    counts: Callable[[Sequence[R]], dict[str, int]] | None = None


def _compliance_counts(records: Sequence[ComplianceRecord]) -> dict[str, int]:
    states = Counter(record.state for record in records)
    return {f"compliance_{state.value.lower()}": states.get(state, 0) for state in State}


def _hardening(rows: Sequence[AssessmentResult], context: Derivation) -> list[HardeningCoverage]:
    """The hardening coverage: a view over the resource-level assessments (the catalogue of
    keys is data, auditor/core/hardening.py)."""
    collected = context.collected
    return hardening.rollup(
        collected,
        (
            (r.subscription_id, r.key, r.code)
            for r in rows
            if r.subscription_id in context.collected
        ),
        context.metadata,
        context.jit_covered_vms,
    )


def _recommendations(
    rows: Sequence[AssessmentResult], context: Derivation
) -> list[RecommendationSummary]:
    """Per (subscription, recommendation): resources by status, metadata joined, unhealthy
    resource ids listed up to the cap per recommendation and the rest counted."""
    cap = context.caps.get("recommendations")
    grouped: dict[tuple[str, str], list[AssessmentResult]] = {}
    for row in rows:
        if row.subscription_id in context.collected:
            grouped.setdefault((row.subscription_id, row.key), []).append(row)
    out = []
    for (sub, key), results in sorted(grouped.items()):
        codes = Counter(r.code for r in results)
        unhealthy = sorted(r.resource_id for r in results if r.code == "Unhealthy")
        listed = unhealthy if cap is None else unhealthy[:cap]
        meta = context.metadata.get(key)
        out.append(
            RecommendationSummary(
                subscription_id=sub,
                recommendation=key,
                display_name=meta.display_name if meta else key,
                healthy=codes["Healthy"],
                unhealthy=codes["Unhealthy"],
                not_applicable=codes["NotApplicable"],
                severity=meta.severity if meta else "",
                unhealthy_resources=tuple(listed),
                unhealthy_left_out=len(unhealthy) - len(listed),
                remediation=meta.remediation if meta else "",
                categories=meta.categories if meta else (),
                threats=meta.threats if meta else (),
                user_impact=meta.user_impact if meta else "",
                implementation_effort=meta.implementation_effort if meta else "",
            )
        )
    return out


COMPLIANCE = Section(
    "compliance",
    ComplianceRecord,
    (RowKind("compliance", normalize.T_ASSESSMENT, normalize.compliance_record),),
    identity=lambda r: r.key,
    legacy=True,
    counts=_compliance_counts,
)
STANDARDS = Section(
    "standards",
    StandardSummary,
    (RowKind("standards", normalize.T_STANDARD, normalize.standard_summary),),
    identity=lambda r: (r.subscription_id, r.standard),
    legacy=True,
)
CONTROLS = Section(
    "controls",
    ControlSummary,
    (RowKind("controls", normalize.T_CONTROL, normalize.control_summary),),
    identity=lambda r: (r.subscription_id, r.standard, r.control),
    legacy=True,
)
PLANS = Section(
    "plans",
    DefenderPlan,
    (RowKind("plans", normalize.T_PRICING, normalize.defender_plan),),
    identity=lambda r: (r.subscription_id, r.plan),
    legacy=True,
)
SECURE_SCORES = Section(
    "secure_scores",
    SecureScore,
    (RowKind("secure_scores", normalize.T_SECURE_SCORE, normalize.secure_score),),
    identity=lambda r: (r.subscription_id,),
    legacy=True,
)
SECURE_SCORE_CONTROLS = Section(
    "secure_score_controls",
    SecureScoreControl,
    (
        RowKind(
            "secure_score_controls",
            normalize.T_SECURE_SCORE_CONTROL,
            normalize.secure_score_control,
        ),
    ),
    identity=lambda r: (r.subscription_id, r.control_id),
    legacy=True,
)
# Every resource-level assessment, read in the posture query: the hardening coverage and the
# recommendations are two views over the same rows.
ASSESSMENT_ROWS = RowKind("recommendations", normalize.T_RECOMMENDATION, normalize.recommendation)
HARDENING = Section(
    "hardening",
    HardeningCoverage,
    (ASSESSMENT_ROWS,),
    identity=lambda r: (r.subscription_id, r.recommendation),
    derive=_hardening,
    legacy=True,
)
ASSIGNMENTS = Section(
    "assignments",
    StandardAssignment,
    (RowKind("assignments", normalize.T_STANDARD_ASSIGNMENT, normalize.standard_assignment),),
    identity=lambda r: (r.subscription_id, r.assignment_id),
    legacy=True,
)

RECOMMENDATIONS = Section(
    "recommendations",
    RecommendationSummary,
    (ASSESSMENT_ROWS,),
    identity=lambda r: (r.subscription_id, r.recommendation),
    derive=_recommendations,
    counts=lambda records: {"recommendations_unhealthy": sum(1 for r in records if r.unhealthy)},
)

ALERT_ROWS = RowKind("alerts", normalize.T_ALERT, normalize.security_alert)


def _open_alerts(rows: Sequence[SecurityAlert], context: Derivation) -> list[SecurityAlert]:
    """Open (active, in-progress) alerts of collected subscriptions, most severe and newest
    first, up to the tenant's cap."""
    found = [a for a in rows if a.is_open and a.subscription_id in context.collected]
    found.sort(key=lambda a: a.order)
    cap = context.caps.get("alerts")
    return found if cap is None else found[:cap]


def _alert_counts(rows: Sequence[SecurityAlert], context: Derivation) -> list[AlertCount]:
    """Every alert of a collected subscription counted per severity and status: open ones
    all, closed ones when they ended within the look-back; with how many were listed."""
    cutoff = None if context.now is None else context.now - timedelta(days=context.lookback_days)
    counted: Counter[tuple[str, AlertSeverity, AlertStatus]] = Counter()
    for alert in rows:
        if alert.subscription_id not in context.collected:
            continue
        ended = alert.end_time or alert.start_time
        if alert.is_open or cutoff is None or ended >= cutoff:
            counted[(alert.subscription_id, alert.severity, alert.status)] += 1
    listed = Counter((a.subscription_id, a.severity, a.status) for a in _open_alerts(rows, context))
    return [
        AlertCount(sub, severity, status, alerts, listed.get((sub, severity, status), 0))
        for (sub, severity, status), alerts in sorted(counted.items())
    ]


def _alert_count_totals(records: Sequence[AlertCount]) -> dict[str, int]:
    return {
        "alerts_open": sum(r.alerts for r in records if r.status in OPEN_ALERT_STATUSES),
        "alerts_left_out": sum(r.left_out for r in records),
    }


ALERT_COUNTS = Section(
    "alert_counts",
    AlertCount,
    (ALERT_ROWS,),
    identity=lambda r: (r.subscription_id, r.severity.value, r.status.value),
    derive=_alert_counts,
    counts=_alert_count_totals,
)
ALERTS = Section(
    "alerts",
    SecurityAlert,
    (ALERT_ROWS,),
    identity=lambda r: (r.alert_id,),
    derive=_open_alerts,
)

# In the order of the hashed content (after tenant, completeness and the carried assessments,
# which are not record sections: see canonical.SECTIONS).
REGISTRY: tuple[Section[Any], ...] = (
    COMPLIANCE,
    STANDARDS,
    CONTROLS,
    PLANS,
    SECURE_SCORES,
    SECURE_SCORE_CONTROLS,
    HARDENING,
    ASSIGNMENTS,
    ALERT_COUNTS,
    ALERTS,
    RECOMMENDATIONS,
)


def by_name(registry: Sequence[Section[Any]] = REGISTRY) -> dict[str, Section[Any]]:
    return {section.name: section for section in registry}


def row_kinds(registry: Sequence[Section[Any]] = REGISTRY) -> dict[str, RowKind]:
    """Every row kind by its Resource Graph type."""
    return {kind.graph_type: kind for section in registry for kind in section.kinds}


def queries(registry: Sequence[Section[Any]] = REGISTRY) -> dict[str, str]:
    """One ``securityresources`` query per query group, in declaration order."""
    groups: dict[str, list[RowKind]] = {}
    for section in registry:
        for kind in section.kinds:
            groups.setdefault(kind.query, []).append(kind)
    out = {}
    for group, kinds in groups.items():
        # Values are our own constants (types, GUID keys), never caller input.
        unique = dict.fromkeys(kind.graph_type for kind in kinds)  # a kind may feed two sections
        types = ", ".join(f"'{graph_type}'" for graph_type in unique)
        where = "".join(dict.fromkeys(kind.where for kind in kinds))
        out[group] = (
            f"securityresources | where type in~ ({types}){where} "
            "| project id, name, type, subscriptionId, properties"
        )
    return out


# --- a posture's sections -------------------------------------------------------------------


def records_of(posture: TenantPosture, section: Section[R]) -> tuple[R, ...] | None:
    """The section's records in the posture; None when the section was not collected."""
    if section.legacy:
        records: tuple[R, ...] = getattr(posture, section.name)
        return records
    return posture.sections.get(section.name)


def posture_of(
    base: TenantPosture,
    records: Mapping[str, tuple[Any, ...]],
    registry: Sequence[Section[Any]] = REGISTRY,
) -> TenantPosture:
    """`base` with the records of every section named in `records` (others left as they are)."""
    known = by_name(registry)
    legacy: dict[str, Any] = {n: v for n, v in records.items() if known[n].legacy}
    later = {name: value for name, value in records.items() if not known[name].legacy}
    return replace(base, **legacy, sections={**base.sections, **later})


def counts_of(
    posture: TenantPosture, carried: int, registry: Sequence[Section[Any]] = REGISTRY
) -> dict[str, int]:
    """Record counts per collected section (and the sections' own counts), for the index."""
    counts: dict[str, int] = {}
    for section in registry:
        records = records_of(posture, section)
        if records is None:
            continue  # not collected: no count, not a zero
        counts[section.name] = len(records)
        if section.name == COMPLIANCE.name:
            counts["carried"] = carried
    for section in registry:
        records = records_of(posture, section)
        if records is not None and section.counts is not None:
            counts.update(section.counts(records))
    return counts


# --- a batch of rows ------------------------------------------------------------------------


@dataclass
class Batch:
    """Records normalised from a stream of rows (per row kind), with what could not be.

    Ids are unique: the first row of an id (compared case-insensitively) that normalises is
    kept, and every later row with that id is malformed under its kind (see normalize.py).
    """

    registry: Sequence[Section[Any]] = REGISTRY
    records: dict[str, list[Any]] = field(default_factory=dict)
    malformed: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    ignored: int = 0
    # Digest of the lower-cased id -> the record kept for it: later rows with the id are
    # duplicates. A 16-byte digest, not the id itself: ids are about 230 characters, and a
    # tenant may hold hundreds of thousands of rows.
    _kept: dict[bytes, Any] = field(default_factory=dict, repr=False)
    _kinds: dict[str, RowKind] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._kinds = row_kinds(self.registry)
        for kind in self._kinds.values():
            self.records.setdefault(kind.name, [])

    def __getitem__(self, kind: str) -> list[Any]:
        """The records normalised from rows of `kind` (a RowKind name)."""
        return self.records[kind]

    def add(self, row: Any) -> None:
        """Normalise one Resource Graph row into its record list (or count it as malformed)."""
        if not isinstance(row, Mapping):
            self._malformed(MALFORMED_ROWS, None, "the row is not a JSON object")
            return
        row_type = row.get("type", "")
        kind = self._kinds.get(row_type.lower()) if type(row_type) is str else None
        if kind is None:
            self.ignored += 1
            return
        try:
            record = kind.normalizer(row)
        except normalize.Malformed as exc:
            self._malformed(kind.name, row.get("id"), str(exc))
            return
        row_id = row.get("id")
        if type(row_id) is str:
            key = _blake2b(row_id.lower().encode(), digest_size=16).digest()
            kept = self._kept.setdefault(key, record)
            if kept is not record:
                self._malformed(kind.name, row_id, _duplicate(kept, record))
                return
        self.records[kind.name].append(record)

    def extend(self, rows: Iterable[Any]) -> None:
        for row in rows:
            self.add(row)

    def derive(self, context: Derivation) -> dict[str, tuple[Any, ...]]:
        """Every section's records, derived from the rows of its kinds."""
        out: dict[str, tuple[Any, ...]] = {}
        for section in self.registry:
            rows: list[Any] = []
            for kind in section.kinds:
                rows.extend(self.records[kind.name])
            out[section.name] = tuple(section.derive(rows, context))
        return out

    def _malformed(self, kind: str, row_id: object, problem: str) -> None:
        self.malformed[kind] += 1
        if len(self.warnings) < normalize.MAX_WARNINGS:
            shown = quote(row_id, 400) if isinstance(row_id, str) else "<no id>"  # ids ~230
            self.warnings.append(f"malformed {kind} row {shown}: {problem}")


def _duplicate(kept: Any, dropped: Any) -> str:
    if kept == dropped:
        return "duplicate id, identical to the row kept (the first); dropped"
    kept_state = getattr(kept, "state", None)
    dropped_state = getattr(dropped, "state", None)
    if kept_state is not None and dropped_state is not None and kept_state != dropped_state:
        return (
            f"duplicate id with a conflicting state: {kept_state} kept (the first row), "
            f"{dropped_state} dropped"
        )
    return "duplicate id with conflicting values: the first row kept, this one dropped"


def empty_posture(
    tenant: Tenant, completeness: Completeness, registry: Sequence[Section[Any]] = REGISTRY
) -> TenantPosture:
    """A posture with no records: every format-1 section empty, later sections not collected."""
    empty: dict[str, Any] = {section.name: () for section in registry if section.legacy}
    return TenantPosture(tenant=tenant, completeness=completeness, **empty)
