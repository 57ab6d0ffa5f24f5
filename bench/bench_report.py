"""Evidence-pack generation against xlsxwriter's constant-memory mode, and its peak memory.

Two snapshots of one tenant with 100,000 compliance records each (20 subscriptions, four
standards, 2 % of the records in another state at the end), built in memory. The pack is
generated as the report service does once the snapshots are read: diff, layout, and the
streaming openpyxl writer, every sheet included (Cover, Summary with charts, four standard sheets
with the 100,000 assessment rows, Changes, Hardening, ...). The baseline, measured in the same
run on the same machine, is xlsxwriter in constant-memory mode writing the same 100,000
assessment rows (the standard sheets' rows, computed beforehand, with the same date format).
Rounds alternate the two; the ratio uses each side's best round.

Memory is measured in a child process that builds the snapshots and then generates one pack:
tracemalloc's peak of the generation (what generating adds on top of the two snapshots already
in memory), and the child's peak resident set size (ru_maxrss: interpreter, libraries, the two
100,000-record snapshots and the generation together).

Targets: ratio <= 1.3 and generation peak <= 150 MB. Exit code 1 when a target is missed.

    python -m bench.bench_report [--records N] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import xlsxwriter

from auditor.core.diff import diff_snapshots
from auditor.core.evidence import PackManifest, SnapshotRef
from auditor.core.workbook import (
    STANDARD_COLUMNS,
    Link,
    PackInputs,
    pack_layout,
    page_labels,
    standard_sheet_titles,
    standard_sheets,
)
from auditor.core.workbook_writer import write_workbook
from tools.posture_factory import flip_states, make_sized_posture, make_snapshot

TENANT = "b3c0ffee-0000-4000-8000-000000000200"
START, END = "20261101T020000Z", "20261130T020000Z"
RATIO_TARGET = 1.3
PEAK_TARGET_MB = 150.0
MB = 1024 * 1024


def build_snapshots(records: int) -> tuple[Any, Any]:
    before = make_sized_posture(TENANT, subscriptions=20, records=records, seed=1)
    after = flip_states(before, 0.02, seed=2)
    start = make_snapshot(before, START, first_failed=datetime(2026, 10, 20, 2, tzinfo=UTC))
    end = make_snapshot(
        after, END, previous=start.index, first_failed=datetime(2026, 11, 10, 2, tzinfo=UTC)
    )
    return start, end


def generate(start: Any, end: Any, path: Path) -> int:
    """One pack, as the report service builds it from two read snapshots; returns its rows."""
    manifest = PackManifest(
        report_id="20261201T040000Z-bench000",
        tenant_id=TENANT,
        tenant_name=end.index.tenant_name,
        period_from=start.index.scheduled_at,
        period_to=end.index.scheduled_at,
        start=START,
        end=END,
        snapshots=(SnapshotRef.of(start.index), SnapshotRef.of(end.index)),
        generator_version="bench",
        generated_at=datetime(2026, 12, 1, 4, tzinfo=UTC),
    )
    inputs = PackInputs(
        manifest=manifest,
        start=start,
        end=end,
        period=(start.index, end.index),
        diff=diff_snapshots(start, end),
    )
    stats = write_workbook(pack_layout(inputs), path, labels=page_labels(inputs))
    return sum(sheet.rows for sheet in stats.sheets)


def assessment_rows(end: Any) -> list[tuple[str, list[Any]]]:
    titles = standard_sheet_titles(r.standard for r in end.posture.compliance)
    return [(sheet.title, list(sheet.rows)) for sheet in standard_sheets(end, titles)]


def write_baseline(sheets: list[tuple[str, list[Any]]], path: Path) -> None:
    """xlsxwriter, constant-memory mode: the same assessment rows, dates formatted alike."""
    book = xlsxwriter.Workbook(
        str(path),
        {"constant_memory": True, "strings_to_urls": False, "strings_to_formulas": False},
    )
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    header = [c.header for c in STANDARD_COLUMNS]
    for title, rows in sheets:
        sheet = book.add_worksheet(title)
        sheet.write_row(0, 0, header)
        for number, row in enumerate(rows, start=1):
            for col, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, date):
                    sheet.write_datetime(number, col, value, day)
                elif isinstance(value, Link):
                    sheet.write_string(number, col, value.text)  # the rows alone: no hyperlinks
                else:
                    sheet.write(number, col, value)
    book.close()


def _timed(call: Any) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def child_memory(records: int) -> dict[str, float]:
    """Runs in the child: build the snapshots, then generate one pack under tracemalloc."""
    start, end = build_snapshots(records)
    rss_inputs = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as folder:
        tracemalloc.start()
        generate(start, end, Path(folder) / "pack.xlsx")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {
        "generation_peak_mb": peak / MB,
        "rss_after_inputs_mb": rss_inputs,
        "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_report", description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child-memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_memory:
        print(json.dumps(child_memory(args.records)))
        return 0

    print(f"building two snapshots of {args.records:,} compliance records (2 % changed)...")
    start, end = build_snapshots(args.records)
    baseline_rows = assessment_rows(end)
    count = sum(len(rows) for _, rows in baseline_rows)
    ours: list[float] = []
    theirs: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        pack, plain = Path(folder) / "pack.xlsx", Path(folder) / "baseline.xlsx"
        for number in range(1, args.rounds + 1):
            ours.append(_timed(lambda: generate(start, end, pack)))
            theirs.append(_timed(lambda: write_baseline(baseline_rows, plain)))
            print(
                f"  round {number}: pack {ours[-1]:.2f} s ({pack.stat().st_size / MB:.1f} MB), "
                f"xlsxwriter {theirs[-1]:.2f} s ({plain.stat().st_size / MB:.1f} MB)",
                flush=True,
            )
    ratio = min(ours) / min(theirs)

    child = subprocess.run(
        [sys.executable, "-m", "bench.bench_report", "--child-memory", "--records", str(count)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    memory = json.loads(child.stdout.strip().splitlines()[-1])
    peak = memory["generation_peak_mb"]

    print(f"assessment rows: {count:,}")
    print(f"pack generation (all sheets):      best {min(ours):.2f} s")
    print(f"xlsxwriter constant_memory (rows): best {min(theirs):.2f} s")
    print(f"ratio: {ratio:.2f}x (target <= {RATIO_TARGET}x)")
    print(
        f"memory: generation peak {peak:.1f} MB (tracemalloc; target <= {PEAK_TARGET_MB:.0f} MB); "
        f"process peak RSS {memory['rss_peak_mb']:.0f} MB, of which "
        f"{memory['rss_after_inputs_mb']:.0f} MB before generating (interpreter, libraries and "
        "the two snapshots)"
    )
    ok = ratio <= RATIO_TARGET and peak <= PEAK_TARGET_MB
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
