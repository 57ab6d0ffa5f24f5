"""SVG charts drawn on the server: hand-written SVG, no script and no inline style (the
dashboard's Content-Security-Policy forbids both), so a chart works without JavaScript.

Every chart has a <title> and <desc> for assistive technology, and every page that shows one
shows the same figures as text beside it: colour is never the only carrier of meaning.
Customer text (standard names) is escaped here, where it enters markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from markupsafe import Markup, escape

# Distinguishable on white and for common colour-vision deficiencies (Okabe-Ito).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
DASHES = ("", "6 3", "2 2", "8 3 2 3", "1 3", "10 4", "4 4")


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def dash(index: int) -> str:
    return DASHES[index % len(DASHES)]


def sparkline(
    values: Sequence[float | None], label: str, width: int = 96, height: int = 24
) -> Markup:
    """A small line of `values` (0-100, oldest first; None = no data, a gap)."""
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    title = escape(label)
    if len(points) < 2:
        return Markup(  # noqa: S704 - the only text in it is escaped
            f'<svg class="spark" role="img" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}"><title>{title}: not enough data</title></svg>'
        )
    step = (width - 4) / max(1, len(values) - 1)

    def xy(i: int, v: float) -> str:
        return f"{2 + i * step:.1f},{height - 2 - (height - 4) * v / 100:.1f}"

    path = " ".join(xy(i, v) for i, v in points)
    last_i, last_v = points[-1]
    x, y = xy(last_i, last_v).split(",")
    return Markup(  # noqa: S704 - the only text in it is escaped
        f'<svg class="spark" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{title}</title>'
        f'<polyline fill="none" stroke="#0072B2" stroke-width="1.5" points="{path}"/>'
        f'<circle cx="{x}" cy="{y}" r="2" fill="#0072B2"/></svg>'
    )


def trend_chart(
    series: dict[str, list[tuple[datetime, float | None]]],
    start: datetime,
    end: datetime,
    width: int = 760,
    height: int = 280,
) -> Markup:
    """Compliance per standard (percent) over [start, end]; one line and dash style each."""
    left, right, top, bottom = 44, 12, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    span = max(1.0, (end - start).total_seconds())

    def x_of(moment: datetime) -> float:
        return left + plot_w * (moment - start).total_seconds() / span

    def y_of(value: float) -> float:
        return top + plot_h * (1 - value / 100)

    parts = [
        f'<svg class="trend" role="img" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="xMidYMid meet" aria-labelledby="trend-title trend-desc">',
        '<title id="trend-title">Compliance per standard over time</title>',
        f'<desc id="trend-desc">{len(series)} standards from {start:%Y-%m-%d} to '
        f"{end:%Y-%m-%d}; the table below lists every point.</desc>",
    ]
    for tick in (0, 25, 50, 75, 100):
        y = y_of(tick)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#d0d0d0" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#323130">{tick}%</text>'
        )
    for moment, anchor in ((start, "start"), (end, "end")):
        parts.append(
            f'<text x="{x_of(moment):.1f}" y="{height - 8}" text-anchor="{anchor}" '
            f'font-size="11" fill="#323130">{moment:%Y-%m-%d}</text>'
        )
    for index, (standard, points) in enumerate(sorted(series.items())):
        known = [(x_of(m), y_of(v)) for m, v in points if v is not None]
        if not known:
            continue
        stroke = colour(index)
        dashes = f' stroke-dasharray="{dash(index)}"' if dash(index) else ""
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in known)
        parts.append(
            f'<g><title>{escape(standard)}</title><polyline fill="none" stroke="{stroke}" '
            f'stroke-width="2"{dashes} points="{path}"/>'
            + "".join(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{stroke}"/>' for x, y in known
            )
            + "</g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it is escaped
