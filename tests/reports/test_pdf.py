"""Packs as an auditor holds them: rendered to PDF by the real LibreOffice on A4 and on Letter,
their text measured with poppler's `pdftotext -bbox` (word boxes in points).

Promised for every page of every sheet: text an auditor can read (median word height at least
8 pt at the print scale), nothing printed on top of anything else, and a header and footer
naming the tenant, the report, the period and "Page N of M".
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from auditor.core import registry
from auditor.core.model import RecommendationSummary, State, TenantPosture
from auditor.core.workbook import PackInputs, pack_layout, page_labels
from auditor.core.workbook_writer import Paper, write_workbook
from tests.reports.packs import TENANT, pack_inputs, week_inputs
from tests.reports.pdf_pages import PDFTOTEXT, SOFFICE, Page, convert, pages
from tools.posture_factory import make_posture, missing_subscription, with_states

pytestmark = pytest.mark.skipif(
    SOFFICE is None or PDFTOTEXT is None,
    reason="LibreOffice (soffice) and poppler-utils (pdftotext) are needed to print packs "
    "(make test installs both when it may: apt-get install -y libreoffice-calc poppler-utils)",
)

MIN_TEXT_POINTS = 8.0
# Paper in points (portrait): A4 210 x 297 mm, Letter 8.5 x 11 in.
PAPER_POINTS = {Paper.A4: (595, 842), Paper.LETTER: (612, 792)}


SOURCE_KEY = "1195afff-c881-495e-9bc5-1486211ae03f"
FAILING_VM = "vm-printed-{n}"


def _recommendations(posture: TenantPosture) -> TenantPosture:
    """`posture` whose first assessment comes from a recommendation (its details link) with
    failing resources, more than a standard sheet's cell shows, some left out by the cap."""
    first = posture.compliance[0]
    sub = first.subscription_id
    link = f"/subscriptions/{sub}/providers/Microsoft.Security/assessments/{SOURCE_KEY}"
    vm = f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/"
    ids = tuple(vm + FAILING_VM.format(n=n) for n in range(8))
    summary = RecommendationSummary(
        sub, SOURCE_KEY, "Machines should be patched", 1, 10, 0, "High", ids, 2, "Patch them."
    )
    linked = replace(first, details_link=link)
    return registry.posture_of(
        replace(posture, compliance=(linked, *posture.compliance[1:])),
        {"recommendations": (summary,)},
    )


def _postures() -> tuple[object, object]:
    start = make_posture(TENANT, subscriptions=3, standards=4, controls=12, assessments=4)
    first = start.compliance[0]
    end = missing_subscription(
        with_states(_recommendations(start), {first.key: State.FAILED}),
        start.tenant.subscriptions[2].subscription_id,
    )
    return start, end


def _month() -> PackInputs:
    start, end = _postures()
    return pack_inputs(start, end)  # type: ignore[arg-type]


def _week() -> PackInputs:
    start, end = _postures()
    return week_inputs(start, end)  # type: ignore[arg-type]


PACKS = {"month": _month, "week-with-failed-and-missing-days": _week}


@pytest.fixture(scope="module", params=[(p, paper) for p in PACKS for paper in PAPER_POINTS])
def printed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[PackInputs, int, list[Page]]:
    name, paper = request.param
    inputs = PACKS[name]()
    folder = tmp_path_factory.mktemp(f"pdf-{name}-{paper}")
    workbook = folder / "pack.xlsx"
    write_workbook(pack_layout(inputs), workbook, labels=page_labels(inputs), paper=paper)
    return inputs, paper, pages(convert(workbook, folder))


def test_every_page_is_on_the_chosen_paper(printed: tuple[PackInputs, int, list[Page]]) -> None:
    _, paper, sheets = printed
    size = sorted(PAPER_POINTS[paper])
    assert len(sheets) >= len(pack_layout(_month()))  # at least one page per sheet
    for page in sheets:
        assert sorted((round(page.width), round(page.height))) == size, page.number


def test_no_page_prints_text_smaller_than_8_points(
    printed: tuple[PackInputs, int, list[Page]],
) -> None:
    _, _, sheets = printed
    small = [(p.number, round(p.median_height, 2), p.text[:80]) for p in sheets]
    small = [s for s in small if s[1] < MIN_TEXT_POINTS]
    assert not small, f"pages whose median text height is below {MIN_TEXT_POINTS} pt: {small}"


def test_no_text_is_printed_over_other_text(printed: tuple[PackInputs, int, list[Page]]) -> None:
    _, _, sheets = printed
    clashes = [
        (page.number, a.text, b.text, round(a.y0, 1), round(b.y0, 1))
        for page in sheets
        for a, b in page.overlapping()
    ]
    assert not clashes, f"overprinted words (page, word, word, top, top): {clashes[:10]}"


def test_every_page_names_tenant_report_period_and_page_n_of_m(
    printed: tuple[PackInputs, int, list[Page]],
) -> None:
    inputs, _, sheets = printed
    labels = page_labels(inputs)
    total = len(sheets)
    for page in sheets:
        text = page.text
        assert labels.tenant in text, page.number
        assert labels.report_id in text, page.number
        assert labels.period in text, page.number
        found = re.findall(r"Page (\d+) of (\d+)", text)
        assert found, f"page {page.number} has no page number"
        number, of = map(int, found[-1])
        assert 1 <= number <= of <= total, (page.number, number, of)


def test_the_trend_of_a_period_with_a_failed_day_ends_at_the_end_snapshot(
    tmp_path: Path,
) -> None:
    inputs = _week()
    workbook = tmp_path / "week.xlsx"
    write_workbook(pack_layout(inputs), workbook, labels=page_labels(inputs))
    summary = next(p for p in pages(convert(workbook, tmp_path)) if "Compliance trend" in p.text)
    # Every snapshot of the period is a printed trend row, the end snapshot after the failed day
    # included.
    for entry in inputs.period:
        assert entry.snapshot_id in summary.text


def test_printed_packs_name_the_failing_resources_on_the_standard_sheet_and_per_control(
    printed: tuple[PackInputs, int, list[Page]],
) -> None:
    inputs, _, sheets = printed
    first = inputs.end.posture.compliance[0]
    text = " ".join(page.text for page in sheets)
    # The standard sheet's printed cell: five names, the rest counted, the cap's count too.
    for n in range(5):
        assert FAILING_VM.format(n=n) in text
    assert "and 3 more (Impacted resources)" in text
    assert "2 more not listed by the snapshot" in text
    # Impacted resources prints every listed resource under the control it fails.
    impacted = [p for p in sheets if "Impacted resources" in p.text and first.control in p.text]
    assert impacted
    assert FAILING_VM.format(n=7) in " ".join(p.text for p in impacted)
