"""Every error the framework itself raises is a problem document with the right status."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.exceptions import HTTPException

from auditor.api import create_app, problems
from auditor.core.access import AccessPolicy
from auditor.services.history import SnapshotHistory
from tests.api.helpers import problem
from tests.api.scenario import DAY1, DAY3, TENANT_A, Scenario


def app_raising(status: int) -> FastAPI:
    app = FastAPI()
    problems.install(app)

    @app.get("/boom")
    def boom() -> None:
        raise HTTPException(status_code=status)

    return app


def test_a_framework_400_is_a_400_problem_naming_the_body_not_a_500() -> None:
    response = TestClient(app_raising(400)).get("/boom")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == problems.INVALID_PARAMETER


def test_other_unexpected_framework_errors_are_500_problems_without_details() -> None:
    response = TestClient(app_raising(418), raise_server_exceptions=False).get("/boom")
    assert response.status_code == 500
    assert response.json()["type"] == problems.INTERNAL


# -- issue 11: the API says what it means ------------------------------------------------------


# What gives a regular expression away: anchors, classes, escapes, quantifiers, groups.
REGEX = re.compile(r"\\[dDwWsS]|\^|\[0-9|\[a-|\{\d+(,\d*)?\}|\(\?|\|\(|\)\*|\)\?\$|\$\)")
REF_WORDS = (
    "must be a snapshot id like 20261127T020000Z or an instant with a zone like "
    "2026-11-27T02:00:00Z"
)
# The report routes are mounted, but these requests are refused before any service is used.
NO_SERVICE = SimpleNamespace(service=None)
DIFF = f"/api/tenants/{TENANT_A}/diff"
TREND = f"/api/tenants/{TENANT_A}/trend"
COVERAGE = f"/api/tenants/{TENANT_A}/coverage"
BAD_REQUESTS = [
    (DIFF, {"from": "yesterday"}, "from"),
    (DIFF, {"to": "2026-11-27"}, "to"),
    (DIFF, {"to": "20261327T020000Z"}, "to"),
    (DIFF, {"subscription": "not-a-guid"}, "subscription"),
    (DIFF, {"change": "worse"}, "change"),
    (DIFF, {"level": "galaxy"}, "level"),
    (DIFF, {"$top": "0"}, "$top"),
    (DIFF, {"$top": "many"}, "$top"),
    (DIFF, {"format": "xml"}, "format"),
    (DIFF, {"$skipToken": "!!"}, "$skipToken"),
    (DIFF, {"colour": "blue"}, "colour"),
    (DIFF, {"standard": "x" * 300}, "standard"),
    (TREND, {"from": "2026-11-27T02:00:00"}, "from"),
    (TREND, {"to": "soon"}, "to"),
    (COVERAGE, {"snapshot": "latest"}, "snapshot"),
    ("/api/tenants/not-a-tenant/diff", {}, "tenantId"),
    ("/api/tenants", {"$top": "100000"}, "$top"),
    (f"/api/tenants/{TENANT_A}/snapshots", {"$skipToken": "x"}, "$skipToken"),
]


@pytest.mark.parametrize(("path", "params", "parameter"), BAD_REQUESTS)
def test_every_bad_request_is_a_400_in_words_naming_the_parameter(
    local_client: TestClient, scenario: Scenario, path: str, params: dict[str, str], parameter: str
) -> None:
    body = problem(local_client.get(path, params=params), 400)
    assert body["parameter"] == parameter
    assert body["detail"].startswith(parameter), body["detail"]
    assert not REGEX.search(body["detail"]), body["detail"]


@pytest.mark.parametrize("name", ["from", "to"])
def test_a_malformed_snapshot_reference_says_what_it_must_be_with_examples(
    local_client: TestClient, name: str
) -> None:
    body = problem(local_client.get(DIFF, params={name: "2026-11-27"}), 400)
    assert body["detail"] == f"{name}: {REF_WORDS}"


def test_a_pack_request_body_field_is_refused_in_words(history: SnapshotHistory) -> None:
    app = create_app(history, AccessPolicy.allow_all(), local_principal="local-dev",
                     extra={"reports": NO_SERVICE})  # fmt: skip
    client = TestClient(app, raise_server_exceptions=False)
    response = client.post(f"/api/tenants/{TENANT_A}/reports", json={"from": "last month"})
    body = problem(response, 400)
    assert body["parameter"] == "body.from"
    assert body["detail"] == f"body.from: {REF_WORDS}"


def test_an_unknown_standard_in_a_diff_is_a_400_naming_it_and_listing_the_known_ones(
    local_client: TestClient, scenario: Scenario
) -> None:
    body = problem(local_client.get(DIFF, params={"standard": "PCI"}), 400)
    assert body["parameter"] == "standard"
    known = sorted(
        set(scenario.a[1].compliance_by_standard) | set(scenario.a[2].compliance_by_standard)
    )
    assert "'PCI'" in body["detail"]
    assert body["detail"].endswith(", ".join(known)), body["detail"]


def test_an_unknown_standard_in_a_trend_is_a_400_naming_it_and_listing_the_known_ones(
    local_client: TestClient, scenario: Scenario
) -> None:
    body = problem(local_client.get(TREND, params={"standard": "NOPE"}), 400)
    assert body["parameter"] == "standard"
    known = sorted({s for entry in scenario.a for s in entry.compliance_by_standard})
    assert "'NOPE'" in body["detail"] and body["detail"].endswith(", ".join(known))


def test_an_unknown_subscription_in_a_diff_is_a_400_naming_it_and_listing_the_known_ones(
    local_client: TestClient, scenario: Scenario
) -> None:
    stranger = "f0000000-0000-4000-8000-0000000000ff"
    params = {"subscription": stranger, "from": DAY1, "to": DAY3}
    body = problem(local_client.get(DIFF, params=params), 400)
    assert body["parameter"] == "subscription"
    assert stranger in body["detail"]
    for subscription in scenario.subscriptions:
        assert subscription in body["detail"]
    # A known one is still a filter, in either case.
    known = scenario.subscriptions[0].upper()
    assert local_client.get(DIFF, params={**params, "subscription": known}).status_code == 200


def _descriptions(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k == "description" and isinstance(v, str)]
        return found + [d for v in node.values() for d in _descriptions(v)]
    if isinstance(node, list):
        return [d for v in node for d in _descriptions(v)]
    return []


def test_the_openapi_document_describes_parameters_in_words_not_patterns(
    history: SnapshotHistory,
) -> None:
    app = create_app(history, AccessPolicy.allow_all(), extra={"reports": NO_SERVICE})
    descriptions = _descriptions(app.openapi())
    assert len(descriptions) > 40
    for text in descriptions:
        assert not REGEX.search(text), text
        assert "YYYYMMDD" not in text, text
