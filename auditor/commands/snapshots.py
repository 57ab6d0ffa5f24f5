"""`snapshots`: a tenant's committed snapshots, newest first, with their place in the hash chain."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from auditor.adapters.tables import SnapshotStore
from auditor.api import documents
from auditor.commands import when
from auditor.commands.output import shown
from auditor.core.snapshot import SnapshotIndexEntry, is_tenant_id
from auditor.settings import load_settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "snapshots",
        help="list a tenant's stored snapshots, newest first",
        description=(
            "List a tenant's committed snapshots (newest first): slot, finish time, status, "
            "subscriptions collected/expected, assessments and failures, and the content hash "
            "with its predecessor's (the tenant's hash chain)."
        ),
    )
    parser.add_argument("--tenant", metavar="ID", required=True, help="tenant id (GUID)")
    parser.add_argument(
        "--since",
        metavar="WHEN",
        type=when.instant,
        help=f"only slots at or after it: {when.INSTANT_HELP}",
    )
    parser.add_argument(
        "--until", metavar="WHEN", type=when.instant, help="only slots at or before it (as --since)"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON for machines (each snapshot as the API's snapshot list gives it)",
    )
    parser.set_defaults(handler=run)


def index_line(entry: SnapshotIndexEntry) -> str:
    counts = entry.counts
    return (
        f"{entry.snapshot_id}  {entry.status.value.upper():<10}  "
        f"finished {entry.finished_at:%Y-%m-%d %H:%M:%S}Z  "
        f"subscriptions {len(entry.collected_subscriptions)}/{len(entry.expected_subscriptions)}  "
        f"assessments {counts.get('compliance', 0)} (failed {counts.get('compliance_failed', 0)})"
        f"  sha256 {entry.content_hash[:12]}  previous {(entry.previous_hash or '-')[:12]}"
        + ("  BACKFILL" if entry.backfill else "")
        + (f"  retook {entry.supersedes[:8]}" if entry.supersedes else "")
    )


def run(args: argparse.Namespace) -> int:
    if not is_tenant_id(args.tenant):
        print(f"error: --tenant must be a tenant id (GUID), got {args.tenant!r}", file=sys.stderr)
        return 2
    with SnapshotStore.from_settings(load_settings()) as store:
        entries = store.list_snapshots(args.tenant.lower(), since=args.since, until=args.until)
    if args.json:
        body = {"snapshots": [documents.snapshot_summary(e) for e in entries]}
        json.dump(body, sys.stdout, indent=2)
        print()
        return 0
    if not entries:
        print(f"no snapshots of tenant {args.tenant.lower()}")
        return 0
    name = shown(entries[0].tenant_name)
    print(f"tenant {entries[0].tenant_id} ({name}): {len(entries)} snapshots")
    for entry in entries:
        print(index_line(entry))
        for reason in entry.reasons:
            print(f"    {shown(reason)}")
    return 0
