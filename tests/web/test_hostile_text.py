"""Customer text is hostile in HTML too: names and standards render as text, never markup."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from starlette.requests import Request

from auditor.web.charts import sparkline, trend_chart
from auditor.web.render import RowCache, render
from auditor.web.views import PortfolioRow, StandardCell, build_portfolio
from tests.api.scenario import Scenario

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>\u202eevil"


def test_a_hostile_tenant_name_and_standard_render_escaped_in_the_portfolio(
    scenario: Scenario,
) -> None:
    entry = replace(scenario.b, tenant_name=HOSTILE)
    row = PortfolioRow(entry, "complete", (StandardCell(HOSTILE, 50.0, -1.0),), None, 0, ())
    view = build_portfolio([row], status=None, standard=None, name=None, sort="name",
                           descending=False)  # fmt: skip
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    html = render("portfolio.html", request=request, operator=False, caller="x", csrf="",
                  view=view, statuses=(), sorts=("name",), spark=sparkline,
                  row_html=lambda r: RowCache("portfolio_row.html")(r.key, row=r, spark=sparkline),
                  chosen={"status": "", "standard": "", "name": "", "sort": "name",
                          "order": "asc"})  # fmt: skip
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "\u202e" not in html  # bidi override stripped (plain_text)


def test_charts_escape_standard_names_and_draw_no_script_or_style() -> None:
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)
    svg = str(trend_chart({HOSTILE: [(start, 10.0), (end, 90.0)]}, start, end))
    assert "<script" not in svg and "style=" not in svg and "<style" not in svg
    assert "&lt;script&gt;" in svg
    assert "<script" not in str(sparkline([1.0, 2.0], HOSTILE))
