"""Diff latency of the API over loopback, against the time to read the snapshots raw.

Two snapshots of one tenant with 100,000 compliance records each (20 subscriptions, four
standards), 2 % of the records in another state on the second day, committed to Azurite through
the SnapshotStore. The API runs as ``python -m auditor serve`` (uvicorn, its own process); an
httpx client on the same machine asks for the diff.

Printed: the raw read of both snapshots from the store (``get_snapshot`` twice, as a diff did
on a cold cache before the diff projection), then p50 / p99 over repeated requests of the
whole diff (all 2,000 changes in one page) and of other shapes (default page, filtered, CSV).
The ratio is the diff p50 over the raw read time measured in this run.

Cold reads: the same pair of snapshots is also committed for a second tenant the way the
product stored them before the diff projection (``write_projection=False``). For each: the
whole diff as the first request of a fresh ``serve`` process ("fresh": its start-up included),
the first diff of a fresh process after one index request ("cold": resolve, read, decode,
diff; each the median of a few processes, the two kinds interleaved), and the warm p50 of the
whole diff, the tenants asked in turn of one server; the ratios are with / without the
projection. A third tenant's second day also replaces 1 % of the assessments (other ids): its
ends hold different keys, so its diff cannot compare state columns in place and builds the
(key, state) index of both ends; it is printed beside them, without a target. The load average
is printed: the machine is shared.

Targets: diff p50 <= 150 ms and p99 <= 400 ms; a cold diff with the projection <= 500 ms, and
its warm p50 no worse than without (<= 1.25x, the noise of a shared machine). Exit code 1 when a
target is missed.

    python -m bench.bench_diff [--records N] [--requests N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
from azure.data.tables import TableServiceClient

from auditor.adapters.tables.store import SnapshotStore
from auditor.core.snapshot import slot_of
from auditor.settings import Settings, load_settings
from tools.devservices import serve_api, start_azurite
from tools.posture_factory import flip_states, make_sized_posture, replace_assessments

REPO = Path(__file__).resolve().parent.parent
TENANT = "b3c0ffee-0000-4000-8000-000000000100"
OLD_TENANT = "b3c0ffee-0000-4000-8000-000000000101"  # stored without the diff projection
# The second day also replaces 1 % of the assessments: the ends hold different keys.
REPLACED_TENANT = "b3c0ffee-0000-4000-8000-000000000102"
DAY1, DAY2 = "20261126T020000Z", "20261127T020000Z"
P50_TARGET_MS = 150.0
P99_TARGET_MS = 400.0
COLD_TARGET_MS = 500.0
WARM_RATIO_TARGET = 1.25


def _percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[98]


def _time(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _measure(client: httpx.Client, url: str, params: dict[str, str], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(url, params=params)
        response.read()
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{url} {params}: {response.status_code} {response.text[:300]}")
    return samples


def _anchor_check_cost(settings: Settings, raw: SnapshotStore) -> None:
    """What verifying a cold diff's two snapshots against their anchors adds: index lookups
    with their anchor reads (a fresh store each time: cold anchor cache) and verified content
    reads (content digest compared with the anchor), interleaved with the same reads
    unverified so that both see the same machine."""

    def lookups(store: SnapshotStore) -> None:
        for sid in (DAY1, DAY2):
            store.get_index(TENANT, sid)

    def reads(store: SnapshotStore) -> None:
        for sid in (DAY1, DAY2):
            store.get_snapshot(TENANT, sid)

    plain_lookups, plain_reads, cold_lookups, cold_reads = [], [], [], []
    for _ in range(5):
        plain_lookups.append(_time(lambda: lookups(raw)) * 1000)
        plain_reads.append(_time(lambda: reads(raw)) * 1000)
        with SnapshotStore.from_settings(settings) as verified:
            cold_lookups.append(_time(lambda: lookups(verified)) * 1000)
            cold_reads.append(_time(lambda: reads(verified)) * 1000)
    plain, cold = statistics.median(plain_lookups), statistics.median(cold_lookups)
    read, verified_read = statistics.median(plain_reads), statistics.median(cold_reads)
    print(
        f"anchor check on a cold diff (medians of 5 interleaved): index lookups {plain:.1f} ms "
        f"unverified, {cold:.1f} ms verified (+{cold - plain:.1f} ms: two anchor reads); read "
        f"of both snapshots {verified_read:,.0f} ms verified vs {read:,.0f} ms unverified "
        f"({verified_read / read:.3f}x)"
    )


def _commit_pair(store: SnapshotStore, tenant: str, records: int, replaced: float = 0.0) -> float:
    """Commit the benchmark's two days for `tenant` (`replaced`: the fraction of assessments
    the second day replaces); the seconds the two commits took."""
    before = make_sized_posture(tenant, subscriptions=20, records=records, seed=1)
    after = flip_states(before, 0.02, seed=2)
    if replaced:
        after = replace_assessments(after, replaced, seed=3)
    took = _time(lambda: store.commit_snapshot(before, slot_of(DAY1), "bench"))
    return took + _time(lambda: store.commit_snapshot(after, slot_of(DAY2), "bench"))


ColdFigures = dict[str, tuple[float, float, float]]


def _cold_reads(env: dict[str, str], runs: int, requests: int) -> ColdFigures:
    """Per kind (with and without the projection; with it for ends of different keys): the
    whole diff as the first request of a fresh server process, the first diff of a fresh
    process after one index request (its start-up paid: cold cache only), each the median over
    `runs` processes (kinds interleaved), and the warm p50, the tenants asked in turn of one
    server."""
    tenants = {
        "with the projection": TENANT,
        "without (the old path)": OLD_TENANT,
        "with, 1 % replaced (~4,000 changes)": REPLACED_TENANT,
    }
    first: dict[str, list[float]] = {label: [] for label in tenants}
    cache: dict[str, list[float]] = {label: [] for label in tenants}
    whole = {"from": DAY1, "to": DAY2, "$top": "5000"}
    for _ in range(runs):
        for label, tenant in tenants.items():
            with serve_api(env) as base, httpx.Client(timeout=120) as client:
                first[label].append(
                    _measure(client, f"{base}/api/tenants/{tenant}/diff", whole, 1)[0]
                )
            with serve_api(env) as base, httpx.Client(timeout=120) as client:
                _measure(client, f"{base}/api/tenants/{tenant}/snapshots", {}, 1)
                cache[label].append(
                    _measure(client, f"{base}/api/tenants/{tenant}/diff", whole, 1)[0]
                )
    warm: dict[str, list[float]] = {label: [] for label in tenants}
    with serve_api(env) as base, httpx.Client(timeout=120) as client:
        for _ in range(requests):
            for label, tenant in tenants.items():
                warm[label] += _measure(client, f"{base}/api/tenants/{tenant}/diff", whole, 1)
    return {
        label: (
            statistics.median(first[label]),
            statistics.median(cache[label]),
            _percentiles(warm[label])[0],
        )
        for label in tenants
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_diff", description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--cold-runs", type=int, default=3, help="fresh processes per kind")
    args = parser.parse_args(argv)

    print(f"building two snapshots of {args.records:,} compliance records (2 % changed)...")
    before = make_sized_posture(TENANT, subscriptions=20, records=args.records, seed=1)
    after = flip_states(before, 0.02, seed=2)
    changed = sum(
        1 for a, b in zip(before.compliance, after.compliance, strict=True) if a.state != b.state
    )

    with start_azurite() as azurite:
        prefix = "bench" + uuid.uuid4().hex[:8]
        settings = load_settings(
            {"AUDITOR_STORAGE": azurite.connection_string, "AUDITOR_TABLE_PREFIX": prefix}
        )
        store = SnapshotStore.from_settings(settings)  # anchored, as the product commits
        commit = _time(lambda: store.commit_snapshot(before, slot_of(DAY1), "bench"))
        commit += _time(lambda: store.commit_snapshot(after, slot_of(DAY2), "bench"))
        print(f"committed both to Azurite in {commit:.1f} s")
        store.close()
        with SnapshotStore.from_settings(settings, write_projection=False) as old_store:
            old_commit = _commit_pair(old_store, OLD_TENANT, args.records)
        print(
            f"committed the same pair without the projection in {old_commit:.1f} s "
            f"(the projection adds {commit - old_commit:+.1f} s to two commits)"
        )
        with SnapshotStore.from_settings(settings) as replacing:
            _commit_pair(replacing, REPLACED_TENANT, args.records, replaced=0.01)

        service = TableServiceClient.from_connection_string(azurite.connection_string)
        raw = SnapshotStore(service, prefix)  # no anchors: the hash check alone, as before
        raw_runs = [
            _time(lambda: [raw.get_snapshot(TENANT, sid) for sid in (DAY1, DAY2)]) for _ in range(3)
        ]
        raw_ms = statistics.median(raw_runs) * 1000
        print(f"raw read of both snapshots from the store: {raw_ms:,.0f} ms (median of 3)")
        _anchor_check_cost(settings, raw)
        raw.close()

        env = {
            **os.environ,
            "AUDITOR_STORAGE": azurite.connection_string,
            "AUDITOR_TABLE_PREFIX": prefix,
        }
        env.pop("AUDITOR_ACCESS_POLICY", None)
        cold_reads = _cold_reads(env, args.cold_runs, args.requests)
        with serve_api(env) as base:
            url = f"{base}/api/tenants/{TENANT}/diff"
            whole = {"from": DAY1, "to": DAY2, "$top": "5000"}
            with httpx.Client(timeout=120) as client:
                cold = _measure(client, url, whole, 1)[0]
                body = client.get(url, params=whole).json()
                assert body["matchingChanges"] == changed == len(body["value"]), "wrong diff"
                print(f"first diff request of this server (cold cache): {cold:,.0f} ms")
                shapes = {
                    "whole diff, one page (2,000 changes)": whole,
                    "default page (1,000 changes)": {"from": DAY1, "to": DAY2},
                    "regressions only": {"from": DAY1, "to": DAY2, "change": "regressed"},
                    "whole diff as CSV": {**whole, "format": "csv"},
                    "instants, latest `to`": {"from": "2026-11-26T12:00:00Z", "$top": "5000"},
                }
                results = {}
                for label, params in shapes.items():
                    results[label] = _percentiles(_measure(client, url, params, args.requests))

    print(f"\n{'request (warm cache)':<40} {'p50 ms':>8} {'p99 ms':>8}  ratio p50/raw")
    for label, (p50, p99) in results.items():
        print(f"{label:<40} {p50:8.1f} {p99:8.1f}  {p50 / raw_ms:.3f}")
    p50, p99 = results["whole diff, one page (2,000 changes)"]
    print(
        f"\ndiff p50 {p50:.1f} ms (target <= {P50_TARGET_MS:.0f}), p99 {p99:.1f} ms "
        f"(target <= {P99_TARGET_MS:.0f}); raw read of the two snapshots {raw_ms:,.0f} ms; "
        f"ratio diff p50 / raw read = {p50 / raw_ms:.3f}"
    )
    (new_first, new_cold, new_warm), (old_first, old_cold, old_warm), _ = cold_reads.values()
    print(
        f"\n{'cold reads (whole diff, 2,000 changes)':<40} {'fresh ms':>9} {'cold ms':>8} "
        f"{'warm p50':>8}"
    )
    for label, (first_ms, cold_ms, warm_ms) in cold_reads.items():
        print(f"{label:<40} {first_ms:9,.0f} {cold_ms:8,.0f} {warm_ms:8.1f}")
    print(
        f"ratio with / without the projection: fresh process {new_first / old_first:.3f}, cold "
        f"cache {new_cold / old_cold:.3f}, warm p50 {new_warm / old_warm:.3f} (fresh: the first "
        "request of a new server process; cold: its first diff after one index request; "
        f"medians of {args.cold_runs} processes each; target cold <= {COLD_TARGET_MS:.0f} ms, "
        f"warm ratio <= {WARM_RATIO_TARGET})"
    )
    load = ", ".join(f"{figure:.1f}" for figure in os.getloadavg())
    print(f"load average at the end (1, 5, 15 min; {os.cpu_count()} cores): {load}")
    met = p50 <= P50_TARGET_MS and p99 <= P99_TARGET_MS
    met = met and new_cold <= COLD_TARGET_MS and new_warm / old_warm <= WARM_RATIO_TARGET
    print("targets met" if met else "TARGET MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
