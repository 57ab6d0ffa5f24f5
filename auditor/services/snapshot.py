"""Snapshot use cases: plan a run, snapshot one tenant, work the queue.

The timer plans a run for its slot (discover tenants → run manifest → one job per tenant); the
queue trigger snapshots one tenant (collect → commit). The command line runs the same code
inline or through the queue. Every run and tenant logs one structured event (JSON after the
event name; the fields also ride on the log record as ``auditor``).

Failure rules (invariant 3: one tenant's failure never touches another's snapshot):

- a job is validated before any work: a malformed message, a tenant id that is not a GUID, a
  slot no run planned or a tenant outside that run's manifest goes to the poison queue wrapped
  with its reason (and is recorded in the runs table); nothing is collected or committed;
- a job whose slot is already committed is a duplicate: nothing changes, unless the slot
  failed and this attempt collects something, which retakes it (both attempts stay anchored);
- a committed slot that fails verification against its anchor (a forgery, an edited row) is
  reported as ``tampered`` with an error event, and never anchored or built upon;
- collection or storage failing raises, so the queue retries the job; on its last dequeue
  (host.json ``maxDequeueCount``) the slot is first committed as *failed* with the reason, then
  the error is raised again so that the host keeps the message in the poison queue;
- a collection that returns with no subscription read (status failed) is retried the same way;
  an incomplete one is committed as it is, with its reasons;
- an attempt that finds another attempt writing the slot (``SlotBusy``) records nothing: the
  other one's outcome stands (``contended``);
- a worker that dies on the last dequeue leaves the slot to ``sweep_run``, which records it as
  failed once its job is in the poison queue or the run's deadline (``run_deadline``) passed.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from auditor.adapters.queues import (
    HostQueueOptions,
    SnapshotQueue,
    max_dequeue_count,
    run_deadline,
)
from auditor.adapters.tables import SlotBusy, SnapshotStore, SnapshotSuperseded
from auditor.adapters.tables.rows import is_committed
from auditor.adapters.tables.runs import RunStore
from auditor.core.canonical import format_time
from auditor.core.model import CollectionStatus, Tenant, TenantPosture
from auditor.core.runs import JobFormatError, RunManifest, SnapshotJob, decode_job, poisoned_job
from auditor.core.schedule import check_slot, latest_occurrence, next_occurrence
from auditor.core.snapshot import (
    SnapshotIndexEntry,
    SnapshotNotFound,
    SnapshotTampered,
    is_tenant_id,
    snapshot_id_for,
)
from auditor.settings import SETTINGS, Settings, load_settings

if TYPE_CHECKING:
    from auditor.services.runclose import RunCloser

log = logging.getLogger("auditor.snapshot")

DEFAULT_SCHEDULE = next(str(s.default) for s in SETTINGS if s.name == "AUDITOR_SNAPSHOT_SCHEDULE")
# Runs whose stragglers the timer sweeps on each tick (a week of daily runs).
SWEPT_RUNS = 7


class PostureSource(Protocol):
    """Where postures come from: the collector (auditor.services.collect.Collector)."""

    version: str

    def discover(self) -> list[Tenant]: ...

    def collect(self, tenant: Tenant, until: float | None = None) -> TenantPosture:
        """`until`: the run's deadline (epoch seconds): what is still waiting for the control
        plane then is not read, and the posture says so (never raised for a retry)."""
        ...

    def close(self) -> None: ...


class TenantNotDelegated(LookupError):
    """A tenant asked for by id is not among the delegated tenants."""


class CollectionFailed(RuntimeError):
    """The collection read no subscription at all: worth retrying before recording a failure."""


class RunNotPlanned(RuntimeError):
    """Discovery failed: the run is recorded as failed with the reason, and nothing else is
    done (the timer's retry policy and its next tick try again)."""


def make_source(settings: Settings) -> PostureSource:
    """The collector (one per process: it paces Resource Graph quota for all tenants)."""
    from auditor.services.collect import Collector

    return Collector(settings)


def event(name: str, **fields: Any) -> None:
    """One structured log line: the event name, then its fields as JSON."""
    log.info(
        "%s %s", name, json.dumps(fields, sort_keys=True, default=str), extra={"auditor": fields}
    )


def alarm(name: str, **fields: Any) -> None:
    """An event an operator must act on (logged as an error)."""
    log.error(
        "%s %s", name, json.dumps(fields, sort_keys=True, default=str), extra={"auditor": fields}
    )


@dataclass(frozen=True, slots=True)
class TenantOutcome:
    """What happened to one tenant's slot."""

    tenant_id: str
    snapshot_id: str
    # complete | incomplete | failed (committed), duplicate (already committed),
    # superseded (a later slot exists), retry (raised for the queue to retry), contended
    # (another attempt is writing the slot: nothing recorded), tampered (the committed slot
    # fails verification), rejected (a job refused before any work), left-delegation (in the
    # previous run's manifest, not discovered now)
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
    schedule: str = DEFAULT_SCHEDULE
    deadline: timedelta = field(default_factory=run_deadline)
    # Closes a run once its last tenant is committed (auditor/services/runclose.py).
    closer: RunCloser | None = None

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
        `tenant_ids` names a tenant that is not delegated; RunNotPlanned (recorded) when
        discovery fails. A full run records the tenants of the previous full run it no longer
        finds: they left the delegation.
        """
        started = time.monotonic()
        snapshot_id = snapshot_id_for(scheduled_at)
        existing = self.runs.get_manifest(snapshot_id)
        if enqueue and not force and tenant_ids is None and existing and existing.enqueued:
            event("snapshot.run.duplicate", slot=snapshot_id, tenants=len(existing.tenants))
            return existing
        tenants = self._discover(snapshot_id)
        if tenant_ids is not None:
            wanted = {t.lower() for t in tenant_ids}
            tenants = [t for t in tenants if t.tenant_id.lower() in wanted]
            unknown = wanted - {t.tenant_id.lower() for t in tenants}
            if unknown:
                raise TenantNotDelegated(f"not delegated: {', '.join(sorted(unknown))}")
        planned = {t.tenant_id: t for t in existing.tenants} if existing and tenant_ids else {}
        planned.update((t.tenant_id, t) for t in tenants)
        full = tenant_ids is None or bool(existing and existing.full)
        left: tuple[str, ...] = existing.left if existing else ()
        if tenant_ids is None:
            previous = self.runs.previous_full_run(snapshot_id)
            if previous is not None:
                left = tuple(sorted(set(previous.tenant_ids) - set(planned)))
        manifest = RunManifest(
            snapshot_id=snapshot_id,
            planned_at=self.clock(),
            tenants=tuple(planned[k] for k in sorted(planned)),
            collector_version=self.source.version,
            enqueued=bool(existing and existing.enqueued),
            full=full,
            left=left,
        )
        self.runs.upsert_manifest(manifest)
        for tenant_id in left:
            alarm("snapshot.tenant.left", tenant=tenant_id, slot=snapshot_id)
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
            left=list(left),
            past_due=past_due,
            duration_seconds=round(time.monotonic() - started, 3),
        )
        return manifest

    def _discover(self, snapshot_id: str) -> list[Tenant]:
        try:
            return self.source.discover()
        except Exception as exc:  # any discovery failure: the run is recorded as failed
            reason = f"discovery failed: {describe(exc)}"
            self.runs.record_failed_run(snapshot_id, self.clock(), reason)
            alarm("snapshot.run.failed", slot=snapshot_id, reason=reason)
            raise RunNotPlanned(f"run {snapshot_id} failed: {reason}") from exc

    def check_slot(self, scheduled_at: datetime) -> datetime:
        """SlotError unless `scheduled_at` is a slot of the schedule, not after the current one."""
        return check_slot(self.schedule, scheduled_at, self.clock())

    def _backfill(self, scheduled_at: datetime) -> bool:
        """Collected once the slot's successor has begun: a backfill, flagged as such."""
        return self.clock() >= next_occurrence(self.schedule, scheduled_at)

    # -----------------------------------------------------------------------------------------
    # One tenant

    def snapshot_tenant(self, tenant: Tenant, scheduled_at: datetime) -> TenantOutcome:
        """Inline: collect and commit; any failure is committed as a failed snapshot at once
        (unless another attempt is writing the slot: then its outcome stands)."""
        started = time.monotonic()
        snapshot_id = snapshot_id_for(scheduled_at)
        duplicate = self._duplicate(tenant.tenant_id, snapshot_id, started)
        if duplicate is not None:
            return duplicate
        backfill = self._backfill(scheduled_at)
        version = self.source.version
        try:
            posture = self.source.collect(tenant)
            entry = self.store.commit_snapshot(posture, scheduled_at, version, backfill=backfill)
        except (SnapshotSuperseded, SlotBusy, SnapshotTampered) as exc:
            return self._not_recorded(tenant.tenant_id, snapshot_id, exc, started)
        except Exception as exc:
            reason = describe(exc)
            try:
                entry = self.store.commit_failed(
                    tenant, scheduled_at, reason, version, backfill=backfill
                )
            except (SnapshotSuperseded, SlotBusy, SnapshotTampered) as late:
                return self._not_recorded(tenant.tenant_id, snapshot_id, late, started)
            return self._committed(entry, started, reason=reason)
        return self._committed(entry, started, posture=posture)

    def process_job(self, text: str, dequeue_count: int, max_dequeues: int) -> TenantOutcome:
        """Queue path: snapshot the job's tenant; raise (to be retried) when it fails.

        A job that is not one this deployment planned is rejected before any work (poison
        queue, with the reason). On the last dequeue a failure is first committed as the
        slot's failed snapshot.
        """
        started = time.monotonic()
        try:
            job = decode_job(text)
        except JobFormatError as exc:
            return self._reject(text, str(exc), None)
        problem = self._job_problem(job)
        if problem:
            return self._reject(text, problem, job)
        tenant = self.runs.get_tenant(job.snapshot_id, job.tenant_id)
        if tenant is None:  # pragma: no cover - _job_problem checked it
            return self._reject(text, "tenant not in the run's manifest", job)
        final = dequeue_count >= max_dequeues
        duplicate = self._duplicate(job.tenant_id, job.snapshot_id, started)
        if duplicate is not None:
            self._close_if_last(duplicate)
            return duplicate
        backfill = self._backfill(job.scheduled_at)
        version = self.source.version
        # The collection waits for nothing past the run's deadline (a retry dequeued after it
        # reads nothing), and what it read by then is committed as it is.
        until = self._run_deadline(job.snapshot_id)
        try:
            posture = self.source.collect(tenant, until=self._wall_time(until))
            # At the run's deadline what was read is committed as it is: no retry after it.
            final = final or (until is not None and self.clock() >= until)
            if posture.completeness.status is CollectionStatus.FAILED and not final:
                raise CollectionFailed("; ".join(posture.completeness.reasons) or "nothing read")
            entry = self.store.commit_snapshot(
                posture, job.scheduled_at, version, backfill=backfill
            )
        except (SnapshotSuperseded, SnapshotTampered) as exc:
            return self._not_recorded(job.tenant_id, job.snapshot_id, exc, started)
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
                    tenant, job.scheduled_at, reason, version, backfill=backfill
                )
                self._close_if_last(
                    self._committed(entry, started, reason=reason, dequeue_count=dequeue_count)
                )
            except (SnapshotSuperseded, SlotBusy, SnapshotTampered) as late:
                self._not_recorded(job.tenant_id, job.snapshot_id, late, started)
            raise
        outcome = self._committed(entry, started, posture=posture, dequeue_count=dequeue_count)
        self._close_if_last(outcome)
        if entry.status is CollectionStatus.FAILED and not (until and self.clock() >= until):
            raise CollectionFailed(f"collection failed: {'; '.join(entry.reasons)}")
        return outcome

    def _wall_time(self, at: datetime | None) -> float | None:
        """`at` on this service's clock as epoch seconds of the wall clock (the collector's)."""
        return None if at is None else time.time() + (at - self.clock()).total_seconds()

    def _run_deadline(self, snapshot_id: str) -> datetime | None:
        planned_at = self.runs.planned_at(snapshot_id)
        return None if planned_at is None else planned_at + self.deadline

    def _job_problem(self, job: SnapshotJob) -> str | None:
        """Why a well-formed job is not one of this deployment's (None when it is)."""
        if not is_tenant_id(job.tenant_id) or job.tenant_id != job.tenant_id.lower():
            return f"tenant id {job.tenant_id!r} is not a tenant id (lower-case GUID)"
        if not self.runs.has_run(job.snapshot_id):
            return f"no run was planned for slot {job.snapshot_id}"
        if self.runs.get_tenant(job.snapshot_id, job.tenant_id) is None:
            return f"tenant {job.tenant_id} is not in the manifest of run {job.snapshot_id}"
        return None

    def _reject(self, text: str, reason: str, job: SnapshotJob | None) -> TenantOutcome:
        now = self.clock()
        self.runs.record_rejected(text, reason, now)
        if self.queue is not None:
            self.queue.reject(text, reason, format_time(now))
        alarm(
            "snapshot.job.rejected",
            tenant=job.tenant_id if job else None,
            slot=job.snapshot_id if job else None,
            reason=reason,
        )
        return TenantOutcome(
            job.tenant_id if job else "", job.snapshot_id if job else "", "rejected", None, reason
        )

    # -----------------------------------------------------------------------------------------
    # Runs

    def run_inline(
        self,
        scheduled_at: datetime,
        tenant_ids: Collection[str] | None = None,
        progress: Callable[[int, int, Tenant], None] | None = None,
    ) -> list[TenantOutcome]:
        """Plan the run (manifest only) and snapshot its tenants one after another;
        `progress(number, total, tenant)` is told before each (the command line's terminal)."""
        started = time.monotonic()
        manifest = self.plan_run(scheduled_at, enqueue=False, tenant_ids=tenant_ids)
        wanted = None if tenant_ids is None else {t.lower() for t in tenant_ids}
        tenants = [t for t in manifest.tenants if wanted is None or t.tenant_id.lower() in wanted]
        outcomes = []
        for number, tenant in enumerate(tenants, start=1):
            if progress is not None:
                progress(number, len(tenants), tenant)
            try:
                outcomes.append(self.snapshot_tenant(tenant, scheduled_at))
            except Exception as exc:  # storage down: record it, go on with the others
                outcomes.append(
                    TenantOutcome(
                        tenant.tenant_id, manifest.snapshot_id, "retry", None, describe(exc)
                    )
                )
        if tenant_ids is None:
            outcomes.extend(self.left_outcomes(manifest))
        self._run_finished(manifest.snapshot_id, outcomes, started)
        self._close(manifest.snapshot_id, "inline")
        return outcomes

    def _close_if_last(self, outcome: TenantOutcome) -> None:
        """After a tenant's slot is committed: the run closes if it was the last one."""
        if self.closer is None or outcome.entry is None:
            return
        try:
            self.closer.tenant_done(
                outcome.snapshot_id, outcome.tenant_id, outcome.entry.status.value
            )
        except Exception as exc:  # the snapshot stands; the timer's sweep closes the run
            alarm("snapshot.run.close_failed", slot=outcome.snapshot_id, reason=describe(exc))

    def _close(self, slot: str, closed_by: str) -> None:
        """Close the run if it is done (and retry its pending deliveries); never raises."""
        if self.closer is None:
            return
        try:
            if self.closer.try_close(slot, closed_by=closed_by) is None:
                self.closer.deliver_pending(slot)
        except Exception as exc:  # the sweep of the next tick tries again
            alarm("snapshot.run.close_failed", slot=slot, reason=describe(exc))

    def left_outcomes(self, manifest: RunManifest) -> list[TenantOutcome]:
        """One `left-delegation` outcome per tenant the run no longer found, with its latest
        snapshot (how old the evidence of it is)."""
        out = []
        for tenant_id in manifest.left:
            try:
                latest = self.store.find_at(tenant_id, manifest.scheduled_at)
            except (SnapshotNotFound, SnapshotTampered):
                latest = None
            reason = "in the previous run's manifest, not delegated any more"
            if latest is not None:
                reason += f"; latest snapshot {latest.snapshot_id}"
            out.append(
                TenantOutcome(tenant_id, manifest.snapshot_id, "left-delegation", None, reason)
            )
        return out

    def drain(
        self,
        max_dequeues: int,
        *,
        retry_delay_seconds: int = 1,
        visibility_timeout: int = 300,
        deadline_seconds: float = 3600.0,
    ) -> list[TenantOutcome]:
        """Work the queue until it is empty, as the Functions host would (for --via-queue):
        the worker's loop (auditor/services/worker.py), then sweep the runs it saw."""
        from auditor.services.worker import Lane, Worker

        outcomes: list[TenantOutcome] = []
        slots: set[str] = set()

        def seen(text: str) -> None:
            parsed = poisoned_job(text)
            if parsed is not None:
                slots.add(parsed.snapshot_id)

        def handle(text: str, dequeue_count: int) -> TenantOutcome:
            try:
                outcome = self.process_job(text, dequeue_count, max_dequeues)
            except Exception as exc:
                if dequeue_count >= max_dequeues:  # the worker poisons it: say so
                    outcomes.append(_failed_outcome(text, describe(exc)))
                raise
            outcomes.append(outcome)
            return outcome

        options = HostQueueOptions(max_dequeues, retry_delay_seconds, visibility_timeout)
        lane = Lane("snapshots", self._queue(), handle)
        Worker([lane], options, deadline_seconds=deadline_seconds, on_receive=seen).run()
        for slot in sorted(slots):
            outcomes.extend(self.sweep_run(slot))
        return outcomes

    def sweep_run(self, snapshot_id: str) -> list[TenantOutcome]:
        """Record as failed every tenant of a run that has no committed snapshot and never
        will: its job is in the poison queue (the host gave up on it, e.g. after its worker
        was killed on the last dequeue), or the run's deadline (planned at + `deadline`) has
        passed. A slot another attempt is still writing is left to it. Reusable by anything
        that closes a run (run completion, digests)."""
        manifest = self.runs.get_manifest(snapshot_id)
        if manifest is None:
            return []
        poisoned = self._poisoned(snapshot_id)
        overdue = self.clock() >= manifest.planned_at + self.deadline
        outcomes = []
        for tenant in manifest.tenants:
            row = self.store.slot_row(tenant.tenant_id, snapshot_id)
            if row is not None and is_committed(row):
                continue
            if tenant.tenant_id in poisoned:
                reason = (
                    "the host gave up on this tenant's job (it is in the poison queue) and no "
                    "snapshot was committed: the worker was lost"
                )
            elif overdue:
                reason = (
                    f"no snapshot committed by the run's deadline "
                    f"{format_time(manifest.planned_at + self.deadline)}"
                )
            else:
                continue
            started = time.monotonic()
            try:
                entry = self.store.commit_failed(
                    tenant, manifest.scheduled_at, reason, self.source.version,
                    backfill=self._backfill(manifest.scheduled_at),
                )  # fmt: skip
            except (SnapshotSuperseded, SlotBusy, SnapshotTampered) as exc:
                outcomes.append(self._not_recorded(tenant.tenant_id, snapshot_id, exc, started))
                continue
            alarm("snapshot.tenant.swept", tenant=tenant.tenant_id, slot=snapshot_id, reason=reason)
            outcomes.append(self._committed(entry, started, reason=reason))
        self._close(snapshot_id, "sweep")
        return outcomes

    def sweep_recent(self) -> list[TenantOutcome]:
        """Sweep the latest full runs (the timer does on every tick)."""
        outcomes = []
        for slot in self.runs.recent_runs(SWEPT_RUNS):
            outcomes.extend(self.sweep_run(slot))
        return outcomes

    def _poisoned(self, snapshot_id: str) -> set[str]:
        if self.queue is None:
            return set()
        out = set()
        for text in self.queue.peek_texts(poison=True):
            job = poisoned_job(text)
            if job is not None and job.snapshot_id == snapshot_id:
                out.add(job.tenant_id)
        return out

    # -----------------------------------------------------------------------------------------

    def _queue(self) -> SnapshotQueue:
        if self.queue is None:
            raise RuntimeError("this service has no queue")
        return self.queue

    def _duplicate(self, tenant_id: str, snapshot_id: str, started: float) -> TenantOutcome | None:
        """The outcome when the slot is already done (committed, not failed), else None."""
        try:
            entry = self.store.get_index(tenant_id, snapshot_id)
        except SnapshotNotFound:
            return None
        except SnapshotTampered as exc:
            return self._not_recorded(tenant_id, snapshot_id, exc, started)
        if entry.status is CollectionStatus.FAILED:
            return None  # a failed slot may be retaken
        event("snapshot.tenant.duplicate", tenant=tenant_id, slot=snapshot_id, status=entry.status)
        return TenantOutcome(
            tenant_id, snapshot_id, "duplicate", entry, "", round(time.monotonic() - started, 3)
        )

    def _not_recorded(
        self, tenant_id: str, snapshot_id: str, exc: Exception, started: float
    ) -> TenantOutcome:
        """Superseded, contended or tampered: this attempt records nothing, and says why."""
        if isinstance(exc, SnapshotTampered):
            outcome = "tampered"
            alarm("snapshot.tenant.tampered", tenant=tenant_id, slot=snapshot_id, reason=str(exc))
        elif isinstance(exc, SlotBusy):
            outcome = "contended"
            event("snapshot.tenant.contended", tenant=tenant_id, slot=snapshot_id, reason=str(exc))
        else:
            outcome = "superseded"
            event("snapshot.tenant.superseded", tenant=tenant_id, slot=snapshot_id, reason=str(exc))
        return TenantOutcome(
            tenant_id, snapshot_id, outcome, None, str(exc), time.monotonic() - started
        )

    def _committed(
        self,
        entry: SnapshotIndexEntry,
        started: float,
        *,
        posture: TenantPosture | None = None,
        reason: str = "",
        dequeue_count: int | None = None,
    ) -> TenantOutcome:
        duration = round(time.monotonic() - started, 3)
        if not self.store.wrote(entry):
            # Another attempt committed the slot first: its snapshot stands, this one is moot.
            event(
                "snapshot.tenant.duplicate",
                tenant=entry.tenant_id,
                slot=entry.snapshot_id,
                status=entry.status,
            )
            return TenantOutcome(
                entry.tenant_id, entry.snapshot_id, "duplicate", entry, reason, duration
            )
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
            attempt=entry.attempt,
            backfill=entry.backfill,
            supersedes=entry.supersedes or None,
            history_break=entry.history_break or None,
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
    """A service on the configured storage (anchoring every commit in the evidence container)
    and collector, closed afterwards."""
    store = SnapshotStore.from_settings(settings)
    runs = RunStore.from_settings(settings)
    queue = SnapshotQueue.from_settings(settings) if with_queue else None
    own_source = source is None
    source = source or make_source(settings)
    closer = make_closer(settings, store, runs, queue)
    try:
        yield SnapshotService(
            store, runs, source, queue, schedule=settings.snapshot_schedule, closer=closer
        )
    finally:
        closer.close()
        if own_source:
            source.close()
        if queue is not None:
            queue.close()
        runs.close()
        store.close()


@functools.lru_cache(maxsize=4)
def _process_service(settings: Settings) -> SnapshotService:
    # One per process and configuration, reused across invocations: the collector paces
    # Resource Graph quota per process, and clients keep their connections.
    store = SnapshotStore.from_settings(settings)
    runs = RunStore.from_settings(settings)
    queue = SnapshotQueue.from_settings(settings)
    return SnapshotService(
        store,
        runs,
        make_source(settings),
        queue,
        schedule=settings.snapshot_schedule,
        closer=make_closer(settings, store, runs, queue),
    )


def make_closer(
    settings: Settings, store: SnapshotStore, runs: RunStore, queue: SnapshotQueue | None
) -> RunCloser:
    from auditor.services.runclose import make_closer as make

    return make(settings, store, runs, queue)


def on_timer(past_due: bool = False, now: datetime | None = None) -> RunManifest:
    """Timer trigger: sweep the recent runs' stragglers, then plan the run of the latest
    scheduled slot at or before now (a failed discovery is recorded and raised: retried)."""
    settings = load_settings()
    service = _process_service(settings)
    service.sweep_recent()
    if service.closer is not None:
        try:
            service.closer.record_queues()
        except Exception as exc:  # a status figure must not stop the run
            alarm("snapshot.status.failed", reason=describe(exc))
    slot = latest_occurrence(settings.snapshot_schedule, now or datetime.now(UTC))
    return service.plan_run(slot, enqueue=True, past_due=past_due)


def on_queue_message(text: str, dequeue_count: int) -> TenantOutcome:
    """Queue trigger: snapshot one tenant; raises for the host to retry or poison (a job this
    deployment did not plan is poisoned at once, with its reason, and completes)."""
    settings = load_settings()
    return _process_service(settings).process_job(text, dequeue_count, max_dequeue_count())
