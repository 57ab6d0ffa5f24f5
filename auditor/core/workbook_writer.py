"""Render sheet layouts (``auditor.core.workbook``) to an .xlsx file, streaming.

openpyxl's write-only mode with lxml: rows go to a temporary file per sheet as they come, so
memory stays flat whatever the row count. Styles, conditional formats, print setup, charts,
hyperlinks and the package itself are openpyxl's. Only the serialisation of a row's cells is our
own (``_StreamSheet``): openpyxl's generic per-cell path (type sniffing and one lxml context
manager per cell) costs about 1.4x xlsxwriter's constant-memory mode on 100,000 assessment rows,
while building each row as one lxml element, with styles resolved per column ahead of time,
writes the same XML in about half that time. tests/reports checks that both paths read back
alike.

Excel conventions applied to every table sheet: header row frozen, bold and filtered; column
widths and number/date formats per column; conditional colours of states; header printed on
every page. Paper, for every sheet: the layout's printed columns form the print area, fitted to
one page wide in the layout's orientation with narrow margins; every page has a header (tenant,
report id, period) and a footer (sheet, "Page N of M"). The paper size is left to the printer
unless given. A table that would pass Excel's 1,048,576 rows continues on "<title> (2)",
"<title> (3)", ... with the header repeated.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from lxml.etree import fromstring  # type: ignore[import-untyped]
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.chart.marker import Marker
from openpyxl.formatting.rule import CellIsRule
from openpyxl.packaging.relationship import RelationshipList
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import to_excel
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.pagebreak import Break
from openpyxl.xml.constants import REL_NS
from openpyxl.xml.functions import SubElement

from auditor.core.text import has_controls, plain_text
from auditor.core.workbook import (
    ILLEGAL_XML,
    MAX_CELL_CHARS,
    MAX_LINKS_PER_SHEET,
    MAX_ROWS,
    CellValue,
    Chart,
    ChartKind,
    Column,
    HeaderRow,
    Heading,
    Kind,
    Link,
    PageLabels,
    Paragraph,
    Row,
    SheetLayout,
    Tone,
    cell_text,
    continuation_title,
)

NUMBER_FORMATS: dict[Kind, str] = {
    Kind.INTEGER: "#,##0",
    Kind.NUMBER: "#,##0.00",
    Kind.PERCENT: '0.0" %"',  # the value is a percentage 0-100, not a fraction
    Kind.DELTA: '+0.0" pts";-0.0" pts";0.0" pts"',  # percentage points
    Kind.DATE: "yyyy-mm-dd",
    Kind.DATETIME: "yyyy-mm-dd hh:mm:ss",
}
DATE_FORMAT = NUMBER_FORMATS[Kind.DATE]
DATETIME_FORMAT = NUMBER_FORMATS[Kind.DATETIME]

# Conditional-format colours (font, fill): Excel's own "good", "bad" and "neutral" palettes.
TONE_COLOURS: dict[Tone, tuple[str, str]] = {
    Tone.GOOD: ("006100", "C6EFCE"),
    Tone.BAD: ("9C0006", "FFC7CE"),
    Tone.WARN: ("9C5700", "FFEB9C"),
    Tone.MUTED: ("595959", "EDEDED"),
}


class Paper:
    """Excel's paper size codes (ECMA-376 paperSize)."""

    LETTER = 1
    A4 = 9


# Narrow margins (inches): room for the header and footer, the most room for the table.
MARGINS = {"left": 0.4, "right": 0.4, "top": 0.75, "bottom": 0.75, "header": 0.3, "footer": 0.3}
_HEADER_CHARS = 34  # per header section: a third of a portrait page; Excel allows 255 in all


def _header_text(text: str) -> str:
    """Text for a header/footer section: '&' starts a code there, so a literal one is doubled
    (tenant names are customer-controlled); cut to fit Excel's header limit."""
    text = ILLEGAL_XML.sub("\ufffd", " ".join(plain_text(text).split()))
    if len(text) > _HEADER_CHARS:
        text = text[: _HEADER_CHARS - 1] + "…"
    return text.replace("&", "&&")


@dataclass
class SheetStats:
    title: str
    rows: int  # including the header row
    links_as_text: int = 0  # hyperlinks beyond Excel's per-sheet limit, written as plain text


@dataclass
class WorkbookStats:
    sheets: list[SheetStats] = field(default_factory=list)

    @property
    def titles(self) -> list[str]:
        return [sheet.title for sheet in self.sheets]


class _Styles:
    """Cell styles registered once in the workbook; each is used by its id (a string)."""

    def __init__(self, workbook: Workbook) -> None:
        self._probe_sheet = WriteOnlyWorksheet(workbook, "styles")  # never added to the book
        self._ids: dict[tuple[Any, ...], str] = {}

    def get(
        self,
        number_format: str | None = None,
        *,
        bold: bool = False,
        size: float | None = None,
        wrap: bool = False,
        mono: bool = False,
        link: bool = False,
        header: bool = False,
    ) -> str:
        key = (number_format, bold, size, wrap, mono, link, header)
        found = self._ids.get(key)
        if found is not None:
            return found
        cell = WriteOnlyCell(self._probe_sheet)
        if number_format:
            cell.number_format = number_format
        if bold or size or mono or link:
            cell.font = Font(
                bold=bold,
                size=size,
                name="Consolas" if mono else None,
                color="0563C1" if link else None,
                underline="single" if link else None,
            )
        # Top-aligned everywhere: a row taller than one line (wrapped text) keeps its cells
        # on the same printed line.
        cell.alignment = Alignment(wrap_text=True if wrap or header else None, vertical="top")
        if header:
            cell.font = Font(bold=True, size=9)  # long words ("resources") fit narrow columns
            cell.fill = PatternFill(start_color="D9E1F2", end_color="D9E1F2", fill_type="solid")
            cell.border = Border(bottom=Side(style="thin"))
        style_id = str(cell.style_id)
        self._ids[key] = style_id
        return style_id


@dataclass(frozen=True, slots=True)
class _ColumnStyles:
    """Per column, the style id for each kind of value it may hold ("" = default style)."""

    text: tuple[str, ...]
    number: tuple[str, ...]
    moment: tuple[str, ...]  # datetime values
    day: str  # date values
    link: str
    # (column index, characters per line) of wrapped columns: they decide a row's height
    wrapped: tuple[tuple[int, int], ...] = ()

    @classmethod
    def of(cls, columns: Sequence[Column], styles: _Styles) -> _ColumnStyles:
        def text(kind: Kind) -> str:
            if kind is Kind.WRAP:
                return styles.get(wrap=True)
            if kind is Kind.HASH:
                return styles.get(mono=True)
            return styles.get()

        def number(kind: Kind) -> str:
            fmt = NUMBER_FORMATS.get(kind)
            return styles.get(fmt if fmt and kind not in (Kind.DATE, Kind.DATETIME) else None)

        def moment(kind: Kind) -> str:
            return styles.get(DATE_FORMAT if kind is Kind.DATE else DATETIME_FORMAT)

        return cls(
            text=tuple(text(c.kind) for c in columns),
            number=tuple(number(c.kind) for c in columns),
            moment=tuple(moment(c.kind) for c in columns),
            day=styles.get(DATE_FORMAT),
            link=styles.get(link=True),
            wrapped=tuple(
                (i, chars_per_line(c.width))
                for i, c in enumerate(columns)
                if c.kind is Kind.WRAP and c.width
            ),
        )


_LETTERS = tuple(get_column_letter(n) for n in range(1, 16_385))


_BATCH_ROWS = 256  # rows parsed and streamed together
_SPACE = frozenset(" \t\n\r")


# Excel reads "_xHHHH_" in a string as an escaped character; a literal one is escaped itself.
_OOXML_ESCAPE = re.compile(r"_x[0-9A-Fa-f]{4}_")


def _escape(text: str) -> str:
    """Text as XML character data (a carriage return kept as a reference: parsers drop it), with
    literal "_xHHHH_" escaped so that Excel shows it as written."""
    if "_x" in text:
        text = _OOXML_ESCAPE.sub(r"_x005F\g<0>", text)
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")
    return text


def _string_xml(ref: str, value: str, style: str) -> str:
    if len(value) > MAX_CELL_CHARS or ILLEGAL_XML.search(value) or has_controls(value):
        value = cell_text(value)
    space = ' xml:space="preserve"' if value[0] in _SPACE or value[-1] in _SPACE else ""
    s = f' s="{style}"' if style else ""
    return f'<c r="{ref}" t="inlineStr"{s}><is><t{space}>{_escape(value)}</t></is></c>'


_HYPERLINK_REL = REL_NS + "/hyperlink"


def _attr(text: str) -> str:
    """Text as an XML attribute value (between double quotes)."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
        .replace("\t", "&#9;")
    )


class _LinkRels(RelationshipList):  # type: ignore[misc]
    """A sheet's relationships, with one relationship per distinct external link target (rows
    that link the same page share it) kept as plain strings: openpyxl's per-link objects cost
    more than writing the rows themselves (about 0.1 ms per hyperlink)."""

    def __init__(self) -> None:
        super().__init__()
        self.external: dict[str, str] = {}  # target -> relationship id

    def link(self, target: str) -> str:
        found = self.external.get(target)
        if found is None:
            found = self.external[target] = f"rIdL{len(self.external) + 1}"
        return found

    def __bool__(self) -> bool:
        return bool(self.external) or len(self) > 0

    def to_tree(self) -> Any:
        tree = super().to_tree()
        for target, rid in self.external.items():
            SubElement(
                tree, "Relationship", Type=_HYPERLINK_REL, Target=target, TargetMode="External",
                Id=rid,
            )  # fmt: skip
        return tree


class _StreamSheet(WriteOnlyWorksheet):  # type: ignore[misc]
    """A write-only worksheet that serialises rows in batches.

    ``append_row`` replaces openpyxl's ``append``: same stream, same XML (inline strings,
    numbers, dates as serial numbers with a date style). Each batch of rows is spelled as XML
    text, parsed by lxml (so a malformed value fails here, never in Excel) and streamed with
    openpyxl's own writer.
    """

    _rows: Any = None  # openpyxl's row stream (a generator) once the first row is sent

    def __init__(self, parent: Workbook, title: str, styles: _ColumnStyles) -> None:
        super().__init__(parent, title)
        self._styles = styles
        self._row_styles: tuple[str, ...] | None = None  # whole-row override (headers)
        self._row_height: float | None = None
        self.links = 0
        self.links_as_text = 0
        self._epoch = parent.epoch
        self._link_xml_parts: list[str] = []  # <hyperlink> elements, in row order
        self._link_rels = _LinkRels()

    def _get_writer(self) -> None:
        if self._writer is None:
            super()._get_writer()
            writer: Any = self._writer
            writer._rels = self._link_rels
            writer.write_hyperlinks = self._write_hyperlinks

    def _write_hyperlinks(self) -> None:
        """Replaces openpyxl's: the same <hyperlinks> element, spelled as text, parsed once."""
        if self._link_xml_parts:
            xml = f'<hyperlinks xmlns:r="{REL_NS}">' + "".join(self._link_xml_parts)
            self._writer.xf.send(fromstring(xml + "</hyperlinks>"))

    def set_columns(self, styles: _ColumnStyles) -> None:
        """Format the rows that follow with these column styles (a further table's)."""
        self._styles = styles

    def _write_rows(self) -> Generator[None, Sequence[CellValue], None]:
        # Same protocol as WriteOnlyWorksheet._write_rows: rows arrive by send().
        try:
            xf = self._writer.xf.send(True)
        except StopIteration:
            self._already_saved()
        batch: list[str] = []
        with xf.element("sheetData"):
            row_idx = 1
            try:
                while True:
                    values = yield
                    if values:
                        batch.append(self._row_xml(values, row_idx))
                        if len(batch) >= _BATCH_ROWS:
                            _flush(xf, batch)
                    row_idx += 1
            except GeneratorExit:
                pass
            _flush(xf, batch)
        self._writer.xf.send(None)

    def append_row(
        self,
        values: Sequence[CellValue],
        styles: tuple[str, ...] | None = None,
        height: float | None = None,
    ) -> None:
        """Write the next row; `styles` overrides the column styles, `height` is in points."""
        self._get_writer()
        if self._rows is None:
            self._rows = self._write_rows()
            next(self._rows)
        self._row_styles = styles
        self._row_height = height
        self._rows.send(values)

    def _row_xml(self, values: Sequence[CellValue], row_idx: int) -> str:
        rs = str(row_idx)
        height = self._row_height
        if height is None and self._styles.wrapped:
            height = _wrapped_height(values, self._styles.wrapped)
        parts = [
            f'<row r="{rs}" ht="{height:.1f}" customHeight="1">' if height else f'<row r="{rs}">'
        ]
        cs = self._styles
        forced = self._row_styles
        for i, value in enumerate(values):
            if value is None:
                continue
            ref = _LETTERS[i] + rs
            if isinstance(value, str):
                if value:
                    parts.append(_string_xml(ref, value, forced[i] if forced else cs.text[i]))
            elif isinstance(value, bool):
                parts.append(f'<c r="{ref}" t="b"><v>{int(value)}</v></c>')
            elif isinstance(value, int | float):
                if isinstance(value, float) and not math.isfinite(value):
                    continue  # NaN and infinities have no Excel spelling: leave the cell empty
                style = forced[i] if forced else cs.number[i]
                s = f' s="{style}"' if style else ""
                number = repr(value) if isinstance(value, float) else str(int(value))
                parts.append(f'<c r="{ref}" t="n"{s}><v>{number}</v></c>')
            elif isinstance(value, datetime):
                naive = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
                serial = repr(to_excel(naive, self._epoch))
                parts.append(f'<c r="{ref}" t="n" s="{cs.moment[i]}"><v>{serial}</v></c>')
            elif isinstance(value, date):
                serial = repr(to_excel(value, self._epoch))
                parts.append(f'<c r="{ref}" t="n" s="{cs.day}"><v>{serial}</v></c>')
            elif isinstance(value, Link):
                parts.append(self._link_xml(ref, value))
            else:
                raise TypeError(f"cannot write {type(value).__name__} to a cell")
        parts.append("</row>")
        return "".join(parts)

    def _link_xml(self, ref: str, link: Link) -> str:
        text = link.text or link.url or link.location
        if not text:
            return ""
        if self.links >= MAX_LINKS_PER_SHEET:
            self.links_as_text += 1
            return _string_xml(ref, text, "")
        self.links += 1
        display = _attr(cell_text(text, 2_000))
        if link.url:
            rid = self._link_rels.link(link.url)
            self._link_xml_parts.append(
                f'<hyperlink ref="{ref}" r:id="{rid}" display="{display}"/>'
            )
        else:
            location = _attr(link.location)
            self._link_xml_parts.append(
                f'<hyperlink ref="{ref}" location="{location}" display="{display}"/>'
            )
        return _string_xml(ref, text, self._styles.link)


def _flush(xf: Any, batch: list[str]) -> None:
    if batch:
        for row in fromstring("<rows>" + "".join(batch) + "</rows>"):
            xf.write(row)
        batch.clear()


@dataclass
class _Part:
    """One worksheet a table is written on (the table's first sheet or a continuation)."""

    sheet: _StreamSheet
    default_styles: _ColumnStyles
    rows: int = 0
    table_end: int | None = None  # last row of the sheet's first table (None: still in it)


class WorkbookWriter:
    """Writes SheetLayouts into one workbook file. `max_rows` is lowered only by tests."""

    def __init__(self, *, max_rows: int = MAX_ROWS, title: str = "", creator: str = "") -> None:
        if max_rows < 2:
            raise ValueError("a sheet needs room for its header and one row")
        self.max_rows = max_rows
        self.book = Workbook(write_only=True)
        self.book.properties.title = title
        self.book.properties.creator = creator
        self.styles = _Styles(self.book)
        self.stats = WorkbookStats()
        self.labels: PageLabels | None = None
        self.paper: int | None = None
        self._header = self.styles.get(header=True)
        self._heading = self.styles.get(bold=True, size=13)
        self._wrap = self.styles.get(wrap=True)
        self._top = self.styles.get()

    def add(self, layout: SheetLayout) -> None:
        """Write one sheet (and its continuations) completely."""
        column_styles = _ColumnStyles.of(layout.columns, self.styles)
        header_styles = (self._header,) * len(layout.columns)
        number = 1
        part = self._start(layout, layout.title, column_styles, header_styles)
        for row in layout.rows:
            if layout.table and part.table_end is None and part.rows >= self.max_rows:
                self._finish(layout, part, charts=number == 1)
                number += 1
                title = continuation_title(layout.title, number)
                part = self._start(layout, title, column_styles, header_styles)
            self._write(part, row, layout)
        self._finish(layout, part, charts=number == 1)

    def save(self, path: Path) -> WorkbookStats:
        self.book.save(str(path))
        return self.stats

    # -- internals -------------------------------------------------------------------------

    def _start(
        self,
        layout: SheetLayout,
        title: str,
        column_styles: _ColumnStyles,
        header_styles: tuple[str, ...],
    ) -> _Part:
        sheet = _StreamSheet(self.book, title, column_styles)
        self.book._add_sheet(sheet)
        # Everything written before the first row (views, columns, sheet properties) goes here.
        for number, column in enumerate(layout.columns, start=1):
            sheet.column_dimensions[_LETTERS[number - 1]].width = column.width
        self._page_setup(sheet, layout)
        part = _Part(sheet, column_styles)
        if layout.table:
            sheet.freeze_panes = "A2"
            sheet.print_title_rows = "1:1"
            labels = [c.header for c in layout.columns]
            sheet.append_row(labels, header_styles, header_height(labels, layout.columns))
            part.rows = 1
        return part

    def _page_setup(self, sheet: _StreamSheet, layout: SheetLayout) -> None:
        sheet.sheet_properties.pageSetUpPr.fitToPage = True
        sheet.page_setup.orientation = "portrait" if layout.portrait else "landscape"
        sheet.page_setup.fitToWidth = 1
        sheet.page_setup.fitToHeight = 0
        if self.paper is not None:
            sheet.page_setup.paperSize = self.paper
        for side, inches in MARGINS.items():
            setattr(sheet.page_margins, side, inches)
        sheet.print_options.horizontalCentered = False
        if self.labels is not None:
            header, footer = sheet.oddHeader, sheet.oddFooter
            # Sections share one line: each kept to a third of a portrait page at 9 pt.
            header.left.text = _header_text(self.labels.tenant)
            header.center.text = _header_text(self.labels.report_id)
            header.right.text = _header_text(self.labels.period)
            for part in (header.left, header.center, header.right):
                part.size = 9
            footer.left.text = "&A"  # the sheet's name
            footer.right.text = "Page &P of &N"
            footer.left.size = footer.right.size = 9

    def _write(self, part: _Part, row: Row, layout: SheetLayout) -> None:
        sheet = part.sheet
        width = len(layout.columns)
        if isinstance(row, Heading):
            part.table_end = part.table_end or part.rows
            sheet.set_columns(part.default_styles)
            sheet.append_row([row.text], (self._heading,), height=20)
        elif isinstance(row, HeaderRow):
            part.table_end = part.table_end or part.rows
            # A further table's columns take the sheet's widths (they decide wrapped heights).
            columns = (
                tuple(
                    c if c.width else replace(c, width=layout.columns[i].width)
                    for i, c in enumerate(row.columns[:width])
                )
                + layout.columns[len(row.columns) :]
            )
            sheet.set_columns(_ColumnStyles.of(columns, self.styles))
            labels = [c.header for c in row.columns]
            sheet.append_row(
                labels, (self._header,) * len(labels), header_height(labels, layout.columns)
            )
        elif isinstance(row, Paragraph):
            text = cell_text(row.text)
            printed = layout.printed_columns
            label = row.label if isinstance(row.label, Link) else cell_text(row.label or "")
            sheet.append_row(
                [label, text],
                (self._top, self._wrap),
                paragraph_height(text, printed),
            )
            if len(printed) > 2:
                r = part.rows + 1
                sheet.merged_cells.add(f"B{r}:{_LETTERS[len(printed) - 1]}{r}")
        else:
            if len(row) > width:
                raise ValueError(f"sheet {sheet.title!r}: row of {len(row)} cells, {width} columns")
            sheet.append_row(row)
        part.rows += 1

    def _finish(self, layout: SheetLayout, part: _Part, *, charts: bool) -> None:
        sheet = part.sheet
        last_col = _LETTERS[len(layout.columns) - 1]
        table_end = part.table_end or part.rows
        if layout.table:
            sheet.auto_filter.ref = f"A1:{last_col}{max(table_end, 1)}"
            if table_end >= 2:
                for number, column in enumerate(layout.columns):
                    _add_tones(sheet, column, _LETTERS[number], 2, table_end)
        else:
            for number, column in enumerate(layout.columns):
                if part.rows:
                    _add_tones(sheet, column, _LETTERS[number], 1, part.rows)
        if charts and layout.charts:
            for chart in layout.charts:
                sheet.add_chart(_chart(sheet, chart), chart.anchor)
            # Charts start a printed page: one cut by a page break would print under the
            # repeated header row of the next page.
            first = min(_anchor_row(c.anchor) for c in layout.charts)
            sheet.row_breaks.append(Break(id=first - 2))
        if layout.printed is not None and part.rows:
            last = part.rows
            if charts:  # charts sit below the cells: keep them in the print area
                last = max([last, *(_anchor_row(c.anchor) + CHART_ROWS for c in layout.charts)])
            sheet.print_area = f"A1:{_LETTERS[layout.printed - 1]}{last}"
        if sheet._rows is None:  # nothing written: still a valid, empty sheet
            sheet.append_row([])
        sheet.close()
        self.stats.sheets.append(SheetStats(sheet.title, part.rows, sheet.links_as_text))


LINE_POINTS = 15.0
CHART_ROWS = 17  # rows of the default height an 8 cm chart covers, and a margin


def _anchor_row(anchor: str) -> int:
    return int(anchor.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))


def chars_per_line(width: float) -> int:
    """Characters of wrapped text a column of `width` holds per line, counted low (width is in
    widths of "0"; words wrap whole): a row sized from it is never too short, so wrapped text
    never spills onto the row below when printed."""
    return max(1, int(width * 0.95) - 1)


def text_lines(text: str, per_line: int) -> int:
    return sum(max(1, -(-len(line) // per_line)) for line in text.split("\n"))


def _wrapped_height(
    values: Sequence[CellValue], wrapped: tuple[tuple[int, int], ...]
) -> float | None:
    """Points a row needs for its wrapped cells (None: one line, the default height).
    Readers do not size rows themselves (LibreOffice and Excel keep the default height)."""
    lines = 1
    count = len(values)
    for index, per_line in wrapped:
        if index < count:
            value = values[index]
            if type(value) is str and (len(value) > per_line or "\n" in value):
                lines = max(lines, text_lines(value, per_line))
    return None if lines == 1 else LINE_POINTS * lines + 2


def header_height(labels: Sequence[str], columns: Sequence[Column]) -> float:
    """Points a wrapped header row needs so that no label is cut (write-only rows have no
    automatic height in every reader)."""
    lines = 1
    for label, column in zip(labels, columns, strict=False):
        if column.width:
            wrapped = textwrap.wrap(label, chars_per_line(column.width), break_long_words=True)
            lines = max(lines, len(wrapped))
    return LINE_POINTS * lines + 3


def paragraph_height(text: str, columns: Sequence[Column]) -> float:
    """Points a paragraph merged across columns B.. needs."""
    per_line = chars_per_line(sum(c.width for c in columns[1:]))
    return LINE_POINTS * text_lines(text, per_line) + 2


def _add_tones(sheet: _StreamSheet, column: Column, letter: str, first: int, last: int) -> None:
    for value, tone in column.tones:
        font, fill = TONE_COLOURS[tone]
        sheet.conditional_formatting.add(
            f"{letter}{first}:{letter}{last}",
            CellIsRule(
                operator="equal",
                formula=['"' + value.replace('"', '""') + '"'],
                font=Font(color=font),
                fill=PatternFill(start_color=fill, end_color=fill, fill_type="solid"),
            ),
        )


def _chart(sheet: _StreamSheet, spec: Chart) -> Any:
    chart: Any = BarChart() if spec.kind is ChartKind.BAR else LineChart()
    if spec.kind is ChartKind.BAR:
        chart.type = "col"
        chart.grouping = "clustered"
    chart.title = spec.title
    chart.y_axis.title = spec.y_title
    chart.y_axis.number_format = '0" %"'  # percentages 0-100, as in the cells
    chart.y_axis.scaling.min = 0
    chart.y_axis.scaling.max = 100
    # openpyxl 3.1 marks axes deleted by default; Excel then draws none.
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    chart.width, chart.height = 16, 8
    for series in spec.series:
        ref = Reference(sheet, series.min_col, series.min_row, series.max_col, series.max_row)
        chart.add_data(ref, titles_from_data=True)
    if spec.kind is ChartKind.LINE:
        # A marker on every point: a snapshot between two empty (failed) days, the period's
        # last one included, has no line to draw and would otherwise not show at all.
        for series in chart.series:
            series.marker = Marker(symbol="circle", size=5)
            series.smooth = False
    c = spec.categories
    chart.set_categories(Reference(sheet, c.min_col, c.min_row, c.max_col, c.max_row))
    return chart


def write_workbook(
    sheets: Iterable[SheetLayout],
    path: Path,
    *,
    max_rows: int = MAX_ROWS,
    title: str = "",
    creator: str = "",
    labels: PageLabels | None = None,
    paper: int | None = None,
) -> WorkbookStats:
    """Write `sheets` to `path` (streaming) and say what was written. `labels` head every
    printed page; `paper` (Paper.A4, Paper.LETTER) fixes the paper size, else the printer's."""
    writer = WorkbookWriter(max_rows=max_rows, title=title, creator=creator)
    writer.labels = labels
    writer.paper = paper
    for layout in sheets:
        writer.add(layout)
    return writer.save(path)
