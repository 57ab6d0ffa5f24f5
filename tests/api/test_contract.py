"""The contract as a whole: health, the OpenAPI document, errors outside any route."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from auditor.core.access import AccessPolicy, Principal
from tests.api.conftest import HostedClient, TestClient, principal_header
from tests.api.helpers import PROBLEM, problem
from tests.api.scenario import DAY2, TENANT_A, TENANT_X, Scenario


def test_health_needs_no_caller_and_reads_no_store(local_client: TestClient) -> None:
    response = local_client.get("/api/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def _operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(path, op) for path, item in document["paths"].items() for op in item.values()]


def test_openapi_documents_every_route_with_problem_errors_and_no_422(
    local_client: TestClient,
) -> None:
    document = local_client.get("/api/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/api/tenants",
        "/api/tenants/{tenantId}/snapshots",
        "/api/tenants/{tenantId}/diff",
        "/api/tenants/{tenantId}/coverage",
        "/api/tenants/{tenantId}/alerts",
        "/api/where-to-act",
        "/api/tenants/{tenantId}/trend",
        "/api/health",
        "/api/docs",
        "/api/docs/style.css",
    }
    assert "Problem" in document["components"]["schemas"]
    for path, operation in _operations(document):
        responses = operation["responses"]
        assert "422" not in responses, path
        assert "400" in responses, path
        assert PROBLEM in responses["400"]["content"], path
        if "{tenantId}" in path:
            assert {"401", "404", "304"} <= set(responses), path


def test_unknown_paths_and_methods_are_problems(local_client: TestClient) -> None:
    assert problem(local_client.get("/api/nothing"), 404)["type"] == "urn:auditor:problem:not-found"
    assert problem(local_client.get("/api/tenants/"), 404)["type"] == (
        "urn:auditor:problem:not-found"
    )
    response = local_client.post("/api/tenants")
    problem(response, 405)
    assert response.headers["allow"] == "GET"


def test_every_request_is_audit_logged_without_secrets(
    hosted: HostedClient, scenario: Scenario, caplog: pytest.LogCaptureFixture
) -> None:
    caller = Principal("a11ce000-0000-4000-8000-000000000001", auth_type="aad")
    client = hosted(AccessPolicy.allow_all())
    headers = {**principal_header(caller), "x-functions-key": "KEY-IN-HEADER"}
    with caplog.at_level(logging.INFO, logger="auditor.audit"):
        client.get(
            f"/api/tenants/{TENANT_A}/diff",
            params={"from": DAY2, "change": "regressed", "code": "KEY-IN-QUERY"},
            headers=headers,
        )
        client.get(f"/api/tenants/{TENANT_X}/coverage")
    records = [r for r in caplog.records if r.name == "auditor.audit"]
    assert len(records) == 2
    first, second = (json.loads(r.getMessage()) for r in records)
    assert first["principal"] == caller.object_id and first["authType"] == "aad"
    assert first["tenant"] == TENANT_A
    assert first["route"] == "/api/tenants/{tenantId}/diff"
    assert first["query"] == ["from", "change"] and first["from"] == DAY2
    assert first["status"] == 200
    assert (second["principal"], second["status"]) == ("anonymous", 401)
    logged = " ".join(r.getMessage() for r in records)
    assert "KEY-IN" not in logged and "regressed" not in logged
    assert principal_header(caller)["X-MS-CLIENT-PRINCIPAL"] not in logged
