"""A well-formed continuation token naming an impossible position is a 400, never a 500."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.api import paging
from tests.api.conftest import TestClient
from tests.api.helpers import problem
from tests.api.scenario import TENANT_A, Scenario


def _token(position: paging.Position, *parts: str) -> str:
    return paging.encode_token(position, paging.fingerprint(*parts))


def test_a_snapshots_token_naming_an_impossible_slot_is_a_400(
    local_client: TestClient, scenario: Scenario
) -> None:
    # Issue 9 §5: month 13 / hour 99 matched the id pattern and crashed strptime (a 500); year 1
    # has no second before it (an OverflowError).
    for slot in ("20261399T999999Z", "20260230T020000Z", "00010101T000000Z", "00000101T000000Z"):
        token = _token(paging.Position(after=slot), "snapshots", TENANT_A)
        response = local_client.get(
            f"/api/tenants/{TENANT_A}/snapshots", params={"$skipToken": token}
        )
        assert problem(response, 400)["parameter"] == "$skipToken", slot


def test_a_tenants_token_naming_something_else_than_a_tenant_is_a_400(
    local_client: TestClient, scenario: Scenario
) -> None:
    token = _token(paging.Position(after="../../anchors"), "tenants")
    response = local_client.get("/api/tenants", params={"$skipToken": token})
    assert problem(response, 400)["parameter"] == "$skipToken"


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    digits=st.text(alphabet="0123456789", min_size=14, max_size=14),
    offset=st.integers(-(2**70), 2**70),
)
def test_no_well_formed_token_is_ever_a_server_error(
    local_client: TestClient, scenario: Scenario, digits: str, offset: int
) -> None:
    slot = f"{digits[:8]}T{digits[8:]}Z"
    token = _token(paging.Position(after=slot), "snapshots", TENANT_A)
    response = local_client.get(f"/api/tenants/{TENANT_A}/snapshots", params={"$skipToken": token})
    assert response.status_code in (200, 400), response.text
    tenants = local_client.get(
        "/api/tenants",
        params={"$skipToken": _token(paging.Position(offset=max(offset, 0)), "tenants")},
    )
    assert tenants.status_code in (200, 400), tenants.text
