"""Deterministic synthetic postures and snapshots for the API tests and the diff benchmark.

Realistic shapes (GUID assessments, several standards per subscription, plans, secure scores,
hardening coverage) without the simulator: a seed gives the same posture every time.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import defaultdict
from dataclasses import replace
from datetime import datetime

from auditor.core.model import (
    Completeness,
    ComplianceRecord,
    ControlSummary,
    DefenderPlan,
    HardeningCoverage,
    HardeningStatus,
    SecureScore,
    StandardSummary,
    State,
    Subscription,
    Tenant,
    TenantPosture,
)
from auditor.core.snapshot import (
    Snapshot,
    SnapshotIndexEntry,
    Transition,
    compliance_by_standard,
    slot_of,
)

STANDARDS = ("Microsoft-cloud-security-benchmark", "PCI-DSS-4", "ISO-27001-2013", "SOC-2")
PLANS = ("VirtualMachines", "StorageAccounts", "KeyVaults", "Containers", "SqlServers")
_STATES = (State.PASSED, State.PASSED, State.PASSED, State.FAILED, State.SKIPPED, State.UNSUPPORTED)


def stable_id(seed: str) -> str:
    """A GUID derived from `seed` (same seed, same id)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, seed))


def _record(rng: random.Random, sub: str, standard: str, control: str, n: int) -> ComplianceRecord:
    state = rng.choice(_STATES)
    return ComplianceRecord(
        subscription_id=sub,
        standard=standard,
        control=control,
        assessment=stable_id(f"{sub}/{standard}/{control}/{n}"),
        state=state,
        passed_resources=rng.randint(0, 40),
        failed_resources=rng.randint(1, 9) if state is State.FAILED else 0,
        skipped_resources=rng.randint(0, 3),
        description=f"Assessment {n} of control {control} ({standard})",
        assessment_type="BuiltIn",
        details_link=f"https://portal.azure.com/#assessment/{n}",
    )


def _summaries(
    compliance: tuple[ComplianceRecord, ...],
) -> tuple[tuple[StandardSummary, ...], tuple[ControlSummary, ...]]:
    by_control: dict[tuple[str, str, str], list[State]] = defaultdict(list)
    for record in compliance:
        by_control[(record.subscription_id, record.standard, record.control)].append(record.state)
    controls = []
    for (sub, standard, control), states in sorted(by_control.items()):
        if State.FAILED in states:
            state = State.FAILED
        elif State.PASSED in states:
            state = State.PASSED
        else:
            state = State.SKIPPED
        controls.append(
            ControlSummary(
                subscription_id=sub,
                standard=standard,
                control=control,
                description=f"Control {control}",
                state=state,
                passed_assessments=states.count(State.PASSED),
                failed_assessments=states.count(State.FAILED),
                skipped_assessments=states.count(State.SKIPPED),
            )
        )
    by_standard: dict[tuple[str, str], list[State]] = defaultdict(list)
    for c in controls:
        by_standard[(c.subscription_id, c.standard)].append(c.state)
    standards = tuple(
        StandardSummary(
            subscription_id=sub,
            standard=standard,
            state=State.FAILED if State.FAILED in states else State.PASSED,
            passed_controls=states.count(State.PASSED),
            failed_controls=states.count(State.FAILED),
            skipped_controls=states.count(State.SKIPPED),
            unsupported_controls=states.count(State.UNSUPPORTED),
        )
        for (sub, standard), states in sorted(by_standard.items())
    )
    return standards, tuple(controls)


def make_posture(
    tenant_id: str,
    *,
    subscriptions: int = 2,
    records: int = 200,
    seed: int = 0,
    controls_per_standard: int = 25,
) -> TenantPosture:
    """A complete posture with exactly `records` compliance records over the subscriptions."""
    rng = random.Random(seed)
    subs = tuple(
        Subscription(
            subscription_id=stable_id(f"{tenant_id}/sub/{i}"),
            tenant_id=tenant_id,
            display_name=f"Subscription {i}",
        )
        for i in range(subscriptions)
    )
    per_standard = max(1, math.ceil(records / (max(1, subscriptions) * len(STANDARDS))))
    compliance: list[ComplianceRecord] = []
    for sub in subs:
        for standard in STANDARDS:
            for n in range(per_standard):
                control = f"{1 + n % controls_per_standard}.{1 + n % 7}"
                compliance.append(_record(rng, sub.subscription_id, standard, control, n))
    records_tuple = tuple(compliance[:records]) if len(compliance) > records else tuple(compliance)
    standards, controls = _summaries(records_tuple)
    plans = tuple(
        DefenderPlan(sub.subscription_id, plan, "Standard" if rng.random() < 0.7 else "Free")
        for sub in subs
        for plan in PLANS
    )
    scores = tuple(
        SecureScore(sub.subscription_id, current=30.0, maximum=58.0, percentage=0.5172, weight=58)
        for sub in subs
    )
    hardening = tuple(
        HardeningCoverage(
            subscription_id=sub.subscription_id,
            recommendation=stable_id("jit"),
            feature="just-in-time VM access",
            display_name="Management ports of virtual machines should be protected with JIT",
            status=HardeningStatus.ASSESSED,
            healthy=rng.randint(0, 10),
            unhealthy=rng.randint(0, 5),
            not_applicable=rng.randint(0, 3),
            severity="High",
        )
        for sub in subs
    )
    ids = tuple(s.subscription_id for s in subs)
    return TenantPosture(
        tenant=Tenant(tenant_id, f"Tenant {tenant_id[:8]}", subs),
        compliance=records_tuple,
        standards=standards,
        controls=controls,
        plans=plans,
        secure_scores=scores,
        secure_score_controls=(),
        hardening=hardening,
        assignments=(),
        completeness=Completeness(expected_subscriptions=ids, collected_subscriptions=ids),
    )


def flip_states(posture: TenantPosture, fraction: float, seed: int = 1) -> TenantPosture:
    """The same posture with `fraction` of the compliance records in another state."""
    rng = random.Random(seed)
    chosen = set(
        rng.sample(range(len(posture.compliance)), int(len(posture.compliance) * fraction))
    )
    flipped = []
    for number, record in enumerate(posture.compliance):
        if number in chosen:
            state = State.PASSED if record.state is State.FAILED else State.FAILED
            record = replace(
                record,
                state=state,
                failed_resources=3 if state is State.FAILED else 0,
            )
        flipped.append(record)
    compliance = tuple(flipped)
    standards, controls = _summaries(compliance)
    return replace(posture, compliance=compliance, standards=standards, controls=controls)


def index_entry(
    posture: TenantPosture,
    snapshot_id: str,
    *,
    content_hash: str | None = None,
    previous: SnapshotIndexEntry | None = None,
) -> SnapshotIndexEntry:
    """The index entry a store would write for `posture` (for pure tests; the store computes
    its own when it commits)."""
    c = posture.completeness
    scheduled = slot_of(snapshot_id)
    return SnapshotIndexEntry(
        tenant_id=posture.tenant.tenant_id,
        tenant_name=posture.tenant.display_name,
        snapshot_id=snapshot_id,
        scheduled_at=scheduled,
        finished_at=scheduled,
        status=c.status,
        reasons=c.reasons,
        expected_subscriptions=c.expected_subscriptions,
        collected_subscriptions=c.collected_subscriptions,
        counts={"compliance": len(posture.compliance)},
        compliance_by_standard=compliance_by_standard(posture.controls),
        collector_version="test",
        content_hash=content_hash or stable_id(f"{posture.tenant.tenant_id}/{snapshot_id}"),
        previous_snapshot_id=previous.snapshot_id if previous else None,
        previous_hash=previous.content_hash if previous else None,
    )


def failing_since(
    posture: TenantPosture, since: datetime
) -> dict[tuple[str, str, str, str], Transition]:
    """Transitions where every failing record has been failing since `since`."""
    return {
        record.key: Transition(
            first_seen=since,
            last_changed=since,
            first_failed=since if record.state is State.FAILED else None,
        )
        for record in posture.compliance
    }


def make_snapshot(
    posture: TenantPosture,
    snapshot_id: str,
    *,
    previous: SnapshotIndexEntry | None = None,
    first_failed: datetime | None = None,
) -> Snapshot:
    """A committed-looking snapshot of `posture` (pure tests)."""
    entry = index_entry(posture, snapshot_id, previous=previous)
    transitions = failing_since(posture, first_failed) if first_failed else {}
    return Snapshot(index=entry, posture=posture, transitions=transitions)
