"""Access policy and caller identity: deny by default, grant exactly what the policy says."""

from __future__ import annotations

import base64
import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditor.core.access import (
    AccessPolicy,
    PolicyError,
    Principal,
    encode_client_principal,
    parse_client_principal,
    parse_policy,
)
from auditor.settings import SettingsError, load_settings

T1 = "11111111-1111-1111-1111-111111111111"
T2 = "22222222-2222-2222-2222-222222222222"
T3 = "33333333-3333-3333-3333-333333333333"
ALICE = "aaaaaaaa-0000-0000-0000-00000000000a"
BOB = "bbbbbbbb-0000-0000-0000-00000000000b"
GROUP = "99999999-0000-0000-0000-000000000009"
CLIENT = "c11e0000-0000-4000-8000-00000000000c"


def policy(*grants: tuple[str, object]) -> AccessPolicy:
    return parse_policy(json.dumps({"grants": [{"principal": p, "tenants": t} for p, t in grants]}))


def test_an_object_id_grant_lets_that_principal_see_exactly_the_listed_tenants() -> None:
    rules = policy((ALICE, [T1, T2]))
    alice = Principal(ALICE)
    assert rules.allowed(alice, T1)
    assert rules.allowed(alice, T2)
    assert not rules.allowed(alice, T3)
    assert not rules.allowed(Principal(BOB), T1)


def test_role_and_group_grants_match_the_callers_roles_and_groups() -> None:
    rules = policy(("role:Auditor", [T1]), (f"group:{GROUP.upper()}", [T2]))
    assert rules.allowed(Principal(BOB, roles=frozenset({"Auditor"})), T1)
    assert not rules.allowed(Principal(BOB, roles=frozenset({"auditor"})), T1)
    assert rules.allowed(Principal(BOB, groups=frozenset({GROUP})), T2)
    assert not rules.allowed(Principal(BOB, groups=frozenset({GROUP})), T1)


def test_star_principal_is_any_authenticated_caller_and_star_tenants_is_every_tenant() -> None:
    rules = policy(("*", [T1]), (ALICE, "*"))
    assert rules.allowed(Principal(BOB), T1)
    assert not rules.allowed(Principal(BOB), T2)
    assert rules.allowed(Principal(ALICE), T3)
    assert not rules.allowed(None, T1)


def test_grants_add_up_and_tenant_ids_compare_case_insensitively() -> None:
    rules = policy((ALICE, [T1.upper()]), ("role:Auditor", [T2]))
    caller = Principal(ALICE.upper().lower(), roles=frozenset({"Auditor"}))
    assert rules.allowed(caller, T1)
    assert rules.allowed(caller, T2.upper())
    assert rules.scope_of(caller).tenants == frozenset({T1, T2})


def test_an_empty_policy_and_deny_all_deny_everything() -> None:
    for rules in (policy(), AccessPolicy.deny_all()):
        assert not rules.allowed(Principal(ALICE), T1)


def test_allow_all_lets_any_authenticated_caller_see_any_tenant_but_not_anonymous() -> None:
    rules = AccessPolicy.allow_all()
    assert rules.allowed(Principal("local-dev"), T1)
    assert not rules.allowed(None, T1)


def test_a_malformed_tenant_id_is_never_allowed_even_under_star() -> None:
    rules = AccessPolicy.allow_all()
    assert not rules.allowed(Principal(ALICE), "not-a-guid")
    assert not rules.allowed(Principal(ALICE), "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"grants": {}}', "grants: must be a list"),
        ('{"grants": [], "extra": 1}', "unknown key 'extra'"),
        ('{"grants": [1]}', "grants[0]: must be an object"),
        ('{"grants": [{"principal": "*"}]}', "grants[0]: missing 'tenants'"),
        ('{"grants": [{"tenants": "*"}]}', "grants[0]: missing 'principal'"),
        ('{"grants": [{"principal": "*", "tenants": "*", "x": 1}]}', "grants[0]: unknown key 'x'"),
        ('{"grants": [{"principal": 7, "tenants": "*"}]}', "grants[0].principal: must be a string"),
        ('{"grants": [{"principal": "group:abc", "tenants": "*"}]}', "grants[0].principal"),
        ('{"grants": [{"principal": "role:", "tenants": "*"}]}', "grants[0].principal"),
        ('{"grants": [{"principal": "a b", "tenants": "*"}]}', "grants[0].principal"),
        ('{"grants": [{"principal": "*", "tenants": "all"}]}', "grants[0].tenants"),
        (
            '{"grants": [{"principal": "*", "tenants": ["' + T1 + '", "x"]}]}',
            "grants[0].tenants[1]: 'x' is not a tenant id",
        ),
    ],
)
def test_a_bad_policy_is_rejected_naming_where_the_problem_is(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_policy(text)


def test_a_bad_policy_stops_the_settings_at_start_naming_the_setting() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"AUDITOR_ACCESS_POLICY": '{"grants": [{"principal": "*"}]}'})
    assert caught.value.name == "AUDITOR_ACCESS_POLICY"
    assert "grants[0]: missing 'tenants'" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_good_policy_passes_the_settings() -> None:
    text = json.dumps({"grants": [{"principal": "*", "tenants": [T1]}]})
    assert load_settings({"AUDITOR_ACCESS_POLICY": text}).access_policy_json == text


def _header(document: object) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def test_the_client_principal_header_gives_object_id_roles_and_groups() -> None:
    header = _header(
        {
            "auth_typ": "aad",
            "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
            "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
            "claims": [
                {
                    "typ": "http://schemas.microsoft.com/identity/claims/objectidentifier",
                    "val": ALICE.upper(),
                },
                {"typ": "roles", "val": "Auditor"},
                {
                    "typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
                    "val": "Reader",
                },
                {"typ": "groups", "val": GROUP},
                {"typ": "name", "val": "alice@example.com"},
                {"typ": "http://schemas.microsoft.com/identity/claims/scope", "val": "read"},
                {"typ": "azp", "val": CLIENT.upper()},
            ],
        }
    )
    assert parse_client_principal(header) == Principal(
        object_id=ALICE,
        roles=frozenset({"Auditor", "Reader"}),
        groups=frozenset({GROUP}),
        auth_type="aad",
        app_only=False,
        app_id=CLIENT,
    )


def _principal(*claims: tuple[str, str]) -> Principal:
    document = {"claims": [{"typ": "oid", "val": BOB}] + [{"typ": t, "val": v} for t, v in claims]}
    principal = parse_client_principal(_header(document))
    assert principal is not None
    return principal


@pytest.mark.parametrize(
    ("claims", "app_only"),
    [
        # The optional idtyp claim says it outright (access token claims reference).
        ((("idtyp", "app"), ("appid", CLIENT)), True),
        ((("idtyp", "app"), ("scp", "read"), ("azp", CLIENT)), True),
        ((("idtyp", "user"), ("scp", "read")), False),
        # Without idtyp: delegated scopes (scp) exist only in tokens issued for a user.
        ((("roles", "Auditor"), ("azp", CLIENT)), True),
        ((("http://schemas.microsoft.com/identity/claims/scope", "read"),), False),
        ((("scp", "read"), ("azp", CLIENT)), False),
        # A dashboard sign-in session: the ID token's claims (no scp, no client named, sign-in
        # claims only user tokens carry).
        ((("nonce", "n-1"), ("preferred_username", "alice@example.com"), ("tid", T1)), False),
        ((("name", "Alice"),), False),
        # Access tokens always name their client: without scp that is an application.
        ((("azp", CLIENT), ("name", "Alice")), True),
        ((("appid", CLIENT), ("nonce", "n-1")), True),
        ((("roles", "Auditor"),), True),
    ],
)
def test_an_app_only_token_is_told_from_a_user_token(
    claims: tuple[tuple[str, str], ...], app_only: bool
) -> None:
    assert _principal(*claims).app_only is app_only


def test_an_app_only_caller_is_admitted_only_by_its_app_grant() -> None:
    # Issue 9 §6: "*" admitted a daemon's token (no user) like any signed-in user.
    daemon = _principal(("idtyp", "app"), ("azp", CLIENT), ("roles", "Auditor"))
    assert daemon.app_id == CLIENT
    everyone = parse_policy(
        json.dumps(
            {
                "grants": [
                    {"principal": "*", "tenants": "*"},
                    {"principal": BOB, "tenants": [T1]},
                    {"principal": "role:Auditor", "tenants": [T1]},
                ]
            }
        )
    )
    assert not everyone.allowed(daemon, T1)
    granted = parse_policy(
        json.dumps({"grants": [{"principal": f"app:{CLIENT.upper()}", "tenants": [T2]}]})
    )
    assert granted.allowed(daemon, T2) and not granted.allowed(daemon, T1)
    # The app grant admits the application alone, never a user signed in through it.
    user = _principal(("scp", "read"), ("azp", CLIENT))
    assert not granted.allowed(user, T2)
    assert everyone.allowed(user, T1)


def test_an_app_grant_must_name_a_client_id() -> None:
    with pytest.raises(PolicyError, match=r"grants\[0\]\.principal: 'app:x' must be 'app:'"):
        parse_policy(json.dumps({"grants": [{"principal": "app:x", "tenants": "*"}]}))


def test_encode_and_parse_of_a_client_principal_round_trip() -> None:
    caller = Principal(
        ALICE, roles=frozenset({"Auditor"}), groups=frozenset({GROUP}), auth_type="aad"
    )
    assert parse_client_principal(encode_client_principal(caller)) == caller


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "not base64!",
        base64.b64encode(b"not json").decode(),
        _header([]),
        _header({"claims": "x"}),
        _header({"claims": [1]}),
        _header({"claims": []}),
        _header({"claims": [{"typ": "oid", "val": "not-a-guid"}]}),
        _header({"claims": [{"typ": "oid", "val": ALICE}, {"typ": "oid", "val": BOB}]}),
        "A" * 70_000,
    ],
)
def test_an_absent_or_malformed_client_principal_is_nobody(header: str | None) -> None:
    assert parse_client_principal(header) is None


tenant_ids = st.sampled_from([T1, T2, T3])
selectors = st.one_of(
    st.just("*"),
    st.sampled_from([ALICE, BOB]),
    st.sampled_from(["role:Auditor", "role:Reader"]),
    st.just(f"group:{GROUP}"),
)
grants = st.lists(
    st.fixed_dictionaries(
        {
            "principal": selectors,
            "tenants": st.one_of(st.just("*"), st.lists(tenant_ids, unique=True, max_size=3)),
        }
    ),
    max_size=4,
)
principals = st.builds(
    Principal,
    object_id=st.sampled_from([ALICE, BOB]),
    roles=st.frozensets(st.sampled_from(["Auditor", "Reader", "Other"]), max_size=2),
    groups=st.frozensets(st.just(GROUP), max_size=1),
)


def _reference(grant_list: list[dict[str, object]], caller: Principal, tenant: str) -> bool:
    """The policy's meaning, spelled out independently of the implementation."""
    for grant in grant_list:
        who = str(grant["principal"])
        matches = (
            who == "*"
            or who == caller.object_id
            or (who.startswith("role:") and who[5:] in caller.roles)
            or (who.startswith("group:") and who[6:] in caller.groups)
        )
        tenants = grant["tenants"]
        if matches and (tenants == "*" or (isinstance(tenants, list) and tenant in tenants)):
            return True
    return False


@given(grant_list=grants, caller=principals, tenant=tenant_ids)
def test_allowed_is_exactly_the_policys_meaning(
    grant_list: list[dict[str, object]], caller: Principal, tenant: str
) -> None:
    rules = parse_policy(json.dumps({"grants": grant_list}))
    assert rules.allowed(caller, tenant) is _reference(grant_list, caller, tenant)
    assert (tenant in rules.scope_of(caller)) is _reference(grant_list, caller, tenant)


@given(grant_list=grants, tenant=tenant_ids)
def test_nobody_unauthenticated_is_ever_allowed(
    grant_list: list[dict[str, object]], tenant: str
) -> None:
    assert not parse_policy(json.dumps({"grants": grant_list})).allowed(None, tenant)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40) | st.sampled_from(["*", T1]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["principal", "tenants", "grants", "x"]), inner, max_size=3
        )
    ),
    max_leaves=12,
)


@given(document=json_values | st.fixed_dictionaries({"grants": json_values}), text=st.text())
def test_parsing_anything_gives_a_policy_or_a_policy_error_and_nothing_else(
    document: object, text: str
) -> None:
    for candidate in (json.dumps(document), text):
        with contextlib.suppress(PolicyError):
            parse_policy(candidate)


@given(header=st.text(max_size=300))
def test_parsing_any_header_never_raises(header: str) -> None:
    parse_client_principal(header)
