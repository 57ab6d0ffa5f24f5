"""Snapshot use cases: plan a run, snapshot one tenant, work the queue.

The timer plans a run for its slot (discover tenants → run manifest → one job per tenant); the
queue trigger snapshots one tenant (collect → commit). The command line runs the same code
inline or through the queue. Every run and tenant logs one structured event (JSON after the
event name; the fields also ride on the log record as ``auditor``).

Failure rules (invariant 3: one tenant's failure never touches another's snapshot):

- a job whose slot is already committed is a duplicate: nothing changes;
- collection or storage failing raises, so the queue retries the job; on its last dequeue
  (host.json ``maxDequeueCount``) the slot is first committed as *failed* with the reason, then
  the error is raised again so that the host keeps the message in the poison queue;
- a collection that returns with no subscription read (status failed) is retried the same way;
  an incomplete one is committed as it is, with its reasons.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from auditor.adapters.blobs import AnchorConflict, EvidenceStore
from auditor.adapters.queues import SnapshotQueue, max_dequeue_count
from auditor.adapters.tables import SnapshotStore, SnapshotSuperseded
from auditor.adapters.tables.runs import RunStore
from auditor.core.model import CollectionStatus, Tenant, TenantPosture
from auditor.core.runs import RunManifest, SnapshotJob, decode_job
from auditor.core.schedule import latest_occurrence
from auditor.core.snapshot import SnapshotIndexEntry, SnapshotNotFound, snapshot_id_for
from auditor.settings import Settings, load_settings

log = logging.getLogger("auditor.snapshot")


class PostureSource(Protocol):
    """Where postures come from: the collector (auditor.services.collect.Collector)."""

    version: str

    def discover(self) -> list[Tenant]: ...

    def collect(self, tenant: Tenant) -> TenantPosture: ...

    def close(self) -> None: ...


class TenantNotDelegated(LookupError):
    """A tenant asked for by id is not among the delegated tenants."""


class CollectionFailed(RuntimeError):
    """The collection read no subscription at all: worth retrying before recording a failure."""


def make_source(settings: Settings) -> PostureSource:
    """The collector (one per process: it paces Resource Graph quota for all tenants)."""
    from auditor.services.collect import Collector

    return Collector(settings)


def event(name: str, **fields: Any) -> None:
    """One structured log line: the event name, then its fields as JSON."""
    log.info(
        "%s %s", name, json.dumps(fields, sort_keys=True, default=str), extra={"auditor": fields}
    )


@dataclass(frozen=True, slots=True)
class TenantOutcome:
    """What happened to one tenant's slot."""

    tenant_id: str
    snapshot_id: str
    # complete | incomplete | failed (committed), duplicate (already committed),
    # superseded (a later slot exists), retry (raised for the queue to retry)
    outcome: str
    entry: SnapshotIndexEntry | None = None
    reason: str = ""
    duration_seconds: float = 0.0

    @property
    def committed(self) -> bool:
        return self.entry is not None


@dataclass
class SnapshotService:
    store: SnapshotStore
    runs: RunStore
    source: PostureSource
    queue: SnapshotQueue | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # Called with every committed entry (and again for a duplicate job, which repairs a crash
    # between commit and anchor): writes its hashes to the write-once evidence container.
    anchor: Callable[[SnapshotIndexEntry], object] | None = None

    # -----------------------------------------------------------------------------------------
    # Planning

    def plan_run(
        self,
        scheduled_at: datetime,
        *,
        enqueue: bool,
        tenant_ids: Collection[str] | None = None,
        past_due: bool = False,
        force: bool = False,
    ) -> RunManifest:
        """Discover tenants, record the run's manifest and (with `enqueue`) send one job each.

        Planning a slot again re-sends its jobs only if they were not all sent, or when `force`
        (a duplicate job is harmless: it finds its slot committed). TenantNotDelegated when
        `tenant_ids` names a tenant that is not delegated.
        """
        started = time.monotonic()
        snapshot_id = snapshot_id_for(scheduled_at)
        existing = self.runs.get_manifest(snapshot_id)
        if enqueue and not force and tenant_ids is None and existing and existing.enqueued:
            event("snapshot.run.duplicate", slot=snapshot_id, tenants=len(existing.tenants))
            return existing
        tenants = self.source.discover()
        if tenant_ids is not None:
            wanted = {t.lower() for t in tenant_ids}
            tenants = [t for t in tenants if t.tenant_id.lower() in wanted]
            unknown = wanted - {t.tenant_id.lower() for t in tenants}
            if unknown:
                raise TenantNotDelegated(f"not delegated: {', '.join(sorted(unknown))}")
        planned = {t.tenant_id: t for t in existing.tenants} if existing and tenant_ids else {}
        planned.update((t.tenant_id, t) for t in tenants)
        manifest = RunManifest(
            snapshot_id=snapshot_id,
            planned_at=self.clock(),
            tenants=tuple(planned[k] for k in sorted(planned)),
            collector_version=self.source.version,
        )
        self.runs.upsert_manifest(manifest)
        if enqueue:
            queue = self._queue()
            queue.create_queues()
            for tenant in tenants:
                queue.send_job(SnapshotJob(tenant.tenant_id, snapshot_id))
            if tenant_ids is None:
                self.runs.mark_enqueued(snapshot_id)
        event(
            "snapshot.run.planned",
            slot=snapshot_id,
            tenants=len(tenants),
            subscriptions=sum(len(t.subscriptions) for t in tenants),
            enqueued=len(tenants) if enqueue else 0,
            past_due=past_due,
            duration_seconds=round(time.monotonic() - started, 3),
        )
        return manifest

    # -----------------------------------------------------------------------------------------
    # One tenant

    def snapshot_tenant(self, tenant: Tenant, scheduled_at: datetime) -> TenantOutcome:
        """Inline: collect and commit; any failure is committed as a failed snapshot at once."""
        started = time.monotonic()
        snapshot_id = snapshot_id_for(scheduled_at)
        duplicate = self._duplicate(tenant.tenant_id, snapshot_id, started)
        if duplicate is not None:
            return duplicate
        try:
            posture = self.source.collect(tenant)
            entry = self.store.commit_snapshot(posture, scheduled_at, self.source.version)
        except SnapshotSuperseded as exc:
            return self._superseded(tenant.tenant_id, snapshot_id, exc, started)
        except Exception as exc:
            reason = describe(exc)
            try:
                entry = self.store.commit_failed(tenant, scheduled_at, reason, self.source.version)
            except SnapshotSuperseded as late:
                return self._superseded(tenant.tenant_id, snapshot_id, late, started)
            return self._committed(entry, started, reason=reason)
        return self._committed(entry, started, posture=posture)

    def process_job(self, text: str, dequeue_count: int, max_dequeues: int) -> TenantOutcome:
        """Queue path: snapshot the job's tenant; raise (to be retried) when it fails.

        On the last dequeue a failure is first committed as the slot's failed snapshot.
        """
        started = time.monotonic()
        job = decode_job(text)  # a malformed message raises: it ends in the poison queue
        final = dequeue_count >= max_dequeues
        duplicate = self._duplicate(job.tenant_id, job.snapshot_id, started)
        if duplicate is not None:
            return duplicate
        tenant = self.runs.get_tenant(job.snapshot_id, job.tenant_id) or Tenant(
            job.tenant_id, job.tenant_id, ()
        )
        try:
            posture = self.source.collect(tenant)
            if posture.completeness.status is CollectionStatus.FAILED and not final:
                raise CollectionFailed("; ".join(posture.completeness.reasons) or "nothing read")
            entry = self.store.commit_snapshot(posture, job.scheduled_at, self.source.version)
        except SnapshotSuperseded as exc:
            return self._superseded(job.tenant_id, job.snapshot_id, exc, started)
        except Exception as exc:
            reason = f"{describe(exc)} (attempt {dequeue_count} of {max_dequeues})"
            if not final:
                event(
                    "snapshot.tenant.retry",
                    tenant=job.tenant_id,
                    slot=job.snapshot_id,
                    reason=reason,
                    dequeue_count=dequeue_count,
                    duration_seconds=round(time.monotonic() - started, 3),
                )
                raise
            try:
                entry = self.store.commit_failed(
                    tenant, job.scheduled_at, reason, self.source.version
                )
                self._committed(entry, started, reason=reason, dequeue_count=dequeue_count)
            except SnapshotSuperseded:
                pass
            raise
        outcome = self._committed(entry, started, posture=posture, dequeue_count=dequeue_count)
        if entry.status is CollectionStatus.FAILED:
            raise CollectionFailed(f"collection failed: {'; '.join(entry.reasons)}")
        return outcome

    # -----------------------------------------------------------------------------------------
    # Runs

    def run_inline(
        self, scheduled_at: datetime, tenant_ids: Collection[str] | None = None
    ) -> list[TenantOutcome]:
        """Plan the run (manifest only) and snapshot its tenants one after another."""
        started = time.monotonic()
        manifest = self.plan_run(scheduled_at, enqueue=False, tenant_ids=tenant_ids)
        wanted = None if tenant_ids is None else {t.lower() for t in tenant_ids}
        outcomes = []
        for tenant in manifest.tenants:
            if wanted is not None and tenant.tenant_id.lower() not in wanted:
                continue
            try:
                outcomes.append(self.snapshot_tenant(tenant, scheduled_at))
            except Exception as exc:  # storage down: record it, go on with the others
                outcomes.append(
                    TenantOutcome(
                        tenant.tenant_id, manifest.snapshot_id, "retry", None, describe(exc)
                    )
                )
        self._run_finished(manifest.snapshot_id, outcomes, started)
        return outcomes

    def drain(
        self,
        max_dequeues: int,
        *,
        retry_delay_seconds: int = 1,
        visibility_timeout: int = 300,
        deadline_seconds: float = 3600.0,
        wait: Callable[[float], None] = time.sleep,
    ) -> list[TenantOutcome]:
        """Work the queue until it is empty, as the Functions host would (for --via-queue)."""
        started = time.monotonic()
        queue = self._queue()
        outcomes: list[TenantOutcome] = []
        while time.monotonic() - started < deadline_seconds:
            jobs = queue.receive_jobs(max_messages=16, visibility_timeout=visibility_timeout)
            if not jobs:
                if queue.approximate_count() == 0:
                    break
                wait(retry_delay_seconds)  # messages are hidden, awaiting their retry
                continue
            for job in jobs:
                try:
                    outcomes.append(self.process_job(job.text, job.dequeue_count, max_dequeues))
                    queue.delete(job)
                except Exception as exc:
                    if job.dequeue_count >= max_dequeues:
                        queue.move_to_poison(job)
                        outcomes.append(_failed_outcome(job.text, describe(exc)))
                    else:
                        queue.release(job, retry_delay_seconds * job.dequeue_count)
        return outcomes

    # -----------------------------------------------------------------------------------------

    def _queue(self) -> SnapshotQueue:
        if self.queue is None:
            raise RuntimeError("this service has no queue")
        return self.queue

    def _duplicate(self, tenant_id: str, snapshot_id: str, started: float) -> TenantOutcome | None:
        try:
            entry = self.store.get_index(tenant_id, snapshot_id)
        except SnapshotNotFound:
            return None
        event("snapshot.tenant.duplicate", tenant=tenant_id, slot=snapshot_id, status=entry.status)
        self._anchor(entry)
        return TenantOutcome(
            tenant_id, snapshot_id, "duplicate", entry, "", round(time.monotonic() - started, 3)
        )

    def _superseded(
        self, tenant_id: str, snapshot_id: str, exc: Exception, started: float
    ) -> TenantOutcome:
        event("snapshot.tenant.superseded", tenant=tenant_id, slot=snapshot_id, reason=str(exc))
        return TenantOutcome(
            tenant_id, snapshot_id, "superseded", None, str(exc), time.monotonic() - started
        )

    def _anchor(self, entry: SnapshotIndexEntry) -> None:
        """Anchor a committed snapshot (idempotent). A storage error raises, so the job is retried
        and the duplicate path anchors it; an anchor with other hashes is logged, not fixed."""
        if self.anchor is None:
            return
        try:
            self.anchor(entry)
        except AnchorConflict as exc:
            log.error("snapshot %s/%s: %s", entry.tenant_id, entry.snapshot_id, exc)
            event("snapshot.anchor.conflict", tenant=entry.tenant_id, slot=entry.snapshot_id)

    def _committed(
        self,
        entry: SnapshotIndexEntry,
        started: float,
        *,
        posture: TenantPosture | None = None,
        reason: str = "",
        dequeue_count: int | None = None,
    ) -> TenantOutcome:
        self._anchor(entry)
        duration = round(time.monotonic() - started, 3)
        completeness = posture.completeness if posture is not None else None
        event(
            "snapshot.tenant",
            tenant=entry.tenant_id,
            slot=entry.snapshot_id,
            status=entry.status,
            reasons=list(entry.reasons),
            subscriptions_expected=len(entry.expected_subscriptions),
            subscriptions_collected=len(entry.collected_subscriptions),
            counts=entry.counts,
            content_hash=entry.content_hash,
            duration_seconds=duration,
            collect_seconds=completeness.duration_seconds if completeness else None,
            queries=completeness.queries if completeness else None,
            throttles=completeness.throttles if completeness else None,
            retries=completeness.retries if completeness else None,
            dequeue_count=dequeue_count,
        )
        return TenantOutcome(
            entry.tenant_id,
            entry.snapshot_id,
            entry.status.value,
            entry,
            reason or "; ".join(entry.reasons),
            duration,
        )

    def _run_finished(self, slot: str, outcomes: list[TenantOutcome], started: float) -> None:
        by_outcome: dict[str, int] = {}
        for outcome in outcomes:
            by_outcome[outcome.outcome] = by_outcome.get(outcome.outcome, 0) + 1
        event(
            "snapshot.run.finished",
            slot=slot,
            tenants=len(outcomes),
            outcomes=by_outcome,
            duration_seconds=round(time.monotonic() - started, 3),
        )


def _failed_outcome(text: str, reason: str) -> TenantOutcome:
    try:
        job = decode_job(text)
    except ValueError:
        return TenantOutcome("", "", "failed", None, reason)
    return TenantOutcome(job.tenant_id, job.snapshot_id, "failed", None, reason)


def describe(exc: BaseException) -> str:
    """One line naming an error: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


# ---------------------------------------------------------------------------------------------
# Wiring (function_app.py and the command line)


@contextmanager
def open_service(
    settings: Settings, *, with_queue: bool = True, source: PostureSource | None = None
) -> Iterator[SnapshotService]:
    """A service on the configured storage and collector, closed afterwards."""
    store = SnapshotStore.from_settings(settings)
    evidence = EvidenceStore.from_settings(settings)
    runs = RunStore.from_settings(settings)
    queue = SnapshotQueue.from_settings(settings) if with_queue else None
    own_source = source is None
    source = source or make_source(settings)
    try:
        yield SnapshotService(store, runs, source, queue, anchor=evidence.anchor)
    finally:
        if own_source:
            source.close()
        if queue is not None:
            queue.close()
        runs.close()
        evidence.close()
        store.close()


@functools.lru_cache(maxsize=4)
def _process_service(settings: Settings) -> SnapshotService:
    # One per process and configuration, reused across invocations: the collector paces
    # Resource Graph quota per process, and clients keep their connections.
    return SnapshotService(
        SnapshotStore.from_settings(settings),
        RunStore.from_settings(settings),
        make_source(settings),
        SnapshotQueue.from_settings(settings),
        anchor=EvidenceStore.from_settings(settings).anchor,
    )


def on_timer(past_due: bool = False, now: datetime | None = None) -> RunManifest:
    """Timer trigger: plan the run of the latest scheduled slot at or before now."""
    settings = load_settings()
    slot = latest_occurrence(settings.snapshot_schedule, now or datetime.now(UTC))
    return _process_service(settings).plan_run(slot, enqueue=True, past_due=past_due)


def on_queue_message(text: str, dequeue_count: int) -> TenantOutcome:
    """Queue trigger: snapshot one tenant; raises for the host to retry or poison."""
    settings = load_settings()
    return _process_service(settings).process_job(text, dequeue_count, max_dequeue_count())
