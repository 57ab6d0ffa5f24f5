"""Evidence-pack generation (workbook + OSCAL) against xlsxwriter's constant-memory mode, and
its peak memory.

Two snapshots of one tenant with 100,000 compliance records each (20 subscriptions, four
standards, 2 % of the records in another state at the end), built in memory. The pack is
generated as the report service does once the snapshots are read: diff, layout, and the
streaming openpyxl writer, every sheet included (Cover, Summary with charts, four standard sheets
with the 100,000 assessment rows, Changes, Hardening, ...), then the OSCAL assessment results of
the period (one result per snapshot: 200,000 observations and their findings). The baseline,
measured in the same run on the same machine, is xlsxwriter in constant-memory mode writing the
same 100,000 assessment rows (the standard sheets' rows, computed beforehand, with the same date
format). Rounds alternate the two; the ratio uses each side's best round. OSCAL generation's own
time is printed too.

Memory is measured in child processes (one for the whole pack, one for OSCAL alone) that build
the snapshots and then generate: tracemalloc's peak of the generation (what generating allocates
on top of the two snapshots already in memory), and the child's own peak resident set size,
VmHWM of /proc/self/status, reset (clear_refs) once the snapshots are built, beside the resident
size at that moment. ru_maxrss is not used: a child started by fork inherits its parent's
high-water mark.

Targets: ratio <= 1.3 and generation peak <= 150 MB. Exit code 1 when a target is missed.

    python -m bench.bench_report [--records N] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
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
from auditor.core.oscal import OscalStats, write_period_results
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


def generate_oscal(start: Any, end: Any, path: Path) -> OscalStats:
    """The pack's OSCAL document, as the report service writes it (snapshots loaded on use)."""
    read = {s.index.snapshot_id: s for s in (start, end)}
    with path.open("wb") as out:
        return write_period_results(
            (start.index, end.index),
            lambda entry: read[entry.snapshot_id],
            out,
            generator="bench",
            period=(start.index.scheduled_at, end.index.scheduled_at),
        )


def generate(start: Any, end: Any, path: Path) -> int:
    """One pack (workbook, then OSCAL), as the report service builds it from two read
    snapshots; returns the workbook's rows."""
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
    generate_oscal(start, end, path.with_suffix(".oscal.json"))
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


def _status_mb(field: str) -> float:
    """A size from /proc/self/status (VmRSS, VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def child_memory(records: int, what: str) -> dict[str, float]:
    """Runs in the child: build the snapshots, then generate the pack (or its OSCAL document
    alone) under tracemalloc, with the process's high-water mark reset in between."""
    start, end = build_snapshots(records)
    # "5" resets VmHWM to the current resident size (Linux >= 4.0): the peak from here on.
    Path("/proc/self/clear_refs").write_text("5")
    rss_inputs = _status_mb("VmRSS")
    with tempfile.TemporaryDirectory() as folder:
        tracemalloc.start()
        if what == "oscal":
            generate_oscal(start, end, Path(folder) / "pack.oscal.json")
        else:
            generate(start, end, Path(folder) / "pack.xlsx")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {
        "generation_peak_mb": peak / MB,
        "rss_after_inputs_mb": rss_inputs,
        "rss_peak_mb": _status_mb("VmHWM"),
    }


def _child(records: int, what: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_report", "--child-memory", what, "--records",
         str(records)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_report", description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child-memory", choices=("pack", "oscal"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_memory:
        print(json.dumps(child_memory(args.records, args.child_memory)))
        return 0

    print(f"building two snapshots of {args.records:,} compliance records (2 % changed)...")
    start, end = build_snapshots(args.records)
    baseline_rows = assessment_rows(end)
    count = sum(len(rows) for _, rows in baseline_rows)
    ours: list[float] = []
    theirs: list[float] = []
    oscal: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        pack, plain = Path(folder) / "pack.xlsx", Path(folder) / "baseline.xlsx"
        document = pack.with_suffix(".oscal.json")
        for number in range(1, args.rounds + 1):
            ours.append(_timed(lambda: generate(start, end, pack)))
            theirs.append(_timed(lambda: write_baseline(baseline_rows, plain)))
            oscal.append(_timed(lambda: generate_oscal(start, end, document)))
            print(
                f"  round {number}: pack {ours[-1]:.2f} s (workbook "
                f"{pack.stat().st_size / MB:.1f} MB, OSCAL {document.stat().st_size / MB:.1f} MB), "
                f"xlsxwriter {theirs[-1]:.2f} s ({plain.stat().st_size / MB:.1f} MB); "
                f"OSCAL alone {oscal[-1]:.2f} s",
                flush=True,
            )
    ratio = min(ours) / min(theirs)
    memory = _child(count, "pack")
    oscal_memory = _child(count, "oscal")
    peak = memory["generation_peak_mb"]

    print(f"assessment rows: {count:,} (OSCAL: 2 results, {2 * count:,} observations)")
    print(f"pack generation (all sheets + OSCAL): best {min(ours):.2f} s")
    print(f"xlsxwriter constant_memory (rows):    best {min(theirs):.2f} s")
    print(f"ratio: {ratio:.2f}x (target <= {RATIO_TARGET}x)")
    print(f"OSCAL generation alone:               best {min(oscal):.2f} s")
    for name, figures in (("pack", memory), ("OSCAL alone", oscal_memory)):
        print(
            f"memory, {name}: generation peak {figures['generation_peak_mb']:.1f} MB "
            f"(tracemalloc); process peak RSS {figures['rss_peak_mb']:.0f} MB (VmHWM), of "
            f"which {figures['rss_after_inputs_mb']:.0f} MB before generating (interpreter, "
            "libraries and the two snapshots)"
        )
    print(f"target: pack generation peak <= {PEAK_TARGET_MB:.0f} MB")
    ok = ratio <= RATIO_TARGET and peak <= PEAK_TARGET_MB
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
