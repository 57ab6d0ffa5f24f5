"""The failing resources behind a regulatory compliance assessment, for the pack's standard
sheets and its Impacted resources sheet. Pure.

A compliance assessment names the assessment it comes from (``assessmentDetailsLink``:
normalize.source_assessment); the snapshot's ``recommendations`` section lists, per
(subscription, assessment key), the unhealthy resource ids up to a cap per recommendation and
counts the rest. Both views come from Defender for Cloud and may disagree for a while (a
failing compliance assessment whose recommendation lists nothing): the text says which case a
row is in, never an empty cell that could read as "no failing resources".
"""

from __future__ import annotations

from collections.abc import Mapping

from auditor.core.model import ComplianceRecord, RecommendationSummary, State
from auditor.core.normalize import source_assessment
from auditor.core.registry import RECOMMENDATIONS, records_of
from auditor.core.snapshot import Snapshot

Lookup = Mapping[tuple[str, str], RecommendationSummary]

SHOWN = 5  # resource names printed in a standard sheet's cell; the rest are counted
NOT_COLLECTED = "not collected"
NOT_OBSERVED = "not observed"
NO_SOURCE = "no source assessment named"
NONE_LISTED = "none listed: its recommendation has no unhealthy resources in this snapshot"
CAP_SETTING = "AUDITOR_RECOMMENDATION_MAX_RESOURCES"


def recommendation_lookup(snapshot: Snapshot) -> Lookup | None:
    """(subscription, assessment key) -> the snapshot's recommendation; None when the snapshot
    predates the recommendations section."""
    records = records_of(snapshot.posture, RECOMMENDATIONS)
    if records is None:
        return None
    return {(r.subscription_id, r.recommendation): r for r in records}


def source_of(record: ComplianceRecord, lookup: Lookup) -> RecommendationSummary | None:
    """The recommendation `record` comes from, when the snapshot holds it."""
    key = source_assessment(record)
    return lookup.get((record.subscription_id, key)) if key else None


def resource_name(resource_id: str) -> str:
    """The last segment of an ARM id (``vm-1`` of ``…/virtualMachines/vm-1``)."""
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


def _explained(record: ComplianceRecord, lookup: Lookup | None) -> RecommendationSummary | str:
    """The recommendation listing `record`'s failing resources, or why there is none ("" when
    the assessment is not failing)."""
    if record.state is not State.FAILED:
        return ""
    if lookup is None:
        return NOT_COLLECTED
    if not source_assessment(record):
        return NO_SOURCE
    found = source_of(record, lookup)
    if found is None or not found.unhealthy:
        return NONE_LISTED
    return found


def left_out_text(r: RecommendationSummary) -> str:
    return f"{r.unhealthy_left_out} more not listed by the snapshot (cap {CAP_SETTING})"


def failing_names(record: ComplianceRecord, lookup: Lookup | None) -> str:
    """The printed cell: up to SHOWN resource names, then what else there is, counted."""
    found = _explained(record, lookup)
    if isinstance(found, str):
        return found
    listed = found.unhealthy_resources
    parts = [", ".join(resource_name(r) for r in listed[:SHOWN])]
    if len(listed) > SHOWN:
        parts.append(f" and {len(listed) - SHOWN} more (Impacted resources)")
    if found.unhealthy_left_out:
        parts.append(("; " if listed else "") + left_out_text(found))
    return "".join(parts)


def failing_ids(record: ComplianceRecord, lookup: Lookup | None) -> str:
    """The reference cell: every listed resource id, then the count the cap left out."""
    found = _explained(record, lookup)
    if isinstance(found, str):
        return found
    ids = list(found.unhealthy_resources)
    if found.unhealthy_left_out:
        ids.append(left_out_text(found))
    return "; ".join(ids)
