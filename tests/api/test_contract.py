"""The contract as a whole: health, the OpenAPI document, errors outside any route."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import TestClient
from tests.api.helpers import PROBLEM, problem


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
        "/api/tenants/{tenantId}/trend",
        "/api/health",
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
