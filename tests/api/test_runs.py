"""`/api/runs`, `/api/runs/{slot}` and `/api/status`: operators only, and no tenant outside the
caller's grant appears anywhere in an answer (property over random policies and callers).

Issue 14: the digest is readable over the API by operators, filtered by the caller's grant.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.runs import RunStore
from auditor.api import create_app
from auditor.core.access import AccessPolicy, Principal, parse_policy
from auditor.services.operations import Operations, operations_from_settings
from auditor.settings import Settings, load_settings
from tests.api.conftest import TestClient, principal_header
from tests.daily_runs import run_days
from tools.devservices import Azurite
from tools.posture_factory import flip_states, make_posture, tenant_id_for

TENANTS = (tenant_id_for(61), tenant_id_for(62), tenant_id_for(63))
DAY1 = datetime(2024, 5, 1, 2, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
SLOT2 = "20240502T020000Z"
ALICE = "a11ce000-0000-4000-8000-000000000001"
BOB = "b0b00000-0000-4000-8000-000000000002"


@pytest.fixture(scope="module")
def run_settings(azurite: Azurite) -> Settings:
    suffix = uuid.uuid4().hex[:10]
    return load_settings(
        {
            "AUDITOR_STORAGE": azurite.connection_string,
            "AUDITOR_TABLE_PREFIX": f"runs{suffix}",
            "AUDITOR_SNAPSHOT_QUEUE": f"snap-{suffix}",
            "AUDITOR_EVIDENCE_CONTAINER": f"ev-{suffix}",
        }
    )


@pytest.fixture(scope="module")
def operations(run_settings: Settings) -> Iterator[Operations]:
    """Two closed daily runs of three tenants; the second regressed for the first tenant."""
    store = SnapshotStore.from_settings(run_settings)
    runs = RunStore.from_settings(run_settings)
    day1 = [make_posture(t, seed=n) for n, t in enumerate(TENANTS)]
    day2 = [flip_states(day1[0], 0.3), *day1[1:]]
    run_days(run_settings, store, runs, ((DAY1, day1), (DAY2, day2)))
    made = operations_from_settings(run_settings)
    yield made
    made.close()
    store.close()
    runs.close()


def client(operations: Operations, policy: AccessPolicy) -> TestClient:
    store = operations.runs  # any reader: these routes read no snapshot
    app = create_app(store, policy, extra={"runs": operations})  # type: ignore[arg-type]
    return TestClient(app, raise_server_exceptions=False)


selectors = st.sampled_from(["*", ALICE, BOB, "role:operator", "role:Reader"])
tenant_lists = st.one_of(st.just("*"), st.lists(st.sampled_from(TENANTS), unique=True, max_size=2))
policies = st.fixed_dictionaries(
    {
        "grants": st.lists(
            st.fixed_dictionaries({"principal": selectors, "tenants": tenant_lists}), max_size=3
        ),
        "operators": st.lists(selectors, unique=True, max_size=2),
    }
)
principals = st.builds(
    Principal,
    object_id=st.sampled_from([ALICE, BOB]),
    roles=st.frozensets(st.sampled_from(["operator", "Reader"]), max_size=2),
    auth_type=st.just("aad"),
)
PATHS = ("/api/runs", f"/api/runs/{SLOT2}", "/api/status")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(policy=policies, caller=principals, path=st.sampled_from(PATHS))
def test_only_operators_read_runs_and_never_a_tenant_outside_their_grant(
    operations: Operations, policy: dict[str, Any], caller: Principal, path: str
) -> None:
    rules = parse_policy(json.dumps(policy))
    response = client(operations, rules).get(path, headers=principal_header(caller))
    everything = response.text + json.dumps(sorted(response.headers.multi_items()))
    if not rules.is_operator(caller):
        assert response.status_code == 403
        assert response.json()["type"] == "urn:auditor:problem:operators-only"
        assert not any(t in everything for t in TENANTS)
        return
    assert response.status_code == 200, response.text
    granted = {t for t in TENANTS if rules.allowed(caller, t)}
    for tenant in TENANTS:
        if tenant not in granted:
            assert tenant not in everything
    if path == f"/api/runs/{SLOT2}":
        digest = response.json()["digest"]
        assert {t["tenantId"] for t in digest["tenants"]} == granted
        assert digest["counts"]["tenants"] == len(granted)


def test_an_operator_reads_the_digest_with_the_diff_summary_of_each_tenant(
    operations: Operations,
) -> None:
    policy = parse_policy(
        json.dumps({"grants": [{"principal": "*", "tenants": "*"}], "operators": ["role:operator"]})
    )
    caller = principal_header(Principal(ALICE, roles=frozenset({"operator"})))
    app = client(operations, policy)
    listed = app.get("/api/runs", headers=caller).json()["value"]
    assert [r["slot"] for r in listed] == [SLOT2, "20240501T020000Z"]
    assert all(r["closed"] and r["closedBy"] == "inline" for r in listed)
    run = app.get(f"/api/runs/{SLOT2}", headers=caller).json()
    worst = run["digest"]["tenants"][0]
    assert worst["tenantId"] == TENANTS[0] and worst["regressed"]
    assert worst["summary"]["posture"]["regressed"] > 0
    assert worst["previousSnapshotId"] == "20240501T020000Z"
    assert app.get("/api/runs/20240503T020000Z", headers=caller).status_code == 404
    assert app.get("/api/runs/not-a-slot", headers=caller).status_code == 400
    status = app.get("/api/status", headers=caller).json()
    assert status["lastClosedRun"]["slot"] == SLOT2
    assert status["evidence"]["container"].startswith("ev-")


def test_health_reveals_nothing_of_runs_or_status(operations: Operations) -> None:
    response = client(operations, AccessPolicy.allow_all()).get("/api/health")
    assert set(response.json()) == {"status", "version"}


def test_the_operations_routes_are_documented_with_problem_errors(operations: Operations) -> None:
    document = client(operations, AccessPolicy.allow_all()).get("/api/openapi.json").json()
    for path in ("/api/runs", "/api/runs/{slot}", "/api/status"):
        responses = document["paths"][path]["get"]["responses"]
        assert {"400", "401", "403"} <= set(responses) and "422" not in responses, path
    assert "404" in document["paths"]["/api/runs/{slot}"]["get"]["responses"]
