"""`status`: the deployment at a glance, for operators."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from auditor.commands.runs import EVERY_TENANT
from auditor.services.operations import operations_from_settings
from auditor.settings import load_settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status",
        help="last run, failed and stale tenants, queues, notifications, evidence retention",
        description=(
            "The latest run and the last closed one (slot, outcome), the tenants failed or "
            "stale in it, the snapshot queue's and poison queue's depths and oldest messages, "
            "each notification sink's delivery state, and whether the evidence container is "
            "immutable. Exit code 1 when something needs an operator (failed tenants, poison "
            "messages, an undelivered notification)."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.set_defaults(handler=run)


def _needs_operator(status: dict[str, Any]) -> bool:
    undelivered = any(d["state"] != "delivered" for d in status["notifications"])
    return bool(status["tenants"]["failed"] or status["queues"].get("poisonDepth") or undelivered)


def run(args: argparse.Namespace) -> int:
    operations = operations_from_settings(load_settings(), live_queues=True)
    try:
        status = operations.status(EVERY_TENANT)
    finally:
        operations.close()
    code = 1 if _needs_operator(status) else 0
    if args.json:
        json.dump(status, sys.stdout, indent=2)
        print()
        return code
    for label, key in (("latest run", "latestRun"), ("last closed run", "lastClosedRun")):
        item = status[key]
        if item is None:
            print(f"{label}: none")
            continue
        closed = f"closed {item['closedAt']} by {item['closedBy']}" if item["closed"] else "open"
        print(f"{label}: {item['slot']} {closed} {item['outcome'] or ''}".rstrip())
    tenants = status["tenants"]
    print(f"tenants failed: {len(tenants['failed'])} {' '.join(tenants['failed'])}".rstrip())
    print(f"tenants stale: {len(tenants['stale'])} {' '.join(tenants['stale'])}".rstrip())
    queues = status["queues"]
    print(
        f"queue {queues.get('snapshotQueue')}: {queues.get('depth')} messages (oldest "
        f"{queues.get('oldestMessageAt') or '-'}), poison {queues.get('poisonDepth')} (oldest "
        f"{queues.get('oldestPoisonAt') or '-'})"
    )
    for delivery in status["notifications"]:
        print(f"notify {delivery['sink']}: {delivery['state']} ({delivery['attempts']} attempts)")
    evidence = status["evidence"]
    if evidence is not None:
        locked = {True: "locked", False: "NOT immutable", None: "lock not confirmed"}
        print(f"evidence {evidence['container']}: {locked[evidence['locked']]}")
    return code
