"""Evidence-pack inputs for tests and the benchmark: snapshots of a synthetic tenant, their diff
and the manifest that names them. Pure (no store): the store's own tests cover storage."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from auditor.core.diff import diff_snapshots
from auditor.core.evidence import PackManifest, SnapshotRef
from auditor.core.model import State, TenantPosture
from auditor.core.snapshot import (
    Snapshot,
    SnapshotIndexEntry,
    Transition,
    compliance_by_standard,
    slot_of,
)
from auditor.core.workbook import PackInputs

TENANT = "7e0a0000-0000-0000-0000-00000000000a"
START = "20250101T020000Z"
END = "20250131T020000Z"
PERIOD_FROM = datetime(2025, 1, 1, tzinfo=UTC)
PERIOD_TO = datetime(2025, 2, 1, tzinfo=UTC)
GENERATED = datetime(2025, 2, 1, 4, 0, 5, tzinfo=UTC)
REPORT_ID = "20250201T040005Z-0a1b2c3d"


def fake_hash(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def index_entry(
    posture: TenantPosture, snapshot_id: str, previous: SnapshotIndexEntry | None = None
) -> SnapshotIndexEntry:
    c = posture.completeness
    at = slot_of(snapshot_id)
    return SnapshotIndexEntry(
        tenant_id=posture.tenant.tenant_id,
        tenant_name=posture.tenant.display_name,
        snapshot_id=snapshot_id,
        scheduled_at=at,
        finished_at=at + timedelta(minutes=3),
        status=c.status,
        reasons=c.reasons,
        expected_subscriptions=c.expected_subscriptions,
        collected_subscriptions=c.collected_subscriptions,
        counts={"compliance": len(posture.compliance)},
        compliance_by_standard=compliance_by_standard(posture.controls),
        collector_version="test",
        content_hash=fake_hash(f"{posture.tenant.tenant_id}/{snapshot_id}"),
        previous_snapshot_id=previous.snapshot_id if previous else None,
        previous_hash=previous.content_hash if previous else None,
    )


def snapshot(
    posture: TenantPosture,
    snapshot_id: str,
    previous: SnapshotIndexEntry | None = None,
    failing_since: datetime | None = None,
    **extra: Any,
) -> Snapshot:
    """A committed-looking snapshot; failing assessments have failed since `failing_since`."""
    at = slot_of(snapshot_id)
    since = failing_since or at
    transitions = {
        r.key: Transition(
            first_seen=since,
            last_changed=since,
            first_failed=since if r.state is State.FAILED else None,
        )
        for r in posture.compliance
    }
    return Snapshot(
        index=index_entry(posture, snapshot_id, previous),
        posture=posture,
        transitions=transitions,
        **extra,
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
    **end_extra: Any,
) -> PackInputs:
    """Inputs of a pack comparing START with END (and one snapshot in between)."""
    start = snapshot(start_posture, START)
    middle = index_entry(start_posture, "20250115T020000Z", start.index)
    end = snapshot(end_posture, END, previous=middle, failing_since=failing_since, **end_extra)
    period = (start.index, middle, end.index)
    return PackInputs(
        manifest=manifest(start, end, period),
        start=start,
        end=end,
        period=period,
        diff=diff_snapshots(start, end),
    )


def replace_records(posture: TenantPosture, **changes: Any) -> TenantPosture:
    return dataclasses.replace(posture, **changes)


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
