"""Snapshot records: one tenant's posture at one scheduled moment, with its place in history.

Pure types and rules shared by the store, the diff API and the evidence packs.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from auditor.core.index_summary import IndexSummary
from auditor.core.model import (
    CollectionStatus,
    ComplianceRecord,
    ControlSummary,
    State,
    TenantPosture,
)

SNAPSHOT_ID = re.compile(r"^\d{8}T\d{6}Z$")
TENANT_ID = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE
)


def snapshot_id_for(scheduled_at: datetime) -> str:
    """The snapshot id of a scheduled slot: the same slot always gives the same id (idempotency)."""
    if scheduled_at.tzinfo is None:
        raise ValueError("scheduled_at must be timezone-aware (UTC)")
    moment = scheduled_at.astimezone(UTC)
    # Not strftime: glibc's %Y drops leading zeros (year 1 -> "1"), breaking the fixed width.
    return (
        f"{moment.year:04d}{moment.month:02d}{moment.day:02d}"
        f"T{moment.hour:02d}{moment.minute:02d}{moment.second:02d}Z"
    )


def slot_of(snapshot_id: str) -> datetime:
    """Inverse of snapshot_id_for."""
    if not SNAPSHOT_ID.match(snapshot_id):
        raise ValueError(f"not a snapshot id: {snapshot_id!r}")
    return datetime.strptime(snapshot_id, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def is_tenant_id(value: str) -> bool:
    return bool(TENANT_ID.match(value))


@dataclass(frozen=True, slots=True)
class SnapshotIndexEntry:
    """One row of a tenant's snapshot index (newest first): what an auditor sees in a list."""

    tenant_id: str
    tenant_name: str
    snapshot_id: str
    scheduled_at: datetime
    finished_at: datetime
    status: CollectionStatus
    reasons: tuple[str, ...]
    expected_subscriptions: tuple[str, ...]
    collected_subscriptions: tuple[str, ...]
    counts: dict[str, int]
    compliance_by_standard: dict[str, float | None]
    collector_version: str
    content_hash: str
    previous_snapshot_id: str | None
    previous_hash: str | None
    # The write attempt that committed it (names its content partition and its anchor).
    attempt: str = ""
    # Collected after its slot's successor had begun: a late fill, not the slot's own run.
    backfill: bool = False
    # A failed attempt of the same slot that this one retook (its anchor and content are kept).
    supersedes: str = ""
    # Why the history (first seen, first failed) was not inherited from the predecessor.
    history_break: str = ""
    # The portfolio's figures, computed when the snapshot was prepared and stored in the row
    # (auditor/core/index_summary.py); None for rows committed before summaries existed.
    summary: IndexSummary | None = None
    # SHA-256 of every stored property of the index row as read (compared with the anchor).
    row_digest: str = field(default="", compare=False)
    # The digest of each property of that row (names what an edit changed).
    row_properties: dict[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Transition:
    """History of one assessment, carried from snapshot to snapshot."""

    first_seen: datetime
    last_changed: datetime
    first_failed: datetime | None  # start of the current failing streak; None when not failing


@dataclass(frozen=True, slots=True)
class CarriedAssessment:
    """An assessment this snapshot did not observe because its collection was not complete.

    Its last observed record and history are carried unchanged, so that "failing since" survives
    a day on which a subscription could not be read. Stale, never current: readers show it as
    last seen at ``last_seen``, not as the tenant's present state.
    """

    record: ComplianceRecord
    transition: Transition
    last_seen: datetime  # scheduled time of the snapshot that last observed it


@dataclass(frozen=True, slots=True)
class Snapshot:
    index: SnapshotIndexEntry
    posture: TenantPosture
    # Keyed by ComplianceRecord.key: (subscription, standard, control, assessment).
    transitions: dict[tuple[str, str, str, str], Transition] = field(default_factory=dict)
    # Assessments not observed in this snapshot whose history is carried (incomplete collection).
    # Same key; never in posture.compliance.
    carried: dict[tuple[str, str, str, str], CarriedAssessment] = field(default_factory=dict)
    # SHA-256 of every stored content entity as read (compared with the anchor); "" when unknown.
    content_digest: str = field(default="", compare=False)


def compliance_by_standard(controls: Iterable[ControlSummary]) -> dict[str, float | None]:
    """Per standard, passed controls as a percentage of passed + failed controls.

    Summed over subscriptions. Skipped and unsupported controls are excluded (they are neither
    compliant nor not); a standard with no passed or failed control has no percentage (None),
    never 100 %.
    """
    return compliance_of_states((control.standard, control.state) for control in controls)


def compliance_of_states(states: Iterable[tuple[str, State]]) -> dict[str, float | None]:
    """compliance_by_standard of (standard, state) pairs, one per control."""
    passed: dict[str, int] = defaultdict(int)
    assessed: dict[str, int] = defaultdict(int)
    for standard, state in states:
        assessed.setdefault(standard, 0)
        if state is State.PASSED:
            passed[standard] += 1
            assessed[standard] += 1
        elif state is State.FAILED:
            assessed[standard] += 1
    return {
        standard: (round(100.0 * passed[standard] / total, 2) if total else None)
        for standard, total in sorted(assessed.items())
    }


class SnapshotNotFound(LookupError):
    """No committed snapshot (or tenant) answers the request."""


class SnapshotTampered(RuntimeError):
    """A committed snapshot fails verification: its index row, latest row or content disagrees
    with the write-once anchor its attempt wrote (or it has none). Never served or used."""

    def __init__(self, tenant_id: str, snapshot_id: str, problem: str) -> None:
        super().__init__(
            f"snapshot {snapshot_id} of tenant {tenant_id} failed verification: {problem}"
        )
        self.tenant_id = tenant_id
        self.snapshot_id = snapshot_id
        self.problem = problem


@dataclass(frozen=True, slots=True, order=True)
class UnverifiedLatest:
    """A tenant's latest row that fails verification: the tenant its keys name, and why."""

    tenant_id: str
    problem: str


class SnapshotReader(Protocol):
    """Read side of the snapshot store: all a reader (API, evidence packs, verify) may use.

    Only committed snapshots are ever returned; a partial write is invisible.
    """

    def list_tenants(self) -> list[SnapshotIndexEntry]:
        """The latest committed snapshot of every tenant that has one, ordered by tenant id."""
        ...

    def list_snapshots(
        self,
        tenant_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[SnapshotIndexEntry]:
        """A tenant's committed snapshots, newest first, optionally bounded by scheduled time."""
        ...

    def get_index(self, tenant_id: str, snapshot_id: str) -> SnapshotIndexEntry:
        """One committed snapshot's index entry; SnapshotNotFound when absent."""
        ...

    def find_at(self, tenant_id: str, instant: datetime) -> SnapshotIndexEntry:
        """The latest committed snapshot scheduled at or before `instant`; else SnapshotNotFound."""
        ...

    def get_snapshot(self, tenant_id: str, snapshot_id: str) -> Snapshot:
        """A committed snapshot's full content; SnapshotNotFound when absent."""
        ...
