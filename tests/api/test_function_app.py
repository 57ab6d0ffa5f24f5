"""The API as Azure Functions hosts it: function_app.py's AsgiFunctionApp.

Indexed as the worker indexes it, then invoked, in a fresh interpreter with the app settings of
a deployment, through its HTTP function with real ``func.HttpRequest`` objects.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from auditor.adapters.tables.store import SnapshotStore
from auditor.core.access import Principal, encode_client_principal
from tests.api.scenario import DAY2, DAY3, TENANT_A, TENANT_B, Scenario
from tests.functions.worker import check_function, indexed_functions
from tools.devservices import Azurite

REPO = Path(__file__).resolve().parents[2]
HOST = "https://auditor-func.azurewebsites.net"
ALICE = "a11ce000-0000-4000-8000-000000000001"


def test_the_http_api_indexes_as_one_catch_all_function_key_protected_function() -> None:
    functions = {f.get_function_name(): f for f in indexed_functions()}
    http = functions["http_app_func"]
    check_function(http)
    bindings = json.loads(http.get_function_json())["bindings"]
    trigger = next(b for b in bindings if b["type"] == "httpTrigger")
    assert trigger["route"] == "/{*route}"
    assert trigger["authLevel"].lower() == "function"
    assert {"plan_snapshot_run", "snapshot_tenant"} <= set(functions)
    host = json.loads((REPO / "host.json").read_text())
    assert host["extensions"]["http"]["routePrefix"] == ""


def call_hosted(azurite: Azurite, store: SnapshotStore, policy: dict[str, Any],
                requests: list[dict[str, Any]], auth_enabled: bool = True,
                ) -> list[dict[str, Any]]:  # fmt: skip
    env = {
        **os.environ,
        "WEBSITE_AUTH_ENABLED": "True" if auth_enabled else "False",
        "AUDITOR_STORAGE": azurite.connection_string,
        "AUDITOR_TABLE_PREFIX": store.tables.prefix,
        "AUDITOR_ACCESS_POLICY": json.dumps(policy),
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.api.hosted_call"],
        cwd=REPO,
        env=env,
        input=json.dumps(requests),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    answers: list[dict[str, Any]] = json.loads(done.stdout)
    return answers


def test_the_hosted_function_serves_the_api_to_the_principal_app_service_names(
    azurite: Azurite, api_store: SnapshotStore, scenario: Scenario
) -> None:
    alice = {"X-MS-CLIENT-PRINCIPAL": encode_client_principal(Principal(ALICE))}
    key = {"x-functions-key": "not-checked-here-the-host-checks-it"}
    policy = {"grants": [{"principal": ALICE, "tenants": [TENANT_A]}]}
    nobody, tenants, diff, hidden = call_hosted(
        azurite,
        api_store,
        policy,
        [
            {"url": f"{HOST}/api/tenants", "headers": key},
            {"url": f"{HOST}/api/tenants", "headers": {**key, **alice}},
            {"url": f"{HOST}/api/tenants/{TENANT_A}/diff?$top=1&code=K", "headers": alice},
            {"url": f"{HOST}/api/tenants/{TENANT_B}/diff", "headers": alice},
        ],
    )
    assert nobody["status"] == 401
    assert nobody["headers"]["content-type"] == "application/problem+json"
    assert tenants["status"] == 200
    assert [t["tenantId"] for t in json.loads(tenants["body"])["value"]] == [TENANT_A]
    assert diff["status"] == 200
    assert diff["headers"]["etag"].startswith('"')
    page = json.loads(diff["body"])
    assert (page["from"]["snapshotId"], page["to"]["snapshotId"]) == (DAY2, DAY3)
    assert page["nextLink"].startswith(f"{HOST}/api/tenants/{TENANT_A}/diff?")
    assert "code=" not in page["nextLink"]
    assert hidden["status"] == 404
    assert json.loads(hidden["body"])["type"] == "urn:auditor:problem:tenant-not-found"


def test_without_app_service_authentication_a_client_sent_principal_is_not_believed(
    azurite: Azurite, api_store: SnapshotStore, scenario: Scenario
) -> None:
    forged = {"X-MS-CLIENT-PRINCIPAL": encode_client_principal(Principal(ALICE))}
    policy = {"grants": [{"principal": ALICE, "tenants": [TENANT_A]}]}
    (answer,) = call_hosted(
        azurite,
        api_store,
        policy,
        [{"url": f"{HOST}/api/tenants", "headers": forged}],
        auth_enabled=False,
    )
    assert answer["status"] == 401
