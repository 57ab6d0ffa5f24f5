"""`verify`: recompute snapshot hashes, the hash chain, anchors and stored packs' hashes."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from auditor.adapters.blobs import EvidenceStore
from auditor.adapters.retention import retention_status
from auditor.adapters.tables.runs import RunStore
from auditor.adapters.tables.store import SnapshotStore
from auditor.core.snapshot import is_tenant_id
from auditor.services.verify import Verification, verify
from auditor.services.verify_checkpoint import FULL, INCREMENTAL
from auditor.settings import load_settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="check snapshot hashes, the per-tenant hash chain, anchors and stored packs",
        description=(
            "Recompute every committed snapshot's content hash and each tenant's chain of "
            "predecessor hashes, and check every index row, latest row and content entity "
            "against the anchor its write attempt left in the write-once evidence container; "
            "check that every tenant a finished run expected has its slot committed, and name "
            "any snapshot whose slot lies after its collection; with --reports, also check "
            "every stored pack's SHA-256 against its manifest and blob metadata. Names the "
            "first broken link; exit code 1 on any finding. "
            "Incremental by default: each tenant starts from its latest write-once checkpoint "
            "(checkpoints/ in the evidence container, written by the last passing verify) once "
            "the checkpoint, the index rows it covers and their anchors are checked, and reads "
            "only the snapshots committed since, so the daily check does not grow with "
            "history; any doubt about the checkpoint makes that tenant's check full, said so. "
            "A passing tenant gets a new checkpoint."
        ),
    )
    scope = parser.add_mutually_exclusive_group(required=True)
    scope.add_argument("--tenant", metavar="ID", help="one tenant (its Entra tenant id)")
    scope.add_argument("--all", action="store_true", help="every tenant the store or anchors know")
    parser.add_argument("--reports", action="store_true", help="also verify stored packs")
    parser.add_argument(
        "--full",
        action="store_true",
        help="read every snapshot again, whatever the checkpoints cover (they are still checked)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.set_defaults(handler=run)


def as_json(result: Verification) -> dict[str, Any]:
    first = result.first_broken
    return {
        "ok": result.ok,
        "tenants": result.tenants,
        "snapshots": result.snapshots,
        "packs": result.packs,
        "trusted": result.trusted,
        "scopes": result.scopes,
        "checkpointsWritten": result.checkpoints,
        "notes": result.notes,
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
    runs = RunStore.from_settings(settings)
    with (
        SnapshotStore.from_settings(settings, anchored=False) as store,
        EvidenceStore.from_settings(settings) as evidence,
    ):
        container_exists = evidence.exists()
        if not container_exists:
            print(
                f"note: the evidence container {settings.evidence_container!r} does not exist "
                "yet: nothing is anchored",
                file=sys.stderr,
            )
        result = verify(
            store,
            evidence,
            None if args.all else [args.tenant.lower()],
            reports=args.reports,
            runs=runs,
            checkpoints=FULL if args.full else INCREMENTAL,
        )
        # Without the container there is no retention policy to describe: the note says why.
        retention = retention_status(evidence) if container_exists else None
    runs.close()
    if args.json:
        described = None if retention is None else retention.as_json()
        json.dump({**as_json(result), "retention": described}, sys.stdout, indent=2)
        print()
    else:
        if retention is not None:
            print(retention.line())
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)
        # Said per tenant when its check was full (and why); incremental ones are counted.
        for tenant_id, scope in result.scopes.items():
            if not scope.startswith(INCREMENTAL):
                print(f"tenant {tenant_id}: {scope}")
        incremental = sum(s.startswith(INCREMENTAL) for s in result.scopes.values())
        if incremental:
            print(f"{incremental} tenants checked incrementally from their checkpoints")
        for finding in result.findings:
            print(f"BROKEN  {finding}")
        what = f"{result.snapshots} snapshots"
        if result.trusted:
            what += f" ({result.trusted} covered by checkpoints)"
        if args.reports:
            what += f" and {result.packs} packs"
        if result.ok:
            print(f"OK: verified {what} of {len(result.tenants)} tenants")
        else:
            print(f"first broken link: {result.first_broken}")
            print(f"FAILED: {len(result.findings)} problems in {what}")
    return 0 if result.ok else 1
