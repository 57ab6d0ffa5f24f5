"""The digest of two daily runs against the simulator's ground truth: the real collector over
HTTPS, snapshots in Azurite, and the drift the estate says happened between day 0 and day 1.

Issue 14: the digest must say exactly what changed — regressions, plan downgrades, scope.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.run_digests import RunDigestStore
from auditor.adapters.tables.runs import RunStore
from auditor.services.runclose import make_closer
from auditor.services.snapshot import SnapshotService
from auditor.settings import load_settings
from tests.integration.helpers import expected_status, make_collector, truth_tenants
from tools.azure_sim.launcher import Simulator
from tools.devservices import Azurite

DAY0 = datetime(2024, 5, 1, 2, tzinfo=UTC)
DAY1 = DAY0 + timedelta(days=1)


@pytest.fixture
def digests(fresh: Simulator, azurite: Azurite) -> Iterator[tuple[dict[str, Any], Simulator]]:
    suffix = uuid.uuid4().hex[:10]
    settings = load_settings(
        {
            **os.environ,
            "AUDITOR_STORAGE": azurite.connection_string,
            "AUDITOR_TABLE_PREFIX": f"truth{suffix}",
            "AUDITOR_SNAPSHOT_QUEUE": f"snap-{suffix}",
            "AUDITOR_EVIDENCE_CONTAINER": f"ev-{suffix}",
        }
    )
    store = SnapshotStore.from_settings(settings)
    runs = RunStore.from_settings(settings)
    with make_collector(settings) as collector:
        for day, slot in ((0, DAY0), (1, DAY1)):
            fresh.set_day(day)
            closer = make_closer(settings, store, runs, None)
            closer.clock = lambda slot=slot: slot + timedelta(minutes=30)  # type: ignore[misc]
            service = SnapshotService(store, runs, collector, clock=closer.clock, closer=closer)
            service.run_inline(slot)
            closer.close()
    reader = RunDigestStore.from_settings(settings)
    found = reader.digest("20240502T020000Z")
    assert found is not None
    yield found[1], fresh
    reader.close()
    store.close()
    runs.close()


def _open_high(tenant: dict[str, Any], outside: set[str]) -> set[str]:
    return {
        rid
        for sub in tenant["subscriptions"]
        if sub["subscriptionId"] not in outside
        for rid in sub["alerts"]["openHighIds"]
    }


def test_the_second_days_digest_says_what_the_estate_changed(
    digests: tuple[dict[str, Any], Simulator],
) -> None:
    document, sim = digests
    truth = truth_tenants(sim, 1)
    drift = sim.estate(1)["drift"]["sinceDay0"]
    rows = {t["tenantId"]: t for t in document["tenants"]}
    assert set(rows) == set(truth)
    seen_regressions = 0
    for tenant_id, row in rows.items():
        assert row["status"] == expected_status(truth[tenant_id]).value
        assert row["previousSnapshotId"] == "20240501T020000Z"
        summary = row["summary"]
        added = [d for d in drift["subscriptionsAdded"] if d["tenantId"] == tenant_id]
        removed = [d for d in drift["subscriptionsRemoved"] if d["tenantId"] == tenant_id]
        assert summary["scope"]["subscriptionsAdded"] == len(added), tenant_id
        assert summary["scope"]["subscriptionsRemoved"] == len(removed), tenant_id
        # The estate also names downgrades in a subscription delegated only since day 1: no
        # snapshot saw it before, so it is a subscription added, not a downgrade seen.
        new = {d["subscriptionId"] for d in added}
        downgrades = {
            (d["subscriptionId"], d["plan"])
            for d in drift["plansDowngraded"]
            if d["tenantId"] == tenant_id and d["subscriptionId"] not in new
        }
        assert {(d["subscriptionId"], d["plan"]) for d in summary["planDowngrades"]} == downgrades
        gone = {d["subscriptionId"] for d in removed} | new
        to_failed = Counter(
            c["subscriptionId"]
            for c in drift["complianceStateChanges"]
            if c["tenantId"] == tenant_id and c["to"] == "Failed"
            and c["subscriptionId"] not in gone
        )  # fmt: skip
        assert (summary["posture"]["regressed"] > 0) is bool(to_failed), tenant_id
        # Issue 14: new High-severity alerts, in subscriptions delegated at both ends.
        assert row["newHighAlerts"] == len(_open_high(truth[tenant_id], gone) - _open_high(
            truth_tenants(sim, 0)[tenant_id], gone
        )), tenant_id  # fmt: skip
        seen_regressions += bool(to_failed)
        assert row["regressed"] is bool(to_failed or downgrades or any(
            c.get("comparableDelta") is not None and c["comparableDelta"] < 0
            for c in summary["compliance"]
        ) or summary["secureScoreDrops"])  # fmt: skip
    assert document["counts"]["planDowngrades"] == sum(
        len(r["summary"]["planDowngrades"]) for r in rows.values()
    )
    assert document["joined"] == [] and document["left"] == []
    assert seen_regressions, "the estate's drift has no regression to check the digest against"
    assert any(r["newHighAlerts"] for r in rows.values()), "no new High alert to check against"
    assert document["tenants"][0]["tenantId"] in {
        t for t, r in rows.items() if r["regressed"] or r["status"] != "complete"
    }  # worst first
