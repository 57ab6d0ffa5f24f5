"""The snapshot history the API tests read, committed through the store's write API.

Tenant A (three daily snapshots):
- day 1: complete; subscriptions S0 and S1;
- day 2: complete; 5 % of the records flipped; subscription S2 entered the scope; S0's
  PCI-DSS-4 replaced by PCI-DSS-4.0.1 (a standard version change); S0's VirtualMachines plan
  downgraded to Free; S1's secure score dropped;
- day 3: incomplete: S1 could not be read (403), two more records flipped in S0.
Tenant B: one complete snapshot. Tenant C: one failed snapshot (no data).
Tenant X is never committed: it does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from auditor.adapters.tables.store import SnapshotStore
from auditor.core.model import (
    Completeness,
    SecureScore,
    State,
    TenantPosture,
)
from auditor.core.snapshot import SnapshotIndexEntry, slot_of
from tools.posture_factory import flip_states, make_sized_posture

TENANT_A = "a0000000-0000-4000-8000-00000000000a"
TENANT_B = "b0000000-0000-4000-8000-00000000000b"
TENANT_C = "c0000000-0000-4000-8000-00000000000c"
TENANT_X = "e0000000-0000-4000-8000-00000000000e"  # never committed
DAY1, DAY2, DAY3 = "20261125T020000Z", "20261126T020000Z", "20261127T020000Z"
COLLECTOR = "api-test/1"


@dataclass(frozen=True)
class Scenario:
    subscriptions: tuple[str, str, str]  # S0, S1, S2 of tenant A
    a: tuple[SnapshotIndexEntry, SnapshotIndexEntry, SnapshotIndexEntry]
    b: SnapshotIndexEntry
    c: SnapshotIndexEntry
    postures: tuple[TenantPosture, TenantPosture, TenantPosture]

    def at(self, snapshot_id: str) -> datetime:
        return slot_of(snapshot_id)


def _with_scope(posture: TenantPosture, extra: TenantPosture) -> TenantPosture:
    """`posture` plus the subscriptions and records of `extra` (same tenant)."""
    subs = posture.tenant.subscriptions + extra.tenant.subscriptions
    ids = tuple(s.subscription_id for s in subs)
    return replace(
        posture,
        tenant=replace(posture.tenant, subscriptions=subs),
        compliance=posture.compliance + extra.compliance,
        standards=posture.standards + extra.standards,
        controls=posture.controls + extra.controls,
        plans=posture.plans + extra.plans,
        secure_scores=posture.secure_scores + extra.secure_scores,
        hardening=posture.hardening + extra.hardening,
        completeness=Completeness(expected_subscriptions=ids, collected_subscriptions=ids),
    )


def _rename_standard(posture: TenantPosture, sub: str, old: str, new: str) -> TenantPosture:
    def rename(record: Any) -> Any:
        if record.subscription_id == sub and record.standard == old:
            return replace(record, standard=new)
        return record

    return replace(
        posture,
        compliance=tuple(rename(r) for r in posture.compliance),
        standards=tuple(rename(s) for s in posture.standards),
        controls=tuple(rename(c) for c in posture.controls),
    )


def build(store: SnapshotStore) -> Scenario:
    day1 = make_sized_posture(TENANT_A, subscriptions=2, records=400, seed=11)
    s0, s1 = (s.subscription_id for s in day1.tenant.subscriptions)
    # Every VirtualMachines plan Standard and one secure score, so the changes below are known.
    day1 = replace(
        day1,
        plans=tuple(
            replace(p, tier="Standard", sub_plan="P2") if p.plan == "VirtualMachines" else p
            for p in day1.plans
        ),
        secure_scores=(
            SecureScore(s0, 30.0, 60.0, 0.5, 60),
            SecureScore(s1, 40.0, 60.0, 0.6667, 60),
        ),
    )
    third = make_sized_posture(TENANT_A, subscriptions=3, records=150, seed=12)
    s2_only = replace(
        third,
        tenant=replace(third.tenant, subscriptions=third.tenant.subscriptions[2:]),
        compliance=tuple(r for r in third.compliance if r.subscription_id not in (s0, s1)),
        standards=tuple(r for r in third.standards if r.subscription_id not in (s0, s1)),
        controls=tuple(r for r in third.controls if r.subscription_id not in (s0, s1)),
        plans=tuple(r for r in third.plans if r.subscription_id not in (s0, s1)),
        secure_scores=tuple(r for r in third.secure_scores if r.subscription_id not in (s0, s1)),
        hardening=tuple(r for r in third.hardening if r.subscription_id not in (s0, s1)),
    )
    s2 = s2_only.tenant.subscriptions[0].subscription_id

    day2 = flip_states(day1, 0.05, seed=13)
    day2 = _rename_standard(day2, s0, "PCI-DSS-4", "PCI-DSS-4.0.1")
    day2 = replace(
        day2,
        plans=tuple(
            replace(p, tier="Free", sub_plan="")
            if (p.subscription_id, p.plan) == (s0, "VirtualMachines")
            else p
            for p in day2.plans
        ),
        secure_scores=(
            SecureScore(s0, 30.0, 60.0, 0.5, 60),
            SecureScore(s1, 33.0, 60.0, 0.55, 60),
        ),
    )
    day2 = _with_scope(day2, s2_only)

    flipped = 0
    day3_records = []
    for record in day2.compliance:
        if record.subscription_id == s1:
            continue  # S1 could not be read
        if record.subscription_id == s0 and flipped < 2 and record.state is State.PASSED:
            record = replace(record, state=State.FAILED, failed_resources=4)
            flipped += 1
        day3_records.append(record)
    ids = (s0, s1, s2)
    day3 = replace(
        day2,
        compliance=tuple(day3_records),
        standards=tuple(s for s in day2.standards if s.subscription_id != s1),
        controls=tuple(c for c in day2.controls if c.subscription_id != s1),
        plans=tuple(p for p in day2.plans if p.subscription_id != s1),
        secure_scores=tuple(s for s in day2.secure_scores if s.subscription_id != s1),
        hardening=tuple(h for h in day2.hardening if h.subscription_id != s1),
        completeness=Completeness(
            expected_subscriptions=ids,
            collected_subscriptions=(s0, s2),
            missing={s1: "403 Forbidden: Reader role missing"},
        ),
    )

    a1 = store.commit_snapshot(day1, slot_of(DAY1), COLLECTOR)
    a2 = store.commit_snapshot(day2, slot_of(DAY2), COLLECTOR)
    a3 = store.commit_snapshot(day3, slot_of(DAY3), COLLECTOR)
    b = store.commit_snapshot(
        make_sized_posture(TENANT_B, subscriptions=1, records=60, seed=21), slot_of(DAY3), COLLECTOR
    )
    c = store.commit_failed(
        make_sized_posture(TENANT_C, subscriptions=1, records=1, seed=31).tenant,
        slot_of(DAY3),
        "Resource Graph answered 403 for every subscription",
        COLLECTOR,
    )
    return Scenario(
        subscriptions=(s0, s1, s2),
        a=(a1, a2, a3),
        b=b,
        c=c,
        postures=(day1, day2, day3),
    )
