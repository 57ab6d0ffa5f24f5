"""Property: no response (status, headers, body) reveals a tenant outside the caller's grant.

For random policies, callers and requests, asking about a tenant the caller may not see gives
byte for byte the answer a tenant that does not exist gives, whatever else the request says;
the tenant list names exactly the granted tenants that exist.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from auditor.core.access import AccessPolicy, Principal, parse_policy
from tests.api.conftest import HostedClient, TestClient, principal_header
from tests.api.helpers import problem
from tests.api.scenario import DAY1, DAY2, DAY3, TENANT_A, TENANT_B, TENANT_C, Scenario

EXISTING = (TENANT_A, TENANT_B, TENANT_C)
ALICE = "a11ce000-0000-4000-8000-000000000001"
BOB = "b0b00000-0000-4000-8000-000000000002"
GROUP = "60000000-0000-4000-8000-000000000006"
GRANTED_ELSEWHERE = "d0000000-0000-4000-8000-00000000000d"  # in grants, never committed

selectors = st.sampled_from(["*", ALICE, BOB, "role:Auditor", "role:Reader", f"group:{GROUP}"])
tenant_lists = st.one_of(
    st.just("*"),
    st.lists(st.sampled_from([*EXISTING, GRANTED_ELSEWHERE]), unique=True, max_size=3),
)
policies = st.lists(
    st.fixed_dictionaries({"principal": selectors, "tenants": tenant_lists}), max_size=4
).map(lambda grants: {"grants": grants})
principals = st.builds(
    Principal,
    object_id=st.sampled_from([ALICE, BOB]),
    roles=st.frozensets(st.sampled_from(["Auditor", "Reader", "Other"]), max_size=2),
    groups=st.frozensets(st.just(GROUP), max_size=1),
    auth_type=st.just("aad"),
)
refs = st.sampled_from(
    [None, DAY1, DAY2, DAY3, "20261101T020000Z", "2026-11-26T12:00:00Z", "2020-01-01T00:00:00Z",
     "garbage", "2026-13-01T00:00:00Z"]
)  # fmt: skip
formats = st.sampled_from([None, "csv", "json", "xml"])
accepts = st.sampled_from([None, "text/csv", "application/json", "text/html"])


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, dict[str, str], dict[str, str]]:
    """(path under the tenant, query parameters, headers)."""
    kind = draw(st.sampled_from(["snapshots", "diff", "coverage", "alerts", "trend"]))
    params: dict[str, str] = {}

    def maybe(name: str, strategy: st.SearchStrategy[Any]) -> None:
        value = draw(strategy)
        if value is not None:
            params[name] = value

    if kind in ("diff", "trend"):
        maybe("from", refs)
        maybe("to", refs)
    if kind in ("coverage", "alerts"):
        maybe("snapshot", refs)
    if kind == "diff":
        maybe("change", st.sampled_from([None, "regressed", "improved,added", "bogus"]))
        maybe("$top", st.sampled_from([None, "1", "0"]))
    if kind in ("snapshots", "diff", "alerts", "trend"):
        maybe("format", formats)
    if kind == "snapshots":
        maybe("$skipToken", st.sampled_from([None, "eyJ2IjoxfQ", "%%"]))
    maybe("unexpected", st.sampled_from([None, "1"]))
    headers: dict[str, str] = {}
    accept = draw(accepts)
    if accept:
        headers["Accept"] = accept
    if draw(st.booleans()):
        headers["If-None-Match"] = '"0123456789abcdef0123456789abcdef01234567"'
    return kind, params, headers


def _answer(client: TestClient, tenant: str, request: tuple[str, dict[str, str], dict[str, str]],
            headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:  # fmt: skip
    kind, params, extra = request
    response = client.get(f"/api/tenants/{tenant}/{kind}", params=params, headers={**headers,
                          **extra})  # fmt: skip
    return response.status_code, sorted(response.headers.multi_items()), response.content


PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(policy=policies, caller=principals, request=requests(), data=st.data())
def test_a_tenant_outside_the_grant_answers_exactly_like_one_that_does_not_exist(
    hosted: HostedClient,
    scenario: Scenario,
    policy: dict[str, Any],
    caller: Principal,
    request: tuple[str, dict[str, str], dict[str, str]],
    data: st.DataObject,
) -> None:
    rules = parse_policy(json.dumps(policy))
    hidden = [t for t in EXISTING if not rules.allowed(caller, t)]
    assume(hidden)
    tenant = data.draw(st.sampled_from(hidden))
    nowhere = str(uuid.UUID(int=data.draw(st.integers(0, 2**122)) | 0x7 << 124))
    assume(not rules.allowed(caller, nowhere))
    client = hosted(rules)
    headers = principal_header(caller)
    spelled = data.draw(st.sampled_from([tenant, tenant.upper()]))
    assert _answer(client, spelled, request, headers) == _answer(client, nowhere, request, headers)


@PROPERTY
@given(policy=policies, caller=principals, as_csv=st.booleans())
def test_the_tenant_list_names_exactly_the_granted_tenants_that_exist(
    hosted: HostedClient, scenario: Scenario, policy: dict[str, Any], caller: Principal,
    as_csv: bool,
) -> None:  # fmt: skip
    rules = parse_policy(json.dumps(policy))
    response = hosted(rules).get(
        "/api/tenants",
        params={"format": "csv"} if as_csv else {},
        headers=principal_header(caller),
    )
    assert response.status_code == 200
    granted = {t for t in EXISTING if rules.allowed(caller, t)}
    everything = response.content.decode() + json.dumps(sorted(response.headers.multi_items()))
    for tenant in EXISTING:
        assert (tenant in everything) is (tenant in granted)
    if not as_csv:
        assert {t["tenantId"] for t in response.json()["value"]} == granted


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(request=requests(), tenant=st.sampled_from([*EXISTING, GRANTED_ELSEWHERE]))
def test_without_a_caller_every_tenant_request_is_the_same_401(
    hosted: HostedClient, scenario: Scenario, request: tuple[str, dict[str, str], dict[str, str]],
    tenant: str,
) -> None:  # fmt: skip
    client = hosted(AccessPolicy.allow_all())
    status, headers, body = _answer(client, tenant, request, {})
    # A malformed query is a 400 before anything else; otherwise the missing caller is a 401.
    assert status in (400, 401)
    assert tenant not in body.decode() + json.dumps(headers)
    reference = _answer(client, TENANT_A, request, {})
    assert (status, headers, body) == reference


def test_a_principal_without_an_object_id_is_no_caller(
    hosted: HostedClient, scenario: Scenario
) -> None:
    client = hosted(AccessPolicy.allow_all())
    for claims in ([], [{"typ": "oid", "val": "not-a-guid"}]):
        header = base64.b64encode(json.dumps({"claims": claims}).encode()).decode()
        response = client.get("/api/tenants", headers={"X-MS-CLIENT-PRINCIPAL": header})
        assert response.status_code == 401


def _nested(depth: int) -> str:
    document = "[" * depth + "]" * depth
    return base64.b64encode(f'{{"claims": {document}}}'.encode()).decode()


def test_a_malformed_principal_header_is_a_400_naming_it_and_is_still_audited(
    hosted: HostedClient, scenario: Scenario, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 9 §5: a header nested 3,000 deep was a 500 without an audit record.
    client = hosted(AccessPolicy.allow_all())
    with caplog.at_level(logging.INFO, logger="auditor.audit"):
        for header in (_nested(3_000), "not base64", base64.b64encode(b"[1]").decode()):
            response = client.get(
                f"/api/tenants/{TENANT_A}/diff", headers={"X-MS-CLIENT-PRINCIPAL": header}
            )
            body = problem(response, 400)
            assert body["parameter"] == "X-MS-CLIENT-PRINCIPAL"
            assert TENANT_A not in response.text
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "auditor.audit"]
    assert [(r["principal"], r["status"], r["tenant"]) for r in records] == [
        ("anonymous", 400, TENANT_A)
    ] * 3
    # Routes that need no caller still answer.
    assert client.get("/api/health", headers={"X-MS-CLIENT-PRINCIPAL": _nested(3_000)}).is_success


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    depth=st.integers(0, 5_000),
    wrap=st.sampled_from(["[", '{"a":']),
    junk=st.binary(max_size=64),
)
def test_no_principal_header_is_ever_a_server_error(
    hosted: HostedClient, scenario: Scenario, depth: int, wrap: str, junk: bytes
) -> None:
    close = "]" if wrap == "[" else "}"
    nested = base64.b64encode((wrap * depth + "1" + close * depth).encode()).decode()
    client = hosted(AccessPolicy.allow_all())
    for header in (nested, base64.b64encode(junk).decode()):
        response = client.get("/api/tenants", headers={"X-MS-CLIENT-PRINCIPAL": header})
        assert response.status_code in (200, 400, 401), response.text


def test_local_mode_ignores_the_principal_header(
    local_client: TestClient, scenario: Scenario
) -> None:
    forged = principal_header(Principal(BOB))
    assert (
        local_client.get("/api/tenants", headers=forged).json()
        == local_client.get("/api/tenants").json()
    )


def test_an_app_only_caller_sees_nothing_under_star_and_its_tenants_under_its_app_grant(
    hosted: HostedClient, scenario: Scenario
) -> None:
    # Issue 9 §6: "*" means any signed-in user; a daemon's own token needs app:<client id>.
    client_id = "c11e0000-0000-4000-8000-00000000000c"
    daemon = Principal(BOB, roles=frozenset({"Reader"}), app_only=True, app_id=client_id)
    user = Principal(ALICE)
    star = parse_policy(json.dumps({"grants": [{"principal": "*", "tenants": "*"}]}))
    assert hosted(star).get("/api/tenants", headers=principal_header(daemon)).json() == {
        "value": [],
        "nextLink": None,
    }
    assert len(hosted(star).get("/api/tenants", headers=principal_header(user)).json()["value"])
    granted = parse_policy(
        json.dumps({"grants": [{"principal": f"app:{client_id}", "tenants": [TENANT_B]}]})
    )
    listed = hosted(granted).get("/api/tenants", headers=principal_header(daemon)).json()
    assert [t["tenantId"] for t in listed["value"]] == [TENANT_B]
    hidden = hosted(granted).get(f"/api/tenants/{TENANT_A}/diff", headers=principal_header(daemon))
    assert hidden.status_code == 404
