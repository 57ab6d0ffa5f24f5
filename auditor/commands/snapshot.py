"""`snapshot`: take tenants' snapshots for a scheduled slot, inline or through the queue."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from auditor.adapters.queues import max_dequeue_count
from auditor.api import documents
from auditor.commands import progress, when
from auditor.core.schedule import SlotError, check_slot, latest_occurrence
from auditor.core.snapshot import is_tenant_id, snapshot_id_for
from auditor.services.snapshot import (
    RunNotPlanned,
    TenantNotDelegated,
    TenantOutcome,
    open_service,
)
from auditor.settings import load_settings

# Outcomes that leave the slot with a complete snapshot.
_COMPLETE = "complete"
LEFT = "left-delegation"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "snapshot",
        help="collect tenants' posture and store it as immutable snapshots",
        description=(
            "Collect each tenant's posture and commit it as the tenant's snapshot for a "
            "scheduled slot (by default the latest moment AUDITOR_SNAPSHOT_SCHEDULE names). "
            "--at must be a moment the schedule names, not after the current one (a later "
            "slot would block every real one). A slot already committed is left as it is, "
            "except a failed one, which is retaken. Inline by default; --via-queue "
            "queues one job per tenant and works the queue as the Function App does. "
            "Exit code 1 when any tenant's snapshot is not complete (or a tenant left the "
            "delegation), 2 when the run could not be planned (discovery failed)."
        ),
    )
    scope = parser.add_mutually_exclusive_group(required=True)
    scope.add_argument("--all", action="store_true", help="every delegated tenant")
    scope.add_argument("--tenant", metavar="ID", help="one tenant (its Entra tenant id)")
    parser.add_argument(
        "--at",
        metavar="WHEN",
        type=when.instant,
        help="the scheduled slot, an instant with a zone like 2026-11-27T02:00:00Z (a date "
        "like 2026-11-27 means 00:00Z that day); a moment "
        "AUDITOR_SNAPSHOT_SCHEDULE names, at or before the current one",
    )
    parser.add_argument(
        "--via-queue", action="store_true", help="queue one job per tenant and drain the queue"
    )
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.set_defaults(handler=run)


def outcome_json(outcome: TenantOutcome) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tenantId": outcome.tenant_id,
        "snapshotId": outcome.snapshot_id,
        "outcome": outcome.outcome,
        "reason": outcome.reason,
        "durationSeconds": outcome.duration_seconds,
    }
    if outcome.entry is not None:
        body["snapshot"] = documents.snapshot_detail(outcome.entry)
    return body


def outcome_line(outcome: TenantOutcome) -> str:
    text = f"{outcome.tenant_id}  {outcome.outcome.upper():<10}  {outcome.snapshot_id}"
    entry = outcome.entry
    if entry is not None:
        counts = entry.counts
        text += (
            f"  {entry.status.value}  subscriptions "
            f"{len(entry.collected_subscriptions)}/{len(entry.expected_subscriptions)}  "
            f"assessments {counts.get('compliance', 0)} "
            f"(failed {counts.get('compliance_failed', 0)})  sha256 {entry.content_hash[:12]}"
        )
    text += f"  {outcome.duration_seconds:.1f}s"
    reasons = list(entry.reasons) if entry is not None else []
    if outcome.reason and outcome.reason not in reasons:
        reasons.append(outcome.reason)
    return text + "".join(f"\n    {reason}" for reason in reasons)


def is_complete(outcome: TenantOutcome) -> bool:
    return outcome.entry is not None and outcome.entry.status.value == _COMPLETE


def run(args: argparse.Namespace) -> int:
    if args.tenant and not is_tenant_id(args.tenant):
        print(f"error: --tenant must be a tenant id (GUID), got {args.tenant!r}", file=sys.stderr)
        return 2
    settings = load_settings()
    now = datetime.now(UTC)
    try:
        slot = latest_occurrence(settings.snapshot_schedule, now)
        if args.at:
            slot = args.at
            check_slot(settings.snapshot_schedule, slot, now)
    except SlotError as exc:
        print(f"error: --at: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tenant_ids = [args.tenant.lower()] if args.tenant else None
    with open_service(settings, with_queue=args.via_queue) as service:
        try:
            if args.via_queue:
                manifest = service.plan_run(slot, enqueue=True, tenant_ids=tenant_ids, force=True)
                outcomes = service.drain(max_dequeue_count())
                if tenant_ids is None:
                    outcomes.extend(service.left_outcomes(manifest))
            else:
                shows = progress.Progress("snapshotting") if not args.json else None
                try:
                    outcomes = service.run_inline(slot, tenant_ids, shows)
                finally:
                    if shows is not None:
                        shows.done()
        except TenantNotDelegated:
            print(f"error: tenant {args.tenant} is not delegated to this identity", file=sys.stderr)
            return 1
        except RunNotPlanned as exc:
            print(f"error: {exc} (recorded in the runs table)", file=sys.stderr)
            return 2
    if args.json:
        json.dump(
            {"slot": snapshot_id_for(slot), "tenants": [outcome_json(o) for o in outcomes]},
            sys.stdout,
            indent=2,
        )
        print()
    else:
        for outcome in outcomes:
            print(outcome_line(outcome), flush=True)
        left = [o for o in outcomes if o.outcome == LEFT]
        taken = [o for o in outcomes if o.outcome != LEFT]
        complete = sum(1 for o in taken if is_complete(o))
        summary = f"slot {snapshot_id_for(slot)}: {complete}/{len(taken)} tenants complete"
        if left:
            summary += f"; {len(left)} left the delegation"
        print(summary)
    return 0 if outcomes and all(is_complete(o) for o in outcomes) else 1
