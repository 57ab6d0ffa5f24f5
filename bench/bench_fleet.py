"""Benchmark a fleet of workers sharing one Resource Graph quota (issue 15 §1).

    python -m bench.bench_fleet [--tenants N] [--fleets 1,2,4,8] [--quota 15/5]

The `large` estate (100 tenants × 10 subscriptions) with the simulator's quota on for the one
principal every worker uses. For each fleet size: a run is planned into the real snapshot queue
in Azurite (its own tables and queue), then that many `python -m auditor worker --queues
snapshots` processes work it until it is empty. Printed per fleet size:

- wall time (first worker started to last worker exited) against the quota floor, measured in
  the same run: the queries the simulator answered ÷ (limit ÷ window), the fastest any client of
  one principal can go; target ratio <= 1.15x;
- 429s met ÷ queries issued (target <= 1 %);
- queries issued (answered + 429s) against the pages served and the fewest pages the rows need
  (⌈rows served ÷ 1,000⌉, a lower bound);
- peak memory (VmHWM, the child's ru_maxrss from wait4) per worker (target <= 400 MB);
- every tenant committed once and the run closed exactly once (else the bench fails).

`--tenants N` keeps only the first N tenants delegated (the simulator's own undelegation fault:
discovery and every query see N tenants) so that a pass fits a busy machine; the default is all.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from auditor.adapters.queues import HostQueueOptions
from tools.azure_sim.launcher import CONFLICTING_ENV, Simulator, start_simulator
from tools.devservices import REPO, Azurite, start_azurite

TARGET_FLOOR = 1.15
TARGET_429 = 0.01
TARGET_MEMORY_MB = 400
PAGE_ROWS = 1000


@dataclass
class FleetResult:
    workers: int
    wall: float
    answered: int
    throttled: int
    pages: int
    rows: int
    peaks_mb: list[float]
    committed: int
    tenants: int
    closed: bool
    limit: int
    window: float
    planning: float = 0.0
    cpu: float = 0.0  # CPU seconds the workers used (user + system)
    services_cpu: float = 0.0  # CPU seconds the simulator and Azurite used meanwhile
    load: float = 0.0  # the machine's 1-minute load average at the end (2 cores)

    @property
    def issued(self) -> int:
        return self.answered + self.throttled

    @property
    def floor(self) -> float:
        return self.answered / (self.limit / self.window)

    @property
    def ratio(self) -> float:
        return self.wall / self.floor if self.floor else math.inf

    @property
    def share_429(self) -> float:
        return self.throttled / self.issued if self.issued else 0.0

    @property
    def fewest_pages(self) -> int:
        return math.ceil(self.rows / PAGE_ROWS)

    def ok(self) -> bool:
        return (
            self.ratio <= TARGET_FLOOR
            and self.share_429 <= TARGET_429
            and max(self.peaks_mb) <= TARGET_MEMORY_MB
            and self.committed == self.tenants
            and self.closed
        )

    def line(self) -> str:
        return (
            f"  {self.workers} worker(s): wall {self.wall:6.1f} s, floor {self.floor:6.1f} s -> "
            f"{self.ratio:.2f}x; 429s {self.throttled}/{self.issued} = {self.share_429:.1%}; "
            f"issued {self.issued} vs pages {self.pages} (fewest {self.fewest_pages}); "
            f"peak {max(self.peaks_mb):.0f} MB/worker; committed {self.committed}/{self.tenants}"
            f", closed {'yes' if self.closed else 'NO'} (planned in {self.planning:.1f} s); "
            f"CPU: workers {self.cpu:.0f} s, simulator + Azurite {self.services_cpu:.0f} s; "
            f"load average {self.load:.1f}"
        )


def storage_env(azurite: Azurite, sim: Simulator, name: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CONFLICTING_ENV}
    env.update(sim.env())
    env.update(
        {
            "AUDITOR_STORAGE": azurite.connection_string,
            "AUDITOR_TABLE_PREFIX": name,
            "AUDITOR_SNAPSHOT_QUEUE": f"{name}-snapshots",
            "AUDITOR_REPORT_QUEUE": f"{name}-reports",
        }
    )
    return env


def plan(env: dict[str, str]) -> tuple[str, int, float]:
    """Plan the latest slot's run into the queue (as the timer does): (slot, tenants, seconds)."""
    from auditor.core.schedule import latest_occurrence
    from auditor.services.snapshot import open_service
    from auditor.settings import load_settings

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        settings = load_settings()
        started = time.perf_counter()
        with open_service(settings) as service:
            slot = latest_occurrence(settings.snapshot_schedule, datetime.now(UTC))
            manifest = service.plan_run(slot, enqueue=True)
        return manifest.snapshot_id, len(manifest.tenants), time.perf_counter() - started
    finally:
        os.environ.clear()
        os.environ.update(saved)


def outcome(env: dict[str, str], slot: str) -> tuple[int, bool]:
    """(tenants with a committed slot of the run, whether the run is closed)."""
    from auditor.adapters.tables import SnapshotStore
    from auditor.adapters.tables.rows import is_committed
    from auditor.adapters.tables.run_digests import RunDigestStore
    from auditor.adapters.tables.runs import RunStore
    from auditor.settings import load_settings

    settings = load_settings(env)
    with SnapshotStore.from_settings(settings) as store:
        runs = RunStore.from_settings(settings)
        digests = RunDigestStore.from_settings(settings)
        try:
            manifest = runs.get_manifest(slot)
            assert manifest is not None
            committed = 0
            for tenant in manifest.tenants:
                row = store.slot_row(tenant.tenant_id, slot)
                committed += row is not None and is_committed(row)
            record = digests.record(slot)
            return committed, bool(record and record.closed)
        finally:
            runs.close()
            digests.close()


def run_fleet(
    workers: int, env: dict[str, str], concurrency: int
) -> tuple[float, list[float], float]:
    """Start `workers` worker processes, wait for all: (wall seconds, peak MB of each, CPU
    seconds of all)."""
    started = time.perf_counter()
    command = [
        "-m",
        "auditor",
        "worker",
        "--queues",
        "snapshots",
        "--concurrency",
        str(concurrency),
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, *command],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(workers)
    ]
    peaks = []
    cpu = 0.0
    failures = []
    for proc in procs:
        # wait4 gives the child's own rusage: ru_maxrss is its VmHWM, in KiB on Linux.
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        peaks.append(usage.ru_maxrss / 1024)
        cpu += usage.ru_utime + usage.ru_stime
        if proc.returncode != 0:
            tail = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
            failures.append(f"worker {proc.pid} exited {proc.returncode}:\n{tail}")
    wall = time.perf_counter() - started
    for proc in procs:
        if proc.stderr:
            proc.stderr.close()
    if failures:
        print("\n".join(failures))
    return wall, peaks, cpu


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (and its waited-for children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def services_cpu(sim: Simulator, azurite: Azurite) -> float:
    return cpu_seconds(sim.pid) + cpu_seconds(azurite.pid)


def keep_tenants(sim: Simulator, count: int | None) -> int:
    """Leave only the first `count` tenants delegated (all when None); the number kept."""
    tenants = sim.estate(details=False)["tenants"]
    if count is None or count >= len(tenants):
        return len(tenants)
    sim.set_faults({"undelegated_from": {t["tenantId"]: 0 for t in tenants[count:]}})
    return count


def measure(
    sim: Simulator, azurite: Azurite, workers: int, limit: int, window: float, concurrency: int
) -> FleetResult:
    env = storage_env(azurite, sim, f"fleet{workers}x{int(time.time()) % 100000}")
    slot, tenants, planning = plan(env)
    sim.set_quota(limit, window)  # a fresh window: planning's queries do not count
    sim.reset_stats()
    before = services_cpu(sim, azurite)
    wall, peaks, cpu = run_fleet(workers, env, concurrency)
    services = services_cpu(sim, azurite) - before
    stats = sim.stats()
    committed, closed = outcome(env, slot)
    return FleetResult(
        workers=workers,
        wall=wall,
        answered=int(stats.get("arg_queries", 0)),
        throttled=int(stats.get("arg_429", 0)),
        pages=int(stats.get("arg_pages_served", 0)),
        rows=int(stats.get("arg_rows_served", 0)),
        peaks_mb=peaks,
        committed=committed,
        tenants=tenants,
        closed=closed,
        limit=limit,
        window=window,
        planning=planning,
        cpu=cpu,
        services_cpu=services,
        load=os.getloadavg()[0],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=None, help="first N tenants only")
    parser.add_argument("--fleets", default="1,2,4,8", help="fleet sizes, comma-separated")
    parser.add_argument("--quota", default="15/5", help="LIMIT/WINDOW_S of the one principal")
    in_hand = HostQueueOptions.from_host_json().in_hand
    parser.add_argument(
        "--concurrency",
        type=int,
        default=in_hand,
        help=f"messages each worker works at once (default {in_hand}: one instance, host.json)",
    )
    args = parser.parse_args(argv)
    fleets = [int(n) for n in args.fleets.split(",")]
    limit_text, window_text = args.quota.split("/")
    limit, window = int(limit_text), float(window_text)
    ok = True
    with (
        tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp,
        start_azurite() as azurite,
        start_simulator(Path(tmp) / "sim", size="large", seed=1, quota=args.quota) as sim,
    ):
        kept = keep_tenants(sim, args.tenants)
        print(
            f"large estate, {kept} tenants, quota {limit} queries / {window:g} s for one "
            f"principal; fleets of {', '.join(map(str, fleets))} worker process(es), each "
            f"working {args.concurrency} message(s) at once"
        )
        for workers in fleets:
            result = measure(sim, azurite, workers, limit, window, args.concurrency)
            print(result.line(), flush=True)
            ok = result.ok() and ok
    print(
        f"targets: <= {TARGET_FLOOR}x the floor, 429s <= {TARGET_429:.0%} of queries, "
        f"<= {TARGET_MEMORY_MB} MB per worker, every tenant committed, the run closed"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
