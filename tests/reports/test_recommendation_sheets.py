"""The evidence pack's Action plan and Impacted resources sheets, written and read back by an
independent reader (python-calamine): unhealthy recommendations by severity then impact, with
remediation, portal link and days unhealthy; the failing resources per recommendation with
what the cap left out; customer text as plain strings; "not collected" before the section."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from auditor.core import registry
from auditor.core.model import ComplianceRecord, RecommendationSummary, State, TenantPosture
from auditor.core.portal import recommendation_url
from auditor.core.workbook import ACTION_PLAN, IMPACTED, PUBLIC_PORTAL, pack_layout
from auditor.core.workbook_recommendations import NOT_COLLECTED
from auditor.core.workbook_writer import write_workbook
from tests.reports.packs import pack_inputs, read_calamine
from tools.posture_factory import make_posture, tenant_id_for

TENANT = tenant_id_for(8)
HOSTILE = '=HYPERLINK("https://evil.example","open")'
VM = "/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-{n}"


def rec(
    sub: str, key: str, severity: str, unhealthy: int, left_out: int = 0, name: str = ""
) -> RecommendationSummary:
    ids = tuple(VM.format(sub=sub, n=f"{key}{i}") for i in range(unhealthy - left_out))
    return RecommendationSummary(
        subscription_id=sub,
        recommendation=key,
        display_name=name or f"Fix {key}",
        healthy=2,
        unhealthy=unhealthy,
        not_applicable=1,
        severity=severity,
        unhealthy_resources=ids,
        unhealthy_left_out=left_out,
        remediation=f"Remediate {key}\x1b[2J\u202e",
    )


def postures() -> tuple[TenantPosture, TenantPosture, str]:
    base = make_posture(TENANT)
    sub = base.tenant.subscriptions[0].subscription_id
    start = (rec(sub, "low1", "Low", 9), rec(sub, "high2", "High", 1))
    end = (
        rec(sub, "low1", "Low", 9),
        rec(sub, "med1", "Medium", 4, left_out=1),
        rec(sub, "high1", "High", 2, name=HOSTILE),
        rec(sub, "high2", "High", 5),
        rec(sub, "fine", "High", 0),
    )
    with_recs = registry.posture_of
    return (
        with_recs(base, {"recommendations": start}),
        with_recs(base, {"recommendations": end}),
        sub,
    )


def sheets(start: TenantPosture, end: TenantPosture, path: Path) -> dict[str, list[list[Any]]]:
    inputs = pack_inputs(start, end)
    write_workbook(pack_layout(inputs), path)
    return read_calamine(path)


def table(rows: list[list[Any]]) -> list[dict[str, Any]]:
    header = rows[0]
    body = []
    for row in rows[1:]:
        if not any(c not in ("", None) for c in row):
            break
        body.append(dict(zip(header, row, strict=False)))
    return body


def test_the_action_plan_lists_unhealthy_recommendations_by_severity_then_impact(
    tmp_path: Path,
) -> None:
    start, end, sub = postures()
    inputs = pack_inputs(start, end)
    period_days = (inputs.end.index.scheduled_at - inputs.start.index.scheduled_at).days
    rows = table(sheets(start, end, tmp_path / "pack.xlsx")[ACTION_PLAN])
    assert [(r["Recommendation key"], r["Impacted resources"]) for r in rows] == [
        ("high2", 5),
        ("high1", 2),
        ("med1", 4),
        ("low1", 9),
    ]
    by_key = {r["Recommendation key"]: r for r in rows}
    # Unhealthy at both ends: at least the period; new in the period: at least 0 days.
    assert (
        by_key["high2"]["Unhealthy at start"],
        by_key["high2"]["Days unhealthy (at least)"],
    ) == (
        "Yes",
        period_days,
    )
    assert (by_key["med1"]["Unhealthy at start"], by_key["med1"]["Days unhealthy (at least)"]) == (
        "No",
        0,
    )
    assert by_key["high1"]["Portal link"] == recommendation_url(PUBLIC_PORTAL, "high1")
    # Customer-controlled text is a plain string cell: never a formula, no control characters.
    assert by_key["high1"]["Recommendation"] == HOSTILE
    assert by_key["high1"]["Remediation"] == "Remediate high1[2J"  # ESC and RLO removed
    assert by_key["high1"]["Subscription ID"] == sub


def test_impacted_resources_lists_each_failing_resource_and_counts_what_the_cap_left_out(
    tmp_path: Path,
) -> None:
    start, end, sub = postures()
    rows = sheets(start, end, tmp_path / "pack.xlsx")[IMPACTED]
    listed = table(rows)
    assert [r["Recommendation key"] for r in listed] == ["high2"] * 5 + ["high1"] * 2 + [
        "med1"
    ] * 3 + ["low1"] * 9
    first = listed[0]
    assert first["Resource ID"] == VM.format(sub=sub, n="high20")
    assert (first["Resource"], first["Resource type"]) == (
        "vm-high20",
        "microsoft.compute/virtualmachines",
    )
    text = [" ".join(str(c) for c in row if c not in ("", None)) for row in rows]
    assert any(line.startswith("Cap 1 unhealthy resources of 1 recommendations") for line in text)
    [capped] = [r for r in rows if r[:2] == ["Medium", "Fix med1"] and r[3] == 4]
    assert capped[3:6] == [4, 3, 1]


def test_a_snapshot_from_before_recommendations_says_not_collected(tmp_path: Path) -> None:
    start, end, _ = postures()
    old = dataclasses.replace(end, sections={})
    read = sheets(start, old, tmp_path / "pack.xlsx")
    for title in (ACTION_PLAN, IMPACTED):
        assert any(NOT_COLLECTED in " ".join(str(c) for c in row) for row in read[title])


def test_a_start_from_before_recommendations_leaves_days_unknown(tmp_path: Path) -> None:
    start, end, _ = postures()
    old = dataclasses.replace(start, sections={})
    rows = table(sheets(old, end, tmp_path / "pack.xlsx")[ACTION_PLAN])
    assert {r["Unhealthy at start"] for r in rows} == {"not comparable"}
    assert {r["Days unhealthy (at least)"] for r in rows} == {""}


def test_impacted_resources_name_the_controls_whose_assessments_come_from_the_recommendation(
    tmp_path: Path,
) -> None:
    start, end, sub = postures()
    key = "1195afff-c881-495e-9bc5-1486211ae03f"
    link = f"https://management.azure.com/subscriptions/{sub}/providers/Microsoft.Security/"
    mapped = tuple(
        ComplianceRecord(sub, standard, control, f"c{n}", State.FAILED, 0, 1, 0, "d", "", link)
        for n, (standard, control, link) in enumerate(
            (
                ("PCI-DSS-4", "8.3.1", link + f"securityStatuses/{key.upper()}"),
                ("Azure-CIS-1.4.0", "1.1", link + f"assessments/{key}"),
                ("Azure-CIS-1.4.0", "9.9", "https://portal.azure.com/#blade/other"),
            )
        )
    )
    end = dataclasses.replace(
        registry.posture_of(end, {"recommendations": (rec(sub, key, "High", 1),)}),
        compliance=end.compliance + mapped,
    )
    [row] = table(sheets(start, end, tmp_path / "pack.xlsx")[IMPACTED])
    assert row["Controls"] == "Azure-CIS-1.4.0 1.1; PCI-DSS-4 8.3.1"
