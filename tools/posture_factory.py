"""Deterministic synthetic tenants, postures and snapshots for tests and benchmarks.

The records are shaped like the collector's (same types, GUID assessments, realistic names and
descriptions, plans, secure scores, hardening coverage) without the simulator: a seed gives the
same posture every time. Two shapes, because callers size a posture in two ways:

- `make_posture`: a grid, subscriptions x standards x controls x assessments, with attestations
  and secure-score controls (storage, transitions, reports);
- `make_sized_posture`: exactly `records` compliance records over the subscriptions (API tests,
  the diff and report benchmarks).

They draw different data from their seeds; tests pin results computed from it, so each keeps its
own generator.
"""

from __future__ import annotations

import dataclasses
import math
import random
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from auditor.core.model import (
    Completeness,
    ComplianceRecord,
    ControlSummary,
    DefenderPlan,
    Evidence,
    HardeningCoverage,
    HardeningStatus,
    SecureScore,
    SecureScoreControl,
    StandardAssignment,
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

_GRID_STANDARDS = ("PCI-DSS-4", "ISO-27001-2013", "Microsoft-cloud-security-benchmark", "SOC-TSP")
_GRID_STATES = (State.PASSED, State.FAILED, State.PASSED, State.SKIPPED, State.UNSUPPORTED)
_SIZED_STANDARDS = ("Microsoft-cloud-security-benchmark", "PCI-DSS-4", "ISO-27001-2013", "SOC-2")
_SIZED_PLANS = ("VirtualMachines", "StorageAccounts", "KeyVaults", "Containers", "SqlServers")
_SIZED_STATES = (State.PASSED,) * 3 + (State.FAILED, State.SKIPPED, State.UNSUPPORTED)


def stable_id(seed: str) -> str:
    """A GUID derived from `seed` (same seed, same id)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, seed))


def tenant_id_for(n: int) -> str:
    """The n-th test tenant's id."""
    return str(uuid.UUID(int=0x7E0A000000000000 << 64 | n))


def make_tenant(tenant_id: str, subscriptions: int = 2, name: str = "") -> Tenant:
    subs = tuple(
        Subscription(
            subscription_id=str(uuid.uuid5(uuid.UUID(tenant_id), f"sub{i}")),
            tenant_id=tenant_id,
            display_name=f"sub-{i}",
        )
        for i in range(subscriptions)
    )
    return Tenant(tenant_id, name or f"Contoso {tenant_id[:8]}", subs)


def make_posture(
    tenant_id: str,
    *,
    subscriptions: int = 2,
    standards: int = 2,
    controls: int = 4,
    assessments: int = 3,
    seed: int = 0,
    description: Callable[[random.Random], str] | None = None,
) -> TenantPosture:
    """A complete posture: subscriptions × standards × controls × assessments records."""
    rng = random.Random(seed)
    tenant = make_tenant(tenant_id, subscriptions)
    compliance: list[ComplianceRecord] = []
    control_rows: list[ControlSummary] = []
    standard_rows: list[StandardSummary] = []
    for sub in tenant.subscriptions:
        for standard in _GRID_STANDARDS[:standards] + tuple(
            f"custom-{i}" for i in range(standards - len(_GRID_STANDARDS))
        ):
            control_states = []
            for c in range(controls):
                control = f"{c // 10 + 1}.{c % 10 + 1}"
                states = []
                for a in range(assessments):
                    state = _GRID_STATES[rng.randrange(len(_GRID_STATES))]
                    states.append(state)
                    assessment = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{standard}/{control}/{a}"))
                    text = (
                        description(rng)
                        if description
                        else f"Assessment {a} of control {control} of {standard}: "
                        "resources should be configured securely"
                    )
                    compliance.append(
                        ComplianceRecord(
                            subscription_id=sub.subscription_id,
                            standard=standard,
                            control=control,
                            assessment=assessment,
                            state=state,
                            passed_resources=rng.randrange(20),
                            failed_resources=rng.randrange(5) if state is State.FAILED else 0,
                            skipped_resources=rng.randrange(2),
                            description=text,
                            assessment_type="BuiltIn",
                            details_link=f"https://portal.azure.com/#blade/{assessment}",
                        )
                    )
                control_state = State.FAILED if State.FAILED in states else State.PASSED
                control_states.append(control_state)
                control_rows.append(
                    ControlSummary(
                        subscription_id=sub.subscription_id,
                        standard=standard,
                        control=control,
                        description=f"Control {control}",
                        state=control_state,
                        passed_assessments=states.count(State.PASSED),
                        failed_assessments=states.count(State.FAILED),
                        skipped_assessments=states.count(State.SKIPPED),
                    )
                )
            standard_rows.append(
                StandardSummary(
                    subscription_id=sub.subscription_id,
                    standard=standard,
                    state=State.FAILED if State.FAILED in control_states else State.PASSED,
                    passed_controls=control_states.count(State.PASSED),
                    failed_controls=control_states.count(State.FAILED),
                    skipped_controls=0,
                    unsupported_controls=0,
                )
            )
    subs = [s.subscription_id for s in tenant.subscriptions]
    return TenantPosture(
        tenant=tenant,
        compliance=tuple(compliance),
        standards=tuple(standard_rows),
        controls=tuple(control_rows),
        plans=tuple(
            DefenderPlan(sub, plan, "Standard" if i % 2 else "Free", sub_plan="P2" if i else "")
            for sub in subs
            for i, plan in enumerate(("VirtualMachines", "StorageAccounts", "KeyVaults"))
        ),
        secure_scores=tuple(SecureScore(sub, 31.5, 58.0, 0.5431, 58) for sub in subs),
        secure_score_controls=tuple(
            SecureScoreControl(sub, "ctl-mfa", "Enable MFA", 10.0, 10.0, 1.0, 4, 0, 1, 10)
            for sub in subs
        ),
        hardening=tuple(
            HardeningCoverage(
                subscription_id=sub,
                recommendation="805651bc-6ecd-4c73-9b55-97a19d0582d0",
                feature="just-in-time VM access",
                display_name="Management ports should be protected with JIT",
                status=HardeningStatus.ASSESSED,
                healthy=3,
                unhealthy=1,
                not_applicable=0,
                jit_covered_vms=3,
            )
            for sub in subs
        ),
        assignments=tuple(
            StandardAssignment(
                subscription_id=sub,
                assignment_id=f"/subscriptions/{sub}/providers/Microsoft.Security/x",
                display_name="Attest manual control",
                standard_id="PCI-DSS-4",
                effect="Attest",
                compliance_state="Passed",
                evidence=(Evidence("Signed policy", "https://contoso.example/policy.pdf"),),
            )
            for sub in subs
        ),
        completeness=Completeness(
            expected_subscriptions=tuple(subs),
            collected_subscriptions=tuple(subs),
            queries=2,
            pages=3,
            duration_seconds=1.25,
        ),
    )


def _sized_record(
    rng: random.Random, sub: str, standard: str, control: str, n: int
) -> ComplianceRecord:
    state = rng.choice(_SIZED_STATES)
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
    """Standard and control summaries recomputed from the records (sorted by key)."""
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


def make_sized_posture(
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
    per_standard = max(1, math.ceil(records / (max(1, subscriptions) * len(_SIZED_STANDARDS))))
    compliance: list[ComplianceRecord] = []
    for sub in subs:
        for standard in _SIZED_STANDARDS:
            for n in range(per_standard):
                control = f"{1 + n % controls_per_standard}.{1 + n % 7}"
                compliance.append(_sized_record(rng, sub.subscription_id, standard, control, n))
    records_tuple = tuple(compliance[:records]) if len(compliance) > records else tuple(compliance)
    standards, controls = _summaries(records_tuple)
    plans = tuple(
        DefenderPlan(sub.subscription_id, plan, "Standard" if rng.random() < 0.7 else "Free")
        for sub in subs
        for plan in _SIZED_PLANS
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


def with_states(
    posture: TenantPosture, states: dict[tuple[str, str, str, str], State]
) -> TenantPosture:
    """The same posture with some assessments' states changed (summaries left as they were)."""
    return dataclasses.replace(
        posture,
        compliance=tuple(
            dataclasses.replace(r, state=states[r.key]) if r.key in states else r
            for r in posture.compliance
        ),
    )


def _sample(posture: TenantPosture, fraction: float, seed: int) -> set[int]:
    """Positions of `fraction` of the compliance records, chosen by `seed`."""
    records = len(posture.compliance)
    return set(random.Random(seed).sample(range(records), int(records * fraction)))


def flip_states(posture: TenantPosture, fraction: float, seed: int = 1) -> TenantPosture:
    """The same posture with `fraction` of the compliance records in another state (passed <->
    failed; summaries recomputed)."""
    chosen = _sample(posture, fraction, seed)
    flipped = []
    for number, record in enumerate(posture.compliance):
        if number in chosen:
            state = State.PASSED if record.state is State.FAILED else State.FAILED
            record = dataclasses.replace(
                record,
                state=state,
                failed_resources=3 if state is State.FAILED else 0,
            )
        flipped.append(record)
    compliance = tuple(flipped)
    standards, controls = _summaries(compliance)
    return dataclasses.replace(
        posture, compliance=compliance, standards=standards, controls=controls
    )


def replace_assessments(posture: TenantPosture, fraction: float, seed: int = 1) -> TenantPosture:
    """The same posture with `fraction` of the compliance records replaced by records of new
    assessments (same control and state, another assessment id): assessments that went away
    and others that came."""
    chosen = _sample(posture, fraction, seed)
    compliance = tuple(
        dataclasses.replace(record, assessment=stable_id(f"{record.assessment}/replaced/{seed}"))
        if number in chosen
        else record
        for number, record in enumerate(posture.compliance)
    )
    return dataclasses.replace(posture, compliance=compliance)


def missing_subscription(posture: TenantPosture, subscription_id: str) -> TenantPosture:
    """The posture as an incomplete collection that could not read one subscription."""
    c = posture.completeness
    return dataclasses.replace(
        posture,
        compliance=tuple(r for r in posture.compliance if r.subscription_id != subscription_id),
        completeness=dataclasses.replace(
            c,
            collected_subscriptions=tuple(
                s for s in c.collected_subscriptions if s != subscription_id
            ),
            missing={subscription_id: "403 AuthorizationFailed"},
        ),
    )


def index_entry(
    posture: TenantPosture,
    snapshot_id: str,
    *,
    content_hash: str | None = None,
    previous: SnapshotIndexEntry | None = None,
    took: timedelta = timedelta(0),
) -> SnapshotIndexEntry:
    """The index entry a store would write for `posture`, collected in `took` from its slot (for
    pure tests; the store computes its own when it commits)."""
    c = posture.completeness
    scheduled = slot_of(snapshot_id)
    return SnapshotIndexEntry(
        tenant_id=posture.tenant.tenant_id,
        tenant_name=posture.tenant.display_name,
        snapshot_id=snapshot_id,
        scheduled_at=scheduled,
        finished_at=scheduled + took,
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


def transitions_since(
    posture: TenantPosture, since: datetime
) -> dict[tuple[str, str, str, str], Transition]:
    """Transitions where every record was first seen at `since` and every failing one has been
    failing since then."""
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
    transitions = transitions_since(posture, first_failed) if first_failed else {}
    return Snapshot(index=entry, posture=posture, transitions=transitions)


class FakeSource:
    """A PostureSource for tests: fixed postures, scripted failures, a record of calls."""

    version = "fake-collector/1"

    def __init__(
        self,
        postures: list[TenantPosture],
        failures: dict[str, list[Exception | None]] | None = None,
    ) -> None:
        self.postures = {p.tenant.tenant_id: p for p in postures}
        # tenant id -> what each successive collect does: raise the exception, or succeed (None);
        # the last entry repeats.
        self.failures = failures or {}
        self.collected: list[str] = []
        self.closed = False

    def discover(self) -> list[Tenant]:
        return [p.tenant for p in self.postures.values()]

    def collect(self, tenant: Tenant, until: float | None = None) -> TenantPosture:
        self.collected.append(tenant.tenant_id)
        script = self.failures.get(tenant.tenant_id)
        if script:
            failure = script.pop(0) if len(script) > 1 else script[0]
            if failure is not None:
                raise failure
        return self.postures[tenant.tenant_id]

    def close(self) -> None:
        self.closed = True
