"""Evidence-pack layout: which sheets, columns, formats and rows a pack has. Pure: no I/O.

Functions here turn snapshots and their diff into ``SheetLayout`` objects (rows are lazy
iterables, so a large standard streams). ``auditor.core.workbook_writer`` renders them with
openpyxl's write-only mode. Tests read the written workbook back and compare its numbers with
the same snapshots.

Sheets: Cover, Summary, one per standard, Changes, Action plan and Impacted resources
(workbook_recommendations.py), Hardening, Defender plans, Secure score, Attestations &
exemptions, Security alerts (workbook_alerts.py), Data quality. A sheet that
would pass Excel's row limit continues on a numbered sheet, and text longer than a cell holds
is cut with a note saying so: the writer does both, for every sheet (``cell_text``), so row
builders of large sheets leave text as is.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from auditor.core.diff import Change, ChangeKind, Diff, Level, Side
from auditor.core.evidence import PackManifest, iso, parse_iso
from auditor.core.failing_resources import (
    NOT_OBSERVED,
    Lookup,
    failing_ids,
    failing_names,
    recommendation_lookup,
)
from auditor.core.model import (
    CollectionStatus,
    ComplianceRecord,
    HardeningStatus,
    StandardAssignment,
    State,
)
from auditor.core.portal import PUBLIC_PORTAL, compliance_url, recommendation_url
from auditor.core.schedule import occurrences
from auditor.core.snapshot import (
    CarriedAssessment,
    Snapshot,
    SnapshotIndexEntry,
    Transition,
    snapshot_id_for,
)
from auditor.core.text import plain_text

# Excel's limits (specifications and limits of Excel): rows per sheet, characters per cell,
# characters per sheet name, hyperlinks per sheet.
MAX_ROWS = 1_048_576
MAX_CELL_CHARS = 32_767
MAX_SHEET_TITLE = 31
MAX_LINKS_PER_SHEET = 65_530

# A gap between consecutive snapshots, or between the last snapshot and the period's end, longer
# than this is reported as stale data (snapshots are daily).
STALE_AFTER = timedelta(hours=48)

# Characters XML 1.0 cannot carry (and lone surrogates, which UTF-8 cannot).
ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


class Kind(StrEnum):
    """How a column's values are formatted."""

    TEXT = "text"
    WRAP = "wrap"  # long text, wrapped
    HASH = "hash"  # fixed-width identifiers and digests
    INTEGER = "integer"
    NUMBER = "number"
    PERCENT = "percent"  # a percentage 0-100 (the API's unit), shown with a % sign
    DELTA = "delta"  # a difference of percentages, in signed percentage points
    DATE = "date"
    DATETIME = "datetime"
    LINK = "link"


class Tone(StrEnum):
    """Conditional-format colour of a cell whose text equals a given value."""

    GOOD = "good"
    BAD = "bad"
    WARN = "warn"
    MUTED = "muted"


# Severity cells of the alert and recommendation sheets: High red, Medium amber.
SEVERITY_TONES = (("High", Tone.BAD), ("Medium", Tone.WARN))


@dataclass(frozen=True, slots=True)
class Link:
    """A hyperlink cell: to a web page (`url`) or to a place in the workbook (`location`)."""

    text: str
    url: str = ""
    location: str = ""


CellValue = str | int | float | datetime | date | Link | None


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    width: float
    kind: Kind = Kind.TEXT
    tones: tuple[tuple[str, Tone], ...] = ()


@dataclass(frozen=True, slots=True)
class Heading:
    """A section title row inside a sheet (bold)."""

    text: str


@dataclass(frozen=True, slots=True)
class HeaderRow:
    """The header of a further table inside a sheet (styled like row 1). Its columns' kinds
    format the rows below it, up to the next heading or header."""

    columns: tuple[Column, ...]

    @classmethod
    def of(cls, *labels: str | Column) -> HeaderRow:
        """A header from labels (text columns) and columns."""
        return cls(tuple(c if isinstance(c, Column) else Column(c, 0) for c in labels))


@dataclass(frozen=True, slots=True)
class Paragraph:
    """A line of prose: wrapped across the sheet's printed columns from the second one, with an
    optional label (text or link) in the first."""

    text: str
    label: str | Link | None = None


Row = Sequence[CellValue] | Heading | HeaderRow | Paragraph


@dataclass(frozen=True, slots=True)
class CellRange:
    """1-based, inclusive."""

    min_col: int
    min_row: int
    max_col: int
    max_row: int


class ChartKind(StrEnum):
    BAR = "bar"
    LINE = "line"


@dataclass(frozen=True, slots=True)
class Chart:
    kind: ChartKind
    title: str
    y_title: str
    categories: CellRange
    series: tuple[CellRange, ...]  # each range's first cell is the series name
    anchor: str  # top-left cell, e.g. "A20"


@dataclass(frozen=True, slots=True)
class SheetLayout:
    """One sheet. With `table`, row 1 is the header of the table that starts the sheet: it is
    frozen, filtered and printed on every page, and the table may continue on numbered sheets.

    Paper: only the first `printed` columns are in the print area (None: all); the columns
    after them are reference columns (ids, hashes, links) kept in the workbook for filtering
    and lookups. `portrait` chooses the orientation.
    """

    title: str
    purpose: str
    columns: tuple[Column, ...]
    rows: Iterable[Row]
    table: bool = True
    charts: tuple[Chart, ...] = ()
    printed: int | None = None
    portrait: bool = False

    @property
    def printed_columns(self) -> tuple[Column, ...]:
        return self.columns if self.printed is None else self.columns[: self.printed]


# Widest print area, in Excel character units, that still prints at >= 8 pt (11 pt text
# scaled to fit one page wide) on the narrower of A4 and Letter with the writer's margins:
# landscape Letter, 10.2 in printable; portrait A4, 7.47 in. Tests check every sheet against it.
PRINT_WIDTH_LANDSCAPE = 150.0
PRINT_WIDTH_PORTRAIT = 105.0


@dataclass(frozen=True, slots=True)
class PageLabels:
    """What every printed page of a pack names in its header and footer."""

    tenant: str
    report_id: str
    period: str


@dataclass(frozen=True, slots=True)
class PackOptions:
    """Deployment choices a pack follows: the snapshot schedule (to count the period's
    scheduled slots) and the cloud's portal (for links)."""

    snapshot_schedule: str = "0 0 2 * * *"
    portal: str = PUBLIC_PORTAL


DEFAULT_OPTIONS = PackOptions()


@dataclass(frozen=True, slots=True)
class PackInputs:
    """Everything one pack shows: two snapshots of a tenant, the snapshots between (index
    entries, oldest first, both ends included), their diff, and the manifest naming them."""

    manifest: PackManifest
    start: Snapshot
    end: Snapshot
    period: tuple[SnapshotIndexEntry, ...]
    diff: Diff
    options: PackOptions = DEFAULT_OPTIONS


# ---------------------------------------------------------------------------------------------
# Cell values
# ---------------------------------------------------------------------------------------------


def cell_text(value: str, limit: int = MAX_CELL_CHARS) -> str:
    """`value` made safe for a cell: control characters removed (line breaks and tabs kept:
    auditor/core/text.py, the sanitiser of every output), what XML still cannot carry (lone
    surrogates, U+FFFE/U+FFFF) becomes U+FFFD (as does text that was control characters only),
    and text longer than a cell holds is cut with a note saying how much was cut."""
    cleaned = plain_text(value, keep_layout=True)
    # Text of control characters only keeps a visible mark, never a silently empty cell.
    value = cleaned if cleaned or not value else "\ufffd"
    if ILLEGAL_XML.search(value):
        value = ILLEGAL_XML.sub("\ufffd", value)
    if len(value) <= limit:
        return value
    note = f" [cut at Excel's cell limit: {limit:,} of {len(value):,} characters shown]"
    keep = limit - len(note)
    return value[:keep] + note[: limit - keep]


def _pct(value: float | None) -> float | None:
    """A percentage 0-100, as the API gives it (one unit everywhere; the cell format adds %)."""
    return None if value is None or not math.isfinite(value) else round(value, 2)


def _fraction_pct(value: float) -> float | None:
    """Defender's fraction (0-1) as a percentage 0-100."""
    return round(value * 100.0, 2) if math.isfinite(value) else None


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _day(value: datetime | None) -> date | None:
    return None if value is None else value.astimezone(UTC).date()


def _yes(flag: bool) -> str:
    return "Yes" if flag else "No"


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that puts control "1.2.10" after "1.2.9"."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part.lower())
        for part in re.split(r"(\d+)", text)
        if part
    )


# ---------------------------------------------------------------------------------------------
# Sheet names
# ---------------------------------------------------------------------------------------------

COVER = "Cover"
SUMMARY = "Summary"
CHANGES = "Changes"
HARDENING = "Hardening"
PLANS = "Defender plans"
SECURE_SCORE = "Secure score"
ATTESTATIONS = "Attestations & exemptions"
DATA_QUALITY = "Data quality"
ALERTS = "Security alerts"  # built in workbook_alerts.py
ACTION_PLAN = "Action plan"  # built in workbook_recommendations.py
IMPACTED = "Impacted resources"  # built in workbook_recommendations.py
FIXED_SHEETS = (
    COVER, SUMMARY, CHANGES, ACTION_PLAN, IMPACTED, HARDENING, PLANS, SECURE_SCORE, ATTESTATIONS,
    ALERTS, DATA_QUALITY
)  # fmt: skip

# Room left in a title for the writer's continuation suffix " (nn)".
_SUFFIX_ROOM = 5


def standard_sheet_titles(standards: Iterable[str]) -> dict[str, str]:
    """A valid, unique sheet title for every standard (Excel: ≤ 31 characters, none of
    ``[]:*?/\\``, not "History", unique ignoring case, not a fixed sheet's name)."""
    taken = {title.lower() for title in FIXED_SHEETS} | {"history"}
    out: dict[str, str] = {}
    for standard in sorted(set(standards), key=str.lower):
        base = _SHEET_FORBIDDEN.sub("-", standard).strip("'").strip() or "Standard"
        base = base[: MAX_SHEET_TITLE - _SUFFIX_ROOM].rstrip()
        title, number = base, 1
        while title.lower() in taken:
            number += 1
            tag = f" {number}"
            title = base[: MAX_SHEET_TITLE - _SUFFIX_ROOM - len(tag)].rstrip() + tag
        taken.add(title.lower())
        out[standard] = title
    return out


def continuation_title(title: str, number: int) -> str:
    """Title of the `number`-th sheet (2, 3, ...) a table continues on."""
    suffix = f" ({number})"
    return title[: MAX_SHEET_TITLE - len(suffix)].rstrip() + suffix


def sheet_ref(title: str) -> str:
    """A workbook location of a sheet's first cell, for internal links."""
    return "'" + title.replace("'", "''") + "'!A1"


# ---------------------------------------------------------------------------------------------
# Shared column sets and tones
# ---------------------------------------------------------------------------------------------

STATE_TONES: tuple[tuple[str, Tone], ...] = (
    (State.PASSED.value, Tone.GOOD),
    (State.FAILED.value, Tone.BAD),
    (State.SKIPPED.value, Tone.MUTED),
    (State.UNSUPPORTED.value, Tone.MUTED),
    ("Stale", Tone.WARN),
)
CHANGE_TONES: tuple[tuple[str, Tone], ...] = (
    (ChangeKind.REGRESSED.value, Tone.BAD),
    (ChangeKind.IMPROVED.value, Tone.GOOD),
    (ChangeKind.REMOVED.value, Tone.WARN),
    (ChangeKind.INCOMPARABLE.value, Tone.WARN),
)
STATUS_TONES: tuple[tuple[str, Tone], ...] = (
    (CollectionStatus.COMPLETE.value, Tone.GOOD),
    (CollectionStatus.INCOMPLETE.value, Tone.WARN),
    (CollectionStatus.FAILED.value, Tone.BAD),
    ("INCOMPLETE", Tone.BAD),
)
HARDENING_TONES: tuple[tuple[str, Tone], ...] = (
    (HardeningStatus.ASSESSED.value, Tone.GOOD),
    (HardeningStatus.RETIRED.value, Tone.MUTED),
    (HardeningStatus.MISSING.value, Tone.WARN),
)


def subscription_names(*snapshots: Snapshot) -> dict[str, str]:
    names: dict[str, str] = {}
    for snapshot in snapshots:
        for sub in snapshot.posture.tenant.subscriptions:
            names[sub.subscription_id] = sub.display_name
    return names


# ---------------------------------------------------------------------------------------------
# Cover
# ---------------------------------------------------------------------------------------------

METHODOLOGY = (
    "Source: Microsoft Defender for Cloud regulatory compliance, read through Azure Resource "
    "Graph (and the Security REST API where Resource Graph has no data) with Reader access "
    "delegated by Azure Lighthouse.",
    "A snapshot is the posture of every delegated subscription of the tenant at one scheduled "
    "moment. It is committed complete, or incomplete with the reasons; it is never changed "
    "afterwards.",
    "Each snapshot's content is hashed (SHA-256) together with its predecessor's hash, forming a "
    "chain per tenant; each hash is also written to a write-once (immutable) blob container.",
    "Compliance % of a standard = passed controls / (passed + failed controls), summed over "
    "subscriptions; skipped and unsupported controls are excluded. A standard without passed or "
    "failed controls has no percentage (blank), never 100 %.",
    "Changes compare the period's first and last snapshot. Changes in subscriptions that could "
    "not be read at both ends are reported as scope changes, never as posture changes.",
    "Nothing is reported as passed unless it was observed as passed: data that was not collected "
    "is 'missing', features Microsoft retired are 'retired', data carried from an earlier "
    "snapshot is 'Stale'.",
    "First failed = start of the current uninterrupted failing streak; days failing counts "
    "from it to the last snapshot of the period.",
)

VERIFY_STEPS = (
    "The manifest <report id>.json beside this workbook in the evidence container records the "
    "workbook's SHA-256; the blob's metadata repeats it (a file cannot contain its own hash).",
    "The pack hash below is the SHA-256 of the manifest's 'pack' object in canonical JSON "
    "(sorted keys, no spaces, UTF-8).",
    "`python -m auditor verify --tenant <id> --reports` recomputes every snapshot hash, the "
    "chain of predecessor hashes, the anchors and every pack's hashes, and names the first "
    "broken link.",
)

# The Cover prints its first five columns (landscape): label, then values; the snapshot table
# uses them for role, id, scheduled, status and SHA-256 (a whole SHA-256 in a fixed-width font
# needs about 80 widths). Finished time and predecessor columns are reference columns (each
# row's predecessor is the row above; the first one's is named above the table).
COVER_COLUMNS = (
    Column("", 22, Kind.TEXT),
    Column("", 18, Kind.TEXT),
    Column("", 19, Kind.DATETIME),
    Column("", 11, Kind.TEXT, STATUS_TONES),
    Column("", 80, Kind.HASH),
    Column("", 19, Kind.DATETIME),
    Column("", 18, Kind.TEXT),
    Column("", 80, Kind.HASH),
)
COVER_PRINTED = 5
HASH_COLUMN = 4  # where the Cover's hashes go
SNAPSHOT_HEADERS = (
    "Role",
    "Snapshot ID",
    "Scheduled (UTC)",
    "Status",
    "SHA-256",
    "Finished (UTC)",
    "Predecessor",
    "Predecessor SHA-256",
)
ANSWER_COLUMNS = (
    Column("Standard", 0, Kind.WRAP),
    Column("Compliance (end)", 0, Kind.PERCENT),
    Column("Change (points)", 0, Kind.DELTA),
    Column("Change, same subscriptions (points)", 0, Kind.DELTA),
    Column("Failing controls (end)", 0, Kind.INTEGER),
)


def status_text(entry: SnapshotIndexEntry) -> str:
    """A snapshot's status as a pack shows it: backfills and retakes of a failed attempt say
    so (both are in the manifest too)."""
    text = entry.status.value
    if entry.backfill:
        text += " (backfill: collected after its slot's successor began)"
    if entry.supersedes:
        text += f" (retook failed attempt {entry.supersedes})"
    return text


def _role(entry: SnapshotIndexEntry, manifest: PackManifest) -> str:
    if entry.snapshot_id == manifest.start and entry.snapshot_id == manifest.end:
        return "start and end"
    if entry.snapshot_id == manifest.start:
        return "start"
    if entry.snapshot_id == manifest.end:
        return "end"
    return "in period"


def completeness_warning(entry: SnapshotIndexEntry, which: str) -> str | None:
    """The Cover's warning for a snapshot that is not complete (None when it is)."""
    if entry.status is CollectionStatus.COMPLETE:
        return None
    return (
        f"WARNING: the {which} snapshot {entry.snapshot_id} is {entry.status.value.upper()}: "
        f"{len(entry.collected_subscriptions)} of {len(entry.expected_subscriptions)} expected "
        "subscriptions were collected. Figures cover only what was collected; see Data quality."
    )


MISSING = "missing"


@dataclass(frozen=True, slots=True)
class PeriodEvidence:
    """The requested period against the evidence held: its scheduled slots and what each has."""

    slots: tuple[datetime, ...]  # scheduled by the snapshot schedule within [from, to]
    by_slot: Mapping[datetime, SnapshotIndexEntry]
    schedule: str

    @property
    def missing(self) -> tuple[datetime, ...]:
        return tuple(slot for slot in self.slots if slot not in self.by_slot)

    def counts(self) -> dict[str, int]:
        """Slots per outcome: complete, incomplete, failed, missing."""
        out = {status.value: 0 for status in CollectionStatus}
        out[MISSING] = 0
        for slot in self.slots:
            entry = self.by_slot.get(slot)
            out[entry.status.value if entry else MISSING] += 1
        return out

    def summary(self) -> str:
        counts = self.counts()
        return f"{len(self.slots)} scheduled slots ({self.schedule}): " + ", ".join(
            f"{counts[k]} {k}" for k in counts
        )


def period_evidence(inputs: PackInputs) -> PeriodEvidence:
    m = inputs.manifest
    schedule = inputs.options.snapshot_schedule
    return PeriodEvidence(
        slots=tuple(occurrences(schedule, m.period_from, m.period_to)),
        by_slot={entry.scheduled_at: entry for entry in inputs.period},
        schedule=schedule,
    )


def _period_text(start: datetime, end: datetime) -> str:
    return f"{iso(start)} to {iso(end)}"


def page_labels(inputs: PackInputs) -> PageLabels:
    """Header and footer of every printed page: tenant, report id, period."""
    m = inputs.manifest
    return PageLabels(
        tenant=m.tenant_name or m.tenant_id,
        report_id=m.report_id,
        period=f"{m.period_from:%Y-%m-%d} to {m.period_to:%Y-%m-%d} (UTC)",
    )


def _answer_rows(inputs: PackInputs) -> list[Row]:
    """Per standard at the end of the period: compliance, its change, failing controls."""
    start, end = inputs.start, inputs.end
    comparable = {c.standard: c.comparable_delta for c in inputs.diff.summary.compliance}
    counts = control_counts(end)
    rows: list[Row] = [HeaderRow(ANSWER_COLUMNS)]
    for standard in sorted(end.index.compliance_by_standard, key=str.lower):
        after = end.index.compliance_by_standard.get(standard)
        before = start.index.compliance_by_standard.get(standard)
        delta = None if after is None or before is None else round(after - before, 2)
        rows.append(
            [
                standard,
                _pct(after),
                delta,
                comparable.get(standard),
                counts[standard][State.FAILED],
            ]
        )
    if len(rows) == 1:
        rows.append(["(no standard in the end snapshot)"])
    return rows


def _evidence_rows(inputs: PackInputs, evidence: PeriodEvidence) -> list[Row]:
    m = inputs.manifest
    first, last = inputs.period[0], inputs.period[-1]
    rows: list[Row] = [
        ["Period requested (UTC)", _period_text(m.period_from, m.period_to)],
        ["First snapshot held", f"{first.snapshot_id} ({first.status.value})"],
        ["Last snapshot held", f"{last.snapshot_id} ({last.status.value})"],
        ["Snapshots held", len(inputs.period)],
        ["Scheduled slots", evidence.summary()],
    ]
    if first.scheduled_at < m.period_from:
        rows.append(
            Paragraph(
                f"The start snapshot {first.snapshot_id} precedes the period: it is the "
                "posture at the period's start (the last snapshot at or before it)."
            )
        )
    if evidence.missing:
        rows.append(
            Paragraph(
                f"WARNING: {len(evidence.missing)} scheduled slots of the period have no "
                "snapshot; they are listed on Data quality."
            )
        )
    return rows


def cover_sheet(inputs: PackInputs, contents: Sequence[tuple[str, str]]) -> SheetLayout:
    """The answers first (compliance per standard, change, failing controls, completeness, the
    evidence held for the period), then identifiers, snapshots with hashes, method, contents."""
    m = inputs.manifest
    end = inputs.end.index
    rows: list[Row] = [Heading("Evidence pack: Defender for Cloud regulatory compliance")]
    for entry, which in ((end, "end"), (inputs.start.index, "start")):
        warning = completeness_warning(entry, which)
        if warning and (which == "end" or entry.snapshot_id != end.snapshot_id):
            rows.append(Paragraph(warning, label="Completeness"))
    rows += [["Tenant", m.tenant_name or m.tenant_id], []]
    rows += [Heading("Compliance at the end of the period")]
    rows += _answer_rows(inputs)
    rows += [
        [],
        Heading("Completeness of the end snapshot"),
        ["Status", end.status.value.upper() if end.reasons else end.status.value],
        ["Expected subscriptions", len(end.expected_subscriptions)],
        ["Collected subscriptions", len(end.collected_subscriptions)],
    ]
    rows += [Paragraph(cell_text(reason), label="Reason") for reason in end.reasons]
    rows += [[], Heading("Period and evidence held")]
    rows += _evidence_rows(inputs, period_evidence(inputs))
    first = inputs.period[0]
    rows += [
        [],
        Heading("Identifiers and hashes"),
        ["Report ID", m.report_id],
        ["Tenant ID", m.tenant_id],
        ["Compared snapshots", f"{m.start} → {m.end}"],
        ["Generated at (UTC)", iso(m.generated_at)],
        ["Generator version", m.generator_version],
        ["Pack manifest SHA-256", None, None, None, m.sha256],
        [
            "Chain before the first",
            first.previous_snapshot_id or "(first)",
            None,
            None,
            first.previous_hash or "",
        ],
        [],
        Heading("Snapshots used (oldest first)"),
        HeaderRow(
            tuple(
                replace(c, header=h) for c, h in zip(COVER_COLUMNS, SNAPSHOT_HEADERS, strict=True)
            )
        ),
    ]
    for entry in inputs.period:
        rows.append(
            [
                _role(entry, m),
                entry.snapshot_id,
                entry.scheduled_at,
                status_text(entry),
                entry.content_hash,
                entry.finished_at,
                entry.previous_snapshot_id or "(first)",
                entry.previous_hash or "",
            ]
        )
    rows += [[], Heading("How to verify this pack")]
    rows += [Paragraph(step) for step in VERIFY_STEPS]
    rows += [[], Heading("Methodology")]
    rows += [Paragraph(line) for line in METHODOLOGY]
    rows += [
        [],
        Heading("Links"),
        [
            "Regulatory compliance",
            Link("Defender for Cloud dashboard", url=compliance_url(inputs.options.portal)),
        ],
    ]
    rows += [[], Heading("Sheets"), HeaderRow.of("Sheet", "What it shows")]
    rows += [
        Paragraph(purpose, label=Link(title, location=sheet_ref(title)))
        for title, purpose in contents
    ]
    rows.append(
        Paragraph(
            "A table longer than Excel's 1,048,576 rows continues on a sheet with the same name "
            "and a number, e.g. 'PCI-DSS-4 (2)'."
        )
    )
    return SheetLayout(
        title=COVER,
        purpose="Compliance per standard, its change, completeness, the evidence held for the "
        "period; then identifiers, snapshots and their hashes, methodology.",
        columns=COVER_COLUMNS,
        rows=rows,
        table=False,
        printed=COVER_PRINTED,
    )


# ---------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------

SUMMARY_COLUMNS = (
    Column("Standard", 30, Kind.LINK),  # links to the standard's sheet
    Column("Compliance (end)", 11, Kind.PERCENT),
    Column("Change (points)", 9, Kind.DELTA),
    Column("Change, same subscriptions (points)", 12, Kind.DELTA),
    Column("Failed controls (end)", 8, Kind.INTEGER),
    Column("Passed controls (end)", 8, Kind.INTEGER),
    Column("Skipped controls (end)", 8, Kind.INTEGER),
    Column("Unsupported controls (end)", 11, Kind.INTEGER),
    Column("Compliance (start)", 11, Kind.PERCENT),
    Column("Failed controls (start)", 8, Kind.INTEGER),
    Column("Passed controls (start)", 8, Kind.INTEGER),
    Column("Note", 16, Kind.WRAP),
    Column("Skipped controls (start)", 8, Kind.INTEGER),
    Column("Unsupported controls (start)", 11, Kind.INTEGER),
)
SUMMARY_PRINTED = 12
_COMPLIANCE_END_COL = 2
_COMPLIANCE_START_COL = 9
_TREND_FIRST_COL = 3  # trend table: snapshot, status, then one column per standard


def control_counts(snapshot: Snapshot) -> dict[str, Counter[State]]:
    """Per standard, how many controls (over all subscriptions) are in each state."""
    counts: dict[str, Counter[State]] = defaultdict(Counter)
    for control in snapshot.posture.controls:
        counts[control.standard][control.state] += 1
    return counts


def _summary_note(standard: str, start: Snapshot, end: Snapshot) -> str:
    in_start = standard in start.index.compliance_by_standard
    in_end = standard in end.index.compliance_by_standard
    if not in_start and in_end:
        return "Assigned during the period (not in the start snapshot)."
    if in_start and not in_end:
        return "Not in the end snapshot (unassigned, or its subscriptions were not collected)."
    if end.index.compliance_by_standard.get(standard) is None:
        return "No passed or failed control: no percentage."
    return ""


_ORDER = (State.FAILED, State.PASSED, State.SKIPPED, State.UNSUPPORTED)


def _standard_row(
    standard: str,
    inputs: PackInputs,
    titles: Mapping[str, str],
    comparable: float | None,
    counts: tuple[Mapping[str, Counter[State]], Mapping[str, Counter[State]]],
) -> list[CellValue]:
    start, end = inputs.start, inputs.end
    b, a = counts[0].get(standard, Counter()), counts[1].get(standard, Counter())
    pct_b = start.index.compliance_by_standard.get(standard)
    pct_a = end.index.compliance_by_standard.get(standard)
    delta = None if pct_a is None or pct_b is None else round(pct_a - pct_b, 2)
    in_b = standard in start.index.compliance_by_standard
    in_a = standard in end.index.compliance_by_standard
    title = titles.get(standard)
    return [
        Link(standard, location=sheet_ref(title)) if title else standard,
        _pct(pct_a),
        delta,
        comparable,
        *((a[s] for s in _ORDER) if in_a else (None,) * 4),
        _pct(pct_b),
        *((b[s] for s in _ORDER[:2]) if in_b else (None,) * 2),
        _summary_note(standard, start, end),
        *((b[s] for s in _ORDER[2:]) if in_b else (None,) * 2),
    ]


def summary_sheet(inputs: PackInputs, titles: Mapping[str, str]) -> SheetLayout:
    """Per standard: compliance at the end, its change, controls by state at both ends, change
    counts, the trend over every snapshot of the period, and charts."""
    start, end = inputs.start, inputs.end
    standards = sorted(
        set(start.index.compliance_by_standard) | set(end.index.compliance_by_standard),
        key=str.lower,
    )
    comparable = {c.standard: c.comparable_delta for c in inputs.diff.summary.compliance}
    both = (control_counts(start), control_counts(end))
    rows: list[Row] = [
        _standard_row(standard, inputs, titles, comparable.get(standard), both)
        for standard in standards
    ]
    last_standard_row = 1 + len(standards)
    summary = inputs.diff.summary
    counts = summary.posture
    assigned = sum(1 for a in summary.assignments if a.change is ChangeKind.ADDED)
    rows += [
        [],
        Heading("Changes between the start and end snapshots (details: Changes)"),
        HeaderRow.of("Category", Column("Count", 0, Kind.INTEGER)),
        *([kind.value, counts.get(kind, 0)] for kind in counts),
        ["standards assigned (scope)", assigned],
        ["standards unassigned (scope)", len(summary.assignments) - assigned],
        ["subscriptions added", summary.subscriptions_added],
        ["subscriptions removed", summary.subscriptions_removed],
        ["subscriptions not comparable", summary.subscriptions_incomparable],
        ["Defender plans downgraded", len(summary.plan_downgrades)],
        ["secure scores dropped", len(summary.secure_score_drops)],
        [],
        Heading("Compliance trend across the period's snapshots"),
    ]
    trend_header_row = len(rows) + 2  # +1 for the header row 1, +1 for this row
    rows.append(
        HeaderRow.of(
            "Snapshot (UTC)",
            "Status",
            *(Column(standard, 0, Kind.PERCENT) for standard in standards),
        )
    )
    # Every snapshot of the period is a row, the end snapshot included, whatever its status: a
    # failed day is a row with empty cells, visible as a gap, never a reason to stop the series.
    for entry in inputs.period:
        rows.append(
            [
                entry.snapshot_id,
                status_text(entry),
                *(_pct(entry.compliance_by_standard.get(s)) for s in standards),
            ]
        )
    last_trend_row = trend_header_row + len(inputs.period)
    charts: list[Chart] = []
    chart_row = last_trend_row + 3
    if standards:
        charts.append(
            Chart(
                kind=ChartKind.BAR,
                title="Compliance per standard",
                y_title="Compliance (%)",
                categories=CellRange(1, 2, 1, last_standard_row),
                series=(
                    CellRange(_COMPLIANCE_START_COL, 1, _COMPLIANCE_START_COL, last_standard_row),
                    CellRange(_COMPLIANCE_END_COL, 1, _COMPLIANCE_END_COL, last_standard_row),
                ),
                anchor=f"A{chart_row}",
            )
        )
        charts.append(
            Chart(
                kind=ChartKind.LINE,
                title="Compliance trend",
                y_title="Compliance (%)",
                categories=CellRange(1, trend_header_row + 1, 1, last_trend_row),
                series=tuple(
                    CellRange(col, trend_header_row, col, last_trend_row)
                    for col in range(_TREND_FIRST_COL, _TREND_FIRST_COL + len(standards))
                ),
                anchor=f"G{chart_row}",
            )
        )
    return SheetLayout(
        title=SUMMARY,
        purpose="Per standard: compliance % at the end, its change in points, controls by "
        "state at both ends, change counts and the trend across the period.",
        columns=SUMMARY_COLUMNS,
        rows=rows,
        charts=tuple(charts),
        printed=SUMMARY_PRINTED,
    )


# ---------------------------------------------------------------------------------------------
# One sheet per standard
# ---------------------------------------------------------------------------------------------

# Printed: the first 12 (what an auditor reads); then reference columns for lookups.
STANDARD_COLUMNS = (
    Column("Control", 9),
    Column("Control description", 18, Kind.WRAP),
    Column("Control state", 11, Kind.TEXT, STATE_TONES),
    Column("Assessment description", 24, Kind.WRAP),
    Column("Subscription", 10, Kind.WRAP),
    Column("State", 11, Kind.TEXT, STATE_TONES),
    Column("Passed resources", 8, Kind.INTEGER),
    Column("Failed resources", 8, Kind.INTEGER),
    Column("Skipped resources", 8, Kind.INTEGER),
    Column("First failed (UTC)", 11, Kind.DATE),
    Column("Days failing", 7, Kind.INTEGER),
    Column("Observed", 9, Kind.WRAP),
    Column("Failing resources", 16, Kind.WRAP),
    Column("Assessment", 38, Kind.HASH),
    Column("Subscription ID", 38, Kind.HASH),
    Column("Assessment type", 14),
    Column("Portal link", 50, Kind.LINK),
    Column("Failing resource IDs", 90, Kind.HASH),
)
STANDARD_PRINTED = 13


def days_failing(transition: Transition | None, at: datetime) -> tuple[date | None, int | None]:
    """First-failed date and whole days failing at `at` (None, None when not failing)."""
    if transition is None or transition.first_failed is None:
        return None, None
    elapsed = at - transition.first_failed
    return _day(transition.first_failed), max(0, math.floor(elapsed.total_seconds() / 86400))


@dataclass(frozen=True, slots=True)
class _ControlInfo:
    description: str
    state: str


def _control_info(snapshot: Snapshot) -> dict[tuple[str, str, str], _ControlInfo]:
    return {
        (c.subscription_id, c.standard, c.control): _ControlInfo(c.description, c.state.value)
        for c in snapshot.posture.controls
    }


def _standard_rows(
    records: Sequence[ComplianceRecord],
    carried: Sequence[CarriedAssessment],
    snapshot: Snapshot,
    names: Mapping[str, str],
    controls: Mapping[tuple[str, str, str], _ControlInfo],
    portal: str,
    lookup: Lookup | None,
) -> Iterator[Sequence[CellValue]]:
    at = snapshot.index.scheduled_at
    missing = _ControlInfo("", "")

    def order(item: ComplianceRecord) -> tuple[object, ...]:
        return (
            natural_key(item.control),
            names.get(item.subscription_id, item.subscription_id).lower(),
            item.subscription_id,
            item.description.lower(),
            item.assessment,
        )

    everything: list[tuple[ComplianceRecord, CarriedAssessment | None]] = [
        (r, None) for r in records
    ]
    everything += [(c.record, c) for c in carried]
    everything.sort(key=lambda pair: order(pair[0]))
    for record, stale in everything:
        control = controls.get((record.subscription_id, record.standard, record.control), missing)
        if stale is None:
            first, days = days_failing(snapshot.transitions.get(record.key), at)
            state, observed = record.state.value, "current"
            names_cell, ids_cell = failing_names(record, lookup), failing_ids(record, lookup)
        else:
            first, days = days_failing(stale.transition, at)
            state = "Stale"
            observed = f"not observed; last seen {record.state.value} on {stale.last_seen:%Y-%m-%d}"
            # The end snapshot did not read the subscription: it has no resources to name.
            names_cell = ids_cell = NOT_OBSERVED if record.state is State.FAILED else ""
        url = recommendation_url(portal, record.assessment)
        yield (
            record.control,
            control.description,
            control.state,
            record.description,
            names.get(record.subscription_id, record.subscription_id),
            state,
            record.passed_resources,
            record.failed_resources,
            record.skipped_resources,
            first,
            days,
            observed,
            names_cell,
            record.assessment,
            record.subscription_id,
            record.assessment_type,
            Link(url, url=url),
            ids_cell,
        )


def standard_sheets(
    snapshot: Snapshot, titles: Mapping[str, str], portal: str = PUBLIC_PORTAL
) -> list[SheetLayout]:
    """One sheet per standard of `snapshot`: every assessment under its control."""
    by_standard: dict[str, list[ComplianceRecord]] = defaultdict(list)
    for record in snapshot.posture.compliance:
        by_standard[record.standard].append(record)
    carried: dict[str, list[CarriedAssessment]] = defaultdict(list)
    for item in snapshot.carried.values():
        carried[item.record.standard].append(item)
    names = subscription_names(snapshot)
    controls = _control_info(snapshot)
    lookup = recommendation_lookup(snapshot)  # failing resources, from the same snapshot
    sheets = []
    for standard in sorted(set(by_standard) | set(carried), key=str.lower):
        sheets.append(
            SheetLayout(
                title=titles[standard],
                purpose=f"{standard}: every control's assessments with state, resource counts, "
                "first-failed date, the failing resources and Defender for Cloud portal link.",
                columns=STANDARD_COLUMNS,
                rows=_standard_rows(
                    by_standard[standard],
                    carried[standard],
                    snapshot,
                    names,
                    controls,
                    portal,
                    lookup,
                ),
                printed=STANDARD_PRINTED,
            )
        )
    return sheets


# ---------------------------------------------------------------------------------------------
# Changes
# ---------------------------------------------------------------------------------------------

CHANGES_COLUMNS = (
    Column("Category", 12, Kind.TEXT, CHANGE_TONES),
    Column("Level", 11, Kind.WRAP),
    Column("Subscription", 13, Kind.WRAP),
    Column("Standard", 15, Kind.WRAP),
    Column("Control", 8),
    Column("Description", 24, Kind.WRAP),
    Column("State (start)", 9, Kind.TEXT, STATE_TONES),
    Column("State (end)", 9, Kind.TEXT, STATE_TONES),
    Column("Failed resources (start)", 8, Kind.INTEGER),
    Column("Failed resources (end)", 8, Kind.INTEGER),
    Column("Failing since (UTC)", 11, Kind.DATE),
    Column("Days failing", 7, Kind.INTEGER),
    Column("Reason", 15, Kind.WRAP),
    Column("Subscription ID", 38, Kind.HASH),
    Column("Assessment", 38, Kind.HASH),
    Column("Passed resources (start)", 10, Kind.INTEGER),
    Column("Passed resources (end)", 10, Kind.INTEGER),
)
CHANGES_PRINTED = 13

_CHANGE_ORDER = {
    ChangeKind.REGRESSED: 0,
    ChangeKind.IMPROVED: 1,
    ChangeKind.CHANGED: 2,
    ChangeKind.ADDED: 3,
    ChangeKind.REMOVED: 4,
    ChangeKind.INCOMPARABLE: 5,
}


def change_order(change: Change) -> tuple[int, int, int, tuple[str, str, str, str]]:
    """Regressions first, then the other posture categories, then scope (subscription) changes;
    within a category by subscription, standard, control and assessment."""
    regressed = change.change is ChangeKind.REGRESSED
    scope = change.level is Level.SUBSCRIPTION
    return (0 if regressed else 1, int(scope), _CHANGE_ORDER[change.change], change.sort_key)


def _side_state(side: Side | None) -> str | None:
    return side.state.value if side is not None and side.state is not None else None


def _change_row(
    kind: str,
    level: str,
    subscription: tuple[str, str],
    what: tuple[str | None, str | None, str | None, str],
    sides: tuple[Side | None, Side | None] = (None, None),
    states: tuple[str | None, str | None] | None = None,
    failing: tuple[date | None, int | None] = (None, None),
    reason: str | None = None,
) -> tuple[CellValue, ...]:
    """One Changes row in CHANGES_COLUMNS order. `what`: standard, control, assessment,
    description; `sides`: the two ends (resource counts and states)."""
    before, after = sides
    standard, control, assessment, description = what
    return (
        kind,
        level,
        subscription[0],
        standard,
        control,
        description,
        *(states if states is not None else (_side_state(before), _side_state(after))),
        before.failed_resources if before else None,
        after.failed_resources if after else None,
        *failing,
        reason,
        subscription[1],
        assessment,
        before.passed_resources if before else None,
        after.passed_resources if after else None,
    )


def _change_rows(inputs: PackInputs, names: Mapping[str, str]) -> Iterator[Sequence[CellValue]]:
    diff = inputs.diff

    def sub(subscription_id: str) -> tuple[str, str]:
        return names.get(subscription_id, subscription_id), subscription_id

    for c in sorted(diff.changes, key=change_order):
        level = c.level.value
        if c.level is Level.STANDARD:
            level = "standard (scope)"  # an assignment change, not a posture change
        yield _change_row(
            c.change.value,
            level,
            sub(c.subscription_id),
            (c.standard, c.control, c.assessment, c.description),
            (c.before, c.after),
            failing=(_day(c.failing_since), c.failing_days),
            reason=c.reason,
        )
    for d in diff.summary.plan_downgrades:
        yield _change_row(
            ChangeKind.REGRESSED.value,
            "Defender plan",
            sub(d.subscription_id),
            (None, None, None, f"Plan {d.plan}: {d.before_tier} → {d.after_tier}"),
            states=(d.before_tier, d.after_tier),
            reason="Defender plan downgraded",
        )
    for s in diff.summary.secure_score_drops:
        yield _change_row(
            ChangeKind.REGRESSED.value,
            "secure score",
            sub(s.subscription_id),
            (None, None, None, f"Secure score {s.before:.0%} → {s.after:.0%}"),
            reason="Secure score dropped",
        )
    if (
        not diff.changes
        and not diff.summary.plan_downgrades
        and not diff.summary.secure_score_drops
    ):
        yield _change_row(
            "none",
            "",
            ("", ""),
            (None, None, None, "No change between the start and end snapshots."),
        )


def changes_sheet(inputs: PackInputs) -> SheetLayout:
    names = subscription_names(inputs.start, inputs.end)
    return SheetLayout(
        title=CHANGES,
        purpose="Every change between the start and end snapshots, regressions first, in the "
        "API's categories (regressed, improved, changed, added, removed, incomparable).",
        columns=CHANGES_COLUMNS,
        rows=_change_rows(inputs, names),
        printed=CHANGES_PRINTED,
    )


# ---------------------------------------------------------------------------------------------
# Hardening, Defender plans, secure score
# ---------------------------------------------------------------------------------------------

HARDENING_COLUMNS = (
    Column("Subscription", 16, Kind.WRAP),
    Column("Feature", 22, Kind.WRAP),
    Column("Status", 10, Kind.TEXT, HARDENING_TONES),
    Column("Healthy resources", 8, Kind.INTEGER),
    Column("Unhealthy resources", 9, Kind.INTEGER),
    Column("Not applicable resources", 9, Kind.INTEGER),
    Column("Healthy share", 8, Kind.PERCENT),
    Column("VMs covered by a JIT policy", 9, Kind.INTEGER),
    Column("Severity", 8),
    Column("Recommendation", 48, Kind.WRAP),
    Column("Subscription ID", 38, Kind.HASH),
    Column("Recommendation key", 38, Kind.HASH),
    Column("Remediation", 60, Kind.WRAP),
    Column("Portal link", 50, Kind.LINK),
)
HARDENING_PRINTED = 10

PLAN_COLUMNS = (
    Column("Subscription", 18, Kind.WRAP),
    Column("Plan", 22, Kind.WRAP),
    Column("Tier", 9, Kind.TEXT, (("Standard", Tone.GOOD), ("Free", Tone.WARN))),
    Column("Sub-plan", 12, Kind.WRAP),
    Column("Lifecycle", 9, Kind.TEXT, (("retired", Tone.MUTED),)),
    Column("Replaced by", 14, Kind.WRAP),
    Column("Enabled since (UTC)", 18, Kind.DATETIME),
    Column("Subscription ID", 38, Kind.HASH),
)
PLAN_PRINTED = 7

SCORE_COLUMNS = (
    Column("Subscription", 16, Kind.WRAP),
    Column("Scope", 36, Kind.WRAP),
    Column("Score (points)", 9, Kind.NUMBER),
    Column("Maximum (points)", 9, Kind.NUMBER),
    Column("Percentage", 12, Kind.PERCENT),
    Column("Healthy resources", 8, Kind.INTEGER),
    Column("Unhealthy resources", 9, Kind.INTEGER),
    Column("Not applicable resources", 9, Kind.INTEGER),
    Column("Weight", 7, Kind.INTEGER),
    Column("Subscription ID", 38, Kind.HASH),
    Column("Control ID", 38, Kind.HASH),
)
SCORE_PRINTED = 9
NOT_APPLICABLE = "not applicable"


def _parse_instant(text: str) -> datetime | None:
    if not text:
        return None
    try:
        return parse_iso(text)
    except ValueError:
        return None


def _hardening_rows(
    snapshot: Snapshot, names: Mapping[str, str], portal: str
) -> Iterator[Sequence[CellValue]]:
    records = sorted(
        snapshot.posture.hardening,
        key=lambda h: (names.get(h.subscription_id, "").lower(), h.subscription_id, h.feature),
    )
    for h in records:
        assessed = h.status is HardeningStatus.ASSESSED
        judged = h.healthy + h.unhealthy
        url = recommendation_url(portal, h.recommendation)
        yield (
            names.get(h.subscription_id, h.subscription_id),
            h.feature,
            h.status.value,
            h.healthy if assessed else None,
            h.unhealthy if assessed else None,
            h.not_applicable if assessed else None,
            round(100.0 * h.healthy / judged, 2) if assessed and judged else None,
            h.jit_covered_vms,
            h.severity,
            cell_text(h.display_name),
            h.subscription_id,
            h.recommendation,
            cell_text(
                "Retired by Microsoft: not reported as passed or failed."
                if h.status is HardeningStatus.RETIRED
                else h.remediation
            ),
            Link(url, url=url),
        )


def hardening_sheet(snapshot: Snapshot, portal: str = PUBLIC_PORTAL) -> SheetLayout:
    names = subscription_names(snapshot)
    return SheetLayout(
        title=HARDENING,
        purpose="Hardening recommendations per subscription: healthy / unhealthy / not "
        "applicable resources; retired features labelled retired, absent data 'missing'.",
        columns=HARDENING_COLUMNS,
        rows=_hardening_rows(snapshot, names, portal),
        printed=HARDENING_PRINTED,
    )


def plans_sheet(snapshot: Snapshot) -> SheetLayout:
    names = subscription_names(snapshot)
    plans = sorted(
        snapshot.posture.plans,
        key=lambda p: (names.get(p.subscription_id, "").lower(), p.subscription_id, p.plan),
    )
    rows = (
        (
            names.get(p.subscription_id, p.subscription_id),
            p.plan,
            p.tier,
            p.sub_plan,
            "retired" if p.deprecated else "current",
            ", ".join(p.replaced_by),
            _parse_instant(p.enablement_time),
            p.subscription_id,
        )
        for p in plans
    )
    return SheetLayout(
        title=PLANS,
        purpose="Defender for Cloud plans per subscription: tier, sub-plan; deprecated plans "
        "labelled retired.",
        columns=PLAN_COLUMNS,
        rows=rows,
        printed=PLAN_PRINTED,
        portrait=True,
    )


def _score_percentage(maximum: float, fraction: float) -> float | str | None:
    """Percent 0-100; a control worth no points (maximum 0) has no percentage: not applicable,
    never 0 %."""
    if math.isfinite(maximum) and maximum == 0:
        return NOT_APPLICABLE
    return _fraction_pct(fraction)


def _score_rows(snapshot: Snapshot, names: Mapping[str, str]) -> Iterator[Sequence[CellValue]]:
    controls: dict[str, list[Sequence[CellValue]]] = defaultdict(list)
    for c in sorted(snapshot.posture.secure_score_controls, key=lambda c: c.display_name.lower()):
        controls[c.subscription_id].append(
            (
                names.get(c.subscription_id, c.subscription_id),
                cell_text(c.display_name),
                _finite(c.current),
                _finite(c.maximum),
                _score_percentage(c.maximum, c.percentage),
                c.healthy_resources,
                c.unhealthy_resources,
                c.not_applicable_resources,
                c.weight,
                c.subscription_id,
                c.control_id,
            )
        )
    scores = {s.subscription_id: s for s in snapshot.posture.secure_scores}
    for sub in sorted(set(scores) | set(controls), key=lambda s: (names.get(s, "").lower(), s)):
        score = scores.get(sub)
        if score is not None:
            yield (
                names.get(sub, sub),
                "Overall secure score",
                _finite(score.current),
                _finite(score.maximum),
                _score_percentage(score.maximum, score.percentage),
                None,
                None,
                None,
                score.weight,
                sub,
                None,
            )
        yield from controls.get(sub, ())


def secure_score_sheet(snapshot: Snapshot) -> SheetLayout:
    names = subscription_names(snapshot)
    return SheetLayout(
        title=SECURE_SCORE,
        purpose="Secure score per subscription and each of its security controls.",
        columns=SCORE_COLUMNS,
        rows=_score_rows(snapshot, names),
        printed=SCORE_PRINTED,
    )


# ---------------------------------------------------------------------------------------------
# Attestations & exemptions
# ---------------------------------------------------------------------------------------------

ATTESTATION_COLUMNS = (
    Column("Kind", 11),
    Column("Subscription", 14, Kind.WRAP),
    Column("Assignment", 20, Kind.WRAP),
    Column("Standard", 20, Kind.WRAP),
    Column("State or category", 12, Kind.WRAP),
    Column("Attested on (UTC)", 11, Kind.DATE),
    Column("Expires on (UTC)", 11, Kind.DATE),
    Column("Expired", 9, Kind.TEXT, (("EXPIRED", Tone.BAD), ("No", Tone.GOOD))),
    Column("Evidence", 18, Kind.WRAP),
    Column("Evidence link", 20, Kind.LINK),
    Column("Subscription ID", 38, Kind.HASH),
    Column("Assessment key", 38, Kind.HASH),
    Column("Standard ID", 60),
    Column("Description", 50, Kind.WRAP),
)
ATTESTATION_PRINTED = 10

_KINDS = {"Attest": "Attestation", "Exempt": "Exemption"}


def _expired(expires: datetime | None, raw: str, at: datetime) -> str:
    if expires is None:
        return "unreadable date" if raw else "no expiry"
    return "EXPIRED" if expires <= at else "No"


def standard_names(assignments: Iterable[StandardAssignment]) -> dict[str, str]:
    """Standard resource id -> the standard's name, from the assignments that assign it
    (effect Audit: their display name is the standard's)."""
    names: dict[str, str] = {}
    for a in assignments:
        if a.effect == "Audit" and a.standard_id and a.display_name:
            names.setdefault(a.standard_id.lower(), a.display_name)
    return names


def standard_name(standard_id: str, names: Mapping[str, str]) -> str:
    """A standard's name for people; its id's last segment when no assignment names it."""
    return names.get(standard_id.lower()) or standard_id.rstrip("/").rsplit("/", 1)[-1]


def _assignment_rows(
    assignment: StandardAssignment,
    names: Mapping[str, str],
    standards: Mapping[str, str],
    at: datetime,
) -> Iterator[Sequence[CellValue]]:
    expires = _parse_instant(assignment.expires_on)
    attest = assignment.effect == "Attest"
    head: tuple[CellValue, ...] = (
        _KINDS.get(assignment.effect, assignment.effect),
        names.get(assignment.subscription_id, assignment.subscription_id),
        cell_text(assignment.display_name or assignment.assignment_id),
        cell_text(standard_name(assignment.standard_id, standards)),
        assignment.compliance_state if attest else assignment.exemption_category,
        _parse_instant(assignment.compliance_date) if attest else None,
        expires,
        _expired(expires, assignment.expires_on, at),
    )
    tail: tuple[CellValue, ...] = (
        assignment.subscription_id,
        assignment.assessment_key,
        cell_text(assignment.standard_id),
        cell_text(assignment.description),
    )
    if not assignment.evidence:
        yield (*head, "none attached" if attest else None, None, *tail)
        return
    for evidence in assignment.evidence:
        url = cell_text(evidence.source_url, 2_000)  # Excel's hyperlink address limit
        link: CellValue = Link(url, url=url) if url.startswith(("https://", "http://")) else url
        yield (*head, cell_text(evidence.description), link, *tail)


def attestations_sheet(snapshot: Snapshot) -> SheetLayout:
    names = subscription_names(snapshot)
    at = snapshot.index.scheduled_at
    assignments = sorted(
        (a for a in snapshot.posture.assignments if a.effect in _KINDS),
        key=lambda a: (a.effect, names.get(a.subscription_id, "").lower(), a.display_name),
    )

    standards = standard_names(snapshot.posture.assignments)

    def rows() -> Iterator[Sequence[CellValue]]:
        for assignment in assignments:
            yield from _assignment_rows(assignment, names, standards, at)

    return SheetLayout(
        title=ATTESTATIONS,
        purpose="Manual attestations with their evidence links; exemptions with expiry "
        "(expired ones flagged as of the end snapshot).",
        columns=ATTESTATION_COLUMNS,
        rows=rows(),
        printed=ATTESTATION_PRINTED,
    )


# ---------------------------------------------------------------------------------------------
# Data quality
# ---------------------------------------------------------------------------------------------

QUALITY_COLUMNS = (
    Column("Check", 17, Kind.WRAP, (("none found", Tone.GOOD), ("Missing snapshot", Tone.BAD))),
    Column("Snapshot", 18),
    Column("Subscription", 14, Kind.WRAP),
    Column("Detail", 46, Kind.WRAP),
    Column("Count", 7, Kind.INTEGER),
    Column("Subscription ID", 38, Kind.HASH),
)
QUALITY_PRINTED = 5


def _quality(
    check: str,
    snapshot: str | None,
    subscription: tuple[str | None, str | None],
    detail: str,
    count: int | None = None,
) -> tuple[CellValue, ...]:
    """One Data quality row in QUALITY_COLUMNS order; `subscription`: name, id."""
    return (check, snapshot, subscription[0], detail, count, subscription[1])


def _missing_slot_rows(inputs: PackInputs) -> list[Sequence[CellValue]]:
    evidence = period_evidence(inputs)
    return [
        _quality(
            "Missing snapshot",
            snapshot_id_for(slot),
            (None, None),
            f"no snapshot was committed for the scheduled slot {iso(slot)} "
            f"(schedule {evidence.schedule})",
        )
        for slot in evidence.missing
    ]


def quality_rows(inputs: PackInputs) -> list[Sequence[CellValue]]:
    """Incomplete scope, missing subscriptions, malformed rows, stale data and gaps."""
    names = subscription_names(inputs.start, inputs.end)
    rows: list[Sequence[CellValue]] = []
    for entry in inputs.period:
        if entry.status is not CollectionStatus.COMPLETE:
            rows.append(
                _quality(
                    "Incomplete scope",
                    entry.snapshot_id,
                    (None, None),
                    cell_text(f"{entry.status.value}: " + "; ".join(entry.reasons)),
                    len(entry.expected_subscriptions) - len(entry.collected_subscriptions),
                )
            )
    ends = [inputs.start] if inputs.start.index.snapshot_id == inputs.end.index.snapshot_id else []
    ends = ends or [inputs.start, inputs.end]
    for snapshot in ends:
        index, completeness = snapshot.index, snapshot.posture.completeness
        missing = set(index.expected_subscriptions) - set(index.collected_subscriptions)
        for sub in sorted(missing | set(completeness.missing)):
            reason = completeness.missing.get(sub, "not collected")
            rows.append(
                _quality("Missing subscription", index.snapshot_id, (names.get(sub), sub), reason)
            )
        for kind, count in sorted(completeness.malformed.items()):
            rows.append(
                _quality(
                    "Malformed rows",
                    index.snapshot_id,
                    (None, None),
                    f"{kind}: rows that did not have their type's shape were left out",
                    count,
                )
            )
        for error in completeness.errors:
            rows.append(
                _quality("Collection error", index.snapshot_id, (None, None), cell_text(error))
            )
    end = inputs.end
    stale: Counter[str] = Counter()
    last_seen: dict[str, datetime] = {}
    for item in end.carried.values():
        sub = item.record.subscription_id
        stale[sub] += 1
        last_seen[sub] = min(last_seen.get(sub, item.last_seen), item.last_seen)
    for sub, count in sorted(stale.items()):
        rows.append(
            _quality(
                "Stale data",
                end.index.snapshot_id,
                (names.get(sub), sub),
                f"assessments not observed in the end snapshot, carried from earlier snapshots "
                f"(oldest last seen {last_seen[sub]:%Y-%m-%d}); shown as 'Stale'",
                count,
            )
        )
    period_to = inputs.manifest.period_to
    if period_to - end.index.scheduled_at > STALE_AFTER:
        rows.append(
            _quality(
                "Stale data",
                end.index.snapshot_id,
                (None, None),
                f"the last snapshot of the period was scheduled at {iso(end.index.scheduled_at)}, "
                f"more than {STALE_AFTER.total_seconds() / 3600:.0f} hours before the period's "
                f"end {iso(period_to)}",
            )
        )
    for earlier, later in zip(inputs.period, inputs.period[1:], strict=False):
        gap = later.scheduled_at - earlier.scheduled_at
        if gap > STALE_AFTER:
            rows.append(
                _quality(
                    "Gap in snapshots",
                    later.snapshot_id,
                    (None, None),
                    f"no snapshot between {earlier.snapshot_id} and {later.snapshot_id} "
                    f"({gap.total_seconds() / 86400:.1f} days)",
                )
            )
    missing_hardening: Counter[str] = Counter(
        h.subscription_id for h in end.posture.hardening if h.status is HardeningStatus.MISSING
    )
    for sub, count in sorted(missing_hardening.items()):
        rows.append(
            _quality(
                "Missing data",
                end.index.snapshot_id,
                (names.get(sub), sub),
                "hardening recommendations without any data (shown as 'missing', never passed)",
                count,
            )
        )
    for warning in end.posture.completeness.warnings:
        rows.append(_quality("Warning", end.index.snapshot_id, (None, None), cell_text(warning)))
    rows += _missing_slot_rows(inputs)
    if not rows:
        rows.append(
            _quality("none found", None, (None, None), "No data-quality issue in this period.", 0)
        )
    return rows


def quality_sheet(inputs: PackInputs) -> SheetLayout:
    return SheetLayout(
        title=DATA_QUALITY,
        purpose="Incomplete scope, missing subscriptions, malformed rows, stale data and gaps "
        "between snapshots.",
        columns=QUALITY_COLUMNS,
        rows=quality_rows(inputs),
        printed=QUALITY_PRINTED,
        portrait=True,
    )


# ---------------------------------------------------------------------------------------------
# The whole pack
# ---------------------------------------------------------------------------------------------


def pack_layout(inputs: PackInputs) -> list[SheetLayout]:
    """Every sheet of the pack, in order. Standard sheets come from the end snapshot."""
    # The alerts and recommendation sheets build on this module's cells and layouts: imported
    # here, not above.
    from auditor.core.workbook_alerts import alerts_sheet
    from auditor.core.workbook_recommendations import action_plan_sheet, impacted_resources_sheet

    if inputs.start.index.tenant_id != inputs.end.index.tenant_id:
        raise ValueError("a pack shows one tenant")
    standards = {r.standard for r in inputs.end.posture.compliance}
    standards |= {c.record.standard for c in inputs.end.carried.values()}
    titles = standard_sheet_titles(standards)
    body = [
        summary_sheet(inputs, titles),
        *standard_sheets(inputs.end, titles, inputs.options.portal),
        changes_sheet(inputs),
        action_plan_sheet(inputs),
        impacted_resources_sheet(inputs),
        hardening_sheet(inputs.end, inputs.options.portal),
        plans_sheet(inputs.end),
        secure_score_sheet(inputs.end),
        attestations_sheet(inputs.end),
        alerts_sheet(inputs),
        quality_sheet(inputs),
    ]
    contents = [(COVER, "This sheet.")] + [(sheet.title, sheet.purpose) for sheet in body]
    return [cover_sheet(inputs, contents), *body]
