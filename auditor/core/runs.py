"""A scheduled run and its per-tenant jobs. Pure.

The timer plans a run for one slot: it records a manifest (which tenants were expected, with
their subscriptions) and sends one job per tenant. A job names only the tenant and the slot; the
worker reads the tenant from the manifest, so a message stays small whatever the tenant's size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from auditor.core.model import Tenant
from auditor.core.snapshot import SNAPSHOT_ID, slot_of, snapshot_id_for

JOB_FORMAT = "auditor-snapshot-job/1"
REJECTED_FORMAT = "auditor-rejected-job/1"


class JobFormatError(ValueError):
    """A queue message is not a snapshot job (it will end in the poison queue)."""


@dataclass(frozen=True, slots=True)
class SnapshotJob:
    """Take the snapshot of one tenant for one scheduled slot."""

    tenant_id: str
    snapshot_id: str

    @property
    def scheduled_at(self) -> datetime:
        return slot_of(self.snapshot_id)

    @classmethod
    def for_slot(cls, tenant_id: str, scheduled_at: datetime) -> SnapshotJob:
        return cls(tenant_id, snapshot_id_for(scheduled_at))


def encode_job(job: SnapshotJob) -> str:
    """The message text of a job (the queue adapter Base64-encodes it on the wire)."""
    return json.dumps(
        {"format": JOB_FORMAT, "tenant_id": job.tenant_id, "snapshot_id": job.snapshot_id},
        sort_keys=True,
    )


def decode_job(text: str) -> SnapshotJob:
    """Inverse of encode_job; JobFormatError naming what is wrong."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JobFormatError(f"message is not JSON: {exc.msg}") from None
    if not isinstance(obj, dict) or obj.get("format") != JOB_FORMAT:
        raise JobFormatError(f"message is not a {JOB_FORMAT} job")
    tenant_id, snapshot_id = obj.get("tenant_id"), obj.get("snapshot_id")
    if not isinstance(tenant_id, str) or not tenant_id:
        raise JobFormatError("job has no tenant_id")
    if not isinstance(snapshot_id, str) or not SNAPSHOT_ID.match(snapshot_id):
        raise JobFormatError(f"job has no valid snapshot_id: {snapshot_id!r}")
    return SnapshotJob(tenant_id, snapshot_id)


@dataclass(frozen=True, slots=True)
class RunManifest:
    """What a run expected: the slot, when it was planned, and every tenant to snapshot."""

    snapshot_id: str
    planned_at: datetime
    tenants: tuple[Tenant, ...]
    collector_version: str
    enqueued: bool = False  # every job was sent
    # A full run (every delegated tenant), as the timer plans it; `snapshot --tenant` plans a
    # partial one. Only full runs tell who left the delegation.
    full: bool = False
    # Tenants in the previous full run's manifest that this run's discovery no longer found.
    left: tuple[str, ...] = ()

    @property
    def scheduled_at(self) -> datetime:
        return slot_of(self.snapshot_id)

    @property
    def tenant_ids(self) -> tuple[str, ...]:
        return tuple(t.tenant_id for t in self.tenants)


@dataclass(frozen=True, slots=True)
class Delegation:
    """Who the latest full run found delegated, and since when each other tenant is gone."""

    run: str  # snapshot id of the latest full run
    tenant_ids: frozenset[str]
    left_at: dict[str, str]  # tenant id -> snapshot id of the first full run that lacked it

    def delegated(self, tenant_id: str) -> bool:
        return tenant_id in self.tenant_ids


def rejected_job_document(text: str, reason: str, rejected_at: str) -> str:
    """What goes to the poison queue for a job refused before any work: the reason with it."""
    return json.dumps(
        {"format": REJECTED_FORMAT, "reason": reason, "rejectedAt": rejected_at, "message": text},
        sort_keys=True,
    )


def poisoned_job(text: str) -> SnapshotJob | None:
    """The job a poison-queue message stands for (raw, or wrapped with its reason)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(obj, dict) and obj.get("format") == REJECTED_FORMAT:
        text = str(obj.get("message", ""))
    try:
        return decode_job(text)
    except JobFormatError:
        return None
