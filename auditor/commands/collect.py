"""`collect`: read tenants' posture now and say what was collected and how complete it is."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any

from auditor.commands import progress
from auditor.commands.output import shown
from auditor.core.model import TenantPosture
from auditor.core.snapshot import is_tenant_id
from auditor.services.collect import Collector, DiscoveryFailed, TransientCollectionError
from auditor.settings import load_settings

# The control plane could not list the tenants: nothing collected (cli.EXIT_UNREACHABLE).
EXIT_DISCOVERY_FAILED = 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "collect",
        help="read delegated tenants' posture from Azure and report its completeness",
        description=(
            "Discover delegated tenants through Resource Graph and read each one's regulatory "
            "compliance and hardening coverage. Prints, per tenant, what was collected and how "
            "complete it is. Stores nothing (see `snapshot`). Exit code 1 when any tenant is "
            "not complete; 2 when discovery fails (one line says why) or a setting is bad."
        ),
    )
    scope = parser.add_mutually_exclusive_group(required=True)
    scope.add_argument("--all", action="store_true", help="every delegated tenant")
    scope.add_argument("--tenant", metavar="ID", help="one tenant (its Entra tenant id)")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.set_defaults(handler=run)


def summarize(posture: TenantPosture) -> dict[str, Any]:
    """What was collected for one tenant, as plain data (the --json shape)."""
    c = posture.completeness
    states = Counter(record.state.value for record in posture.compliance)
    return {
        "tenantId": posture.tenant.tenant_id,
        "status": c.status.value,
        "reasons": list(c.reasons),
        "expectedSubscriptions": len(c.expected_subscriptions),
        "collectedSubscriptions": len(c.collected_subscriptions),
        "records": {
            "compliance": len(posture.compliance),
            "standards": len(posture.standards),
            "controls": len(posture.controls),
            "plans": len(posture.plans),
            "secureScores": len(posture.secure_scores),
            "secureScoreControls": len(posture.secure_score_controls),
            "hardening": len(posture.hardening),
            "assignments": len(posture.assignments),
        },
        "complianceStates": dict(sorted(states.items())),
        "queries": c.queries,
        "pages": c.pages,
        "restCalls": c.rest_calls,
        "throttles": c.throttles,
        "retries": c.retries,
        "malformed": dict(sorted(c.malformed.items())),
        "warnings": list(c.warnings),
        "durationSeconds": c.duration_seconds,
    }


def failed_summary(tenant_id: str, reason: str) -> dict[str, Any]:
    return {"tenantId": tenant_id, "status": "failed", "reasons": [reason]}


def _line(summary: dict[str, Any]) -> str:
    if "records" not in summary:
        return f"{shown(summary['tenantId'])}  FAILED  {shown('; '.join(summary['reasons']))}"
    rec = summary["records"]
    malformed = sum(summary["malformed"].values())
    text = (
        f"{shown(summary['tenantId'])}  {summary['status'].upper():<10}  "
        f"subscriptions {summary['collectedSubscriptions']}/{summary['expectedSubscriptions']}  "
        f"assessments {rec['compliance']}  controls {rec['controls']}  "
        f"standards {rec['standards']}  plans {rec['plans']}  hardening {rec['hardening']}  "
        f"queries {summary['queries']} pages {summary['pages']} "
        f"throttled {summary['throttles']}  malformed {malformed}  "
        f"{summary['durationSeconds']:.1f}s"
    )
    for reason in summary["reasons"]:
        text += f"\n    incomplete: {shown(reason)}"
    for warning in summary["warnings"][:5]:
        text += f"\n    warning: {shown(warning)}"
    if len(summary["warnings"]) > 5:
        text += f"\n    ... {len(summary['warnings']) - 5} more warnings (see --json)"
    return text


def run(args: argparse.Namespace) -> int:
    if args.tenant and not is_tenant_id(args.tenant):
        print(f"error: --tenant must be a tenant id (GUID), got {args.tenant!r}", file=sys.stderr)
        return 2
    settings = load_settings()
    shows = progress.Progress("collecting") if not args.json else None
    summaries: list[dict[str, Any]] = []
    with Collector(settings) as collector:
        try:
            tenants = collector.discover()
        except DiscoveryFailed as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_DISCOVERY_FAILED
        if args.tenant:
            wanted = args.tenant.lower()
            tenants = [t for t in tenants if t.tenant_id == wanted]
            if not tenants:
                print(
                    f"error: tenant {args.tenant} is not delegated to this identity",
                    file=sys.stderr,
                )
                return 1
        for number, tenant in enumerate(tenants, start=1):
            if shows is not None:
                shows(number, len(tenants), tenant)
            try:
                summary = summarize(collector.collect(tenant))
            except TransientCollectionError as exc:
                summary = failed_summary(tenant.tenant_id, str(exc))
            summaries.append(summary)
            if shows is not None:
                shows.done()
            if not args.json:
                print(_line(summary), flush=True)
    if args.json:
        json.dump({"tenants": summaries}, sys.stdout, indent=2)
        print()
    else:
        complete = sum(1 for s in summaries if s["status"] == "complete")
        print(f"{complete}/{len(summaries)} tenants complete")
    return 0 if all(s["status"] == "complete" for s in summaries) else 1
