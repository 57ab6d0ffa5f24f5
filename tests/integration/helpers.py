"""What the collector's integration tests share: building the collector, ground truth, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from auditor.adapters.credentials import build_credential
from auditor.adapters.resource_graph import ResourceGraph
from auditor.core.model import CollectionStatus, Tenant
from auditor.services.collect import Collector
from auditor.settings import Settings, load_settings
from tools.azure_sim.estate import now_for_day
from tools.azure_sim.launcher import Simulator
from tools.devservices import REPO


def make_collector(
    settings: Settings | None = None, *, day: int = 0, **graph_options: Any
) -> Collector:
    """A collector whose clock is the simulator's `day` (alert look-backs count from it)."""
    settings = settings or load_settings()
    credential = build_credential()
    graph = (
        ResourceGraph(
            credential, settings.arm_endpoint, limits=settings.collect_limits, **graph_options
        )
        if graph_options
        else None
    )
    return Collector(
        settings, credential, graph=graph, rest_backoff_base=0.05, clock=lambda: now_for_day(day)
    )


def truth_tenants(sim: Simulator, day: int) -> dict[str, dict[str, Any]]:
    return {t["tenantId"]: t for t in sim.estate(day)["tenants"]}


def expected_status(truth: dict[str, Any]) -> CollectionStatus:
    """The estate plants malformed rows in one tenant: dropped rows make it incomplete."""
    return CollectionStatus.INCOMPLETE if truth["malformedRows"] else CollectionStatus.COMPLETE


def clean_tenant(collector: Collector, sim: Simulator) -> Tenant:
    """A discovered tenant without planted malformed rows (complete when nothing goes wrong)."""
    truth = truth_tenants(sim, 0)
    return next(t for t in collector.discover() if not truth[t.tenant_id]["malformedRows"])


def run_cli(*argv: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auditor", *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **env},
        timeout=timeout,
        check=False,
    )
