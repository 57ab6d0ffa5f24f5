"""`report`: build a tenant's evidence pack for a period, write it locally and store it."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from auditor.core.model import CollectionStatus
from auditor.core.snapshot import is_tenant_id
from auditor.services.report import BuiltPack, ReportError, open_report_service
from auditor.settings import load_settings

DEFAULT_OUT = Path("out")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="build a tenant's evidence pack (Excel) for a period and store it write-once",
        description=(
            "Compare the period's first and last committed snapshot of a tenant and write the "
            "evidence pack workbook. Unless --no-upload, store it write-once in the evidence "
            "container as {tenantId}/{yyyy}/{mm}/{reportId}.xlsx beside its JSON manifest. "
            "S is a snapshot id (YYYYMMDDTHHMMSSZ) or an instant with a zone "
            "(2025-01-31T23:59:59Z). Exit code 1 when no pack could be built."
        ),
    )
    parser.add_argument("--tenant", metavar="ID", required=True, help="tenant id (GUID)")
    parser.add_argument(
        "--from",
        dest="start",
        metavar="S",
        help="start of the period: the last snapshot at or before it is compared "
        "(default: 30 days before --to)",
    )
    parser.add_argument(
        "--to", dest="end", metavar="S", help="end of the period (default: the latest snapshot)"
    )
    parser.add_argument(
        "--out", metavar="PATH", type=Path, help="workbook path (default: out/<reportId>.xlsx)"
    )
    parser.add_argument(
        "--no-upload", action="store_true", help="only write the workbook locally; store nothing"
    )
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.set_defaults(handler=run)


def summary(pack: BuiltPack, uploaded: bool, container: str) -> dict[str, Any]:
    m = pack.manifest
    return {
        "reportId": m.report_id,
        "tenantId": m.tenant_id,
        "path": str(pack.path),
        "workbookSha256": pack.sha256,
        "bytes": pack.size,
        "packSha256": m.sha256,
        "start": m.start,
        "end": m.end,
        "snapshots": len(m.snapshots),
        "endStatus": m.end_snapshot.status,
        "sheets": [{"title": s.title, "rows": s.rows} for s in pack.stats.sheets],
        "stored": (
            {"container": container, "workbook": pack.workbook_blob, "manifest": pack.manifest_blob}
            if uploaded
            else None
        ),
    }


def run(args: argparse.Namespace) -> int:
    if not is_tenant_id(args.tenant):
        print(f"error: --tenant must be a tenant id (GUID), got {args.tenant!r}", file=sys.stderr)
        return 2
    settings = load_settings()
    upload = not args.no_upload
    with open_report_service(settings, with_queue=False) as service:
        try:
            job = service.new_job(args.tenant, args.start, args.end, f"cli:{getpass.getuser()}")
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        out = args.out or DEFAULT_OUT / f"{job.report_id}.xlsx"
        try:
            pack = service.run(job, out=out, upload=upload)
        except ReportError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    assert pack is not None  # a new job is never already done
    result = summary(pack, upload, settings.evidence_container)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return 0
    print(f"evidence pack {result['reportId']} for tenant {result['tenantId']}")
    print(f"  snapshots {result['start']} → {result['end']} ({result['snapshots']} in period)")
    if result["endStatus"] != CollectionStatus.COMPLETE.value:
        print(f"  WARNING: the end snapshot is {result['endStatus']} (see the Cover)")
    print(f"  workbook  {result['path']} ({result['bytes']:,} bytes)")
    print(f"  SHA-256   {result['workbookSha256']}")
    print(f"  pack hash {result['packSha256']}")
    if result["stored"]:
        stored = result["stored"]
        print(f"  stored    {stored['container']}/{stored['workbook']}")
        print(f"  manifest  {stored['container']}/{stored['manifest']}")
    else:
        print("  not stored (--no-upload)")
    return 0
