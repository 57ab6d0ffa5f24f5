"""The Operations page: recent runs, troubled and stale tenants, poison queues — for
operators only, and counting only tenants in the caller's grant."""

from __future__ import annotations

from datetime import UTC, datetime

from auditor.api import create_app
from auditor.core.access import AccessPolicy, Grant, Principal
from auditor.core.model import Tenant
from auditor.core.runs import RunManifest
from auditor.services.history import SnapshotHistory
from auditor.web.operations import QueueDepth
from tests.api.conftest import TestClient, principal_header
from tests.api.scenario import DAY3, TENANT_A, TENANT_B, TENANT_C, Scenario

OPERATOR = Principal(
    object_id="0be00000-0000-4000-8000-000000000001", roles=frozenset({"operator"}), auth_type="aad"
)


class FixedOperations:
    def recent_runs(self) -> list[RunManifest]:
        tenants = tuple(Tenant(t, "x", ()) for t in (TENANT_A, TENANT_B, TENANT_C))
        return [RunManifest(DAY3, datetime(2026, 11, 27, 2, tzinfo=UTC), tenants, "v", full=True)]

    def poison_depths(self) -> list[QueueDepth]:
        return [
            QueueDepth("auditor-snapshots-poison", 3),
            QueueDepth("auditor-reports-poison", None),
        ]

    def run_failure(self, snapshot_id: str) -> str | None:
        return None


def _client(history: SnapshotHistory, tenants: frozenset[str] | None) -> TestClient:
    policy = AccessPolicy(grants=(Grant(principal="*", tenants=tenants),))
    app = create_app(history, policy, extra={"operations": FixedOperations()})
    return TestClient(app, raise_server_exceptions=False)


def test_an_operator_sees_runs_troubled_tenants_and_poison_queues_of_their_grant(
    history: SnapshotHistory, scenario: Scenario
) -> None:
    page = _client(history, frozenset({TENANT_A, TENANT_C})).get(
        "/operations", headers=principal_header(OPERATOR)
    )
    assert page.status_code == 200
    text = page.text
    # Planned: A and C of the three (B is outside the grant); committed in that slot: A and C.
    assert f'<th scope="row">{DAY3}</th><td>2026-11-27 02:00 UTC</td><td>2</td><td>2</td>' in text
    assert scenario.a[2].reasons[0] in text  # A is incomplete on day 3, with its reason
    assert "Resource Graph answered 403" in text  # C failed
    assert TENANT_B not in text and scenario.b.tenant_name not in text
    assert "auditor-snapshots-poison: 3 messages" in text
    assert "auditor-reports-poison: could not be read" in text


def test_operations_is_not_found_for_a_caller_without_the_operator_role(
    history: SnapshotHistory, scenario: Scenario
) -> None:
    reader = Principal(object_id="0be00000-0000-4000-8000-000000000002", auth_type="aad")
    client = _client(history, None)
    answer = client.get("/operations", headers=principal_header(reader))
    unknown = client.get(
        f"/tenants/{'e' * 8}-0000-4000-8000-00000000000e", headers=principal_header(reader)
    )
    assert answer.status_code == 404
    assert answer.content == unknown.content
    assert "/operations" not in client.get("/", headers=principal_header(reader)).text
