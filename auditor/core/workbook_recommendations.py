"""The evidence pack's "Action plan" and "Impacted resources" sheets. Pure (``SheetLayout``s;
see workbook.py).

Action plan: every recommendation unhealthy in the end snapshot, one row per (subscription,
recommendation), as azqr's users expect: severity, impacted resources, remediation, portal
link, days unhealthy; sorted by severity (High first) then impact (most unhealthy resources
first). Impacted resources, read per control: one row per (standard, control, compliance
assessment, subscription, resource) for every standard control whose compliance assessment
comes from an unhealthy recommendation (``assessmentDetailsLink``:
normalize.source_assessment), by standard and control, then the resources of recommendations
feeding no control; resources as listed in the snapshot (capped per recommendation: what the
cap left out is counted, never silent). An end snapshot taken before recommendations were
collected says *not collected*, never "none".

Days unhealthy: a snapshot keeps no history per recommendation, so the pack states what its
two ends prove: a recommendation unhealthy at both ends has been unhealthy *at least* the
period's whole days; one that became unhealthy within the period, at least 0 days.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from auditor.core.failing_resources import CAP_SETTING, resource_name
from auditor.core.model import RecommendationSummary
from auditor.core.normalize import source_assessment
from auditor.core.portal import recommendation_url
from auditor.core.registry import RECOMMENDATIONS, records_of
from auditor.core.snapshot import Snapshot
from auditor.core.workbook import (
    ACTION_PLAN,
    IMPACTED,
    SEVERITY_TONES,
    CellValue,
    Column,
    HeaderRow,
    Heading,
    Kind,
    Link,
    PackInputs,
    Paragraph,
    Row,
    SheetLayout,
    Tone,
    cell_text,
    natural_key,
    subscription_names,
)

_SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2}
ACTION_COLUMNS = (
    Column("Severity", 10, Kind.TEXT, SEVERITY_TONES),
    Column("Recommendation", 36, Kind.WRAP),
    Column("Impacted resources", 10, Kind.INTEGER),
    Column("Subscription", 18, Kind.WRAP),
    Column("Remediation", 46, Kind.WRAP),
    Column("Days unhealthy (at least)", 11, Kind.INTEGER),
    Column("Unhealthy at start", 10, Kind.TEXT, (("No", Tone.WARN),)),
    Column("Portal link", 50, Kind.LINK),
    Column("Healthy resources", 10, Kind.INTEGER),
    Column("Not applicable", 10, Kind.INTEGER),
    Column("Categories", 20, Kind.WRAP),
    Column("User impact", 10),
    Column("Implementation effort", 12),
    Column("Subscription ID", 38, Kind.HASH),
    Column("Recommendation key", 38, Kind.HASH),
)
ACTION_PRINTED = 7
IMPACTED_COLUMNS = (
    Column("Standard", 16, Kind.WRAP),
    Column("Control", 9),
    Column("Severity", 10, Kind.TEXT, SEVERITY_TONES),
    Column("Recommendation", 30, Kind.WRAP),
    Column("Subscription", 16, Kind.WRAP),
    Column("Resource", 26, Kind.WRAP),
    Column("Resource type", 22, Kind.WRAP),
    Column("Resource ID", 90, Kind.HASH),
    Column("Assessment", 38, Kind.HASH),
    Column("Subscription ID", 38, Kind.HASH),
    Column("Recommendation key", 38, Kind.HASH),
)
IMPACTED_PRINTED = 7
NO_CONTROL = "no control"
LEFT_OUT_HEADER = HeaderRow.of(
    "Severity", "Recommendation", "Subscription", "Unhealthy", "Listed", "Left out by the cap"
)
NOT_COLLECTED = (
    "Not collected: the end snapshot was taken before recommendations were collected. This "
    "says nothing about whether the tenant had unhealthy resources."
)


def action_order(r: RecommendationSummary) -> tuple[int, int, str, str]:
    """Severity (High, Medium, Low, then unknown), then impact (most unhealthy first)."""
    rank = _SEVERITY_RANK.get(r.severity.lower(), len(_SEVERITY_RANK))
    return (rank, -r.unhealthy, r.display_name.lower(), r.subscription_id)


def unhealthy_in(snapshot: Snapshot) -> list[RecommendationSummary] | None:
    """The snapshot's unhealthy recommendations in action order; None when not collected."""
    records = records_of(snapshot.posture, RECOMMENDATIONS)
    if records is None:
        return None
    return sorted((r for r in records if r.unhealthy), key=action_order)


def _unhealthy_at_start(inputs: PackInputs) -> set[tuple[str, str]] | None:
    records = records_of(inputs.start.posture, RECOMMENDATIONS)
    if records is None:
        return None
    return {(r.subscription_id, r.recommendation) for r in records if r.unhealthy}


def _period_days(inputs: PackInputs) -> int:
    elapsed = inputs.end.index.scheduled_at - inputs.start.index.scheduled_at
    return max(0, math.floor(elapsed.total_seconds() / 86400))


def _action_row(
    r: RecommendationSummary,
    inputs: PackInputs,
    names: dict[str, str],
    before: set[tuple[str, str]] | None,
) -> Sequence[CellValue]:
    url = recommendation_url(inputs.options.portal, r.recommendation)
    was = None if before is None else (r.subscription_id, r.recommendation) in before
    days = None if was is None else (_period_days(inputs) if was else 0)
    return (
        cell_text(r.severity),
        cell_text(r.display_name),
        r.unhealthy,
        cell_text(names.get(r.subscription_id, r.subscription_id)),
        cell_text(r.remediation),
        days,
        "not comparable" if was is None else ("Yes" if was else "No"),
        Link(url, url=url),
        r.healthy,
        r.not_applicable,
        cell_text(", ".join(r.categories)),
        cell_text(r.user_impact),
        cell_text(r.implementation_effort),
        r.subscription_id,
        r.recommendation,
    )


def action_plan_sheet(inputs: PackInputs) -> SheetLayout:
    names = subscription_names(inputs.start, inputs.end)

    def rows() -> Iterator[Row]:
        unhealthy = unhealthy_in(inputs.end)
        if unhealthy is None:
            yield Paragraph(NOT_COLLECTED, label="Section")
            return
        before = _unhealthy_at_start(inputs)
        for r in unhealthy:
            yield _action_row(r, inputs, names, before)
        yield []
        if before is None:
            yield Paragraph(
                "Days unhealthy not known: the start snapshot was taken before recommendations "
                "were collected.",
                label="Days",
            )
        else:
            yield Paragraph(
                f"Unhealthy at both ends: at least the period's {_period_days(inputs)} days; "
                "became unhealthy within the period: at least 0 (the snapshots keep no earlier "
                "history per recommendation).",
                label="Days",
            )

    return SheetLayout(
        title=ACTION_PLAN,
        purpose="Every recommendation unhealthy at the end, by severity then impacted resources: "
        "remediation, portal link and days unhealthy.",
        columns=ACTION_COLUMNS,
        rows=rows(),
        printed=ACTION_PRINTED,
    )


def _resource_type(resource_id: str) -> str:
    """``microsoft.compute/virtualmachines`` from an ARM id (child types joined by '/')."""
    parts = resource_id.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    if "providers" not in lowered:
        return ""
    at = len(lowered) - 1 - lowered[::-1].index("providers")
    rest = parts[at + 1 :]
    if len(rest) < 3:
        return ""
    return "/".join([rest[0], *rest[1::2]]).lower()


@dataclass(frozen=True, slots=True)
class Mapped:
    """A control's compliance assessment fed by a recommendation (its source assessment)."""

    standard: str
    control: str
    assessment: str  # the compliance assessment's key


def controls_by_source(snapshot: Snapshot) -> dict[tuple[str, str], list[Mapped]]:
    """(subscription, assessment key) -> the standard controls whose regulatory compliance
    assessments come from that assessment (``assessmentDetailsLink``), sorted."""
    found: dict[tuple[str, str], set[Mapped]] = defaultdict(set)
    for record in snapshot.posture.compliance:
        key = source_assessment(record)
        if key:
            found[(record.subscription_id, key)].add(
                Mapped(record.standard, record.control, record.assessment)
            )
    return {where: sorted(mapped, key=_control_order) for where, mapped in found.items()}


def _control_order(m: Mapped) -> tuple[object, ...]:
    return (m.standard.lower(), natural_key(m.control), m.assessment)


def per_control(
    unhealthy: list[RecommendationSummary], controls: dict[tuple[str, str], list[Mapped]]
) -> list[tuple[Mapped | None, RecommendationSummary]]:
    """Every (control assessment, recommendation) pair, by standard and control (natural
    order), each control's recommendations in action order; recommendations feeding no
    control last (None), in action order."""
    mapped = [
        (m, rank, r)
        for rank, r in enumerate(unhealthy)
        for m in controls.get((r.subscription_id, r.recommendation), ())
    ]
    mapped.sort(key=lambda item: (_control_order(item[0]), item[1]))
    unmapped = [r for r in unhealthy if (r.subscription_id, r.recommendation) not in controls]
    return [(m, r) for m, _, r in mapped] + [(None, r) for r in unmapped]


def _impacted_rows(
    pairs: list[tuple[Mapped | None, RecommendationSummary]], names: dict[str, str]
) -> Iterator[Sequence[CellValue]]:
    for m, r in pairs:
        for resource_id in r.unhealthy_resources:
            yield (
                m.standard if m else NO_CONTROL,
                m.control if m else "",
                r.severity,
                r.display_name,
                names.get(r.subscription_id, r.subscription_id),
                resource_name(resource_id),
                _resource_type(resource_id),
                resource_id,
                m.assessment if m else "",
                r.subscription_id,
                r.recommendation,
            )


def impacted_resources_sheet(inputs: PackInputs) -> SheetLayout:
    names = subscription_names(inputs.start, inputs.end)

    def rows() -> Iterator[Row]:
        unhealthy = unhealthy_in(inputs.end)
        if unhealthy is None:
            yield Paragraph(NOT_COLLECTED, label="Section")
            return
        yield from _impacted_rows(per_control(unhealthy, controls_by_source(inputs.end)), names)
        capped = [r for r in unhealthy if r.unhealthy_left_out]
        yield []
        yield Paragraph(
            f"{sum(r.unhealthy_left_out for r in capped)} unhealthy resources of "
            f"{len(capped)} recommendations were left out of the list above by the cap per "
            f"recommendation ({CAP_SETTING}); every one is counted.",
            label="Cap",
        )
        if capped:
            yield Heading("Recommendations whose list was capped")
            yield LEFT_OUT_HEADER
            for r in capped:
                yield (
                    cell_text(r.severity),
                    cell_text(r.display_name),
                    cell_text(names.get(r.subscription_id, r.subscription_id)),
                    r.unhealthy,
                    len(r.unhealthy_resources),
                    r.unhealthy_left_out,
                )

    return SheetLayout(
        title=IMPACTED,
        purpose="The failing resources per control: every unhealthy recommendation's "
        "resources under each standard control it feeds (then those feeding none); what the "
        "cap per recommendation left out is counted.",
        columns=IMPACTED_COLUMNS,
        rows=rows(),
        printed=IMPACTED_PRINTED,
    )
