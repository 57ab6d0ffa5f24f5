"""`runs`: the latest runs, or one run's digest (what changed for every tenant)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from auditor.commands.output import shown
from auditor.core.access import TenantScope
from auditor.core.snapshot import SNAPSHOT_ID
from auditor.services.operations import operations_from_settings
from auditor.settings import load_settings

EVERY_TENANT = TenantScope(everything=True, tenants=frozenset())


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "runs",
        help="list the latest runs, or show one run's digest",
        description=(
            "Without --slot: the latest full runs, newest first, with how each closed (the "
            "last tenant job, the timer's sweep, or inline) and its figures. With --slot: that "
            "run's digest, worst tenants first: status and reasons, regressions and "
            "improvements against the previous snapshot, compliance change per standard, plan "
            "downgrades, secure-score drops, stale tenants, tenants that joined or left the "
            "delegation, poison messages, and each notification sink's delivery state."
        ),
    )
    parser.add_argument("--slot", metavar="S", help="a run's slot (YYYYMMDDTHHMMSSZ)")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.set_defaults(handler=run)


def _figures(counts: dict[str, int] | None) -> str:
    if not counts:
        return ""
    return (
        f"{counts['tenants']} tenants: {counts['complete']} complete, {counts['incomplete']} "
        f"incomplete, {counts['failed']} failed, {counts['stale']} stale, "
        f"{counts['regressed']} regressed, {counts['poison']} poison"
    )


def _closed(run: dict[str, Any]) -> str:
    if not run["closed"]:
        return "OPEN"
    return f"closed {run['closedAt']} by {run['closedBy']}"


def _tenant_lines(tenant: dict[str, Any]) -> list[str]:
    head = f"{tenant['tenantId']}  {shown(tenant['name'])}  {tenant['status'].upper()}"
    if tenant["stale"]:
        head += "  STALE"
    lines = [head]
    summary = tenant["summary"]
    if summary:
        posture = summary["posture"]
        lines.append(
            f"    since {tenant['previousSnapshotId']}: {posture['regressed']} regressed, "
            f"{posture['improved']} improved, {posture['changed']} changed"
        )
        for c in summary["compliance"]:
            if c.get("comparableDelta"):
                lines.append(f"    {shown(c['standard'])}: {c['comparableDelta']:+g} points")
        for d in summary["planDowngrades"]:
            lines.append(
                f"    plan {shown(d['plan'])} downgraded {shown(d['before']['tier'])} -> "
                f"{shown(d['after']['tier'])} in {d['subscriptionId']}"
            )
        for d in summary["secureScoreDrops"]:
            lines.append(f"    secure score {d['before']} -> {d['after']} in {d['subscriptionId']}")
    lines.extend(f"    {shown(reason)}" for reason in tenant["reasons"])
    return lines


def run(args: argparse.Namespace) -> int:
    if args.slot is not None and not SNAPSHOT_ID.match(args.slot):
        print(f"error: --slot must be a slot YYYYMMDDTHHMMSSZ, got {args.slot!r}", file=sys.stderr)
        return 2
    operations = operations_from_settings(load_settings())
    try:
        if args.slot is None:
            runs = operations.list_runs(EVERY_TENANT)
            if args.json:
                json.dump({"runs": runs}, sys.stdout, indent=2)
                print()
                return 0
            if not runs:
                print("no run yet (see `snapshot --all`)")
            for item in runs:
                print(f"{item['slot']}  {_closed(item)}  {item['outcome'] or ''}  "
                      f"{_figures(item['counts'])}")  # fmt: skip
            return 0
        found = operations.run(args.slot, EVERY_TENANT)
    finally:
        operations.close()
    if found is None:
        print(f"error: no run was planned for slot {args.slot}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(found, sys.stdout, indent=2)
        print()
        return 1 if found["problem"] else 0
    print(f"run {found['slot']}  planned {found['plannedAt']}  {_closed(found)}")
    if found["problem"]:
        print(f"DIGEST FAILS VERIFICATION: {found['problem']}")
        return 1
    digest = found["digest"]
    if digest is None:
        print(f"    {found['tenantsExpected']} tenants expected; the digest comes when it closes")
        return 0
    print(f"    {digest['outcome']}: {_figures(digest['counts'])}")
    for tenant in digest["tenants"]:
        for line in _tenant_lines(tenant):
            print(line)
    for name in ("joined", "left"):
        if digest[name]:
            print(f"{name} the delegation: {', '.join(digest[name])}")
    for reason in digest["poison"]["reasons"]:
        print(f"poison: {shown(reason)}")
    for delivery in found["deliveries"]:
        print(
            f"notify {delivery['sink']}: {delivery['state']} after {delivery['attempts']} "
            f"attempts{': ' + shown(delivery['reason']) if delivery['reason'] else ''}"
        )
    return 0
