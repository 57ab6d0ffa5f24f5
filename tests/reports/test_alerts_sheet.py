"""The evidence pack's Security alerts sheet, written and read back by an independent reader
(python-calamine): the end snapshot's open alerts, the counts with what the cap left out, the
period's new and resolved alerts; "not collected" for a snapshot from before alerts."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditor.core import registry
from auditor.core.model import TenantPosture
from auditor.core.workbook import ALERTS, pack_layout
from auditor.core.workbook_alerts import NOT_COLLECTED
from auditor.core.workbook_writer import write_workbook
from tests.fixtures.alert_sections import HOSTILE, with_alerts
from tests.reports.packs import pack_inputs, read_calamine
from tools.posture_factory import make_posture, tenant_id_for

TENANT = tenant_id_for(7)


def postures() -> tuple[TenantPosture, TenantPosture]:
    start = make_posture(TENANT)
    sub = start.tenant.subscriptions[0].subscription_id
    alerts = with_alerts(sub)
    # At the start only the in-progress alert was open: the active High one is new.
    start_alerts = {
        "alert_counts": alerts["alert_counts"],
        "alerts": tuple(a for a in alerts["alerts"] if a.severity.value != "High"),
    }
    return registry.posture_of(start, start_alerts), registry.posture_of(start, alerts)


def sheet(start: TenantPosture, end: TenantPosture, path: Path) -> list[list[Any]]:
    write_workbook(pack_layout(pack_inputs(start, end)), path)
    return read_calamine(path)[ALERTS]


def test_the_sheet_lists_open_alerts_marks_new_ones_and_counts_every_alert(
    tmp_path: Path,
) -> None:
    start, end = postures()
    rows = sheet(start, end, tmp_path / "pack.xlsx")
    header = rows[0]
    table = [dict(zip(header, row, strict=False)) for row in rows[1:3]]
    assert [(r["Severity"], r["Status"], r["New in period"]) for r in table] == [
        ("High", "Active", "Yes"),
        ("Medium", "InProgress", "No"),
    ]
    # Customer-controlled text is a string cell, never a formula.
    assert table[0]["Alert"] == HOSTILE
    assert table[0]["Started (UTC)"] == datetime(2026, 11, 28, 7, tzinfo=UTC).replace(tzinfo=None)
    text = [" ".join(str(c) for c in row if c not in ("", None)) for row in rows]
    assert any(line.startswith("Cap 0 open alerts were left out") for line in text)
    assert any("1 new open alerts (1 of High severity); 0 no longer open" in line for line in text)
    counted = [r for r in rows if r[:2] in (["Low", "Resolved"], ["Informational", "Dismissed"])]
    assert [r[3] for r in counted] == [1, 1]


def test_a_snapshot_from_before_alerts_says_not_collected(tmp_path: Path) -> None:
    start, end = postures()
    old = dataclasses.replace(end, sections={})
    rows = sheet(start, old, tmp_path / "pack.xlsx")
    assert any(NOT_COLLECTED in " ".join(str(c) for c in row) for row in rows)


def test_a_start_from_before_alerts_is_not_comparable(tmp_path: Path) -> None:
    start, end = postures()
    rows = sheet(dataclasses.replace(start, sections={}), end, tmp_path / "pack.xlsx")
    assert any("Not comparable" in " ".join(str(c) for c in row) for row in rows)
