"""Property: once customers sign in (the policy knows the managing tenant), a user of another
tenant sees on the dashboard its own tenant through ``tenant:self`` and nothing more, whatever
roles, groups, object id or client id its token carries; Operations never opens to it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.core.access import SELF_TENANT, Principal, parse_policy
from tests.api.conftest import HostedClient, principal_header
from tests.api.scenario import TENANT_A, TENANT_B, TENANT_C, Scenario
from tests.api.test_access_properties import ALICE, BOB, EXISTING, GROUP
from tests.web.test_isolation_properties import COOKIE, names

MANAGING = "aa000000-0000-4000-8000-0000000000aa"
CLIENT = "c1000000-0000-4000-8000-0000000000c1"
UNKNOWN = "e0000000-0000-4000-8000-00000000000e"

selectors = st.sampled_from(
    ["*", ALICE, BOB, "role:Auditor", "role:operator", f"group:{GROUP}", f"app:{CLIENT}"]
)
tenant_lists = st.one_of(
    st.just("*"),
    st.lists(st.sampled_from([*EXISTING, SELF_TENANT]), unique=True, max_size=3),
)
policies = st.fixed_dictionaries(
    {
        "grants": st.lists(
            st.fixed_dictionaries({"principal": selectors, "tenants": tenant_lists}), max_size=4
        ),
        "operators": st.lists(selectors, unique=True, max_size=2),
    }
)
customers = st.builds(
    Principal,
    object_id=st.sampled_from([ALICE, BOB]),
    roles=st.frozensets(st.sampled_from(["Auditor", "operator", "Other"]), max_size=3),
    groups=st.frozensets(st.just(GROUP), max_size=1),
    auth_type=st.just("aad"),
    app_only=st.booleans(),
    app_id=st.sampled_from([None, CLIENT]),
    home_tenant=st.sampled_from([*EXISTING, "f0000000-0000-4000-8000-00000000000f"]),
)


def self_granted(document: dict[str, Any]) -> bool:
    return any(
        g["principal"] == "*" and g["tenants"] != "*" and SELF_TENANT in g["tenants"]
        for g in document["grants"]
    )


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=policies, caller=customers)
def test_a_customer_sees_exactly_its_own_tenant_through_tenant_self_and_no_operations(
    hosted: HostedClient, scenario: Scenario, document: dict[str, Any], caller: Principal
) -> None:
    rules = dataclasses.replace(parse_policy(json.dumps(document)), managing_tenant=MANAGING)
    client = hosted(rules)
    client.cookies.update(COOKIE)
    headers = principal_header(caller)
    mine = caller.home_tenant if self_granted(document) and not caller.app_only else None
    visible = [t for t in EXISTING if t == mine]
    portfolio = client.get("/", headers=headers)
    assert portfolio.status_code == 200
    assert f"{len(visible)} of {len(visible)} tenants shown" in portfolio.text
    for tenant in EXISTING:
        shown = tenant in visible
        assert (f"/tenants/{tenant}" in portfolio.text) == shown, tenant
        assert (names(scenario)[tenant] in portfolio.text) == shown, tenant
        assert (client.get(f"/tenants/{tenant}", headers=headers).status_code == 200) == shown
    operations = client.get("/operations", headers=headers)
    unknown = client.get(f"/tenants/{UNKNOWN}", headers=headers)
    assert operations.status_code == 404
    assert operations.content == unknown.content
    assert "/operations" not in portfolio.text


def test_a_managing_tenant_operator_keeps_every_tenant_and_operations(
    hosted: HostedClient, scenario: Scenario
) -> None:
    document = {
        "grants": [{"principal": "role:operator", "tenants": "*"},
                   {"principal": "*", "tenants": [SELF_TENANT]}],
        "operators": ["role:operator"],
    }  # fmt: skip
    rules = dataclasses.replace(parse_policy(json.dumps(document)), managing_tenant=MANAGING)
    client = hosted(rules)
    staff = Principal(ALICE, roles=frozenset({"operator"}), auth_type="aad", home_tenant=MANAGING)
    page = client.get("/", headers=principal_header(staff)).text
    assert all(f"/tenants/{t}" in page for t in (TENANT_A, TENANT_B, TENANT_C))
    assert "/operations" in page
    customer = dataclasses.replace(staff, home_tenant=TENANT_B)
    page = client.get("/", headers=principal_header(customer)).text
    assert "1 of 1 tenants shown" in page and f"/tenants/{TENANT_B}" in page
    assert "/operations" not in page
