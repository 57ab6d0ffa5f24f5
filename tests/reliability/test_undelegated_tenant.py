"""A tenant whose delegation is removed (simulator fault "undelegated_from") is recorded by the
next run as having left the delegation, with the real collector over HTTPS, instead of
vanishing while its last snapshot keeps being served as current (issue 10)."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.runs import RunStore
from auditor.api import create_app
from auditor.core.access import AccessPolicy
from auditor.core.schedule import latest_occurrence
from auditor.services.snapshot import SnapshotService, make_source
from auditor.settings import load_settings
from tools.devservices import Azurite

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture
def undelegating(simulator: object) -> Iterator[object]:
    yield simulator
    simulator.set_faults({})  # type: ignore[attr-defined]
    simulator.set_day(0)  # type: ignore[attr-defined]


def test_a_tenant_undelegated_from_a_day_is_recorded_as_left_and_shown_as_such(
    sim_env: dict[str, str], azurite: Azurite, undelegating: object
) -> None:
    suffix = uuid.uuid4().hex[:10]
    settings = load_settings(
        {
            **sim_env,
            "AUDITOR_STORAGE": azurite.connection_string,
            "AUDITOR_TABLE_PREFIX": f"left{suffix}",
            "AUDITOR_EVIDENCE_CONTAINER": f"ev-{suffix}",
        }
    )
    today = latest_occurrence("0 0 2 * * *", datetime.now(UTC))
    yesterday = today - timedelta(days=1)
    source = make_source(settings)
    store, runs = SnapshotStore.from_settings(settings), RunStore.from_settings(settings)
    service = SnapshotService(store, runs, source)
    try:
        first = service.run_inline(yesterday)
        gone = first[0].tenant_id
        config = undelegating.set_faults({"undelegated_from": {gone: 1}})  # type: ignore[attr-defined]
        assert config["undelegated_from"] == {gone: 1}
        undelegating.set_day(1)  # type: ignore[attr-defined]
        second = service.run_inline(today)
        outcomes = {o.tenant_id: o.outcome for o in second}
        assert outcomes[gone] == "left-delegation"
        assert all(v != "left-delegation" for t, v in outcomes.items() if t != gone)
        client = TestClient(create_app(store, AccessPolicy.allow_all(), local_principal="x"))
        items = {t["tenantId"]: t for t in client.get("/api/tenants").json()["value"]}
        assert items[gone]["delegated"] is False
        assert items[gone]["snapshotId"] == first[0].snapshot_id
        others = [t for t in items if t != gone]
        assert others and all(items[t]["delegated"] is True for t in others)
    finally:
        source.close()
        store.close()
        runs.close()
