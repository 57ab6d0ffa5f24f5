"""What operators read: runs and their digests, and the status of the deployment.

Used by the API (``/api/runs``, ``/api/runs/{slot}``, ``/api/status``, operators only) and the
commands ``runs`` and ``status``. Tenant rows are filtered by the caller's grant
(``TenantScope``); the figures of a filtered digest are computed over the rows shown, the
joined/left lists are filtered the same way, and poison reasons (which may name any tenant)
are shown only to a caller who sees every tenant.

Queue depths: the collector records them on every timer tick (``record_queues``: the API's
identity has no right on the job queues); the command line reads them live.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from auditor.adapters.blobs import EvidenceStore
from auditor.adapters.queues import SnapshotQueue
from auditor.adapters.retention import retention_status
from auditor.adapters.tables.run_digests import DigestTampered, RunDigestStore
from auditor.adapters.tables.runs import RunStore
from auditor.core.access import TenantScope
from auditor.core.canonical import format_time
from auditor.core.digest import digest_document, digest_from_document
from auditor.settings import Settings

RUNS_LISTED = 30


def visible_document(document: dict[str, Any], scope: TenantScope) -> dict[str, Any]:
    """The digest as a caller with `scope` may see it."""
    if scope.everything:
        return document
    digest = digest_from_document(document)
    shown = digest_document(digest, [t for t in digest.tenants if t.tenant_id in scope])
    shown["joined"] = [t for t in digest.joined if t in scope]
    shown["left"] = [t for t in digest.left if t in scope]
    shown["poison"] = {"count": digest.poison.count, "reasons": []}
    return shown


@dataclass
class Operations:
    runs: RunStore
    digests: RunDigestStore
    evidence: EvidenceStore | None = None
    queue: SnapshotQueue | None = None  # live queue figures (the command line)

    def close(self) -> None:
        self.runs.close()
        self.digests.close()
        if self.evidence is not None:
            self.evidence.close()
        if self.queue is not None:
            self.queue.close()

    def run(self, slot: str, scope: TenantScope) -> dict[str, Any] | None:
        """One run: open (planned, not closed yet) or closed with its digest; None: no run."""
        record = self.digests.record(slot)
        if record is None:
            return None
        out: dict[str, Any] = {
            "slot": slot,
            "plannedAt": record.planned_at,
            "closed": record.closed,
            "closedAt": record.closed_at,
            "closedBy": record.closed_by,
            "digestHash": record.digest_hash,
            "tenantsExpected": sum(1 for t in record.tenant_ids if t in scope),
            "digest": None,
            "problem": None,
            "deliveries": [d.as_json() for d in self.digests.deliveries(slot).values()],
        }
        if record.closed:
            try:
                found = self.digests.digest(slot)
            except DigestTampered as exc:
                out["problem"] = str(exc)
                return out
            if found is not None:
                out["digest"] = visible_document(found[1], scope)
        return out

    def list_runs(self, scope: TenantScope, limit: int = RUNS_LISTED) -> list[dict[str, Any]]:
        """The latest full runs, newest first, each without its tenant rows."""
        out = []
        for slot in self.runs.recent_runs(limit):
            run = self.run(slot, scope)
            if run is None:
                continue
            digest = run.pop("digest")
            run["outcome"] = digest["outcome"] if digest else None
            run["counts"] = digest["counts"] if digest else None
            out.append(run)
        return out

    def record_queues(self, queue: SnapshotQueue, now: datetime | None = None) -> None:
        """Note the job queues' figures for the API's status (the timer, every tick)."""
        self.digests.put_queue_status(queue_figures(queue, now or datetime.now(UTC)))

    def status(self, scope: TenantScope) -> dict[str, Any]:
        runs = self.list_runs(scope, limit=2)
        last_closed = next((r for r in runs if r["closed"]), None)
        latest = runs[0] if runs else None
        failed: list[str] = []
        stale: list[str] = []
        if last_closed is not None:
            closed = self.run(last_closed["slot"], scope)
            digest = closed["digest"] if closed else None
            for tenant in digest["tenants"] if digest else ():
                if tenant["status"] in ("failed", "pending"):
                    failed.append(tenant["tenantId"])
                if tenant["stale"]:
                    stale.append(tenant["tenantId"])
        if self.queue is not None:
            queues = queue_figures(self.queue, datetime.now(UTC))
        else:
            queues = self.digests.queue_status() or {"observedAt": None}
        return {
            "latestRun": _run_line(latest),
            "lastClosedRun": _run_line(last_closed),
            "tenants": {"failed": failed, "stale": stale},
            "queues": queues,
            "notifications": last_closed["deliveries"] if last_closed else [],
            "evidence": retention_status(self.evidence).as_json() if self.evidence else None,
        }


def _run_line(run: dict[str, Any] | None) -> dict[str, Any] | None:
    if run is None:
        return None
    keys = ("slot", "plannedAt", "closed", "closedAt", "closedBy", "outcome", "counts")
    return {k: run.get(k) for k in keys}


def queue_figures(queue: SnapshotQueue, now: datetime) -> dict[str, Any]:
    oldest = queue.oldest_inserted_at()
    return {
        "observedAt": format_time(now),
        "snapshotQueue": queue.name,
        "depth": queue.depth(),
        "poisonDepth": queue.depth(poison=True),
        "oldestMessageAt": format_time(oldest) if oldest else None,
        "oldestPoisonAt": _time(queue.oldest_inserted_at(poison=True)),
    }


def _time(value: datetime | None) -> str | None:
    return format_time(value) if value else None


def operations_from_settings(settings: Settings, *, live_queues: bool = False) -> Operations:
    """Operations on the configured storage; `live_queues` (the command line) reads the job
    queues themselves rather than the collector's last look at them."""
    return Operations(
        RunStore.from_settings(settings),
        RunDigestStore.from_settings(settings),
        EvidenceStore.from_settings(settings),
        SnapshotQueue.from_settings(settings) if live_queues else None,
    )
