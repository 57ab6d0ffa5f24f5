"""`diff`: what changed for a tenant between two snapshots, as the API answers it.

The same service (auditor/services/diff_query.py: ends, filters, their checks and words), the
same document (auditor/api/documents.py) and the same CSV as `GET /api/tenants/{id}/diff`,
without paging; plain text by default, every tenant-provided value through the one sanitiser.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from auditor.adapters.tables import SnapshotStore
from auditor.api import documents
from auditor.api.representation import render_csv
from auditor.commands import when
from auditor.commands.output import shown
from auditor.core.diff import ChangeKind, Level
from auditor.core.snapshot import is_tenant_id
from auditor.services import diff_query
from auditor.services.history import SnapshotHistory
from auditor.settings import load_settings

EXIT_NOT_FOUND = 1
EXIT_USAGE = 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "diff",
        help="what changed for a tenant between two snapshots (as the API's diff)",
        description=(
            "The diff of a tenant from snapshot --from to snapshot --to: both snapshots (ids, "
            "statuses, hashes), the summary of the whole diff, and the changes the filters "
            "keep, exactly as GET /api/tenants/{tenantId}/diff answers it (same checks and "
            "messages; no paging). Plain text by default; --json prints the API's document, "
            "--csv its CSV rows. Exit code 1 when the tenant or a snapshot is not found, 2 "
            "for a bad option."
        ),
    )
    parser.add_argument("--tenant", metavar="ID", required=True, help="tenant id (GUID)")
    parser.add_argument(
        "--from",
        dest="start",
        metavar="WHEN",
        type=when.snapshot_ref,
        help=f"{when.REF_HELP}; default the snapshot just before --to",
    )
    parser.add_argument(
        "--to",
        dest="end",
        metavar="WHEN",
        type=when.snapshot_ref,
        help=f"{when.REF_HELP}; default the latest snapshot",
    )
    parser.add_argument(
        "--change",
        action="append",
        metavar="KIND",
        help=f"only these categories ({', '.join(k.value for k in ChangeKind)}); "
        "repeat or comma-separate",
    )
    parser.add_argument(
        "--level",
        action="append",
        metavar="LEVEL",
        help=f"only these levels ({', '.join(v.value for v in Level)}); repeat or comma-separate",
    )
    parser.add_argument(
        "--standard", action="append", metavar="NAME", help="only these standards (repeat)"
    )
    parser.add_argument(
        "--subscription",
        action="append",
        metavar="ID",
        help="only these subscriptions (repeat or comma-separate)",
    )
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print the API's JSON document")
    shape.add_argument("--csv", action="store_true", help="print the API's CSV rows")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not is_tenant_id(args.tenant):
        print(f"error: --tenant must be a tenant id (GUID), got {args.tenant!r}", file=sys.stderr)
        return EXIT_USAGE
    try:
        wanted = diff_query.change_filter(args.standard, args.subscription, args.change, args.level)
    except diff_query.BadValue as exc:
        print(f"error: --{shown(exc.detail)}", file=sys.stderr)
        return EXIT_USAGE
    tenant = args.tenant.lower()
    with SnapshotStore.from_settings(load_settings()) as store:
        history = SnapshotHistory(store)
        try:
            before, after = diff_query.resolve_ends(history, tenant, args.start, args.end)
            wanted.check_known(before, after)
        except diff_query.BadValue as exc:
            print(f"error: --{shown(exc.detail)}", file=sys.stderr)
            return EXIT_USAGE
        except diff_query.DiffQueryError as exc:
            detail = exc.detail if exc.parameter else f"tenant {tenant} has no snapshot"
            print(f"error: {'--' if exc.parameter else ''}{shown(detail)}", file=sys.stderr)
            return EXIT_NOT_FOUND
        warnings = history.staleness([("from", args.start, before), ("to", args.end, after)])
        diff = history.diff(before, after)
        changes = list(diff_query.matching(diff, wanted))
    page = documents.diff_page(
        diff, documents.diff_summary(diff.summary), changes, len(changes), None, warnings
    )
    if args.json:
        json.dump(page, sys.stdout, indent=2, ensure_ascii=False)
        print()
    elif args.csv:
        sys.stdout.flush()
        body = render_csv(documents.diff_csv_rows(page), documents.DIFF_CSV_COLUMNS)
        sys.stdout.buffer.write(body)  # already sanitised cell by cell; CRLF kept
        sys.stdout.buffer.flush()
    else:
        for line in text_lines(page):
            print(line)
    return 0


def _end(name: str, end: dict[str, Any]) -> str:
    return (
        f"{name} {end['snapshotId']}  {end['status'].upper()}  sha256 {end['contentHash'][:12]}"
        f"  subscriptions {end['subscriptionsCollected']}/{end['subscriptionsExpected']}"
    )


def _number(value: float | None, unit: str = "%") -> str:
    return "n/a" if value is None else f"{value:g}{unit}"


def _side(side: dict[str, Any] | None) -> str:
    if side is None:
        return "-"
    return f"{side['state']} (failed {side['failedResources']})"


def _recommendation_lines(recs: dict[str, Any]) -> list[str]:
    if not recs["comparable"]:
        return [f"recommendations: {shown(recs['reason'])}"]
    lines = [
        f"recommendations: newly unhealthy {len(recs['newlyUnhealthy'])}, newly healthy "
        f"{len(recs['newlyHealthy'])}, resources became unhealthy "
        f"{len(recs['resourcesBecameUnhealthy'])} (not compared, capped: "
        f"{recs['resourcesUnlisted']})"
    ]
    for label, key in (("newly unhealthy", "newlyUnhealthy"), ("newly healthy", "newlyHealthy")):
        lines += [
            f"  {label}: {r['subscriptionId']} {shown(r['severity'])} {shown(r['displayName'])}"
            f" ({r['unhealthyResources']} unhealthy)"
            for r in recs[key]
        ]
    return lines


def text_lines(page: dict[str, Any]) -> list[str]:
    """The diff document as lines for a terminal (customer text on one line each)."""
    summary = page["summary"]
    lines = [f"tenant {page['tenantId']}", _end("from", page["from"]), _end("to", page["to"])]
    for reason in (*page["from"]["reasons"], *page["to"]["reasons"]):
        lines.append(f"    incomplete: {shown(reason)}")
    lines += [f"warning: {shown(w)}" for w in page["warnings"]]
    posture = ", ".join(f"{kind} {count}" for kind, count in summary["posture"].items())
    lines.append(f"posture: {posture}")
    scope = summary["scope"]
    lines.append(
        f"scope: subscriptions added {scope['subscriptionsAdded']}, removed "
        f"{scope['subscriptionsRemoved']}, incomparable {scope['subscriptionsIncomparable']}, "
        f"compared {scope['subscriptionsCompared']}; standards assigned "
        f"{scope['standardsAssigned']}, unassigned {scope['standardsUnassigned']}"
    )
    for c in summary["compliance"]:
        lines.append(
            f"  {shown(c['standard'])}: {_number(c['before'])} -> {_number(c['after'])} "
            f"(change {_number(c['delta'], ' points')}; same subscriptions "
            f"{_number(c['comparableDelta'], ' points')})"
        )
    for d in summary["planDowngrades"]:
        lines.append(
            f"  plan downgraded: {d['subscriptionId']} {shown(d['plan'])} "
            f"{shown(d['before']['tier'])} -> {shown(d['after']['tier'])}"
        )
    for d in summary["secureScoreDrops"]:
        lines.append(
            f"  secure score dropped: {d['subscriptionId']} {_number(d['before'])} -> "
            f"{_number(d['after'])}"
        )
    lines += _recommendation_lines(summary["recommendations"])
    lines.append(f"{page['matchingChanges']} changes")
    for item in page["value"]:
        where = "  ".join(
            shown(item[k]) for k in ("standard", "control", "assessment") if item[k] is not None
        )
        text = (
            f"{item['change'].upper():<12} {item['level']:<12} {item['subscriptionId']}"
            + (f"  {where}" if where else "")
            + f"  {_side(item['before'])} -> {_side(item['after'])}"
        )
        if item["failingDays"] is not None:
            text += f"  failing {item['failingDays']} days"
        if item["reason"]:
            text += f"\n    {shown(item['reason'])}"
        lines.append(text)
    return lines
