"""`tenants`: every tenant with a stored snapshot, and its latest one."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from auditor.adapters.tables import SnapshotStore
from auditor.api import documents
from auditor.commands.output import shown
from auditor.core.snapshot import SnapshotIndexEntry
from auditor.settings import load_settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tenants",
        help="list tenants with stored snapshots and each one's latest snapshot",
        description=(
            "List every tenant that has a committed snapshot, with its latest snapshot: slot, "
            "status, subscriptions collected/expected, assessments and failures, and compliance "
            "per standard (passed controls over passed + failed); a tenant the latest full run "
            "no longer found is marked NO LONGER DELEGATED with its latest snapshot's age. A "
            "tenant whose latest snapshot fails verification against its anchor is left out "
            "(see `verify`)."
        ),
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON for machines (each tenant as the API's tenant list gives it)",
    )
    parser.set_defaults(handler=run)


def _compliance(by_standard: dict[str, float | None]) -> str:
    return ", ".join(
        f"{shown(standard)} {'n/a' if value is None else f'{value:g}%'}"
        for standard, value in sorted(by_standard.items())
    )


def _age_days(entry: SnapshotIndexEntry) -> int:
    return max(0, (datetime.now(UTC) - entry.scheduled_at).days)


def run(args: argparse.Namespace) -> int:
    with SnapshotStore.from_settings(load_settings()) as store:
        entries = store.list_tenants()  # verified: a tenant that fails is left out and logged
        delegation = store.delegation()
    if args.json:
        body = [documents.tenant_item(e, delegation) for e in entries]
        json.dump({"tenants": body}, sys.stdout, indent=2)
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
        if delegation is not None and not delegation.delegated(entry.tenant_id):
            since = delegation.left_at.get(entry.tenant_id)
            print(
                f"    NO LONGER DELEGATED{f' (since run {since})' if since else ''}: its latest "
                f"snapshot is {_age_days(entry)} days old"
            )
        if entry.compliance_by_standard:
            print(f"    {_compliance(entry.compliance_by_standard)}")
        for reason in entry.reasons:
            print(f"    {shown(reason)}")
    print(f"{len(entries)} tenants")
    return 0
