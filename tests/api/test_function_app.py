"""The API and the dashboard as Azure Functions hosts them: function_app.py's two HTTP
functions over one ASGI app (``api``: function key; ``pages``: anonymous at the Functions
level, the app decides).

Indexed as the worker indexes it, then invoked, in a fresh interpreter with the app settings of
a deployment, through its HTTP functions with real ``func.HttpRequest`` objects.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from auditor.adapters.tables.store import SnapshotStore
from auditor.api.http_functions import API_FUNCTION, PAGES_FUNCTION
from auditor.core.access import Principal, encode_client_principal
from tests.api.scenario import DAY2, DAY3, TENANT_A, TENANT_B, Scenario
from tests.functions.worker import check_function, indexed_functions
from tools.devservices import Azurite

REPO = Path(__file__).resolve().parents[2]
HOST = "https://auditor-func.azurewebsites.net"
ALICE = "a11ce000-0000-4000-8000-000000000001"


def _http_trigger(function: Any) -> dict[str, Any]:
    bindings = json.loads(function.get_function_json())["bindings"]
    trigger: dict[str, Any] = next(b for b in bindings if b["type"] == "httpTrigger")
    return trigger


def test_the_api_needs_the_function_key_and_pages_are_reachable_without_one() -> None:
    functions = {f.get_function_name(): f for f in indexed_functions()}
    api, pages = functions[API_FUNCTION], functions[PAGES_FUNCTION]
    check_function(api)
    check_function(pages)
    assert _http_trigger(api)["route"] == "api/{*route}"
    assert _http_trigger(api)["authLevel"].lower() == "function"
    assert _http_trigger(pages)["route"] == "{*route}"
    assert _http_trigger(pages)["authLevel"].lower() == "anonymous"
    # Every HTTP function is one of the two: nothing else answers without the key.
    http = {
        name
        for name, function in functions.items()
        if any(b.type == "httpTrigger" for b in function.get_bindings())
    }
    assert http == {API_FUNCTION, PAGES_FUNCTION}
    assert {"plan_snapshot_run", "snapshot_tenant"} <= set(functions)
    host = json.loads((REPO / "host.json").read_text())
    assert host["extensions"]["http"]["routePrefix"] == ""


def test_the_keyed_route_is_tried_first_by_the_hosts_name_ordering() -> None:
    # The Functions host matches routes in the order of the functions' names, not by how
    # specific they are (azure-functions-host#9876): /api/... must meet the keyed route first.
    assert sorted([PAGES_FUNCTION, API_FUNCTION]) == [API_FUNCTION, PAGES_FUNCTION]


def call_hosted(azurite: Azurite, store: SnapshotStore, policy: dict[str, Any],
                requests: list[dict[str, Any]], auth_enabled: bool = True,
                settings: dict[str, str] | None = None,
                ) -> list[dict[str, Any]]:  # fmt: skip
    env = {
        **os.environ,
        "WEBSITE_AUTH_ENABLED": "True" if auth_enabled else "False",
        "WEBSITE_HOSTNAME": HOST.removeprefix("https://"),
        "AUDITOR_WEB_SECRET": "a-key-of-at-least-32-characters-for-tests",
        "AUDITOR_STORAGE": azurite.connection_string,
        "AUDITOR_TABLE_PREFIX": store.tables.prefix,
        "AUDITOR_ACCESS_POLICY": json.dumps(policy),
        **(settings or {}),
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


ANONYMOUS_API_PATHS = [
    f"/api/tenants/{TENANT_A}/diff",
    "/api/tenants",
    "/api/openapi.json",
    "/api/health",
    "/api",
    "/API/tenants",
    "//api/tenants",
    "/%61pi/tenants",
]


def test_a_path_under_api_through_the_anonymous_function_never_reaches_a_route(
    azurite: Azurite, api_store: SnapshotStore, scenario: Scenario
) -> None:
    alice = {"X-MS-CLIENT-PRINCIPAL": encode_client_principal(Principal(ALICE))}
    policy = {"grants": [{"principal": ALICE, "tenants": [TENANT_A]}]}
    requests: list[dict[str, Any]] = [
        {"url": f"{HOST}/api/no-such-path", "headers": {**alice, "x-functions-key": "K"}},
        *({"url": f"{HOST}{path}", "headers": alice, "function": PAGES_FUNCTION}
          for path in ANONYMOUS_API_PATHS),
        {"url": f"{HOST}/api/tenants/{TENANT_A}/reports", "headers": {
            **alice, "content-type": "application/json"}, "function": PAGES_FUNCTION,
         "method": "POST", "body": '{"from": "2026-11-01", "to": "2026-11-30"}'},
    ]  # fmt: skip
    unknown, *refused = call_hosted(azurite, api_store, policy, requests)
    assert unknown["status"] == 404
    for path, answer in zip([*ANONYMOUS_API_PATHS, "POST reports"], refused, strict=True):
        # Exactly what an unknown path under /api answers, and no route was matched.
        assert (answer["status"], answer["body"]) == (unknown["status"], unknown["body"]), path
        assert answer["headers"]["content-type"] == "application/problem+json", path
        [record] = answer["audit"]
        assert (record["route"], record["status"], record["principal"]) == (
            "(no route)", 404, ALICE), path  # fmt: skip


def test_through_the_anonymous_function_a_signed_in_page_renders_and_a_stranger_signs_in(
    azurite: Azurite, api_store: SnapshotStore, scenario: Scenario
) -> None:
    alice = {"X-MS-CLIENT-PRINCIPAL": encode_client_principal(Principal(ALICE))}
    policy = {"grants": [{"principal": ALICE, "tenants": [TENANT_A]}]}
    page, hidden, stranger, asset, api = call_hosted(
        azurite,
        api_store,
        policy,
        [
            {"url": f"{HOST}/", "headers": alice, "function": PAGES_FUNCTION},
            {"url": f"{HOST}/tenants/{TENANT_B}", "headers": alice, "function": PAGES_FUNCTION},
            {"url": f"{HOST}/tenants/{TENANT_A}?days=30", "function": PAGES_FUNCTION},
            {"url": f"{HOST}/static/dashboard.css", "function": PAGES_FUNCTION},
            {"url": f"{HOST}/api/tenants", "headers": {"x-functions-key": "K"}},
        ],
    )
    assert page["status"] == 200
    assert page["headers"]["content-type"].startswith("text/html")
    assert TENANT_A in page["body"] and TENANT_B not in page["body"]
    assert page["audit"][0]["principal"] == ALICE
    assert hidden["status"] == 404
    assert stranger["status"] == 302
    assert stranger["headers"]["location"] == (
        f"/.auth/login/aad?post_login_redirect_uri=%2Ftenants%2F{TENANT_A}%3Fdays%3D30"
    )
    assert asset["status"] == 200
    # The API keeps its 401 for a caller App Service Authentication did not name.
    assert api["status"] == 401
    assert api["headers"]["content-type"] == "application/problem+json"


def test_without_app_service_authentication_pages_through_the_anonymous_function_are_401(
    azurite: Azurite, api_store: SnapshotStore, scenario: Scenario
) -> None:
    forged = {"X-MS-CLIENT-PRINCIPAL": encode_client_principal(Principal(ALICE))}
    policy = {"grants": [{"principal": ALICE, "tenants": [TENANT_A]}]}
    (answer,) = call_hosted(
        azurite,
        api_store,
        policy,
        [{"url": f"{HOST}/", "headers": forged, "function": PAGES_FUNCTION}],
        auth_enabled=False,
    )
    assert answer["status"] == 401
    assert TENANT_A not in answer["body"]


def id_token_session(object_id: str, home_tenant: str, roles: tuple[str, ...] = ()
                     ) -> dict[str, str]:  # fmt: skip
    """The principal header App Service Authentication sends for a person signed in to the
    dashboard: the ID token's claims, with its URI spellings (no scp, no client id)."""
    claims = [{"typ": "roles", "val": role} for role in roles] + [
        {"typ": "aud", "val": "11111111-2222-4000-8000-000000000001"},
        {"typ": "nonce", "val": "0f1e2d3c4b5a_20261201T000000Z"},
        {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": object_id},
        {"typ": "preferred_username", "val": "carol@customer.example"},
        {"typ": "name", "val": "Carol"},
        {"typ": "http://schemas.microsoft.com/identity/claims/tenantid", "val": home_tenant},
        {"typ": "ver", "val": "2.0"},
    ]
    document = {"auth_typ": "aad", "name_typ": "name", "role_typ": "roles", "claims": claims}
    return {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(document).encode()).decode()}


def test_a_signed_in_customer_user_sees_their_own_tenant_alone_through_the_pages_function(
    azurite: Azurite, api_store: SnapshotStore, scenario: Scenario
) -> None:
    # tenant:self end to end: a person of a delegated tenant signs in (an ID-token session,
    # no scp) and the '*' grant with tenant:self gives them that tenant, and nothing else.
    carol = id_token_session("c0000000-0000-4000-8000-00000000000c", TENANT_A)
    outsider = id_token_session(ALICE, "f0000000-0000-4000-8000-00000000000f")
    policy = {"grants": [{"principal": "*", "tenants": ["tenant:self"]}]}
    mine, theirs, act, nothing = call_hosted(
        azurite,
        api_store,
        policy,
        [
            {"url": f"{HOST}/", "headers": carol, "function": PAGES_FUNCTION},
            {"url": f"{HOST}/tenants/{TENANT_B}", "headers": carol, "function": PAGES_FUNCTION},
            {"url": f"{HOST}/act", "headers": carol, "function": PAGES_FUNCTION},
            {"url": f"{HOST}/", "headers": outsider, "function": PAGES_FUNCTION},
        ],
    )
    assert mine["status"] == 200
    assert f"/tenants/{TENANT_A}" in mine["body"] and TENANT_B not in mine["body"]
    assert "1 of 1 tenants shown" in mine["body"]
    assert theirs["status"] == 404
    assert act["status"] == 200 and TENANT_B not in act["body"]
    assert nothing["status"] == 200 and "0 of 0 tenants shown" in nothing["body"]


MANAGING = "aa000000-0000-4000-8000-0000000000aa"


def test_once_customers_sign_in_a_customer_with_the_operator_role_sees_only_their_tenant(
    azurite: Azurite, api_store: SnapshotStore, scenario: Scenario
) -> None:
    # customerSignIn (infra/main.bicep): the common issuer lets any tenant's user sign in and
    # AUDITOR_MANAGING_TENANT_ID names ours. A customer's admin can give their own users the
    # app's roles (and groups of the same ids): none of that, nor a '*' grant, reaches them.
    carol = id_token_session("c0000000-0000-4000-8000-00000000000c", TENANT_A, ("operator",))
    staff = id_token_session(ALICE, MANAGING, ("operator",))
    policy = {
        "grants": [{"principal": "*", "tenants": ["tenant:self"]},
                   {"principal": "role:operator", "tenants": "*"}],
        "operators": ["role:operator"],
    }  # fmt: skip
    mine, theirs, operations, api, ours = call_hosted(
        azurite,
        api_store,
        policy,
        [
            {"url": f"{HOST}/", "headers": carol, "function": PAGES_FUNCTION},
            {"url": f"{HOST}/tenants/{TENANT_B}", "headers": carol, "function": PAGES_FUNCTION},
            {"url": f"{HOST}/operations", "headers": carol, "function": PAGES_FUNCTION},
            {"url": f"{HOST}/api/runs", "headers": {**carol, "x-functions-key": "K"}},
            {"url": f"{HOST}/", "headers": staff, "function": PAGES_FUNCTION},
        ],
        settings={"AUDITOR_MANAGING_TENANT_ID": MANAGING.upper()},
    )
    assert mine["status"] == 200
    assert "1 of 1 tenants shown" in mine["body"]
    assert f"/tenants/{TENANT_A}" in mine["body"] and TENANT_B not in mine["body"]
    assert "/operations" not in mine["body"]
    assert theirs["status"] == 404
    assert operations["status"] == 404
    assert api["status"] == 403, api
    assert ours["status"] == 200
    assert f"/tenants/{TENANT_A}" in ours["body"] and f"/tenants/{TENANT_B}" in ours["body"]
    assert "/operations" in ours["body"]
