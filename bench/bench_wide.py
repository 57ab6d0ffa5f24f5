"""Benchmark a run over many small tenants: the simulator's `wide` estate (issue 15 §2).

    python -m bench.bench_wide [--tenants N] [--workers 4] [--quota 15/5]

`wide` is 1,000 tenants of 1-5 subscriptions each (3,042 subscriptions). The run is planned
into the real snapshot queue in Azurite (discovery of every delegated tenant, the manifest, one
message a tenant), worked by a fleet of `python -m auditor worker` processes sharing the one
principal's quota, and closed. Printed: planning time and queue messages; run time against the
quota floor (queries answered ÷ (limit ÷ window), measured in the same run; target <= 1.15x);
429s; storage transactions (every response the storage SDKs received, counted per service by a
transport hook in each process), in all and per tenant; peak memory per worker.

By default the first 150 tenants stay delegated (the simulator's undelegation fault: about 450
subscriptions, a run of about five minutes here); `--tenants 1000` is the whole estate (about
45 minutes on the 2-core machine, most of it the quota floor). `make bench` runs the default.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.bench_fleet import (
    TARGET_429,
    TARGET_FLOOR,
    TARGET_MEMORY_MB,
    keep_tenants,
    outcome,
    storage_env,
)
from tools.azure_sim.launcher import start_simulator
from tools.devservices import REPO, start_azurite

DEFAULT_TENANTS = 150
COUNTS_ENV = "BENCH_WIDE_COUNTS"  # where a worker writes its transaction counts


def count_requests(env: dict[str, str] | os._Environ[str]) -> Counter[str]:
    """Count every response azure-core's transport receives, by service (blob, queue, table,
    arm), in this process from now on."""
    from azure.core.pipeline.transport import RequestsTransport

    ports = {}
    for part in env["AUDITOR_STORAGE"].split(";"):
        name, _, value = part.partition("=")
        if name.endswith("Endpoint") and value:
            ports[urlsplit(value).port] = name.removesuffix("Endpoint").lower()
    counts: Counter[str] = Counter()
    original = RequestsTransport.send

    def send(self: RequestsTransport, request: Any, **kwargs: Any) -> Any:
        response = original(self, request, **kwargs)
        service = ports.get(urlsplit(request.url).port, "arm")
        counts[service] += 1
        if request.method in ("PUT", "POST", "PATCH", "MERGE"):
            body = getattr(request, "body", None) or b""
            counts[f"{service} bytes sent"] += len(body)
        return response

    RequestsTransport.send = send
    return counts


def worker_main() -> int:
    """`python -m auditor worker --queues snapshots`, counting its requests."""
    from auditor.cli import main

    counts = count_requests(os.environ)
    try:
        return main(["worker", "--queues", "snapshots"])
    finally:
        Path(os.environ[COUNTS_ENV]).write_text(json.dumps(counts))


def run_workers(
    workers: int, env: dict[str, str], tmp: Path
) -> tuple[float, list[float], Counter[str]]:
    import subprocess

    started = time.perf_counter()
    procs = []
    for n in range(workers):
        worker_env = {**env, COUNTS_ENV: str(tmp / f"counts-{n}.json")}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "bench.bench_wide", "--worker"],
                cwd=REPO,
                env=worker_env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    peaks = []
    for proc in procs:
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        peaks.append(usage.ru_maxrss / 1024)
    wall = time.perf_counter() - started
    total: Counter[str] = Counter()
    for n in range(workers):
        total.update(json.loads((tmp / f"counts-{n}.json").read_text()))
    return wall, peaks, total


def plan_counted(env: dict[str, str]) -> tuple[str, int, float, Counter[str]]:
    from bench.bench_fleet import plan

    counts = count_requests(env)
    slot, tenants, seconds = plan(env)
    return slot, tenants, seconds, Counter(counts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tenants", type=int, default=DEFAULT_TENANTS, help="first N tenants")
    parser.add_argument("--workers", type=int, default=4, help="worker processes")
    parser.add_argument("--quota", default="15/5", help="LIMIT/WINDOW_S of the one principal")
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main()
    limit_text, window_text = args.quota.split("/")
    limit, window = int(limit_text), float(window_text)
    with (
        tempfile.TemporaryDirectory(prefix="bench-wide-") as tmp,
        start_azurite() as azurite,
        start_simulator(Path(tmp) / "sim", size="wide", seed=1, quota=args.quota) as sim,
    ):
        kept = keep_tenants(sim, args.tenants)
        env = storage_env(azurite, sim, "wide")
        sim.set_quota(None)  # planning's discovery is not what is measured against the floor
        slot, tenants, planning, plan_counts = plan_counted(env)
        subs = sum(len(t["subscriptions"]) for t in sim.estate(details=False)["tenants"][:kept])
        print(
            f"wide estate: {kept} tenants, {subs} subscriptions; planned in {planning:.1f} s, "
            f"{tenants} queue messages; storage transactions "
            f"{sum(plan_counts[k] for k in ('blob', 'queue', 'table'))}"
        )
        sim.set_quota(limit, window)
        sim.reset_stats()
        wall, peaks, counts = run_workers(args.workers, env, Path(tmp))
        stats = sim.stats()
        committed, closed = outcome(env, slot)
    answered, throttled = int(stats.get("arg_queries", 0)), int(stats.get("arg_429", 0))
    floor = answered / (limit / window)
    ratio = wall / floor if floor else float("inf")
    share = throttled / (answered + throttled) if answered + throttled else 0.0
    both = counts + plan_counts
    storage = {k: v for k, v in both.items() if k in ("blob", "queue", "table")}
    total = sum(storage.values())
    sent = {k: v for k, v in both.items() if k.endswith("bytes sent") and not k.startswith("arm")}
    print(
        f"  {args.workers} workers: run {wall:.1f} s vs quota floor {floor:.1f} s -> {ratio:.2f}x "
        f"(target <= {TARGET_FLOOR}x); 429s {throttled}/{answered + throttled} = {share:.1%}; "
        f"peak {max(peaks):.0f} MB/worker"
    )
    print(
        f"  storage transactions (planning + run + close): {total:,} in all, "
        f"{total / tenants:.1f} per tenant ("
        + ", ".join(f"{k} {v:,}" for k, v in sorted(storage.items()))
        + f"); control-plane requests {counts['arm'] + plan_counts['arm']:,}"
    )
    print(
        "  bytes written: "
        + ", ".join(
            f"{k} {v / 1e6:.1f} MB ({v / tenants / 1e3:.0f} kB a tenant)"
            for k, v in sorted(sent.items())
        )
    )
    print(f"  committed {committed}/{tenants}, run closed: {'yes' if closed else 'NO'}")
    ok = (
        ratio <= TARGET_FLOOR
        and share <= TARGET_429
        and max(peaks) <= TARGET_MEMORY_MB
        and committed == tenants
        and closed
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
