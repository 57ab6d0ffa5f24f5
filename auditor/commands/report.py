"""`report`: build a tenant's evidence pack for a period, write it locally and store it."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from auditor.commands import when
from auditor.core.model import CollectionStatus
from auditor.core.snapshot import is_tenant_id
from auditor.services.report import BuiltPack, ReportError, open_report_service
from auditor.settings import load_settings

DEFAULT_OUT = Path("out")
# What --out receives: the workbook (default) or the OSCAL assessment results.
SUFFIXES = {"xlsx": ".xlsx", "oscal": ".oscal.json"}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="build a tenant's evidence pack (Excel + OSCAL) for a period and store it write-once",
        description=(
            "Compare the period's first and last committed snapshot of a tenant and write the "
            "evidence pack: its workbook and its OSCAL assessment results (JSON, one result per "
            "snapshot of the period). --format says which of the two --out receives. Unless "
            "--no-upload, store both write-once in the evidence container as "
            "{tenantId}/{yyyy}/{mm}/{reportId}.xlsx and {reportId}.oscal.json beside the JSON "
            "manifest that records their SHA-256. "
            f"S is {when.REF_HELP}. Exit code 1 when no pack could be built."
        ),
    )
    parser.add_argument("--tenant", metavar="ID", required=True, help="tenant id (GUID)")
    parser.add_argument(
        "--from",
        dest="start",
        metavar="S",
        type=when.period_ref,
        help=f"start of the period, {when.REF_HELP}: the last snapshot at or before it is "
        "compared (default: 30 days before --to)",
    )
    parser.add_argument(
        "--to",
        dest="end",
        metavar="S",
        type=when.period_ref,
        help=f"end of the period, {when.REF_HELP} (default: the latest snapshot)",
    )
    parser.add_argument(
        "--format",
        choices=sorted(SUFFIXES),
        default="xlsx",
        help="what --out receives: the Excel workbook (xlsx, default) or the OSCAL "
        "assessment-results JSON (oscal); the pack stored has both",
    )
    parser.add_argument(
        "--out",
        metavar="PATH",
        type=Path,
        help="where to write it (default: out/<reportId>.xlsx or out/<reportId>.oscal.json)",
    )
    parser.add_argument(
        "--no-upload", action="store_true", help="only write the workbook locally; store nothing"
    )
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.set_defaults(handler=run)


def summary(pack: BuiltPack, uploaded: bool, container: str, form: str) -> dict[str, Any]:
    m = pack.manifest
    return {
        "reportId": m.report_id,
        "tenantId": m.tenant_id,
        "format": form,
        "path": str(pack.oscal_path if form == "oscal" else pack.path),
        "workbookSha256": pack.sha256,
        "bytes": pack.size,
        "oscalSha256": pack.oscal.sha256,
        "oscalBytes": pack.oscal.bytes,
        "packSha256": m.sha256,
        "start": m.start,
        "end": m.end,
        "snapshots": len(m.snapshots),
        "endStatus": m.end_snapshot.status,
        "sheets": [{"title": s.title, "rows": s.rows} for s in pack.stats.sheets],
        "stored": (
            {
                "container": container,
                "workbook": pack.workbook_blob,
                "oscal": pack.oscal_blob,
                "manifest": pack.manifest_blob,
            }
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
        out = args.out or DEFAULT_OUT / f"{job.report_id}{SUFFIXES[args.format]}"
        paths = {"oscal_out": out} if args.format == "oscal" else {"out": out}
        try:
            pack = service.run(job, upload=upload, **paths)
        except ReportError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    assert pack is not None  # a new job is never already done
    result = summary(pack, upload, settings.evidence_container, args.format)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return 0
    print(f"evidence pack {result['reportId']} for tenant {result['tenantId']}")
    print(f"  snapshots {result['start']} → {result['end']} ({result['snapshots']} in period)")
    if result["endStatus"] != CollectionStatus.COMPLETE.value:
        print(f"  WARNING: the end snapshot is {result['endStatus']} (see the Cover)")
    if args.format == "oscal":
        print(f"  OSCAL     {result['path']} ({result['oscalBytes']:,} bytes)")
        print(f"  SHA-256   {result['oscalSha256']}")
    else:
        print(f"  workbook  {result['path']} ({result['bytes']:,} bytes)")
        print(f"  SHA-256   {result['workbookSha256']}")
    print(f"  pack hash {result['packSha256']}")
    if result["stored"]:
        stored = result["stored"]
        print(f"  stored    {stored['container']}/{stored['workbook']}")
        print(f"  OSCAL     {stored['container']}/{stored['oscal']}")
        print(f"  manifest  {stored['container']}/{stored['manifest']}")
    else:
        print("  not stored (--no-upload)")
    return 0
