"""`verify`: recompute snapshot hashes, the hash chain, anchors and stored packs' hashes."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from auditor.adapters.blobs import EvidenceStore
from auditor.adapters.retention import retention_status
from auditor.adapters.tables.store import SnapshotStore
from auditor.core.snapshot import is_tenant_id
from auditor.services.verify import Verification, verify
from auditor.settings import load_settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="check snapshot hashes, the per-tenant hash chain, anchors and stored packs",
        description=(
            "Recompute every committed snapshot's content hash and each tenant's chain of "
            "predecessor hashes, and check them against the anchors in the write-once evidence "
            "container; with --reports, also check every stored pack's SHA-256 against its "
            "manifest and blob metadata. Names the first broken link; exit code 1 on any "
            "mismatch."
        ),
    )
    scope = parser.add_mutually_exclusive_group(required=True)
    scope.add_argument("--tenant", metavar="ID", help="one tenant (its Entra tenant id)")
    scope.add_argument("--all", action="store_true", help="every tenant the store or anchors know")
    parser.add_argument("--reports", action="store_true", help="also verify stored packs")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.set_defaults(handler=run)


def as_json(result: Verification) -> dict[str, Any]:
    first = result.first_broken
    return {
        "ok": result.ok,
        "tenants": result.tenants,
        "snapshots": result.snapshots,
        "packs": result.packs,
        "firstBroken": None if first is None else str(first),
        "findings": [
            {"tenantId": f.tenant_id, "subject": f.subject, "problem": f.problem}
            for f in result.findings
        ],
    }


def run(args: argparse.Namespace) -> int:
    if args.tenant and not is_tenant_id(args.tenant):
        print(f"error: --tenant must be a tenant id (GUID), got {args.tenant!r}", file=sys.stderr)
        return 2
    settings = load_settings()
    with (
        SnapshotStore.from_settings(settings) as store,
        EvidenceStore.from_settings(settings) as evidence,
    ):
        result = verify(store, evidence, None if args.all else [args.tenant], reports=args.reports)
        retention = retention_status(evidence)
    if args.json:
        json.dump({**as_json(result), "retention": retention.as_json()}, sys.stdout, indent=2)
        print()
    else:
        print(retention.line())
        for finding in result.findings:
            print(f"BROKEN  {finding}")
        what = f"{result.snapshots} snapshots"
        if args.reports:
            what += f" and {result.packs} packs"
        if result.ok:
            print(f"OK: verified {what} of {len(result.tenants)} tenants")
        else:
            print(f"first broken link: {result.first_broken}")
            print(f"FAILED: {len(result.findings)} problems in {what}")
    return 0 if result.ok else 1
