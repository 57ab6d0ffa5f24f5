"""Close a run exactly once, compute its digest, and hand the digest to the sinks.

A run is done when every tenant of its manifest has a committed slot (complete, incomplete or
failed) or its deadline (planned at + the run deadline) has passed. Whoever sees that first
closes it: the last tenant job to finish (``tenant_done`` after its commit) or the timer's
sweep (``close_due``). Closing is:

1. read the run's manifest row and its ETag (already closed: nothing to do);
2. check completion: the tenants the run rows mark done, then the snapshot index for the rest;
3. compute the digest from committed snapshots and store it under a fresh attempt id;
4. MERGE the close into the manifest row under the ETag of step 1: exactly one closer wins; a
   loser deletes its digest;
5. the winner delivers the digest (auditor/services/notify.py), recording each sink's outcome.

A closer that crashes before 4 leaves a digest row no close names (never read); the next
sweep closes the run. One that crashes after 4 leaves deliveries unrecorded: the sweep sends
them (``deliver_pending``), with the same event ids.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from auditor.adapters.queues import SnapshotQueue, run_deadline
from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.rows import is_committed
from auditor.adapters.tables.run_digests import Delivery, RunDigestStore, RunRecord
from auditor.adapters.tables.runs import RunStore
from auditor.api.documents import diff_summary
from auditor.core.canonical import format_time, parse_time
from auditor.core.diff import diff_snapshots
from auditor.core.digest import (
    MAX_POISON_REASONS,
    PoisonSummary,
    RunDigest,
    TenantDigest,
    digest_document,
)
from auditor.core.model import CollectionStatus
from auditor.core.runs import REJECTED_FORMAT, poisoned_job
from auditor.core.schedule import latest_occurrence
from auditor.core.snapshot import SnapshotIndexEntry, SnapshotNotFound, SnapshotTampered
from auditor.services.history import diff_input
from auditor.services.notify import Notifier, sinks_from_settings
from auditor.settings import Settings

log = logging.getLogger("auditor.digest")

# Tenants whose diffs a close computes at once (storage round trips, not CPU, dominate).
DIGEST_WORKERS = 8
# How far back a tenant's previous snapshot with content is looked for (failed ones skipped).
PREVIOUS_LOOKBACK = 31


@dataclass(frozen=True, slots=True)
class ClosedRun:
    slot: str
    document: dict[str, Any]
    digest_hash: str
    deliveries: dict[str, Delivery]


@dataclass
class RunCloser:
    store: SnapshotStore
    runs: RunStore
    digests: RunDigestStore
    schedule: str
    queue: SnapshotQueue | None = None
    notifier: Notifier | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    deadline: timedelta = field(default_factory=run_deadline)
    stale_slots: int = 3
    # Called before "digest" and "close" (tests force interleavings of two closers with it).
    step_hook: Callable[[str], None] = field(default=lambda _step: None)

    def close(self) -> None:
        """Release the closer's own clients (the digests' table client, the sinks')."""
        self.digests.close()
        for sink in self.notifier.sinks if self.notifier else ():
            closing = getattr(sink, "close", None)
            if callable(closing):
                closing()

    # -----------------------------------------------------------------------------------------

    def tenant_done(self, slot: str, tenant_id: str, status: str) -> ClosedRun | None:
        """A tenant's slot was committed: note it, and close the run if it was the last."""
        self.digests.mark_done(slot, tenant_id, status)
        return self.try_close(slot, closed_by="last-job")

    def try_close(self, slot: str, *, closed_by: str) -> ClosedRun | None:
        """Close the run when it is done; the closed run for the one caller that closed it."""
        record = self.digests.record(slot)
        # Only a full run closes: a partial one (`snapshot --tenant`) may become full later.
        if record is None or record.closed or not record.full:
            return None
        overdue = self.clock() >= parse_time(record.planned_at) + self.deadline
        if not overdue and not self._all_committed(record):
            return None
        self.step_hook("digest")
        digest = self.compute(record, closed_by=closed_by, deadline_passed=overdue)
        document = digest_document(digest)
        attempt = uuid.uuid4().hex
        hashed = self.digests.put_digest(slot, attempt, document)
        self.step_hook("close")
        sinks = self.notifier.names if self.notifier else ()
        won = self.digests.close_run(
            record,
            attempt=attempt,
            closed_at=digest.closed_at,
            closed_by=closed_by,
            hashed=hashed,
            sinks=sinks,
        )
        if not won:
            self.digests.delete_digest(slot, attempt)
            return None
        log.info("run.closed %s by %s (%s)", slot, closed_by, digest.outcome)
        deliveries = self.notifier.deliver(slot, document) if self.notifier else {}
        return ClosedRun(slot, document, hashed, deliveries)

    def close_due(self, slots: Iterable[str]) -> list[ClosedRun]:
        """The sweep: close every run of `slots` that is done, and send pending deliveries."""
        closed = []
        for slot in slots:
            made = self.try_close(slot, closed_by="sweep")
            if made is not None:
                closed.append(made)
            else:
                self.deliver_pending(slot)
        return closed

    def record_queues(self) -> None:
        """Note the job queues' figures for the API's status (the API cannot read queues)."""
        if self.queue is not None:
            from auditor.services.operations import queue_figures

            self.digests.put_queue_status(queue_figures(self.queue, self.clock()))

    def deliver_pending(self, slot: str) -> dict[str, Delivery]:
        """Retry the deliveries of a closed run that are not settled (retrying, or never
        recorded because the closer died)."""
        if self.notifier is None:
            return {}
        found = self.digests.digest(slot)
        if found is None:
            return {}
        _, document = found
        return self.notifier.deliver(slot, document)

    def _all_committed(self, record: RunRecord) -> bool:
        for tenant_id in record.tenant_ids:
            if tenant_id in record.done:
                continue
            row = self.store.slot_row(tenant_id, record.slot)
            if row is None or not is_committed(row):
                return False
        return True

    # -----------------------------------------------------------------------------------------
    # The digest

    def compute(self, record: RunRecord, *, closed_by: str, deadline_passed: bool) -> RunDigest:
        manifest = self.runs.get_manifest(record.slot)
        names = {t.tenant_id: t.display_name for t in manifest.tenants} if manifest else {}
        left = manifest.left if manifest else ()
        previous = self.runs.previous_full_run(record.slot)
        joined: tuple[str, ...] = ()
        if previous is not None and manifest is not None and manifest.full:
            joined = tuple(sorted(set(manifest.tenant_ids) - set(previous.tenant_ids)))
        window = self._stale_window(parse_time_of(record.slot))
        # Each tenant's rows are a few storage round trips: read them side by side.
        with ThreadPoolExecutor(max_workers=DIGEST_WORKERS) as pool:
            tenants = tuple(
                pool.map(
                    lambda tenant_id: self._tenant(
                        tenant_id, names.get(tenant_id, ""), record.slot, window
                    ),
                    record.tenant_ids,
                )
            )
        return RunDigest(
            slot=record.slot,
            closed_at=format_time(self.clock()),
            closed_by=closed_by,
            deadline_passed=deadline_passed,
            tenants=tenants,
            joined=joined,
            left=tuple(left),
            poison=self._poison(record.slot, previous.planned_at if previous else None),
            stale_slots=self.stale_slots,
        )

    def _stale_window(self, slot_time: datetime) -> datetime:
        """The earliest of the last `stale_slots` slots ending at `slot_time`."""
        start = slot_time
        for _ in range(self.stale_slots - 1):
            start = latest_occurrence(self.schedule, start - timedelta(seconds=1))
        return start

    def _tenant(self, tenant_id: str, name: str, slot: str, window: datetime) -> TenantDigest:
        try:
            entry = self.store.get_index(tenant_id, slot)
        except SnapshotNotFound:
            return TenantDigest(
                tenant_id, name, "pending", ("no snapshot committed when the run closed",),
                slot, None, None, stale=self._stale(tenant_id, window, slot),
            )  # fmt: skip
        except SnapshotTampered as exc:
            return TenantDigest(
                tenant_id, name, "failed", (f"the committed snapshot fails verification: {exc}",),
                slot, None, None, stale=self._stale(tenant_id, window, slot),
            )  # fmt: skip
        summary, previous_id, alerts = self._compare(entry)
        return TenantDigest(
            tenant_id=tenant_id,
            name=entry.tenant_name or name,
            status=entry.status.value,
            reasons=entry.reasons,
            snapshot_id=slot,
            previous_snapshot_id=previous_id,
            summary=summary,
            stale=self._stale(tenant_id, window, slot),
            new_high_alerts=alerts,
        )

    def _compare(
        self, entry: SnapshotIndexEntry
    ) -> tuple[dict[str, Any] | None, str | None, int | None]:
        """(summary, previous snapshot id, new High alerts) against the previous snapshot that
        has content; no summary when this one or every earlier one failed."""
        if entry.status is CollectionStatus.FAILED:
            return None, None, None
        previous = self._previous_with_content(entry)
        if previous is None:
            return None, None, None
        # Each end as a diff reads it (its projection, not its records): the closer reads
        # DIGEST_WORKERS tenants at once in the process of the run's last worker.
        try:
            after = diff_input(self.store, entry)
            before = diff_input(self.store, previous)
        except (SnapshotNotFound, SnapshotTampered) as exc:
            log.error("run.digest: %s %s not compared: %s", entry.tenant_id, entry.snapshot_id, exc)
            return None, None, None
        changes = diff_snapshots(
            before.snapshot,
            after.snapshot,
            before_index=before.compliance,
            after_index=after.compliance,
        ).summary
        # None when either end was taken before alerts were collected: unknown, not zero.
        alerts = changes.alerts.new_high if changes.alerts is not None else None
        return diff_summary(changes), previous.snapshot_id, alerts

    def _previous_with_content(self, entry: SnapshotIndexEntry) -> SnapshotIndexEntry | None:
        at = entry.scheduled_at
        for _ in range(PREVIOUS_LOOKBACK):
            try:
                found = self.store.find_at(entry.tenant_id, at - timedelta(seconds=1))
            except (SnapshotNotFound, SnapshotTampered):
                return None
            if found.status is not CollectionStatus.FAILED:
                return found
            at = found.scheduled_at
        return None

    def _stale(self, tenant_id: str, window: datetime, slot: str) -> bool:
        try:
            recent = self.store.list_snapshots(tenant_id, since=window, until=parse_time_of(slot))
        except SnapshotTampered:
            return True
        return not any(e.status is CollectionStatus.COMPLETE for e in recent)

    def _poison(self, slot: str, since: datetime | None) -> PoisonSummary:
        """Jobs refused since the previous run, and this run's jobs the host gave up on."""
        reasons: list[str] = []
        for rejected_at, reason in self.digests.rejected_since(since):
            reasons.append(f"rejected at {rejected_at}: {reason}")
        if self.queue is not None:
            for text in self.queue.peek_texts(poison=True):
                job = poisoned_job(text)
                if job is not None and job.snapshot_id == slot and not _is_rejection(text):
                    reasons.append(f"tenant {job.tenant_id}: the host gave up on its job")
        return PoisonSummary(len(reasons), tuple(reasons[:MAX_POISON_REASONS]))


def make_closer(
    settings: Settings,
    store: SnapshotStore,
    runs: RunStore,
    queue: SnapshotQueue | None,
    **sink_options: Any,
) -> RunCloser:
    """The closer of a service on `settings` (sinks as the settings switch them on)."""
    digests = RunDigestStore.from_settings(settings)
    return RunCloser(
        store,
        runs,
        digests,
        settings.snapshot_schedule,
        queue=queue,
        notifier=Notifier(sinks_from_settings(settings, **sink_options), digests),
        stale_slots=settings.notify.stale_slots,
    )


def _is_rejection(text: str) -> bool:
    """A job refused before any work (counted from the runs table's record of it instead)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return False
    return isinstance(obj, dict) and obj.get("format") == REJECTED_FORMAT


def parse_time_of(slot: str) -> datetime:
    from auditor.core.snapshot import slot_of

    return slot_of(slot)
