"""The whole `large` simulated estate snapshotted inline with every section, beside the sections
that existed before issue 12, in the same run; and one tenant read back.

Starts Azurite and the simulator once (size large: 100 tenants × 10 subscriptions, about a
million compliance records and ~260,000 resource-level assessments; Resource Graph quota off),
then snapshots the whole estate twice, each time in a child process of its own (its own tables
and evidence container) as `snapshot --all` does inline: discover, then per tenant collect (real
SDK over HTTPS) and commit.

- **before issue 12**: compliance, standards, controls, Defender plans, secure score, hardening
  (its eight keys in a query of their own, as then) and assignments;
- **all sections**: the registry (auditor/core/registry.py), alerts and every recommendation
  with the resources that fail it included.

Each child prints its time, its peak memory (VmHWM: the collector and the commits run in it)
and, per query kind, the queries issued beside the fewest pages the data needs (per query call
— one per tenant and batch of subscriptions — its rows ÷ the page size, rounded up). Targets
on this 2-core machine: all sections at most 1.5× the time of the sections before issue 12,
at most 400 MB peak; the whole estate in at most 5 minutes; the largest tenant's full snapshot
read back in at most 1 second.

    python -m bench.bench_large_snapshot
"""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditor.adapters.resource_graph import PAGE_SIZE, QueryStats, ResourceGraph
from auditor.core import hardening, registry
from auditor.services.collect import DISCOVER_DELEGATIONS, DISCOVER_SUBSCRIPTIONS, Collector
from auditor.services.snapshot import open_service
from auditor.settings import load_settings
from tools.devservices import REPO, start_azurite

TARGET_RATIO = 1.5
TARGET_PEAK_MB = 400.0
TARGET_TOTAL_SECONDS = 300.0
TARGET_READ_SECONDS = 1.0
SLOT = datetime(2024, 5, 1, 2, tzinfo=UTC)
RESULT = "bench-result "  # the child's last line: this prefix, then JSON

# The hardening rows as read before issue 12: the eight keys, in a query of their own.
_HARDENING_ONLY = replace(
    registry.HARDENING,
    kinds=(
        replace(
            registry.ASSESSMENT_ROWS,
            query="hardening",
            where=f" and name in~ ({', '.join(repr(k) for k in hardening.HARDENING_KEYS)})",
        ),
    ),
)
VARIANTS: dict[str, tuple[registry.Section[Any], ...]] = {
    "before issue 12": tuple(
        _HARDENING_ONLY if s is registry.HARDENING else s for s in registry.REGISTRY if s.legacy
    ),
    "all sections": registry.REGISTRY,
}


@dataclass
class Tally:
    calls: int = 0  # query calls (one per tenant and batch of subscriptions)
    rows: int = 0
    pages: int = 0
    issued: int = 0  # requests sent, retries included
    fewest: int = 0  # the fewest pages the rows need


class CountingGraph(ResourceGraph):
    """The real Resource Graph client, counting rows, pages and requests per query kind."""

    def __init__(self, *args: Any, kinds: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kinds = kinds
        self.tally: dict[str, Tally] = {}
        self._lock = threading.Lock()

    def _pages(
        self,
        query: str,
        subscriptions: list[str] | None,
        stats: QueryStats,
        deadline: float | None,
    ) -> Iterator[list[dict[str, Any]]]:
        issued, rows, pages = stats.queries, 0, 0
        for page in super()._pages(query, subscriptions, stats, deadline):
            rows, pages = rows + len(page), pages + 1
            yield page
        with self._lock:
            tally = self.tally.setdefault(self.kinds.get(query, "other"), Tally())
            tally.calls += 1
            tally.rows += rows
            tally.pages += pages
            tally.issued += stats.queries - issued
            tally.fewest += max(1, math.ceil(rows / PAGE_SIZE))


class TenantEvents(logging.Handler):
    """Keeps the fields of every `snapshot.tenant` event (collect time per tenant)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.tenants: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("snapshot.tenant "):
            self.tenants.append(getattr(record, "auditor", {}))


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(variant: str) -> int:
    """Snapshot the whole estate with `variant`'s sections; print the figures as JSON."""
    events = TenantEvents()
    logger = logging.getLogger("auditor.snapshot")
    logger.addHandler(events)
    logger.setLevel(logging.INFO)
    sections = VARIANTS[variant]
    settings = load_settings()
    kinds = {DISCOVER_SUBSCRIPTIONS: "discover subscriptions"}
    kinds[DISCOVER_DELEGATIONS] = "discover delegations"
    kinds.update({query: label for label, query in registry.queries(sections).items()})
    from auditor.adapters.credentials import build_credential

    credential = build_credential()
    graph = CountingGraph(
        credential, settings.arm_endpoint, limits=settings.collect_limits, kinds=kinds
    )
    collector = Collector(settings, credential, graph=graph, sections=sections)
    with open_service(settings, with_queue=False, source=collector) as service:
        started = time.monotonic()
        outcomes = service.run_inline(SLOT)
        total = time.monotonic() - started
        entries = [o.entry for o in outcomes if o.entry is not None]
        largest = max(entries, key=lambda e: e.counts.get("compliance", 0))
        reads = []
        for _ in range(3):
            started = time.monotonic()
            snapshot = service.store.get_snapshot(largest.tenant_id, largest.snapshot_id)
            reads.append(time.monotonic() - started)
        assert len(snapshot.posture.compliance) == largest.counts["compliance"]
    statuses: dict[str, int] = {}
    for outcome in outcomes:
        statuses[outcome.outcome] = statuses.get(outcome.outcome, 0) + 1
    counts: dict[str, int] = {}
    for entry in entries:
        for name, n in entry.counts.items():
            counts[name] = counts.get(name, 0) + n
    result = {
        "seconds": total,
        "collect_seconds": sum(float(str(e.get("collect_seconds") or 0)) for e in events.tenants),
        "peak_mb": peak_mb(),
        "statuses": statuses,
        "counts": counts,
        "largest": [largest.tenant_id, largest.counts["compliance"]],
        "read_seconds": statistics.median(reads),
        "queries": {kind: vars(t) for kind, t in sorted(graph.tally.items())},
    }
    print(RESULT + json.dumps(result), flush=True)
    return 0


def run_child(variant: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_large_snapshot", "--child", variant],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stderr[-4000:])
        raise RuntimeError(f"the {variant!r} run failed (exit {done.returncode})")
    result: dict[str, Any] = json.loads(lines[-1][len(RESULT) :])
    return result


def report(variant: str, r: dict[str, Any]) -> None:
    counts = r["counts"]
    print(f"\n{variant}: tenants {sum(r['statuses'].values())} {r['statuses']}")
    print(
        f"  {r['seconds']:.1f} s (collect {r['collect_seconds']:.1f} s), peak {r['peak_mb']:.0f} MB"
        f" (VmHWM of the child); compliance records {counts.get('compliance', 0):,}, "
        f"recommendations {counts.get('recommendations', 0):,}, "
        f"alerts open {counts.get('alerts_open', 0):,}"
    )
    print(f"  {'query kind':<24}{'calls':>7}{'rows':>11}{'pages':>8}{'issued':>8}{'fewest':>8}")
    for kind, t in r["queries"].items():
        print(
            f"  {kind:<24}{t['calls']:>7,}{t['rows']:>11,}{t['pages']:>8,}{t['issued']:>8,}"
            f"{t['fewest']:>8,}  ({t['issued'] / max(1, t['fewest']):.2f}× the fewest)"
        )
    tenant, records = r["largest"]
    print(
        f"  largest tenant {tenant}: {records:,} records, read back in "
        f"{r['read_seconds']:.2f} s (median of 3, content hash verified)"
    )


def main() -> int:
    from tools.azure_sim.launcher import CONFLICTING_ENV, start_simulator

    state = Path(
        tempfile.mkdtemp(
            prefix="bench-sim-", dir=REPO / ".bench" if (REPO / ".bench").is_dir() else None
        )
    )
    started = time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    with (
        start_azurite() as azurite,
        start_simulator(state, size="large", seed=1, day=0, quota=None, timeout=180) as sim,
    ):
        print(f"services up in {time.monotonic() - started:.1f} s (Azurite, simulator large)")
        base = {k: v for k, v in os.environ.items() if k not in CONFLICTING_ENV}
        base.update(sim.env(), AUDITOR_STORAGE=azurite.connection_string)
        for number, variant in enumerate(VARIANTS):
            env = base | {
                "AUDITOR_TABLE_PREFIX": f"benchlarge{number}",
                "AUDITOR_EVIDENCE_CONTAINER": f"evidence-bench-large-{number}",
            }
            results[variant] = run_child(variant, env)
            report(variant, results[variant])
    old, new = results["before issue 12"], results["all sections"]
    ratio = new["seconds"] / old["seconds"]
    print(
        f"\nall sections vs before issue 12: {ratio:.2f}× the time "
        f"({new['seconds']:.1f} s vs {old['seconds']:.1f} s), peak {new['peak_mb']:.0f} MB vs "
        f"{old['peak_mb']:.0f} MB ({new['peak_mb'] / old['peak_mb']:.2f}×)"
    )
    ok = (
        ratio <= TARGET_RATIO
        and new["peak_mb"] <= TARGET_PEAK_MB
        and new["seconds"] <= TARGET_TOTAL_SECONDS
        and new["read_seconds"] <= TARGET_READ_SECONDS
    )
    print(
        f"targets: <= {TARGET_RATIO}× the time, <= {TARGET_PEAK_MB:.0f} MB, estate <= "
        f"{TARGET_TOTAL_SECONDS:.0f} s, read <= {TARGET_READ_SECONDS:.0f} s: "
        f"{'MET' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        sys.exit(child(sys.argv[2]))
    sys.exit(main())
