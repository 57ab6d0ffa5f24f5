"""A prepared snapshot: everything a commit writes, computed before anything is written. Pure.

From a tenant's posture, its slot and what the store verified of its predecessor (the previous
committed index entry and the history to inherit), ``prepare_snapshot`` computes the
transitions and carried assessments, the canonical sections, the content hash and the index
entry. The store adapter only persists the result (claim, content, anchor, commit); no domain
rule lives there.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from auditor.core.canonical import (
    canonical_sections,
    content_hash,
    header_of_entry,
    operations_of,
)
from auditor.core.index_summary import Key, PreviousFigures, summarize_posture
from auditor.core.model import CollectionStatus, TenantPosture
from auditor.core.projection import projection_lines
from auditor.core.registry import counts_of
from auditor.core.snapshot import SnapshotIndexEntry, compliance_by_standard, slot_of
from auditor.core.transitions import History, next_history


@dataclass(frozen=True, slots=True)
class Predecessor:
    """What the store verified before preparing: the previous committed entry (None for a
    tenant's first snapshot), the history inherited (empty when none) and, when the history
    could not be inherited, why."""

    entry: SnapshotIndexEntry | None = None
    history: History | None = None
    history_break: str = ""
    # Whether the store verified `entry` against its anchor: only then are its figures (its
    # compliance, its summary's sparkline) carried into the new snapshot's summary.
    verified: bool = False
    # Keys of `history` its source carried unobserved (not in its posture: the diff never
    # compares them).
    carried_keys: frozenset[Key] = frozenset()


def previous_figures(predecessor: Predecessor) -> PreviousFigures | None:
    """What the summary takes from the verified predecessor (None: none, or unverified)."""
    previous = predecessor.entry
    if previous is None or not predecessor.verified:
        return None
    states = None
    if not predecessor.history_break:
        carried = predecessor.carried_keys
        history = predecessor.history or {}
        states = {key: prior.state for key, prior in history.items() if key not in carried}
    return PreviousFigures(
        snapshot_id=previous.snapshot_id,
        compliance=dict(previous.compliance_by_standard),
        collected_subscriptions=previous.collected_subscriptions,
        summary=previous.summary,
        states=states,
    )


@dataclass(frozen=True, slots=True)
class PreparedSnapshot:
    """The index entry (content hash included; ``finished_at`` and ``attempt`` set by the
    store when it writes), the canonical lines of every collected section, and the operational
    counters stored beside the content (not hashed)."""

    entry: SnapshotIndexEntry
    sections: dict[str, list[str]]
    operations: dict[str, float]
    # The diff projection of the content (auditor/core/projection.py): stored, never hashed.
    projection: list[str] = field(default_factory=list)


def prepare_snapshot(
    posture: TenantPosture,
    snapshot_id: str,
    *,
    collector_version: str,
    status: CollectionStatus,
    predecessor: Predecessor,
    backfill: bool = False,
    supersedes: str = "",
) -> PreparedSnapshot:
    """The snapshot of `posture` for the slot `snapshot_id`, built on `predecessor`."""
    tenant = posture.tenant
    slot = slot_of(snapshot_id)
    if predecessor.history_break:
        completeness = posture.completeness
        posture = replace(
            posture,
            completeness=replace(
                completeness,
                warnings=(
                    *completeness.warnings,
                    f"history not inherited: {predecessor.history_break}",
                ),
            ),
        )
    transitions, carried = next_history(predecessor.history or {}, posture, slot)
    sections = canonical_sections(posture, transitions, carried)
    completeness = posture.completeness
    previous = predecessor.entry
    entry = SnapshotIndexEntry(
        tenant_id=tenant.tenant_id,
        tenant_name=tenant.display_name,
        snapshot_id=snapshot_id,
        scheduled_at=slot,
        finished_at=slot,  # set once the content is written
        status=status,
        reasons=completeness.reasons,
        expected_subscriptions=completeness.expected_subscriptions,
        collected_subscriptions=completeness.collected_subscriptions,
        counts=counts_of(posture, len(carried)),
        compliance_by_standard=compliance_by_standard(posture.controls),
        collector_version=collector_version,
        content_hash="",
        previous_snapshot_id=previous.snapshot_id if previous else None,
        previous_hash=previous.content_hash if previous else None,
        backfill=backfill,
        supersedes=supersedes,
        history_break=predecessor.history_break,
    )
    entry = replace(entry, content_hash=content_hash(header_of_entry(entry), sections))
    # Not hashed content: stored in the index row, which the anchor's index digest covers.
    summary = summarize_posture(
        posture,
        snapshot_id,
        slot,
        entry.compliance_by_standard,
        previous_figures(predecessor),
        first=previous is None,
    )
    entry = replace(entry, summary=summary)
    return PreparedSnapshot(
        entry,
        sections,
        operations_of(completeness),
        projection_lines(posture.compliance, transitions, posture.controls),
    )
