"""Dashboard page latency over loopback, beside the API's raw read of the same data.

An estate of 1,000 tenants (two daily snapshots each, small postures) and one tenant of
100,000 compliance records (two snapshots, 2 % changed), committed to Azurite through the
anchored SnapshotStore. The app runs as ``python -m auditor serve``; an httpx client asks for:

- the portfolio (``/``, every tenant in one page) and ``GET /api/tenants?$top=1000``, each in a
  fresh server process (its first request is the cold one), against a raw read of the same
  latest rows (a bare SDK query from the bench process, no verification): both read only the
  latest rows, their stored summaries and the anchors (cached), never a snapshot;
- the large tenant's page (``/tenants/{id}``: trend, controls, coverage, chain) and its page of
  failing assessments of one control against the API's raw read of its index
  (``GET /api/tenants/{id}/snapshots``).

The tenant page's first view reads and summarises its snapshot once (printed as "cold");
later views read the anchored index rows and the summary held in process. Printed: cold, p50
and p99 of each, and the ratio of each p50 to its baseline's.

Targets: portfolio and /api/tenants p50 <= 300 ms; tenant page p50 <= 500 ms. Exit code 1
when one is missed.

    python -m bench.bench_dashboard [--tenants N] [--records N] [--requests N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from azure.data.tables import TableServiceClient

from auditor.adapters.tables.store import SnapshotStore
from auditor.core.model import State
from auditor.core.snapshot import slot_of
from auditor.settings import load_settings
from tools.devservices import serve_api, start_azurite
from tools.posture_factory import flip_states, make_sized_posture

LARGE = "b3c0ffee-0000-4000-8000-000000000200"
DAY1, DAY2 = "20261126T020000Z", "20261127T020000Z"
LISTING_TARGET_MS = 300.0  # the portfolio and GET /api/tenants
TENANT_TARGET_MS = 500.0


def _tenant(number: int) -> str:
    return f"d45b0a4d-0000-4000-8000-{number:012d}"


def _measure(client: httpx.Client, url: str, count: int) -> tuple[float, float, float]:
    samples = []
    for _ in range(count + 1):
        started = time.perf_counter()
        response = client.get(url)
        response.read()
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
    cold, warm = samples[0], samples[1:]
    cuts = statistics.quantiles(warm, n=100, method="inclusive")
    return cold, cuts[49], cuts[98]


def _raw_latest_read(connection_string: str, prefix: str, count: int) -> float:
    """p50 of a bare SDK query of every latest row (no verification, no rendering): the floor
    of any listing that reads the rows."""
    service = TableServiceClient.from_connection_string(connection_string)
    table = service.get_table_client(f"{prefix}Tenants")
    samples = []
    with service:
        for _ in range(count):
            started = time.perf_counter()
            list(table.query_entities("PartitionKey eq 'latest'"))
            samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _commit_estate(store: SnapshotStore, tenants: int, records: int) -> None:
    def one(number: int) -> None:
        before = make_sized_posture(_tenant(number), subscriptions=2, records=40, seed=number)
        after = flip_states(before, 0.1, seed=number + 1)
        store.commit_snapshot(before, slot_of(DAY1), "bench")
        store.commit_snapshot(after, slot_of(DAY2), "bench")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(tenants)))
    large = make_sized_posture(LARGE, subscriptions=20, records=records, seed=1)
    store.commit_snapshot(large, slot_of(DAY1), "bench")
    store.commit_snapshot(flip_states(large, 0.02, seed=2), slot_of(DAY2), "bench")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args(argv)
    with start_azurite() as azurite:
        prefix = "bench" + uuid.uuid4().hex[:8]
        settings = load_settings(
            {"AUDITOR_STORAGE": azurite.connection_string, "AUDITOR_TABLE_PREFIX": prefix}
        )
        started = time.perf_counter()
        with SnapshotStore.from_settings(settings) as store:
            _commit_estate(store, args.tenants, args.records)
            failing = next(
                r
                for r in store.get_snapshot(LARGE, DAY2).posture.compliance
                if r.state is State.FAILED
            )
        print(
            f"committed {args.tenants:,} tenants x 2 snapshots and one of {args.records:,} "
            f"records x 2 in {time.perf_counter() - started:.0f} s"
        )
        env = {**os.environ, "AUDITOR_STORAGE": azurite.connection_string}
        env["AUDITOR_TABLE_PREFIX"] = prefix
        env.pop("AUDITOR_ACCESS_POLICY", None)
        raw_p50 = _raw_latest_read(azurite.connection_string, prefix, args.requests)
        print(
            f"raw read of the {args.tenants + 1:,} latest rows (SDK query, no verification): "
            f"p50 {raw_p50:,.1f} ms"
        )
        missed = []
        # Each listing in a fresh server process: its first request is the cold one.
        for name, path in (("portfolio /", "/"), ("GET /api/tenants", "/api/tenants?$top=1000")):
            with serve_api(env, timeout=120) as base, httpx.Client(timeout=600) as client:
                cold, p50, p99 = _measure(client, base + path, args.requests)
            print(
                f"{name}: cold {cold:,.0f} ms (fresh process), warm p50 {p50:,.1f} ms, "
                f"p99 {p99:,.1f} ms; ratio to the raw read {p50 / raw_p50:.2f} "
                f"(target p50 <= {LISTING_TARGET_MS:.0f} ms)"
            )
            if p50 > LISTING_TARGET_MS:
                missed.append(name)
        control = httpx.QueryParams({"standard": failing.standard, "control": failing.control})
        pages = {
            "tenant page": (
                f"/tenants/{LARGE}", f"/api/tenants/{LARGE}/snapshots", TENANT_TARGET_MS
            ),
            "tenant page, one control's failing assessments": (
                f"/tenants/{LARGE}?{control}",
                f"/api/tenants/{LARGE}/snapshots",
                TENANT_TARGET_MS,
            ),
        }  # fmt: skip
        with serve_api(env, timeout=120) as base, httpx.Client(timeout=600) as client:
            for name, (path, baseline, target) in pages.items():
                _, base_p50, _ = _measure(client, base + baseline, args.requests)
                cold, p50, p99 = _measure(client, base + path, args.requests)
                print(
                    f"{name}: cold {cold:,.0f} ms, warm p50 {p50:,.1f} ms, p99 {p99:,.1f} ms; "
                    f"API raw read {baseline} p50 {base_p50:,.1f} ms; ratio "
                    f"{p50 / base_p50:.2f} (target p50 <= {target:.0f} ms)"
                )
                if p50 > target:
                    missed.append(name)
    if missed:
        print(f"missed: {', '.join(missed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
