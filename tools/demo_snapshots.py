"""The snapshot steps of `make demo`: two daily snapshots on two simulator days, then what is
stored. Yesterday's slot is taken inline on simulator day 0; the simulator then moves to day 1
and today's slot goes through the queue, as the Function App's timer and queue trigger would."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from auditor.core.schedule import latest_occurrence
from tools.devservices import REPO

Run = Callable[..., int]


def _slot(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def snapshot_steps(env: dict[str, str], run: Run, simulator: Any) -> None:
    """Run the steps with the demo's `run(step, argv, env)` against `simulator` (day 0 first)."""
    schedule = env.get("AUDITOR_SNAPSHOT_SCHEDULE") or "0 0 2 * * *"
    today = latest_occurrence(schedule, datetime.now(UTC))
    yesterday = today - timedelta(days=1)
    run(
        f"Snapshot every tenant for yesterday's slot ({_slot(yesterday)}), simulator day 0",
        ["snapshot", "--all", "--at", _slot(yesterday)],
        env,
    )
    simulator.set_day(1)
    run(
        f"A day later (simulator day 1): today's slot ({_slot(today)}) through the queue",
        ["snapshot", "--all", "--at", _slot(today), "--via-queue"],
        env,
    )
    run("Tenants and their latest snapshots", ["tenants"], env)
    listed = subprocess.run(
        [sys.executable, "-m", "auditor", "tenants", "--json"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    tenants = json.loads(listed.stdout)["tenants"]
    if tenants:
        run(
            "One tenant's snapshots, newest first, each naming its predecessor's hash",
            ["snapshots", "--tenant", tenants[0]["tenantId"]],
            env,
        )
