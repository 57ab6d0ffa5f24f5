"""Benchmark: page through every regulatory compliance assessment row of the simulator's estate.

    python bench/bench_sim_paging.py [--size large] [--sdk-pages 50]

Starts ``python -m tools.azure_sim`` with the quota off, pages the compliance assessment query by
``$skipToken`` with a bare keep-alive HTTPS client (http.client + json), checks that the row count
equals the ground truth, and prints seconds, rows/s and the simulator's peak memory (VmHWM).
With ``--sdk-pages N`` it also times N pages through azure-mgmt-resourcegraph's client, whose
recursive deserialisation of ``data`` costs more than the server does.
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.azure_sim.launcher import Simulator, start_simulator

QUERY = (
    "securityresources | where type == 'microsoft.security/regulatorycompliancestandards/"
    "regulatorycompliancecontrols/regulatorycomplianceassessments' | project id, subscriptionId, "
    "tenantId, name, properties"
)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def token(sim: Simulator, conn: http.client.HTTPSConnection) -> str:
    conn.request(
        "GET",
        f"/msi/token?api-version=2019-08-01&resource={sim.base_url}",
        headers={"X-IDENTITY-HEADER": sim.identity_header},
    )
    resp = conn.getresponse()
    body = json.loads(resp.read())
    return str(body["access_token"])


def page_all(sim: Simulator) -> tuple[int, int, float]:
    ctx = ssl.create_default_context(cafile=sim.ca_bundle)
    conn = http.client.HTTPSConnection("127.0.0.1", sim.port, context=ctx, timeout=300)
    headers = {"Authorization": "Bearer " + token(sim, conn), "Content-Type": "application/json"}
    skip: str | None = None
    rows = pages = 0
    start = time.perf_counter()
    while True:
        options: dict[str, Any] = {"$top": 1000, "resultFormat": "objectArray"}
        if skip:
            options["$skipToken"] = skip
        conn.request(
            "POST",
            "/providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01",
            body=json.dumps({"query": QUERY, "options": options}),
            headers=headers,
        )
        resp = conn.getresponse()
        payload = json.loads(resp.read())
        if resp.status != 200:
            raise SystemExit(f"HTTP {resp.status}: {payload}")
        rows += len(payload["data"])
        pages += 1
        skip = payload.get("$skipToken")
        if not skip:
            break
    return rows, pages, time.perf_counter() - start


def sdk_pages(sim: Simulator, n: int) -> tuple[int, float]:
    import os

    os.environ.update(sim.env())
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.resourcegraph import ResourceGraphClient
    from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

    cred = DefaultAzureCredential()
    client = ResourceGraphClient(
        cred, base_url=sim.base_url, credential_scopes=[sim.base_url + "/.default"]
    )
    skip = None
    rows = 0
    start = time.perf_counter()
    for _ in range(n):
        r = client.resources(
            QueryRequest(query=QUERY, options=QueryRequestOptions(skip_token=skip, top=1000))
        )
        rows += len(r.data)
        skip = r.skip_token
        if not skip:
            break
    return rows, time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="large", choices=["tiny", "small", "large"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sdk-pages", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with start_simulator(tmp, size=args.size, seed=args.seed, quota=None) as sim:
            started = time.perf_counter() - t0
            truth = sim.estate(details=False)
            expected = sum(
                t["counts"][
                    "microsoft.security/regulatorycompliancestandards/"
                    "regulatorycompliancecontrols/regulatorycomplianceassessments"
                ]
                for t in truth["tenants"]
            )
            rows, pages, secs = page_all(sim)
            result = {
                "size": args.size,
                "startup_s": round(started, 2),
                "rows": rows,
                "expected_rows": expected,
                "pages": pages,
                "seconds": round(secs, 1),
                "rows_per_s": round(rows / secs),
                "server_peak_rss_mb": round(peak_rss_mb(sim.pid)),
            }
            if args.sdk_pages:
                n, s = sdk_pages(sim, args.sdk_pages)
                result["sdk_rows"] = n
                result["sdk_rows_per_s"] = round(n / s)
            result["stats"] = sim.stats()
            print(json.dumps(result, indent=2))
            return 0 if rows == expected else 1


if __name__ == "__main__":
    sys.exit(main())
