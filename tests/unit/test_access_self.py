"""tenant:self grants: a signed-in user of a delegated tenant sees that tenant alone."""

from __future__ import annotations

import json

import pytest

from auditor.core.access import (
    PolicyError,
    Principal,
    encode_client_principal,
    parse_policy,
    read_client_principal,
)

HOME = "b0000000-0000-4000-8000-00000000000b"
OTHER = "a0000000-0000-4000-8000-00000000000a"
USER = "a11ce000-0000-4000-8000-000000000001"
SELF_POLICY = parse_policy(json.dumps({"grants": [{"principal": "*", "tenants": ["tenant:self"]}]}))


def test_tenant_self_grants_a_user_their_home_tenant_and_nothing_else() -> None:
    user = Principal(object_id=USER, home_tenant=HOME)
    assert SELF_POLICY.allowed(user, HOME)
    assert not SELF_POLICY.allowed(user, OTHER)
    assert SELF_POLICY.scope_of(user).tenants == frozenset({HOME})


def test_tenant_self_grants_nothing_to_an_app_or_a_caller_without_a_home_tenant() -> None:
    app = Principal(object_id=USER, app_only=True, app_id=OTHER, home_tenant=HOME)
    assert not SELF_POLICY.allowed(app, HOME)
    assert SELF_POLICY.scope_of(Principal(object_id=USER)).tenants == frozenset()


def test_the_home_tenant_comes_from_the_tid_claim_of_the_principal_header() -> None:
    header = encode_client_principal(Principal(object_id=USER, home_tenant=HOME.upper()))
    caller = read_client_principal(header)
    assert caller is not None and caller.home_tenant == HOME


def test_tenant_self_sits_beside_tenant_ids_and_other_words_are_refused() -> None:
    policy = parse_policy(
        json.dumps({"grants": [{"principal": "*", "tenants": ["tenant:self", OTHER]}]})
    )
    user = Principal(object_id=USER, home_tenant=HOME)
    assert policy.scope_of(user).tenants == frozenset({HOME, OTHER})
    with pytest.raises(PolicyError, match=r"grants\[0\]\.tenants\[0\]: 'tenant:me'"):
        parse_policy(json.dumps({"grants": [{"principal": "*", "tenants": ["tenant:me"]}]}))
