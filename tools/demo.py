"""`make demo`: the auditor end to end on the simulator's default estate, then stop everything.

Starts Azurite and the Azure control-plane simulator on free loopback ports, runs the product's
own command line against them exactly as an operator would, prints what it did and where the
results are, and stops what it started (also on Ctrl-C or failure).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from tools.demo_dashboard import dashboard_step
from tools.demo_diff import diff_steps
from tools.demo_evidence import evidence_pack_steps
from tools.demo_snapshots import snapshot_steps
from tools.devservices import REPO, start_azurite

DEMO_DIR = REPO / ".demo"


def run(step: str, argv: list[str], env: dict[str, str], check: bool = True) -> int:
    print(f"\n── {step}\n$ python -m auditor {shlex.join(argv)}", flush=True)
    code = subprocess.call([sys.executable, "-m", "auditor", *argv], env=env, cwd=REPO)
    if check and code not in (0, 1):
        raise SystemExit(f"demo step failed ({code}): {step}")
    return code


def main(argv: list[str] | None = None) -> int:
    """`make demo` (everything, then the dashboard) or, with --serve, `make serve` (two days of
    snapshots, then the dashboard until Enter or Ctrl-C)."""
    from tools.azure_sim.launcher import start_simulator

    args = sys.argv[1:] if argv is None else argv
    serve_only = "--serve" in args

    DEMO_DIR.mkdir(exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="sim-", dir=DEMO_DIR))
    print("Starting Azurite and the Azure simulator (tiny estate, Resource Graph quota on)...")
    with start_azurite() as azurite, start_simulator(state, size="tiny", seed=1, day=0) as sim:
        env = dict(os.environ)
        for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "MSI_ENDPOINT"):
            env.pop(name, None)
        env.update(sim.env())
        env["AUDITOR_STORAGE"] = azurite.connection_string
        print(
            f"  Azurite   blob/queue/table on 127.0.0.1:{azurite.blob_port}/"
            f"{azurite.queue_port}/{azurite.table_port} (pid {azurite.pid})"
        )
        print(f"  simulator {sim.base_url} (pid {sim.pid})")

        if serve_only:
            snapshot_steps(env, run, sim)
            dashboard_step(env, wait=True)
            print("\nStopping every service it started.")
            return 0
        run(
            "Discover delegated tenants and collect their posture (day 0)",
            ["collect", "--all"],
            env,
        )
        snapshot_steps(env, run, sim)
        diff_steps(env)
        evidence_pack_steps(env, run, DEMO_DIR)
        dashboard_step(env, wait=sys.stdin.isatty())
        print("\nDemo finished: every service it started is being stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
