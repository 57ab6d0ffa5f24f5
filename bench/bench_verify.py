"""`verify` over a year of daily snapshots, full against incremental, and a pack of that year.

One tenant with `--days` (365) daily snapshots of `--records` (5,000) compliance records each
over 10 subscriptions and four standards (tools/posture_factory.make_sized_posture; each day
1 % of the records changes state from the day before), committed through the real store
(anchored, as the product commits) to Azurite in memory. 5,000 records is a mid-sized tenant
(10 subscriptions with four standards assigned); the store's cost per snapshot is per record.

Printed:

- **full verify** of the year (`verify --full`: every snapshot's content read back, hashed and
  compared with its anchor; it leaves the checkpoint) against **incremental verify** (the
  default: one new snapshot committed after the checkpoint, then verify), `--rounds` rounds of
  the incremental one (each after one more day); time and peak memory of each, and the ratio
  incremental / full;
- a **pack of the year** (365 points of trend, first and last snapshot in full, the OSCAL
  document of every snapshot: the report service as the monthly timer runs it, not uploaded)
  against a **pack of the last 30 days** built in the same run: time, peak memory, sizes, and
  the ratio.

Memory is this process's peak resident set size (VmHWM of /proc/self/status, reset with
clear_refs before each step) beside the resident size at the step's start.

Targets: incremental / full <= 0.05; verify peak growth <= 300 MB; the year's pack peak growth
<= 2 x the month's + 50 MB (memory must not grow with the period). Exit code 1 when missed.

    python -m bench.bench_verify [--days N] [--records N] [--rounds N] [--no-pack]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from auditor.adapters.blobs import EvidenceStore
from auditor.adapters.tables.store import SnapshotStore
from auditor.core.evidence import iso
from auditor.services.report import ReportService
from auditor.services.verify import Verification, verify
from auditor.services.verify_checkpoint import FULL, INCREMENTAL
from auditor.settings import Settings, load_settings
from tools.devservices import start_azurite
from tools.posture_factory import flip_states, make_sized_posture

TENANT = "b3c0ffee-0000-4000-8000-000000000300"
DAY0 = datetime(2025, 1, 1, 2, tzinfo=UTC)
RATIO_TARGET = 0.05
VERIFY_GROWTH_TARGET_MB = 300.0
T = TypeVar("T")


def _status_mb(field: str) -> float:
    """A size from /proc/self/status (VmRSS, VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def measured(call: Callable[[], T]) -> tuple[T, float, float, float]:
    """(result, seconds, resident MB at the start, peak resident MB during the call)."""
    # "5" resets VmHWM to the current resident size (Linux >= 4.0): the peak from here on.
    Path("/proc/self/clear_refs").write_text("5")
    rss = _status_mb("VmRSS")
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started, rss, _status_mb("VmHWM")


def build_year(store: SnapshotStore, days: int, records: int) -> Any:
    posture = make_sized_posture(TENANT, subscriptions=10, records=records, seed=3)
    started = time.perf_counter()
    for day in range(days):
        posture = flip_states(posture, 0.01, seed=day)
        store.commit_snapshot(posture, DAY0 + timedelta(days=day), "bench")
        if (day + 1) % 50 == 0:
            spent = time.perf_counter() - started
            print(f"  {day + 1} snapshots committed ({spent / (day + 1):.2f} s each)", flush=True)
    print(f"committed {days} snapshots in {time.perf_counter() - started:.0f} s")
    return posture


def _checked(result: Verification, what: str) -> Verification:
    if not result.ok:
        raise RuntimeError(f"{what} found problems: {[str(f) for f in result.findings[:3]]}")
    return result


def bench_verify(
    settings: Settings, store: SnapshotStore, days: int, rounds: int, posture: Any
) -> tuple[bool, float]:
    evidence = EvidenceStore.from_settings(settings)
    raw = SnapshotStore.from_settings(settings, anchored=False)
    try:
        full, full_s, rss, peak = measured(
            lambda: _checked(verify(raw, evidence, [TENANT], checkpoints=FULL), "full verify")
        )
        print(
            f"full verify of {full.snapshots} snapshots: {full_s:.1f} s "
            f"({full_s / full.snapshots * 1000:.0f} ms a snapshot), peak RSS {peak:.0f} MB "
            f"(+{peak - rss:.0f} MB over {rss:.0f} MB); checkpoint {full.checkpoints[TENANT]}"
        )
        growths = [peak - rss]
        best = float("inf")
        for round_ in range(rounds):
            posture = flip_states(posture, 0.01, seed=days + round_)
            store.commit_snapshot(posture, DAY0 + timedelta(days=days + round_), "bench")
            result, seconds, rss, peak = measured(
                lambda: _checked(
                    verify(raw, evidence, [TENANT], checkpoints=INCREMENTAL), "incremental verify"
                )
            )
            assert result.trusted == result.snapshots - 1, result.scopes
            print(
                f"incremental verify, round {round_ + 1} ({result.trusted} snapshots trusted, "
                f"1 read): {seconds * 1000:.0f} ms, peak RSS {peak:.0f} MB (+{peak - rss:.0f} MB)"
            )
            best = min(best, seconds)
            growths.append(peak - rss)
    finally:
        raw.close()
        evidence.close()
    ratio = best / full_s
    ok = ratio <= RATIO_TARGET and max(growths) <= VERIFY_GROWTH_TARGET_MB
    print(
        f"ratio incremental / full: {ratio:.4f} ({best * 1000:.0f} ms vs {full_s:.1f} s; target "
        f"<= {RATIO_TARGET}); largest peak growth {max(growths):.0f} MB (target <= "
        f"{VERIFY_GROWTH_TARGET_MB:.0f} MB) -> {'OK' if ok else 'MISSED'}"
    )
    return ok, full_s


def bench_pack(settings: Settings, store: SnapshotStore, last: datetime) -> bool:
    evidence = EvidenceStore.from_settings(settings)
    service = ReportService(store, evidence, clock=lambda: last + timedelta(hours=2))
    figures = {}
    try:
        for label, start in (("30 days", last - timedelta(days=30)), ("the year", DAY0)):
            with tempfile.TemporaryDirectory(prefix="bench-verify-") as folder:
                out, oscal = Path(folder) / "pack.xlsx", Path(folder) / "pack.oscal.json"
                job = service.new_job(TENANT, iso(start), iso(last), "bench")
                built, seconds, rss, peak = measured(
                    partial(service.run, job, out=out, oscal_out=oscal, upload=False)
                )
                assert built is not None
                snapshots = len(built.manifest.snapshots)
                print(
                    f"pack of {label} ({snapshots} snapshots): {seconds:.1f} s, peak RSS "
                    f"{peak:.0f} MB (+{peak - rss:.0f} MB over {rss:.0f} MB); workbook "
                    f"{out.stat().st_size / 1e6:.1f} MB, OSCAL {oscal.stat().st_size / 1e6:.0f} MB",
                    flush=True,
                )
                figures[label] = (seconds, peak - rss)
    finally:
        evidence.close()
    (month_s, month_mb), (year_s, year_mb) = figures["30 days"], figures["the year"]
    limit = 2 * month_mb + 50
    ok = year_mb <= limit
    print(
        f"ratio year / 30 days: time {year_s / month_s:.1f}x, peak growth {year_mb:.0f} MB vs "
        f"{month_mb:.0f} MB (target <= {limit:.0f} MB) -> {'OK' if ok else 'MISSED'}"
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_verify", description=__doc__)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--records", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-pack", action="store_true", help="skip the pack of the year")
    args = parser.parse_args(argv)
    print(f"{args.days} daily snapshots of {args.records:,} compliance records (1 % drift a day)")
    with start_azurite() as azurite:
        settings = load_settings(
            {
                "AUDITOR_STORAGE": azurite.connection_string,
                "AUDITOR_TABLE_PREFIX": "bench" + uuid.uuid4().hex[:8],
                "AUDITOR_EVIDENCE_CONTAINER": "evidence-" + uuid.uuid4().hex[:8],
            }
        )
        EvidenceStore.from_settings(settings).create_container()
        with SnapshotStore.from_settings(settings) as store:  # anchored, as the product commits
            posture = build_year(store, args.days, args.records)
            ok, _ = bench_verify(settings, store, args.days, args.rounds, posture)
            if not args.no_pack:
                last = DAY0 + timedelta(days=args.days + args.rounds - 1)
                ok = bench_pack(settings, store, last) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
