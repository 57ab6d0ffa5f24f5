"""`tenants`: every tenant with a stored snapshot, and its latest one."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from auditor.adapters.tables import SnapshotStore
from auditor.commands.output import shown
from auditor.commands.snapshots import index_json
from auditor.settings import load_settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tenants",
        help="list tenants with stored snapshots and each one's latest snapshot",
        description=(
            "List every tenant that has a committed snapshot, with its latest snapshot: slot, "
            "status, subscriptions collected/expected, assessments and failures, and compliance "
            "per standard (passed controls over passed + failed)."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.set_defaults(handler=run)


def _compliance(by_standard: dict[str, float | None]) -> str:
    return ", ".join(
        f"{shown(standard)} {'n/a' if value is None else f'{value:g}%'}"
        for standard, value in sorted(by_standard.items())
    )


def run(args: argparse.Namespace) -> int:
    with SnapshotStore.from_settings(load_settings()) as store:
        entries = store.list_tenants()
    if args.json:
        json.dump({"tenants": [index_json(e) for e in entries]}, sys.stdout, indent=2)
        print()
        return 0
    if not entries:
        print("no tenant has a snapshot yet (see `snapshot --all`)")
        return 0
    for entry in entries:
        counts = entry.counts
        print(
            f"{entry.tenant_id}  {shown(entry.tenant_name)}  latest {entry.snapshot_id}  "
            f"{entry.status.value.upper()}  subscriptions "
            f"{len(entry.collected_subscriptions)}/{len(entry.expected_subscriptions)}  "
            f"assessments {counts.get('compliance', 0)} "
            f"(failed {counts.get('compliance_failed', 0)})"
        )
        if entry.compliance_by_standard:
            print(f"    {_compliance(entry.compliance_by_standard)}")
        for reason in entry.reasons:
            print(f"    {shown(reason)}")
    print(f"{len(entries)} tenants")
    return 0
