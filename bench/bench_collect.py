"""Benchmark the collector against the simulator (quota off and on).

    python -m bench.bench_collect [--skip-large]

1. `large` estate, quota off: the collector (real SDK clients, normalisation, accounting) vs a
   bare keep-alive HTTPS loop fetching the same pages (same queries, same REST calls) with no
   processing, in the same run. Target: ratio <= 1.5x; collector peak memory <= 400 MB.
   Also prints the queries issued beside the fewest pages the data needs, and the number of
   per-subscription REST calls azure-mgmt-security would need to read the same data.
2. `small` estate, default quota (15 queries / 5 s): wall time vs the quota-bound minimum
   (queries / 3 per second). Target: ratio <= 1.15x, 429s near zero.
3. `tiny` estate, hostile control plane, default caps: an endless $skipToken with real rows, and
   a 150 MB page (chunked, so its size is unknown until read). Target: peak memory <= 400 MB,
   every tenant incomplete with the reason (main grew to 362 MB and 771 MB, and said complete).

Each measured pass runs in a subprocess so that its peak memory is its own.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tools.azure_sim.launcher import CONFLICTING_ENV, Simulator, start_simulator
from tools.devservices import REPO

TARGET_RAW = 1.5
TARGET_QUOTA = 1.15
TARGET_MEMORY_MB = 400


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- workers (run in a subprocess) ------------------------------------------------------------


def worker_collector() -> dict[str, Any]:
    from auditor.services.collect import Collector
    from auditor.settings import load_settings

    started = time.perf_counter()
    queries = pages = rest = throttles = compliance = 0
    fewest_pages = 0
    with Collector(load_settings()) as collector:
        tenants = collector.discover()
        discovery_queries = 2  # one page each at these sizes (asserted below by the stats)
        for tenant in tenants:
            posture = collector.collect(tenant)
            c = posture.completeness
            # The estate plants malformed rows in one tenant: incomplete for that reason only.
            if c.status.value != "complete" and (c.errors or c.missing or not c.malformed):
                raise SystemExit(f"tenant {tenant.tenant_id} not complete: {c.reasons}")
            queries += c.queries
            pages += c.pages
            rest += c.rest_calls
            throttles += c.throttles
            compliance += len(posture.compliance)
            rows = c_rows(posture)
            fewest_pages += math.ceil(rows / 1000)
        rest += collector.rest.metadata_calls
    return {
        "wall": time.perf_counter() - started,
        "tenants": len(tenants),
        "queries": queries + discovery_queries,
        "pages": pages + discovery_queries,
        "fewest_pages": fewest_pages + discovery_queries,
        "rest_calls": rest,
        "throttles": throttles,
        "compliance": compliance,
        "peak_mb": peak_mb(),
    }


def c_rows(posture: Any) -> int:
    """Rows the tenant's data needed from Resource Graph (records before any roll-up)."""
    c = posture.completeness
    recommendation_rows = sum(h.healthy + h.unhealthy + h.not_applicable for h in posture.hardening)
    return (
        len(posture.compliance)
        + len(posture.standards)
        + len(posture.controls)
        + len(posture.plans)
        + len(posture.secure_scores)
        + len(posture.secure_score_controls)
        + len(posture.assignments)
        + sum(c.malformed.values())
        + recommendation_rows
    )


class Bare:
    """The simplest client that fetches the same pages: http.client + json, no processing."""

    def __init__(self) -> None:
        base = os.environ["AUDITOR_ARM_ENDPOINT"]
        self.port = int(base.rsplit(":", 1)[1])
        ctx = ssl.create_default_context(cafile=os.environ["REQUESTS_CA_BUNDLE"])
        self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=300)
        self.conn.request(
            "GET",
            f"/msi/token?api-version=2019-08-01&resource={base}",
            headers={"X-IDENTITY-HEADER": os.environ["IDENTITY_HEADER"]},
        )
        token = json.loads(self.conn.getresponse().read())["access_token"]
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.pages = 0

    def query(self, query: str, subscriptions: list[str] | None = None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        skip = None
        while True:
            options: dict[str, Any] = {"$top": 1000, "resultFormat": "objectArray"}
            if skip:
                options["$skipToken"] = skip
            body: dict[str, Any] = {"query": query, "options": options}
            if subscriptions is not None:
                body["subscriptions"] = subscriptions
            self.conn.request(
                "POST",
                "/providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01",
                body=json.dumps(body),
                headers=self.headers,
            )
            page = json.loads(self.conn.getresponse().read())
            self.pages += 1
            rows.extend(page["data"])
            skip = page.get("$skipToken")
            if not skip:
                return rows

    def get_all(self, path: str) -> None:
        url: str | None = path
        while url:
            self.conn.request("GET", url, headers=self.headers)
            page = json.loads(self.conn.getresponse().read())
            self.pages += 1
            next_link = page.get("nextLink")
            url = next_link.split(str(self.port), 1)[1] if next_link else None


def worker_bare() -> dict[str, Any]:
    from auditor.services.collect import (
        DISCOVER_DELEGATIONS,
        DISCOVER_SUBSCRIPTIONS,
        TENANT_QUERIES,
    )

    started = time.perf_counter()
    bare = Bare()
    subs = bare.query(DISCOVER_SUBSCRIPTIONS)
    delegated = {r["subscriptionId"] for r in bare.query(DISCOVER_DELEGATIONS)}
    tenants: dict[str, list[str]] = {}
    for row in subs:
        if row["subscriptionId"] in delegated:
            tenants.setdefault(row["tenantId"], []).append(row["subscriptionId"])
    bare.get_all("/providers/Microsoft.Security/assessmentMetadata?api-version=2021-06-01")
    for tenant_subs in tenants.values():
        for query in TENANT_QUERIES.values():
            bare.query(query, tenant_subs)
        for sub in tenant_subs:
            bare.get_all(
                f"/subscriptions/{sub}/providers/Microsoft.Security/"
                "jitNetworkAccessPolicies?api-version=2020-01-01"
            )
    return {"wall": time.perf_counter() - started, "pages": bare.pages, "peak_mb": peak_mb()}


# --- orchestration ----------------------------------------------------------------------------


def run_worker(kind: str, sim: Simulator) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in CONFLICTING_ENV}
    env.update(sim.env())
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_collect", "--worker", kind],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def rest_alternative(sim: Simulator) -> int:
    """REST calls azure-mgmt-security would need for the same data, one subscription at a time:
    per subscription, the standards list, one controls list per standard, one assessments list
    per control, secure scores, secure score controls, pricings, assessments, standard
    assignments and JIT policies; plus the tenant-level metadata once."""
    estate = sim.estate(details=False)
    calls = 1
    for tenant in estate["tenants"]:
        counts = tenant["counts"]
        subs = len(tenant["subscriptions"])
        calls += subs * (1 + 6)
        calls += counts["microsoft.security/regulatorycompliancestandards"]
        calls += counts[
            "microsoft.security/regulatorycompliancestandards/regulatorycompliancecontrols"
        ]
    return calls


def bench_large(tmp: Path) -> bool:
    print("large estate, quota off: collector vs a bare paging loop over the same pages")
    with start_simulator(tmp / "large", size="large", seed=1, quota="off") as sim:
        runs: dict[str, list[dict[str, Any]]] = {"bare": [], "collector": []}
        for kind in ("bare", "collector", "bare", "collector"):
            result = run_worker(kind, sim)
            runs[kind].append(result)
            print(f"  {kind:<9} {result['wall']:7.1f} s  peak {result['peak_mb']:6.0f} MB")
        rest_calls = rest_alternative(sim)
    bare = min(runs["bare"], key=lambda r: r["wall"])
    coll = min(runs["collector"], key=lambda r: r["wall"])
    ratio = coll["wall"] / bare["wall"]
    peak = max(r["peak_mb"] for r in runs["collector"])
    print(f"  tenants {coll['tenants']}, compliance records {coll['compliance']:,}")
    print(
        f"  queries issued {coll['queries']:,} (pages {coll['pages']:,}); fewest pages the data "
        f"needs {coll['fewest_pages']:,} ({coll['queries'] / coll['fewest_pages']:.2f}x)"
    )
    print(
        f"  REST calls: collector {coll['rest_calls']:,} (JIT per subscription + metadata once);"
        f" azure-mgmt-security per subscription would need {rest_calls:,} "
        f"({rest_calls / (coll['queries'] + coll['rest_calls']):.0f}x the collector's requests)"
    )
    print(
        f"  raw speed: collector {coll['wall']:.1f} s / bare loop {bare['wall']:.1f} s = "
        f"{ratio:.2f}x (target <= {TARGET_RAW}x); peak memory {peak:.0f} MB "
        f"(target <= {TARGET_MEMORY_MB} MB)"
    )
    return ratio <= TARGET_RAW and peak <= TARGET_MEMORY_MB


def bench_quota(tmp: Path) -> bool:
    print("small estate, default quota (15 queries / 5 s): wall vs quota-bound minimum")
    with start_simulator(tmp / "small", size="small", seed=1, quota="15/5") as sim:
        result = run_worker("collector", sim)
        stats = sim.stats()
    minimum = result["queries"] / 3.0
    ratio = result["wall"] / minimum
    print(
        f"  queries {result['queries']}, wall {result['wall']:.1f} s, quota-bound minimum "
        f"{minimum:.1f} s -> {ratio:.2f}x (target <= {TARGET_QUOTA}x); 429s met "
        f"{result['throttles']} (simulator counted {stats.get('arg_429', '?')})"
    )
    return ratio <= TARGET_QUOTA


def worker_hostile() -> dict[str, Any]:
    from auditor.services.collect import Collector
    from auditor.settings import load_settings

    started = time.perf_counter()
    statuses: set[str] = set()
    reasons: set[str] = set()
    rows = 0
    with Collector(load_settings()) as collector:
        for tenant in collector.discover():  # one posture at a time, as the product holds them
            posture = collector.collect(tenant)
            statuses.add(posture.completeness.status.value)
            reasons.update(posture.completeness.reasons)
            rows += len(posture.compliance)
            del posture
    return {
        "wall": time.perf_counter() - started,
        "statuses": sorted(statuses),
        "reasons": sorted(reasons),
        "rows": rows,
        "peak_mb": peak_mb(),
    }


HOSTILE = {
    "endless $skipToken, real rows": {"skip_token": "endless"},
    "150 MB page, chunked": {"oversized_page": {"bytes": 150 << 20, "chunked": True}},
}


def bench_hostile(tmp: Path) -> bool:
    print("tiny estate, hostile control plane, default caps: memory and outcome")
    ok = True
    with start_simulator(tmp / "hostile", size="tiny", seed=1, quota="off") as sim:
        for label, faults in HOSTILE.items():
            sim.clear_faults()
            sim.set_faults(faults)
            result = run_worker("hostile", sim)
            bounded = result["peak_mb"] <= TARGET_MEMORY_MB and result["statuses"] == ["incomplete"]
            ok = ok and bounded
            first = next((r for r in result["reasons"] if "malformed" not in r), "")
            print(
                f"  {label:<30} {result['wall']:6.1f} s  peak {result['peak_mb']:4.0f} MB "
                f"(target <= {TARGET_MEMORY_MB} MB)  {'/'.join(result['statuses'])}: {first}"
            )
    return ok


WORKERS = {"collector": worker_collector, "bare": worker_bare, "hostile": worker_hostile}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--skip-large", action="store_true", help="no large-estate benchmark")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(WORKERS[args.worker]()))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-collect-") as tmp:
        ok = bench_quota(Path(tmp))
        ok = bench_hostile(Path(tmp)) and ok
        if not args.skip_large:
            ok = bench_large(Path(tmp)) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
