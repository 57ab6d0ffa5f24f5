"""The diff step of `make demo`: serve the auditor API locally (as `python -m auditor serve`) and
ask it what changed for one tenant between yesterday's and today's snapshots, as an auditor would.
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

from tools.devservices import serve_api


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as answer:  # noqa: S310 - loopback URL we built
        return json.loads(answer.read())


def diff_steps(env: dict[str, str]) -> None:
    print("\n── Ask the auditor API what changed", flush=True)
    print("$ python -m auditor serve --port <a free port>", flush=True)
    with serve_api(env) as root:
        base = f"{root}/api"
        tenants = _get(f"{base}/tenants")["value"]
        if not tenants:
            print("  no tenant has snapshots yet")
            return
        tenant = tenants[0]["tenantId"]
        url = f"{base}/tenants/{tenant}/diff"
        diff = _get(url)
        summary = diff["summary"]
        print(f"$ curl {url}")
        print(
            f"  {diff['from']['snapshotId']} ({diff['from']['status']}) -> "
            f"{diff['to']['snapshotId']} ({diff['to']['status']})"
        )
        print(f"  posture changes: {json.dumps(summary['posture'], sort_keys=True)}")
        print(f"  scope changes:   {json.dumps(summary['scope'], sort_keys=True)}")
        for row in summary["compliance"]:
            print(
                f"  {row['standard']:<36} compliance {row['before']} -> {row['after']} "
                f"(delta {row['delta']})"
            )
        for plan in summary["planDowngrades"]:
            print(
                f"  plan downgraded: {plan['plan']} in {plan['subscriptionId']} "
                f"{plan['before']['tier']} -> {plan['after']['tier']}"
            )
        print(
            f"  {diff['matchingChanges']} changes ({len(diff['value'])} in this page); "
            f"OpenAPI document: {base}/openapi.json"
        )


if __name__ == "__main__":
    diff_steps(dict(os.environ))
