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
from tests.reports.packs import pack_inputs, read_calamine, read_openpyxl
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


KEY = "1195afff-c881-495e-9bc5-1486211ae03f"
STANDARD = "Test-Std"


def security(sub: str, path: str) -> str:
    return f"https://management.azure.com/subscriptions/{sub}/providers/Microsoft.Security/{path}"


def compliance(
    sub: str, standard: str, control: str, assessment: str, link: str, state: State = State.FAILED
) -> ComplianceRecord:
    return ComplianceRecord(sub, standard, control, assessment, state, 0, 1, 0, "d", "", link)


def test_impacted_resources_read_per_control_with_standard_control_assessment_and_resource(
    tmp_path: Path,
) -> None:
    start, end, sub = postures()
    mapped = (
        compliance(
            sub, "PCI-DSS-4", "8.3.1", "c0", security(sub, f"securityStatuses/{KEY.upper()}")
        ),
        compliance(sub, "Azure-CIS-1.4.0", "10.1", "c1", security(sub, f"assessments/{KEY}")),
        compliance(sub, "Azure-CIS-1.4.0", "9.2", "c2", security(sub, f"assessments/{KEY}")),
        compliance(sub, "Azure-CIS-1.4.0", "9.9", "c3", "https://portal.azure.com/#blade/other"),
    )
    recs = (rec(sub, KEY, "Low", 2), rec(sub, "other", "High", 1))
    end = dataclasses.replace(
        registry.posture_of(end, {"recommendations": recs}),
        compliance=end.compliance + mapped,
    )
    rows = table([list(r) for r in read_openpyxl_pack(start, end, tmp_path)[IMPACTED]])
    got = [
        (r["Standard"], r["Control"], r["Assessment"], r["Subscription ID"], r["Resource ID"])
        for r in rows
    ]
    mine = [VM.format(sub=sub, n=f"{KEY}{i}") for i in range(2)]
    # By standard, then control in natural order (9.2 before 10.1), each resource of the
    # control's recommendation; recommendations feeding no control last.
    assert got == [
        ("Azure-CIS-1.4.0", "9.2", "c2", sub, mine[0]),
        ("Azure-CIS-1.4.0", "9.2", "c2", sub, mine[1]),
        ("Azure-CIS-1.4.0", "10.1", "c1", sub, mine[0]),
        ("Azure-CIS-1.4.0", "10.1", "c1", sub, mine[1]),
        ("PCI-DSS-4", "8.3.1", "c0", sub, mine[0]),
        ("PCI-DSS-4", "8.3.1", "c0", sub, mine[1]),
        ("no control", None, None, sub, VM.format(sub=sub, n="other0")),
    ]
    assert {r["Recommendation key"] for r in rows[:6]} == {KEY}


def read_openpyxl_pack(
    start: TenantPosture, end: TenantPosture, tmp_path: Path
) -> dict[str, list[tuple[Any, ...]]]:
    path = tmp_path / "pack.xlsx"
    write_workbook(pack_layout(pack_inputs(start, end)), path)
    return read_openpyxl(path)


def standard_rows(start: TenantPosture, end: TenantPosture, tmp_path: Path) -> list[dict[str, Any]]:
    read = read_openpyxl_pack(start, end, tmp_path)
    return table([list(r) for r in read[STANDARD]])


def with_standard(
    end: TenantPosture, sub: str, recs: tuple[RecommendationSummary, ...] | None
) -> TenantPosture:
    """`end` with a standard of five assessments; `recs` its recommendations (None: a snapshot
    from before the section)."""
    rows = (
        compliance(sub, STANDARD, "1", "a-listed", security(sub, f"assessments/{KEY}")),
        compliance(
            sub, STANDARD, "2", "b-passing", security(sub, f"assessments/{KEY}"), State.PASSED
        ),
        compliance(sub, STANDARD, "3", "c-unlinked", "https://portal.azure.com/#blade/x"),
        compliance(sub, STANDARD, "4", "d-healthy", security(sub, "assessments/" + "0" * 36)),
        compliance(sub, STANDARD, "5", "e-hostile", security(sub, "assessments/" + "e" * 36)),
    )
    base = dataclasses.replace(end, compliance=end.compliance + rows, sections={})
    if recs is None:
        return base
    return registry.posture_of(base, {"recommendations": recs})


def test_standard_sheets_name_the_failing_resources_of_each_failing_assessment(
    tmp_path: Path,
) -> None:
    start, end, sub = postures()
    listed = rec(sub, KEY, "High", 10, left_out=3)  # 7 listed, 3 left out by the cap
    name = '=HYPERLINK("x","open")'
    hostile_id = f"/subscriptions/{sub}/resourceGroups/rg/providers/X.Y/z/{name}\x1b[2J\u202e"
    hostile = dataclasses.replace(rec(sub, "e" * 36, "Low", 1), unhealthy_resources=(hostile_id,))
    healthy = rec(sub, "0" * 36, "Low", 0)
    rows = {
        r["Assessment"]: r
        for r in standard_rows(start, with_standard(end, sub, (listed, hostile, healthy)), tmp_path)
    }
    names = ", ".join(f"vm-{KEY}{i}" for i in range(5))
    assert rows["a-listed"]["Failing resources"] == (
        f"{names} and 2 more (Impacted resources); 3 more not listed by the snapshot "
        "(cap AUDITOR_RECOMMENDATION_MAX_RESOURCES)"
    )
    assert rows["a-listed"]["Failing resource IDs"] == "; ".join(
        [
            *listed.unhealthy_resources,
            "3 more not listed by the snapshot (cap AUDITOR_RECOMMENDATION_MAX_RESOURCES)",
        ]
    )
    # Only failing rows name resources; a failing row without resources says why.
    assert rows["b-passing"]["Failing resources"] is None
    assert rows["c-unlinked"]["Failing resources"] == "no source assessment named"
    assert rows["d-healthy"]["Failing resources"] == (
        "none listed: its recommendation has no unhealthy resources in this snapshot"
    )
    # Customer-controlled ids stay plain text: no formula, no control characters.
    assert rows["e-hostile"]["Failing resources"] == f"{name}[2J"  # ESC and RLO removed
    assert rows["e-hostile"]["Failing resource IDs"] == hostile_id.replace("\x1b", "")[:-1]


def test_standard_sheets_of_a_snapshot_from_before_recommendations_say_not_collected(
    tmp_path: Path,
) -> None:
    start, end, sub = postures()
    rows = standard_rows(start, with_standard(end, sub, None), tmp_path)
    failing = [r for r in rows if r["State"] == "Failed"]
    assert len(failing) == 4
    assert {(r["Failing resources"], r["Failing resource IDs"]) for r in failing} == {
        ("not collected", "not collected")
    }
