"""Evidence-pack inputs for tests: snapshots of a synthetic tenant, their diff and the manifest
that names them, and the workbook read back. Pure (no store): the store's own tests cover
storage."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from auditor.core.diff import diff_snapshots
from auditor.core.evidence import PackManifest, SnapshotRef
from auditor.core.model import CollectionStatus, TenantPosture
from auditor.core.snapshot import CarriedAssessment, Snapshot, SnapshotIndexEntry, slot_of
from auditor.core.workbook import PackInputs
from tools.posture_factory import index_entry, transitions_since

TENANT = "7e0a0000-0000-0000-0000-00000000000a"
START = "20250101T020000Z"
MIDDLE = "20250115T020000Z"
END = "20250131T020000Z"
PERIOD_FROM = datetime(2025, 1, 1, tzinfo=UTC)
PERIOD_TO = datetime(2025, 2, 1, tzinfo=UTC)
GENERATED = datetime(2025, 2, 1, 4, 0, 5, tzinfo=UTC)
REPORT_ID = "20250201T040005Z-0a1b2c3d"
COLLECTION = timedelta(minutes=3)  # how long each snapshot's collection took


def fake_hash(posture: TenantPosture, snapshot_id: str) -> str:
    """A content hash shaped like the store's (sha256 hex), fixed by tenant and snapshot."""
    return hashlib.sha256(f"{posture.tenant.tenant_id}/{snapshot_id}".encode()).hexdigest()


def pack_entry(
    posture: TenantPosture, snapshot_id: str, previous: SnapshotIndexEntry | None = None
) -> SnapshotIndexEntry:
    return index_entry(
        posture,
        snapshot_id,
        content_hash=fake_hash(posture, snapshot_id),
        previous=previous,
        took=COLLECTION,
    )


def snapshot(
    posture: TenantPosture,
    snapshot_id: str,
    previous: SnapshotIndexEntry | None = None,
    failing_since: datetime | None = None,
    carried: dict[tuple[str, str, str, str], CarriedAssessment] | None = None,
) -> Snapshot:
    """A committed-looking snapshot; failing assessments have failed since `failing_since`
    (default: since this snapshot)."""
    since = failing_since or slot_of(snapshot_id)
    return Snapshot(
        index=pack_entry(posture, snapshot_id, previous),
        posture=posture,
        transitions=transitions_since(posture, since),
        carried=carried or {},
    )


def manifest(
    start: Snapshot,
    end: Snapshot,
    period: Sequence[SnapshotIndexEntry],
    report_id: str = REPORT_ID,
    generated_at: datetime = GENERATED,
) -> PackManifest:
    return PackManifest(
        report_id=report_id,
        tenant_id=end.index.tenant_id,
        tenant_name=end.index.tenant_name,
        period_from=PERIOD_FROM,
        period_to=PERIOD_TO,
        start=start.index.snapshot_id,
        end=end.index.snapshot_id,
        snapshots=tuple(SnapshotRef.of(entry) for entry in period),
        generator_version="auditor/test",
        generated_at=generated_at,
    )


def pack_inputs(
    start_posture: TenantPosture,
    end_posture: TenantPosture,
    *,
    failing_since: datetime | None = None,
    carried: dict[tuple[str, str, str, str], CarriedAssessment] | None = None,
) -> PackInputs:
    """Inputs of a pack comparing START with END (and one snapshot in between); `carried`: the
    END snapshot's carried assessments."""
    start = snapshot(start_posture, START)
    middle = pack_entry(start_posture, MIDDLE, start.index)
    end = snapshot(end_posture, END, middle, failing_since, carried)
    period = (start.index, middle, end.index)
    return PackInputs(
        manifest=manifest(start, end, period),
        start=start,
        end=end,
        period=period,
        diff=diff_snapshots(start, end),
    )


def read_calamine(path: Path) -> dict[str, list[list[Any]]]:
    """Every sheet's cell values as python-calamine reads them (an independent reader)."""
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(str(path))
    return {name: book.get_sheet_by_name(name).to_python() for name in book.sheet_names}


def read_openpyxl(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True)
    try:
        return {ws.title: list(ws.iter_rows(values_only=True)) for ws in book.worksheets}
    finally:
        book.close()


WEEK_FROM = datetime(2025, 1, 1, tzinfo=UTC)
WEEK_TO = datetime(2025, 1, 7, 23, 59, 59, tzinfo=UTC)
WEEK_DAYS = [f"202501{day:02d}T020000Z" for day in range(1, 8)]
FAILED_DAY = WEEK_DAYS[5]  # the day before the end fails
MISSING_DAY = WEEK_DAYS[2]  # no snapshot at all


def failed_day_entry(posture: TenantPosture, snapshot_id: str, previous: SnapshotIndexEntry) -> Any:
    """A failed snapshot's index entry: no records, no compliance, the reason."""
    entry = pack_entry(posture, snapshot_id, previous)
    return replace(
        entry,
        status=CollectionStatus.FAILED,
        reasons=(
            "collection failed: Resource Graph answered 429 Too Many Requests on every retry "
            "(quota of 15 queries per 5 seconds exhausted by another tenant's run); no "
            "subscription of the tenant could be read, so nothing of this day is evidence",
        ),
        collected_subscriptions=(),
        counts={},
        compliance_by_standard={},
    )


def week_inputs(start_posture: TenantPosture, end_posture: TenantPosture) -> PackInputs:
    """A week of daily slots: complete days, one day without any snapshot (MISSING_DAY), a
    failed day (FAILED_DAY) just before the end snapshot (WEEK_DAYS[-1])."""
    start = snapshot(start_posture, WEEK_DAYS[0])
    entries = [start.index]
    for day in WEEK_DAYS[1:-1]:
        if day == MISSING_DAY:
            continue
        if day == FAILED_DAY:
            entries.append(failed_day_entry(start_posture, day, entries[-1]))
        else:
            entries.append(pack_entry(start_posture, day, entries[-1]))
    end = snapshot(end_posture, WEEK_DAYS[-1], entries[-1])
    entries.append(end.index)
    period = tuple(entries)
    m = replace(manifest(start, end, period), period_from=WEEK_FROM, period_to=WEEK_TO)
    return PackInputs(
        manifest=m, start=start, end=end, period=period, diff=diff_snapshots(start, end)
    )
