"""The evidence-pack steps of `make demo`: snapshot (unless the demo already has), write one
tenant's pack and store it write-once, verify everything, and print where the pack is."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tools.devservices import REPO

Run = Callable[..., int]


def _tenants(env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "auditor", "tenants", "--json"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return [t["tenantId"] for t in json.loads(done.stdout)["tenants"]]


def evidence_pack_steps(env: dict[str, str], run: Run, folder: Path) -> Path:
    """Run the steps with the demo's `run(step, argv, env)`; returns the workbook's path."""
    tenants = _tenants(env)
    if not tenants:
        run("Snapshot every delegated tenant (commit + anchor)", ["snapshot", "--all"], env)
        tenants = _tenants(env)
    if not tenants:
        raise SystemExit("demo: no tenant has a committed snapshot; no evidence pack to write")
    out = folder / "evidence-pack.xlsx"
    out.unlink(missing_ok=True)
    run(
        "Write the first tenant's evidence pack and store it write-once "
        "(workbook + OSCAL + manifest)",
        ["report", "--tenant", tenants[0], "--out", str(out)],
        env,
    )
    run(
        "Verify snapshot hashes, the hash chain, anchors and stored packs",
        ["verify", "--all", "--reports"],
        env,
    )
    if not out.exists():
        raise SystemExit("demo: the evidence pack was not written")
    print(f"\nEvidence pack: {out}")
    return out
