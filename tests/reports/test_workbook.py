"""The evidence-pack workbook, read back with openpyxl and with python-calamine (an independent
reader): its numbers equal the snapshots it was built from, and it follows Excel conventions."""

from __future__ import annotations

import dataclasses
import re
import zipfile
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from auditor.core.model import (
    DefenderPlan,
    HardeningCoverage,
    HardeningStatus,
    SecureScoreControl,
    StandardAssignment,
    State,
)
from auditor.core.snapshot import CarriedAssessment, Transition
from auditor.core.workbook import (
    ACTION_PLAN,
    ALERTS,
    ATTESTATIONS,
    CHANGES,
    COVER,
    DATA_QUALITY,
    HARDENING,
    IMPACTED,
    MAX_CELL_CHARS,
    MAX_ROWS,
    PLANS,
    PRINT_WIDTH_LANDSCAPE,
    PRINT_WIDTH_PORTRAIT,
    SECURE_SCORE,
    STANDARD_COLUMNS,
    SUMMARY,
    Column,
    Kind,
    PackInputs,
    PackOptions,
    PageLabels,
    SheetLayout,
    cell_text,
    control_counts,
    pack_layout,
    page_labels,
    standard_sheet_titles,
)
from auditor.core.workbook_writer import write_workbook
from tests.reports.packs import (
    END,
    FAILED_DAY,
    MISSING_DAY,
    START,
    TENANT,
    WEEK_DAYS,
    pack_inputs,
    read_calamine,
    read_openpyxl,
    week_inputs,
)
from tools.posture_factory import make_posture, missing_subscription, with_states

FAILING_SINCE = datetime(2025, 1, 10, 2, tzinfo=UTC)
END_AT = datetime(2025, 1, 31, 2, tzinfo=UTC)


def _end_posture() -> Any:
    start = make_posture(TENANT, subscriptions=2, standards=2, controls=4, assessments=3)
    flips = {
        r.key: State.FAILED if r.state is State.PASSED else State.PASSED
        for r in start.compliance[:6]
    }
    end = with_states(start, flips)
    sub = start.tenant.subscriptions[0].subscription_id
    return start, dataclasses.replace(
        end,
        plans=(
            *end.plans,
            DefenderPlan(sub, "Dns", "Standard", deprecated=True, replaced_by=("Dns2",)),
        ),
        hardening=(
            *end.hardening,
            HardeningCoverage(
                subscription_id=sub,
                recommendation="35f45c95-27cf-4e52-891f-8390d1de5828",
                feature="adaptive application controls",
                display_name="Adaptive application controls",
                status=HardeningStatus.RETIRED,
                healthy=0,
                unhealthy=0,
                not_applicable=0,
            ),
        ),
        assignments=(
            *end.assignments,
            StandardAssignment(
                subscription_id=sub,
                assignment_id="exempt-1",
                display_name="Exempt legacy VM",
                standard_id="PCI-DSS-4",
                effect="Exempt",
                assessment_key="4fb67663-9ab9-475d-b026-8c544cced439",
                expires_on="2025-01-15T00:00:00Z",
                exemption_category="waiver",
            ),
            StandardAssignment(
                subscription_id=sub,
                assignment_id="exempt-2",
                display_name="Exempt test subscription",
                standard_id="PCI-DSS-4",
                effect="Exempt",
                expires_on="2026-01-01T00:00:00Z",
                exemption_category="mitigated",
            ),
        ),
    )


@pytest.fixture(scope="module")
def inputs() -> PackInputs:
    start, end = _end_posture()
    return pack_inputs(start, end, failing_since=FAILING_SINCE)


@pytest.fixture(scope="module")
def pack(inputs: PackInputs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pack") / "pack.xlsx"
    write_workbook(pack_layout(inputs), path)
    return path


@pytest.fixture(scope="module")
def calamine(pack: Path) -> dict[str, list[list[Any]]]:
    return read_calamine(pack)


@pytest.fixture(scope="module")
def opx(pack: Path) -> dict[str, list[tuple[Any, ...]]]:
    return read_openpyxl(pack)


def _table(rows: list[Any]) -> list[dict[str, Any]]:
    header = list(rows[0])
    return [dict(zip(header, row, strict=False)) for row in rows[1:]]


def test_sheets_come_in_the_documented_order(inputs: PackInputs, pack: Path) -> None:
    titles = standard_sheet_titles(r.standard for r in inputs.end.posture.compliance)
    book = load_workbook(pack, read_only=True)
    assert book.sheetnames == [
        COVER,
        SUMMARY,
        *(titles[s] for s in sorted(titles, key=str.lower)),
        CHANGES,
        ACTION_PLAN,
        IMPACTED,
        HARDENING,
        PLANS,
        SECURE_SCORE,
        ATTESTATIONS,
        ALERTS,
        DATA_QUALITY,
    ]


@pytest.mark.parametrize("reader", ["calamine", "opx"])
def test_standard_sheets_hold_every_assessment_of_the_end_snapshot(
    inputs: PackInputs, reader: str, request: pytest.FixtureRequest
) -> None:
    sheets = request.getfixturevalue(reader)
    titles = standard_sheet_titles(r.standard for r in inputs.end.posture.compliance)
    for standard, title in titles.items():
        rows = _table(sheets[title])
        expected = {
            (r.subscription_id, r.control, r.assessment): r
            for r in inputs.end.posture.compliance
            if r.standard == standard
        }
        assert len(rows) == len(expected)
        for row in rows:
            record = expected[(row["Subscription ID"], row["Control"], row["Assessment"])]
            assert row["State"] == record.state.value
            assert row["Passed resources"] == record.passed_resources
            assert row["Failed resources"] == record.failed_resources
            assert row["Skipped resources"] == record.skipped_resources
            assert row["Assessment description"] == record.description
            # The Defender for Cloud page of the recommendation, never a Resource Manager URL.
            assert row["Portal link"] == (
                "https://portal.azure.com/#view/Microsoft_Azure_Security/"
                f"GenericRecommendationDetailsBlade/assessmentKey/{record.assessment}"
            )
            if record.state is State.FAILED:
                assert row["Days failing"] == (END_AT - FAILING_SINCE).days
                first = row["First failed (UTC)"]
                assert first in (date(2025, 1, 10), datetime(2025, 1, 10))
            else:
                assert row["Days failing"] in (None, "")


@pytest.mark.parametrize("reader", ["calamine", "opx"])
def test_summary_numbers_equal_the_snapshots(
    inputs: PackInputs, reader: str, request: pytest.FixtureRequest
) -> None:
    rows = request.getfixturevalue(reader)[SUMMARY]
    header = list(rows[0])
    standards = sorted(inputs.end.index.compliance_by_standard, key=str.lower)
    table = [dict(zip(header, row, strict=False)) for row in rows[1 : 1 + len(standards)]]
    assert [row["Standard"] for row in table] == standards
    for end, which in ((inputs.end, "end"), (inputs.start, "start")):
        counts = control_counts(end)
        for row in table:
            standard = row["Standard"]
            assert row[f"Passed controls ({which})"] == counts[standard][State.PASSED]
            assert row[f"Failed controls ({which})"] == counts[standard][State.FAILED]
            assert row[f"Skipped controls ({which})"] == counts[standard][State.SKIPPED]
            assert row[f"Unsupported controls ({which})"] == counts[standard][State.UNSUPPORTED]
            expected = end.index.compliance_by_standard[standard]
            # Percentages 0-100, the API's unit.
            assert row[f"Compliance ({which})"] == pytest.approx(expected)
    comparable = {c.standard: c.comparable_delta for c in inputs.diff.summary.compliance}
    for row in table:
        before = inputs.start.index.compliance_by_standard[row["Standard"]]
        after = inputs.end.index.compliance_by_standard[row["Standard"]]
        assert row["Change (points)"] == pytest.approx(after - before)
        assert row["Change, same subscriptions (points)"] == pytest.approx(
            comparable[row["Standard"]]
        )


def test_summary_trend_has_one_row_per_snapshot_of_the_period(
    inputs: PackInputs, calamine: dict[str, list[list[Any]]]
) -> None:
    rows = calamine[SUMMARY]
    ids = [entry.snapshot_id for entry in inputs.period]
    trend = [row for row in rows if row and row[0] in ids]
    assert [row[0] for row in trend] == ids
    standards = sorted(inputs.end.index.compliance_by_standard, key=str.lower)
    for row, entry in zip(trend, inputs.period, strict=True):
        assert row[1] == entry.status.value
        for offset, standard in enumerate(standards):
            expected = entry.compliance_by_standard[standard]
            assert row[2 + offset] == pytest.approx(expected)


def test_summary_has_a_bar_chart_and_a_line_chart_on_its_own_cells(pack: Path) -> None:
    with zipfile.ZipFile(pack) as archive:
        charts = sorted(n for n in archive.namelist() if n.startswith("xl/charts/chart"))
        xml = [archive.read(name).decode() for name in charts]
    assert len(xml) == 2
    assert any("<barChart>" in x for x in xml)
    assert any("<lineChart>" in x for x in xml)
    assert all("<f>'Summary'!" in x for x in xml)


@pytest.mark.parametrize("reader", ["calamine", "opx"])
def test_changes_list_every_diff_change_regressions_first(
    inputs: PackInputs, reader: str, request: pytest.FixtureRequest
) -> None:
    rows = _table(request.getfixturevalue(reader)[CHANGES])
    posture_changes = [r for r in rows if r["Level"] != "Defender plan"]
    assert len(posture_changes) == len(inputs.diff.changes)
    categories = [r["Category"] for r in rows]
    regressed = categories.count("regressed")
    assert regressed == sum(1 for c in inputs.diff.changes if c.change.value == "regressed")
    assert regressed > 0
    assert categories[:regressed] == ["regressed"] * regressed
    assert Counter(categories[regressed:]) == Counter(
        c.change.value for c in inputs.diff.changes if c.change.value != "regressed"
    )
    for row in rows[:regressed]:
        assert row["State (end)"] == "Failed"


def test_cover_names_tenant_period_snapshots_hashes_and_methodology(
    inputs: PackInputs, calamine: dict[str, list[list[Any]]]
) -> None:
    cells = [str(v) for row in calamine[COVER] for v in row if v not in (None, "")]
    text = "\n".join(cells)
    m = inputs.manifest
    for expected in (m.tenant_id, m.tenant_name, m.report_id, m.sha256, m.generator_version):
        assert expected in cells
    for entry in inputs.period:
        assert entry.snapshot_id in cells
        assert entry.content_hash in cells
    assert inputs.end.index.previous_hash in cells
    assert "Methodology" in cells
    assert "WARNING: the end snapshot" not in text
    assert "WARNING: the start snapshot" not in text


def test_cover_of_an_incomplete_end_snapshot_says_so(tmp_path: Path) -> None:
    start, end = _end_posture()
    lost = end.tenant.subscriptions[1].subscription_id
    inputs = pack_inputs(start, missing_subscription(end, lost))
    path = tmp_path / "incomplete.xlsx"
    write_workbook(pack_layout(inputs), path)
    cover = read_calamine(path)[COVER]
    warning = cover[1][1]
    assert cover[1][0] == "Completeness"
    assert warning.startswith(f"WARNING: the end snapshot {END} is INCOMPLETE")
    assert "1 of 2 expected subscriptions" in warning
    labels = {row[0]: row[1] for row in cover if row and row[0]}
    assert labels["Status"] == "INCOMPLETE"
    assert labels["Reason"] == f"subscription {lost}: 403 AuthorizationFailed"
    quality = _table(read_calamine(path)[DATA_QUALITY])
    missing = [r for r in quality if r["Check"] == "Missing subscription"]
    assert [(r["Snapshot"], r["Subscription ID"]) for r in missing] == [(END, lost)]
    assert any(r["Check"] == "Incomplete scope" and r["Snapshot"] == END for r in quality)


def test_hardening_plans_and_scores(inputs: PackInputs, opx: dict[str, list[Any]]) -> None:
    hardening = _table(opx[HARDENING])
    retired = [r for r in hardening if r["Feature"] == "adaptive application controls"]
    assert [r["Status"] for r in retired] == ["retired"]
    assert retired[0]["Healthy resources"] is None
    assessed = [r for r in hardening if r["Status"] == "assessed"]
    assert len(assessed) == len(inputs.end.posture.hardening) - 1
    assert all(r["Healthy resources"] == 3 and r["Unhealthy resources"] == 1 for r in assessed)
    assert all(r["Healthy share"] == pytest.approx(75.0) for r in assessed)
    plans = _table(opx[PLANS])
    assert len(plans) == len(inputs.end.posture.plans)
    assert [r["Lifecycle"] for r in plans if r["Plan"] == "Dns"] == ["retired"]
    scores = _table(opx[SECURE_SCORE])
    overall = [r for r in scores if r["Scope"] == "Overall secure score"]
    assert [r["Percentage"] for r in overall] == [54.31, 54.31]  # percent, as the API
    assert [r["Score (points)"] for r in overall] == [31.5, 31.5]


def test_attestations_keep_evidence_links_and_flag_expired_exemptions(
    pack: Path, opx: dict[str, list[Any]]
) -> None:
    rows = _table(opx[ATTESTATIONS])
    attestations = [r for r in rows if r["Kind"] == "Attestation"]
    assert [r["Evidence link"] for r in attestations] == ["https://contoso.example/policy.pdf"] * 2
    exemptions = {
        r["Subscription"] and r["Assignment"]: r for r in rows if r["Kind"] == "Exemption"
    }
    assert exemptions["Exempt legacy VM"]["Expired"] == "EXPIRED"
    assert exemptions["Exempt test subscription"]["Expired"] == "No"
    assert exemptions["Exempt legacy VM"]["Expires on (UTC)"] == datetime(2025, 1, 15)
    book = load_workbook(pack)
    links = [c.hyperlink.target for c in book[ATTESTATIONS]["J"] if c.hyperlink]
    assert links == ["https://contoso.example/policy.pdf"] * 2


def test_excel_conventions(pack: Path, inputs: PackInputs) -> None:
    book = load_workbook(pack)
    titles = standard_sheet_titles(r.standard for r in inputs.end.posture.compliance)
    sheet = book[titles["PCI-DSS-4"]]
    rows = sheet.max_row
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:R{rows}"
    assert sheet.print_title_rows == "$1:$1"
    assert sheet.page_setup.orientation == "landscape"
    assert sheet.page_setup.fitToWidth == 1
    assert sheet.page_setup.fitToHeight == 0
    assert sheet.sheet_properties.pageSetUpPr.fitToPage is True
    assert sheet.column_dimensions["D"].width == 24
    assert sheet["A1"].font.b is True
    first_failed = next(c for c in sheet["J"][1:] if c.value is not None)
    assert first_failed.number_format == "yyyy-mm-dd"
    assert sheet["G2"].number_format == "#,##0"
    state_rules = {
        rule.formula[0]
        for cf in sheet.conditional_formatting
        if str(cf.sqref) == f"F2:F{rows}"
        for rule in cf.rules
    }
    assert {'"Passed"', '"Failed"', '"Skipped"', '"Unsupported"', '"Stale"'} <= state_rules
    # Reference columns (ids, links) stay in the workbook, out of the print area.
    assert sheet.print_area == f"'{sheet.title}'!$A$1:$M${rows}"
    summary = book[SUMMARY]
    assert summary["B2"].number_format == '0.0" %"'  # a percentage 0-100
    assert summary["C2"].number_format == '+0.0" pts";-0.0" pts";0.0" pts"'  # points, not %
    cover = book[COVER]
    assert cover.freeze_panes is None
    assert cover.page_setup.orientation == "landscape"
    assert book[DATA_QUALITY].page_setup.orientation == "portrait"


def test_a_table_past_the_row_limit_continues_on_numbered_sheets(tmp_path: Path) -> None:
    rows = [(f"c{n}", n) for n in range(25)]
    layout = SheetLayout(
        title="PCI-DSS-4",
        purpose="",
        columns=(Column("Control", 10), Column("Number", 10, Kind.INTEGER)),
        rows=iter(rows),
    )
    path = tmp_path / "split.xlsx"
    stats = write_workbook([layout], path, max_rows=10)
    assert stats.titles == ["PCI-DSS-4", "PCI-DSS-4 (2)", "PCI-DSS-4 (3)"]
    sheets = read_calamine(path)
    assert [len(sheets[t]) for t in stats.titles] == [10, 10, 8]
    assert all(sheets[t][0] == ["Control", "Number"] for t in stats.titles)
    back = [tuple(row) for t in stats.titles for row in sheets[t][1:]]
    assert back == [(c, float(n)) for c, n in rows]
    book = load_workbook(path)
    assert book["PCI-DSS-4 (3)"].freeze_panes == "A2"
    assert book["PCI-DSS-4 (3)"].auto_filter.ref == "A1:B8"


def test_the_default_row_limit_is_excels() -> None:
    assert MAX_ROWS == 1_048_576


def test_text_longer_than_a_cell_holds_is_cut_and_says_so(tmp_path: Path) -> None:
    long = "x" * 40_000
    layout = SheetLayout("T", "", (Column("Text", 10),), [[long], ["bell\x07 and \ud800"]])
    path = tmp_path / "cut.xlsx"
    write_workbook([layout], path)
    for rows in (read_calamine(path)["T"], [list(r) for r in read_openpyxl(path)["T"]]):
        cut = rows[1][0]
        assert len(cut) == MAX_CELL_CHARS
        assert cut.endswith("[cut at Excel's cell limit: 32,767 of 40,000 characters shown]")
        assert cut.startswith("x" * 32_000)
        assert rows[2][0] == "bell and \ufffd"  # controls removed, lone surrogate replaced


def test_stale_assessments_are_shown_as_stale_never_as_their_old_state(tmp_path: Path) -> None:
    start, end = _end_posture()
    lost = end.tenant.subscriptions[1].subscription_id
    incomplete = missing_subscription(end, lost)
    seen = datetime(2025, 1, 20, 2, tzinfo=UTC)
    carried = {
        r.key: CarriedAssessment(r, Transition(seen, seen, None), seen)
        for r in end.compliance
        if r.subscription_id == lost
    }
    inputs = pack_inputs(start, incomplete, carried=carried)
    path = tmp_path / "stale.xlsx"
    write_workbook(pack_layout(inputs), path)
    sheets = read_calamine(path)
    titles = standard_sheet_titles(r.standard for r in end.compliance)
    rows = [r for t in titles.values() for r in _table(sheets[t])]
    stale = [r for r in rows if r["Subscription ID"] == lost]
    assert len(stale) == len(carried)
    assert {r["State"] for r in stale} == {"Stale"}
    assert all(r["Observed"].startswith("not observed; last seen ") for r in stale)
    assert all(r["Observed"].endswith("on 2025-01-20") for r in stale)
    quality = _table(sheets[DATA_QUALITY])
    assert [r["Count"] for r in quality if r["Check"] == "Stale data"] == [len(carried)]


def test_rows_read_back_as_openpyxl_would_have_written_them(tmp_path: Path) -> None:
    """The row serialiser is ours: it must write what openpyxl's own append writes."""
    from openpyxl import Workbook

    values: list[list[Any]] = [
        # (A CR is a control character: cells never hold one, see test_hostile_text_...)
        ["text", " padded ", "a & b < c > d", "line\nbreak\nunix", "tab\tend"],
        [0, -7, 3.25, 1e-07, 12345678901234],
        [datetime(2025, 1, 31, 2, 3, 4), date(2025, 1, 10), None, "", "ünïcødé ✓"],
    ]
    ours = tmp_path / "ours.xlsx"
    columns = tuple(Column(f"c{n}", 10) for n in range(5))
    write_workbook([SheetLayout("T", "", columns, values, table=False)], ours)
    theirs = tmp_path / "theirs.xlsx"
    book = Workbook(write_only=True)
    sheet = book.create_sheet("T")
    for row in values:
        sheet.append(row)
    book.save(theirs)
    assert read_openpyxl(ours)["T"] == read_openpyxl(theirs)["T"]
    assert read_calamine(ours)["T"] == read_calamine(theirs)["T"]


def test_hostile_text_reaches_cells_without_control_characters(tmp_path: Path) -> None:
    # Issue 9 §5: text from customer tenants is stripped of control characters in workbooks.
    hostile = ["Contoso\x1b[2J\x9b31m\u202eevil", "line\r\nbreak\rx", "del\x7f\x85next"]
    path = tmp_path / "hostile.xlsx"
    layout = SheetLayout("T", "", (Column("Text", 10),), [[t] for t in hostile])
    write_workbook([layout], path)
    expected = ["Contoso[2J31mevil", "line\nbreak\nx", "del\nnext"]
    assert [row[0] for row in read_calamine(path)["T"][1:]] == expected
    assert [row[0] for row in read_openpyxl(path)["T"][1:]] == expected


def test_text_that_looks_like_a_formula_stays_text(tmp_path: Path) -> None:
    """Descriptions come from Azure: a leading '=' must never become a live formula."""
    path = tmp_path / "formula.xlsx"
    text = '=HYPERLINK("https://evil.example","click")'
    write_workbook([SheetLayout("T", "", (Column("Text", 10),), [[text]], table=False)], path)
    assert read_calamine(path)["T"] == [[text]]
    cell = load_workbook(path)["T"]["A1"]
    assert (cell.data_type, cell.value) == ("s", text)


def test_cell_text_keeps_safe_text_unchanged() -> None:
    assert cell_text("Passed") == "Passed"
    assert cell_text("x" * MAX_CELL_CHARS) == "x" * MAX_CELL_CHARS


def test_standard_sheet_titles_are_valid_and_unique() -> None:
    titles = standard_sheet_titles(
        ["Summary", "a/b:c*d?[e]", "x" * 40, "X" * 40, "History", "PCI-DSS-4"]
    )
    assert titles["PCI-DSS-4"] == "PCI-DSS-4"
    assert titles["a/b:c*d?[e]"] == "a-b-c-d--e-"
    assert titles["Summary"] == "Summary 2"
    assert titles["History"] == "History 2"
    assert len({t.lower() for t in titles.values()}) == len(titles)
    assert all(len(t) <= 26 for t in titles.values())


def test_column_set_of_standard_sheets_is_documented() -> None:
    assert [c.header for c in STANDARD_COLUMNS][:4] == [
        "Control",
        "Control description",
        "Control state",
        "Assessment description",
    ]


def test_start_equals_end_gives_a_pack_without_changes(tmp_path: Path) -> None:
    start, _ = _end_posture()
    inputs = pack_inputs(start, start)
    path = tmp_path / "same.xlsx"
    write_workbook(pack_layout(inputs), path)
    rows = _table(read_calamine(path)[CHANGES])
    assert [r["Category"] for r in rows] == ["none"]
    assert START in {v for row in read_calamine(path)[COVER] for v in row}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    texts=st.lists(
        st.text(min_size=1, max_size=60)
        | st.sampled_from(["_x0041_", "a\rb", "\r", " ", "\x07\x1b"]),
        min_size=1,
        max_size=8,
    )
)
def test_any_text_reads_back_as_written(tmp_path: Path, texts: list[str]) -> None:
    path = tmp_path / "text.xlsx"
    write_workbook([SheetLayout("T", "", (Column("Text", 10),), [[t] for t in texts])], path)
    expected = [cell_text(t) for t in texts]
    assert [row[0] for row in read_calamine(path)["T"][1:]] == expected
    # openpyxl's reader does not undo Excel's "_xHHHH_" escape; Excel and calamine do.
    escaped = [re.sub(r"_x[0-9A-Fa-f]{4}_", lambda m: "_x005F" + m[0], t) for t in expected]
    assert [row[0] for row in read_openpyxl(path)["T"][1:]] == escaped


# --- issue 11: numbers, periods, paper -------------------------------------------------------


def test_every_layout_fits_its_paper_at_readable_size(inputs: PackInputs) -> None:
    """Printed columns fit one page wide at >= 8 pt on the narrower of A4 and Letter."""
    for layout in pack_layout(inputs):
        width = sum(c.width for c in layout.printed_columns)
        budget = PRINT_WIDTH_PORTRAIT if layout.portrait else PRINT_WIDTH_LANDSCAPE
        assert width <= budget, (layout.title, width, budget)


def test_every_sheet_has_a_header_and_footer_naming_tenant_report_period_and_pages(
    inputs: PackInputs, tmp_path: Path
) -> None:
    path = tmp_path / "labelled.xlsx"
    labels = page_labels(inputs)
    write_workbook(pack_layout(inputs), path, labels=labels)
    book = load_workbook(path)
    for sheet in book.worksheets:
        header, footer = sheet.oddHeader, sheet.oddFooter
        assert header.left.text == labels.tenant, sheet.title
        assert header.center.text == inputs.manifest.report_id
        assert header.right.text == "2025-01-01 to 2025-02-01 (UTC)"
        assert footer.right.text == "Page &P of &N"


def test_a_hostile_tenant_name_cannot_inject_header_codes(tmp_path: Path) -> None:
    layout = SheetLayout("T", "", (Column("Text", 10),), [["x"]])
    path = tmp_path / "hostile.xlsx"
    write_workbook(
        [layout], path, labels=PageLabels("A&B &P&N", "20250201T040005Z-0a1b2c3d", "period")
    )
    with zipfile.ZipFile(path) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "A&amp;&amp;B &amp;&amp;P&amp;&amp;N&amp;C" in xml  # '&' doubled: literal text


def test_secure_score_control_worth_no_points_is_not_applicable(tmp_path: Path) -> None:
    start, end = _end_posture()
    sub = end.tenant.subscriptions[0].subscription_id
    zero = SecureScoreControl(sub, "ctl-zero", "Zero-point control", 0.0, 0.0, 0.0, 0, 0, 4, 0)
    end = dataclasses.replace(end, secure_score_controls=(*end.secure_score_controls, zero))
    path = tmp_path / "scores.xlsx"
    write_workbook(pack_layout(pack_inputs(start, end)), path)
    rows = _table(read_openpyxl(path)[SECURE_SCORE])
    [row] = [r for r in rows if r.get("Control ID") == "ctl-zero"]
    assert row["Percentage"] == "not applicable"


def test_attestations_show_the_standards_name_not_its_resource_path(tmp_path: Path) -> None:
    start, end = _end_posture()
    sub = end.tenant.subscriptions[0].subscription_id
    path_id = "/providers/Microsoft.Security/securityStandards/1f3afdf9-d0c9-4c3d-847f-89da613e70a8"
    assigned = StandardAssignment(
        subscription_id=sub,
        assignment_id="audit-1",
        display_name="Microsoft cloud security benchmark",
        standard_id=path_id,
        effect="Audit",
    )
    exempt = StandardAssignment(
        subscription_id=sub,
        assignment_id="exempt-9",
        display_name="Exempt sandbox",
        standard_id=path_id,
        effect="Exempt",
        exemption_category="waiver",
    )
    end = dataclasses.replace(end, assignments=(*end.assignments, assigned, exempt))
    path = tmp_path / "attest.xlsx"
    write_workbook(pack_layout(pack_inputs(start, end)), path)
    rows = _table(read_openpyxl(path)[ATTESTATIONS])
    [row] = [r for r in rows if r["Assignment"] == "Exempt sandbox"]
    assert row["Standard"] == "Microsoft cloud security benchmark"
    assert row["Standard ID"] == path_id  # the resource path stays, out of print


def test_portal_links_follow_the_cloud_of_the_arm_endpoint(tmp_path: Path) -> None:
    start, end = _end_posture()
    base = pack_inputs(start, end)
    inputs = dataclasses.replace(base, options=PackOptions(portal="https://portal.azure.us"))
    path = tmp_path / "gov.xlsx"
    write_workbook(pack_layout(inputs), path)
    titles = standard_sheet_titles(r.standard for r in end.compliance)
    book = load_workbook(path)
    sheet = book[titles["PCI-DSS-4"]]
    links = [c.hyperlink.target for c in sheet["Q"][1:] if c.hyperlink]
    assert links and all(
        link.startswith("https://portal.azure.us/#view/Microsoft_Azure_Security/") for link in links
    )
    assert not any("management." in str(c.value) for row in sheet.iter_rows() for c in row)


def test_cover_answers_first_then_identifiers(calamine: dict[str, list[list[Any]]]) -> None:
    labels = [row[0] for row in calamine[COVER] if row and row[0]]
    answers = labels.index("Compliance at the end of the period")
    assert labels.index("Completeness of the end snapshot") > answers
    assert labels.index("Identifiers and hashes") > labels.index("Period and evidence held")
    assert labels.index("Report ID") > answers
    assert labels.index("Snapshots used (oldest first)") > labels.index("Identifiers and hashes")
    assert labels[answers + 1] == "Standard"


def test_cover_and_data_quality_state_the_period_and_its_missing_slots(tmp_path: Path) -> None:
    start, end = _end_posture()
    inputs = week_inputs(start, end)
    path = tmp_path / "week.xlsx"
    write_workbook(pack_layout(inputs), path)
    sheets = read_calamine(path)
    cover = {row[0]: row[1] for row in sheets[COVER] if row and row[0]}
    assert cover["Period requested (UTC)"] == "2025-01-01T00:00:00Z to 2025-01-07T23:59:59Z"
    assert cover["First snapshot held"] == f"{WEEK_DAYS[0]} (complete)"
    assert cover["Last snapshot held"] == f"{WEEK_DAYS[-1]} (complete)"
    assert cover["Scheduled slots"] == (
        "7 scheduled slots (0 0 2 * * *): 5 complete, 0 incomplete, 1 failed, 1 missing"
    )
    quality = _table(sheets[DATA_QUALITY])
    missing = [r for r in quality if r["Check"] == "Missing snapshot"]
    assert [r["Snapshot"] for r in missing] == [MISSING_DAY]
    assert "none found" not in {r["Check"] for r in quality}
    trend = [row for row in sheets[SUMMARY] if row and row[0] in WEEK_DAYS]
    assert [row[0] for row in trend] == [e.snapshot_id for e in inputs.period]
    assert trend[-1][0] == WEEK_DAYS[-1]  # the end snapshot, after the failed day
    assert [row[1] for row in trend if row[0] == FAILED_DAY] == ["failed"]


def test_trend_chart_marks_every_point_so_a_point_after_a_gap_shows(pack: Path) -> None:
    with zipfile.ZipFile(pack) as archive:
        xml = next(
            archive.read(n).decode()
            for n in archive.namelist()
            if n.startswith("xl/charts/chart") and "<lineChart>" in archive.read(n).decode()
        )
    series = xml.count("<ser>")
    assert series > 0
    assert xml.count('<symbol val="circle"/>') == series


def test_change_in_points_is_not_formatted_as_a_percentage(inputs: PackInputs, pack: Path) -> None:
    sheet = load_workbook(pack)[SUMMARY]
    header = [c.value for c in sheet[1]]
    change = sheet.cell(2, header.index("Change (points)") + 1)
    assert "%" not in change.number_format
    compliance = sheet.cell(2, header.index("Compliance (end)") + 1)
    standard = sheet.cell(2, 1).value
    # The same number the API gives: a percentage 0-100, not a fraction.
    assert compliance.value == inputs.end.index.compliance_by_standard[standard]
