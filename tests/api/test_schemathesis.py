"""Schemathesis over the served OpenAPI document: no 5xx, every response matches its schema.

The app runs in-process (ASGI) in local mode over the scenario store on Azurite. Half of the
generated tenant ids are replaced by tenants that exist, so that success responses are checked
against their schemas as well as errors. Examples are bounded to keep the run under a minute.
"""

from __future__ import annotations

import hashlib
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from auditor.api import create_app
from auditor.api.params import GUID_REGEX
from auditor.core.access import AccessPolicy
from auditor.services.history import SnapshotHistory
from tests.api.scenario import TENANT_A, TENANT_B, TENANT_C, Scenario


@pytest.fixture
def api_schema(history: SnapshotHistory, scenario: Scenario) -> schemathesis.BaseSchema:
    app = create_app(history, AccessPolicy.allow_all(), local_principal="local-dev")
    return schemathesis.openapi.from_asgi("/api/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")
KNOWN = (TENANT_A, TENANT_B, TENANT_C)
GUID = re.compile(GUID_REGEX.strip("^$"))


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.filter_too_much],
)  # fmt: skip
def test_every_response_matches_the_openapi_document(case: schemathesis.Case) -> None:
    tenant = (case.path_parameters or {}).get("tenantId")
    # Only a well-formed id is swapped: swapping a malformed one (a negative case) for a known
    # tenant made schema-violating requests valid, and "accepted" (a flaky ST201).
    if isinstance(tenant, str) and GUID.fullmatch(tenant):
        digest = hashlib.sha256(tenant.encode()).digest()
        if digest[0] % 2 == 0:
            case.path_parameters = {**case.path_parameters, "tenantId": KNOWN[digest[1] % 3]}
    # positive_data_acceptance is left out on purpose: some schema-valid values are refused by
    # design with a 400 naming the parameter (a forged $skipToken, 2026-02-30T00:00:00Z,
    # `from` after `to`), which a JSON Schema cannot express.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
