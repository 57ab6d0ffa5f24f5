"""Caller input is checked before the store is asked; an invisible tenant costs no read at all.

A counting in-memory reader stands in for the store here: the point is what reaches it.
"""

from __future__ import annotations

import pytest

from auditor.api import create_app
from auditor.core.access import Principal, parse_policy
from tests.api.conftest import TestClient, principal_header
from tests.api.memory_reader import MemoryReader
from tests.api.scenario import TENANT_A, TENANT_B
from tools.posture_factory import make_sized_posture, make_snapshot

ALICE = "a11ce000-0000-4000-8000-000000000001"


@pytest.fixture
def counted() -> tuple[TestClient, MemoryReader]:
    reader = MemoryReader(
        [
            make_snapshot(make_sized_posture(TENANT_A, records=20), "20261127T020000Z"),
            make_snapshot(make_sized_posture(TENANT_B, records=20), "20261127T020000Z"),
        ]
    )
    policy = parse_policy(f'{{"grants": [{{"principal": "{ALICE}", "tenants": ["{TENANT_A}"]}}]}}')
    return TestClient(create_app(reader, policy), raise_server_exceptions=False), reader


@pytest.mark.parametrize(
    "path",
    [
        "/api/tenants/x' or PartitionKey ne 'x/snapshots",
        "/api/tenants/a0000000-0000-4000-8000-00000000000a'/diff",
        "/api/tenants/a0000000-0000-4000-8000-00000000000a%23/coverage",
        f"/api/tenants/{TENANT_A}/diff?from=20261127T020000Z' or 1 eq 1",
        f"/api/tenants/{TENANT_A}/coverage?snapshot=latest",
        f"/api/tenants/{TENANT_A}/trend?to=2026-11-27T02:00:00Z%27",
        f"/api/tenants/{TENANT_A}/diff?subscription=x%27%20or%20true",
    ],
)
def test_malformed_input_is_400_before_any_store_read(
    counted: tuple[TestClient, MemoryReader], path: str
) -> None:
    client, reader = counted
    response = client.get(path, headers=principal_header(Principal(ALICE)))
    assert response.status_code == 400, response.text
    assert reader.reads == 0


def test_a_tenant_outside_the_grant_is_answered_without_a_store_read(
    counted: tuple[TestClient, MemoryReader],
) -> None:
    client, reader = counted
    for route in ("snapshots", "diff", "coverage", "trend"):
        response = client.get(
            f"/api/tenants/{TENANT_B}/{route}", headers=principal_header(Principal(ALICE))
        )
        assert response.status_code == 404
    assert reader.reads == 0
    granted = client.get(
        f"/api/tenants/{TENANT_A}/coverage", headers=principal_header(Principal(ALICE))
    )
    assert granted.status_code == 200 and reader.reads > 0
