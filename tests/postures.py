"""Build TenantPosture objects for tests and benchmarks: deterministic, any size.

The records are shaped like the collector's (same types, realistic names and descriptions) so
that storage tests and benchmarks see what production would give them.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Callable

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

STANDARDS = ("PCI-DSS-4", "ISO-27001-2013", "Microsoft-cloud-security-benchmark", "SOC-TSP")
_STATES = (State.PASSED, State.FAILED, State.PASSED, State.SKIPPED, State.UNSUPPORTED)


def tenant_id_for(n: int) -> str:
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
        for standard in STANDARDS[:standards] + tuple(
            f"custom-{i}" for i in range(standards - len(STANDARDS))
        ):
            control_states = []
            for c in range(controls):
                control = f"{c // 10 + 1}.{c % 10 + 1}"
                states = []
                for a in range(assessments):
                    state = _STATES[rng.randrange(len(_STATES))]
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


def with_states(
    posture: TenantPosture, states: dict[tuple[str, str, str, str], State]
) -> TenantPosture:
    """The same posture with some assessments' states changed."""
    return dataclasses.replace(
        posture,
        compliance=tuple(
            dataclasses.replace(r, state=states[r.key]) if r.key in states else r
            for r in posture.compliance
        ),
    )


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

    def collect(self, tenant: Tenant) -> TenantPosture:
        self.collected.append(tenant.tenant_id)
        script = self.failures.get(tenant.tenant_id)
        if script:
            failure = script.pop(0) if len(script) > 1 else script[0]
            if failure is not None:
                raise failure
        return self.postures[tenant.tenant_id]

    def close(self) -> None:
        self.closed = True
