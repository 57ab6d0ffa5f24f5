"""What closing a run costs, next to the run itself, on Azurite.

Baseline, measured in the same run: committing the second day's snapshots of every tenant
(SnapshotStore.commit_snapshot, history included), which any run pays. Measured: the
completion check a tenant job makes after its commit when it is not the last (read the run
record, look at the first unfinished tenant), and closing the run (a diff per tenant against
its previous snapshot, stale and poison checks, the digest stored and the close written).
Targets: the completion check (three small reads) under 25% of one tenant's commit; the close
under 75% of the day's commits (it reads two snapshots per tenant where a commit writes one and
reads its predecessor; the diffs are read 8 tenants at a time).

    python -m bench.bench_digest
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.runs import RunStore
from auditor.services.runclose import make_closer
from auditor.services.snapshot import SnapshotService
from auditor.settings import load_settings
from tools.devservices import start_azurite
from tools.posture_factory import FakeSource, flip_states, make_posture, tenant_id_for

TENANTS = 20
CHECK_TARGET = 0.25
CLOSE_TARGET = 0.75
DAY1 = datetime(2024, 5, 1, 2, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)


def main() -> int:
    day1 = [
        make_posture(tenant_id_for(n), subscriptions=2, standards=4, controls=20, assessments=5)
        for n in range(TENANTS)
    ]
    day2 = [flip_states(p, 0.05, seed=n) for n, p in enumerate(day1)]
    records = sum(len(p.compliance) for p in day2)
    print(f"{TENANTS} tenants, {records:,} compliance records a day")
    with start_azurite() as azurite:
        suffix = uuid.uuid4().hex[:8]
        settings = load_settings(
            {
                "AUDITOR_STORAGE": azurite.connection_string,
                "AUDITOR_TABLE_PREFIX": f"bench{suffix}",
                "AUDITOR_EVIDENCE_CONTAINER": f"bench-{suffix}",
            }
        )
        store, runs = SnapshotStore.from_settings(settings), RunStore.from_settings(settings)
        closer = make_closer(settings, store, runs, None)
        closer.clock = lambda: DAY2 + timedelta(minutes=5)
        SnapshotService(store, runs, FakeSource(day1), clock=closer.clock).run_inline(DAY1)
        service = SnapshotService(store, runs, FakeSource(day2), clock=closer.clock)
        service.plan_run(DAY2, enqueue=False)
        commits = []
        slot = "20240502T020000Z"
        for posture in day2:
            started = time.perf_counter()
            store.commit_snapshot(posture, DAY2, "bench")
            commits.append(time.perf_counter() - started)
            if posture is not day2[-1]:
                closer.digests.mark_done(slot, posture.tenant.tenant_id, "complete")
        # A job that is not the last, as if the last tenant were still open: the hint names
        # every tenant but one, whose index row is read.
        checks = []
        last = day2[-1].tenant.tenant_id
        for _ in range(5):
            started = time.perf_counter()
            record = closer.digests.record(slot)
            assert record is not None and last not in record.done
            closer._all_committed(record)
            checks.append(time.perf_counter() - started)
        closer.digests.mark_done(slot, last, "complete")
        started = time.perf_counter()
        closed = closer.try_close(slot, closed_by="bench")
        close_seconds = time.perf_counter() - started
        assert closed is not None, "the run did not close"
        closer.close()
        store.close()
        runs.close()
    day_seconds = sum(commits)
    per_commit = statistics.median(commits)
    check = statistics.median(checks)
    print(f"baseline: day's commits {day_seconds:.2f} s ({per_commit * 1000:.0f} ms a tenant)")
    print(f"completion check (record read): {check * 1000:.1f} ms = {check / per_commit:.3f}x "
          f"one commit (target < {CHECK_TARGET})")  # fmt: skip
    ratio = close_seconds / day_seconds
    print(f"close ({TENANTS} diffs, digest, close): {close_seconds:.2f} s = {ratio:.2f}x the "
          f"day's commits (target < {CLOSE_TARGET})")  # fmt: skip
    ok = check / per_commit < CHECK_TARGET and ratio < CLOSE_TARGET
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
