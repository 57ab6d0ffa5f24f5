"""The evidence pack's "Security alerts" sheet. Pure (a ``SheetLayout``; see workbook.py).

The open alerts of the end snapshot (most severe and newest first, as collected), marked when
they are new since the start snapshot; then every alert counted per subscription, severity and
status with what the per-tenant cap left out; then the period's changes (new, resolved, new
High). An end snapshot taken before alerts were collected says *not collected*, never "none".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from auditor.core.alert_diff import AlertDiff
from auditor.core.model import AlertCount, AlertSeverity, SecurityAlert
from auditor.core.registry import ALERT_COUNTS, ALERTS, records_of
from auditor.core.workbook import ALERTS as SHEET_TITLE
from auditor.core.workbook import (
    SEVERITY_TONES,
    CellValue,
    Column,
    HeaderRow,
    Heading,
    Kind,
    Link,
    PackInputs,
    Paragraph,
    Row,
    SheetLayout,
    Tone,
    cell_text,
    subscription_names,
)

ALERTS_SHEET = SHEET_TITLE
ALERT_COLUMNS = (
    Column("Severity", 10, Kind.TEXT, SEVERITY_TONES),
    Column("Status", 11),
    Column("Alert", 30, Kind.WRAP),
    Column("Subscription", 18, Kind.WRAP),
    Column("Compromised entity", 14, Kind.WRAP),
    Column("Started (UTC)", 17, Kind.DATETIME),
    Column("Intent", 14, Kind.WRAP),
    Column("Techniques", 11, Kind.WRAP),
    Column("Incident", 8),
    Column("New in period", 8, Kind.TEXT, (("Yes", Tone.WARN),)),
    Column("Portal link", 50, Kind.LINK),
    Column("Alert type", 24, Kind.WRAP),
    Column("Affected resources", 60, Kind.WRAP),
    Column("Alert ID", 60, Kind.HASH),
)
ALERTS_PRINTED = 10
COUNT_HEADER = HeaderRow.of(
    "Severity", "Status", "Subscription", "Alerts", "Listed above", "Left out by the cap"
)
NOT_COLLECTED = (
    "Not collected: the end snapshot was taken before security alerts were collected. This "
    "says nothing about whether the tenant had alerts."
)


def _yes(flag: bool) -> str:
    return "Yes" if flag else "No"


def _alert_row(alert: SecurityAlert, names: dict[str, str], new: set[str]) -> Sequence[CellValue]:
    link = alert.portal_link
    return (
        alert.severity.value,
        alert.status.value,
        cell_text(alert.display_name),
        names.get(alert.subscription_id, alert.subscription_id),
        cell_text(alert.compromised_entity),
        alert.start_time,
        cell_text(alert.intent),
        ", ".join(alert.techniques),
        _yes(alert.incident),
        _yes(alert.alert_id in new),
        Link(link, url=link) if link else None,
        cell_text(alert.alert_type),
        cell_text("\n".join(alert.resource_ids)),
        alert.alert_id,
    )


def _count_row(count: AlertCount, names: dict[str, str]) -> Sequence[CellValue]:
    return (
        count.severity.value,
        count.status.value,
        names.get(count.subscription_id, count.subscription_id),
        count.alerts,
        count.listed,
        count.left_out,
    )


_RANK = {severity: rank for rank, severity in enumerate(AlertSeverity)}


def _order(count: AlertCount) -> tuple[str, int, str]:
    return (count.subscription_id, _RANK[count.severity], count.status.value)


def _changes(diff: AlertDiff | None) -> Paragraph:
    if diff is None:
        return Paragraph(
            "Not comparable: the start snapshot was taken before security alerts were collected.",
            label="Changes",
        )
    text = (
        f"{len(diff.new)} new open alerts ({diff.new_high} of High severity); "
        f"{len(diff.resolved)} no longer open (resolved or dismissed)"
    )
    if diff.unlisted:
        text += f"; {diff.unlisted} not matched because the per-tenant cap left them out"
    return Paragraph(text + ".", label="Changes")


def alerts_sheet(inputs: PackInputs) -> SheetLayout:
    end = inputs.end
    alerts = records_of(end.posture, ALERTS)
    counts = records_of(end.posture, ALERT_COUNTS)
    names = subscription_names(inputs.start, end)

    def rows() -> Iterator[Row]:
        if alerts is None or counts is None:
            yield Paragraph(NOT_COLLECTED, label="Alerts")
            return
        diff = inputs.diff.summary.alerts
        new = {a.alert_id for a in diff.new} if diff is not None else set()
        for alert in alerts:
            yield _alert_row(alert, names, new)
        yield []
        yield Heading("Alerts counted per subscription, severity and status")
        yield COUNT_HEADER
        for count in sorted(counts, key=lambda c: (names.get(c.subscription_id, ""), _order(c))):
            yield _count_row(count, names)
        left_out = sum(c.left_out for c in counts)
        yield []
        yield Paragraph(
            f"{left_out} open alerts were left out of the list above by the per-tenant cap "
            "(AUDITOR_ALERTS_MAX_PER_TENANT); every alert is counted.",
            label="Cap",
        )
        yield _changes(diff)

    return SheetLayout(
        title=ALERTS_SHEET,
        purpose="Open Defender for Cloud security alerts of the end snapshot, alerts counted "
        "per severity and status, and the period's new and resolved alerts.",
        columns=ALERT_COLUMNS,
        rows=rows(),
        printed=ALERTS_PRINTED,
    )
