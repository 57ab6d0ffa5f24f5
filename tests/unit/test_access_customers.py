"""Customers signing in (AUDITOR_MANAGING_TENANT_ID set): a principal of any tenant but the
managing one sees its own tenant through a ``*`` grant naming ``tenant:self``, and nothing
else a policy says reaches it — not ``*`` tenants, named tenants, roles, groups, object ids,
client ids or operators. The managing tenant's principals are judged exactly as without it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.core.access import ANY, SELF_TENANT, AccessPolicy, Principal, parse_policy

MANAGING = "aa000000-0000-4000-8000-0000000000aa"
CUSTOMER = "cc000000-0000-4000-8000-0000000000cc"
OTHER = "dd000000-0000-4000-8000-0000000000dd"
ALICE = "a11ce000-0000-4000-8000-000000000001"
BOB = "b0b00000-0000-4000-8000-000000000002"
GROUP = "60000000-0000-4000-8000-000000000006"
CLIENT = "c1000000-0000-4000-8000-0000000000c1"

selectors = st.sampled_from(
    [ANY, ALICE, BOB, "role:Auditor", "role:operator", f"group:{GROUP}", f"app:{CLIENT}"]
)
tenant_lists = st.one_of(
    st.just(ANY),
    st.lists(st.sampled_from([MANAGING, CUSTOMER, OTHER, SELF_TENANT]), unique=True, max_size=3),
)
policies = st.fixed_dictionaries(
    {
        "grants": st.lists(
            st.fixed_dictionaries({"principal": selectors, "tenants": tenant_lists}), max_size=4
        ),
        "operators": st.lists(selectors, unique=True, max_size=2),
    }
)


def principals(home_tenants: st.SearchStrategy[str | None]) -> st.SearchStrategy[Principal]:
    """Any caller a token may describe: roles, groups, object and client ids all drawn from
    what the policies name, so a foreign caller claims every right a managing one could."""
    return st.builds(
        Principal,
        object_id=st.sampled_from([ALICE, BOB]),
        roles=st.frozensets(st.sampled_from(["Auditor", "operator", "Other"]), max_size=3),
        groups=st.frozensets(st.just(GROUP), max_size=1),
        auth_type=st.just("aad"),
        app_only=st.booleans(),
        app_id=st.sampled_from([None, CLIENT]),
        home_tenant=home_tenants,
    )


def with_managing(document: dict[str, Any]) -> AccessPolicy:
    return dataclasses.replace(parse_policy(json.dumps(document)), managing_tenant=MANAGING)


def self_granted(document: dict[str, Any]) -> bool:
    return any(
        g["principal"] == ANY and g["tenants"] != ANY and SELF_TENANT in g["tenants"]
        for g in document["grants"]
    )


@settings(max_examples=400, deadline=None)
@given(document=policies, caller=principals(st.sampled_from([CUSTOMER, OTHER])))
def test_a_foreign_principal_sees_its_own_tenant_through_tenant_self_alone(
    document: dict[str, Any], caller: Principal
) -> None:
    policy = with_managing(document)
    expected = {caller.home_tenant} if self_granted(document) and not caller.app_only else set()
    scope = policy.scope_of(caller)
    assert not scope.everything
    assert scope.tenants == expected
    assert {t for t in (MANAGING, CUSTOMER, OTHER) if policy.allowed(caller, t)} == expected
    assert not policy.is_operator(caller)


@settings(max_examples=200, deadline=None)
@given(document=policies, caller=principals(st.just(None)))
def test_a_principal_without_a_home_tenant_gets_nothing_once_customers_sign_in(
    document: dict[str, Any], caller: Principal
) -> None:
    policy = with_managing(document)
    assert policy.scope_of(caller) == policy.scope_of(None)
    assert not policy.is_operator(caller)


@settings(max_examples=300, deadline=None)
@given(document=policies, caller=principals(st.just(MANAGING)))
def test_the_managing_tenants_principals_are_judged_as_without_customers(
    document: dict[str, Any], caller: Principal
) -> None:
    before = parse_policy(json.dumps(document))
    after = with_managing(document)
    assert after.scope_of(caller) == before.scope_of(caller)
    assert after.is_operator(caller) == before.is_operator(caller)


@settings(max_examples=200, deadline=None)
@given(
    document=policies,
    caller=principals(st.sampled_from([None, MANAGING, CUSTOMER, OTHER])),
)
def test_without_a_managing_tenant_nobody_is_a_customer(
    document: dict[str, Any], caller: Principal
) -> None:
    policy = parse_policy(json.dumps(document))
    assert policy.managing_tenant is None
    assert not policy.is_customer(caller)


def test_a_customer_with_every_role_group_and_id_of_the_operators_sees_only_its_tenant() -> None:
    policy = with_managing(
        {
            "grants": [
                {"principal": ANY, "tenants": ANY},
                {"principal": "role:operator", "tenants": [OTHER]},
                {"principal": f"group:{GROUP}", "tenants": [MANAGING]},
                {"principal": ALICE, "tenants": [OTHER, SELF_TENANT]},
                {"principal": ANY, "tenants": [SELF_TENANT, OTHER]},
            ],
            "operators": ["role:operator", ALICE],
        }
    )
    customer = Principal(
        ALICE, roles=frozenset({"operator"}), groups=frozenset({GROUP}), home_tenant=CUSTOMER
    )
    assert policy.scope_of(customer).tenants == {CUSTOMER}
    assert not policy.scope_of(customer).everything
    assert not policy.is_operator(customer)
    colleague = dataclasses.replace(customer, home_tenant=MANAGING)
    assert policy.scope_of(colleague).everything and policy.is_operator(colleague)
