"""Property: no page, link, title, option, total or asset reveals a tenant outside the grant.

For random policies and callers (tenant:self included), the HTML of every dashboard page the
caller can reach holds no id or display name of a tenant it may not see, and every URL of a
hidden tenant answers byte for byte like the same URL of a tenant that does not exist.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from auditor.core.access import Principal, parse_policy
from tests.api.conftest import HostedClient, TestClient, principal_header
from tests.api.scenario import DAY1, DAY2, DAY3, TENANT_A, TENANT_B, TENANT_C, Scenario
from tests.api.test_access_properties import ALICE, BOB, EXISTING, GROUP

COOKIE = {"csrftoken": "fixed-token-so-no-response-sets-a-new-one"}

selectors = st.sampled_from(["*", ALICE, BOB, "role:Auditor", "role:operator", f"group:{GROUP}"])
tenant_lists = st.one_of(
    st.just("*"),
    st.lists(st.sampled_from([*EXISTING, "tenant:self"]), unique=True, max_size=3),
)
policies = st.lists(
    st.fixed_dictionaries({"principal": selectors, "tenants": tenant_lists}), max_size=4
).map(lambda grants: {"grants": grants})
principals = st.builds(
    Principal,
    object_id=st.sampled_from([ALICE, BOB]),
    roles=st.frozensets(st.sampled_from(["Auditor", "operator", "Other"]), max_size=2),
    groups=st.frozensets(st.just(GROUP), max_size=1),
    auth_type=st.just("aad"),
    home_tenant=st.sampled_from([None, *EXISTING, "f0000000-0000-4000-8000-00000000000f"]),
)
GLOBAL_PAGES = ("/", "/act", "/operations", "/?sort=status&order=desc", "/?status=failed")


def tenant_pages(tenant: str) -> list[str]:
    return [
        f"/tenants/{tenant}",
        f"/tenants/{tenant}?days=7",
        f"/tenants/{tenant}?standard=PCI-DSS-4&control=1.1",
        f"/tenants/{tenant}/changes",
        f"/tenants/{tenant}/changes?from={DAY1}&to={DAY3}&change=regressed",
        f"/tenants/{tenant}/changes?from={DAY2}",
        f"/tenants/{tenant}/changes.csv?from={DAY1}&to={DAY3}",
        f"/tenants/{tenant}/evidence",
        f"/tenants/{tenant}/evidence/20261127T020000Z-abc.xlsx",
    ]


def names(scenario: Scenario) -> dict[str, str]:
    return {e.tenant_id: e.tenant_name for e in (scenario.a[0], scenario.b, scenario.c)}


def _answer(client: TestClient, path: str, headers: dict[str, str]) -> tuple[Any, ...]:
    response = client.get(path, headers=headers, follow_redirects=False)
    return response.status_code, sorted(response.headers.multi_items()), response.content


PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(policy=policies, caller=principals)
def test_no_page_names_a_tenant_outside_the_grant(
    hosted: HostedClient, scenario: Scenario, policy: dict[str, Any], caller: Principal
) -> None:
    rules = parse_policy(json.dumps(policy))
    client = hosted(rules)
    client.cookies.update(COOKIE)
    headers = principal_header(caller)
    visible = [t for t in EXISTING if rules.allowed(caller, t)]
    hidden = [t for t in EXISTING if t not in visible]
    assume(hidden)
    pages = [*GLOBAL_PAGES, *(p for t in visible for p in tenant_pages(t))]
    for path in pages:
        response = client.get(path, headers=headers)
        text = response.text + json.dumps(sorted(response.headers.multi_items()))
        for tenant in hidden:
            assert tenant not in text.lower(), (path, tenant)
            assert names(scenario)[tenant] not in text, (path, tenant)
    portfolio = client.get("/", headers=headers).text
    for tenant in visible:
        assert f"/tenants/{tenant}" in portfolio
    assert f"{len(visible)} of {len(visible)} tenants shown" in portfolio
    # Where to act names every visible tenant (ranked, or not ranked for want of
    # recommendations in its latest snapshot) and, above, no hidden one.
    act = client.get("/act", headers=headers).text
    for tenant in visible:
        assert f"/tenants/{tenant}" in act


@PROPERTY
@given(policy=policies, caller=principals, data=st.data())
def test_a_hidden_tenants_pages_answer_exactly_like_an_unknown_tenants(
    hosted: HostedClient,
    scenario: Scenario,
    policy: dict[str, Any],
    caller: Principal,
    data: st.DataObject,
) -> None:
    rules = parse_policy(json.dumps(policy))
    hidden = [t for t in EXISTING if not rules.allowed(caller, t)]
    assume(hidden)
    tenant = data.draw(st.sampled_from(hidden))
    nowhere = str(uuid.UUID(int=data.draw(st.integers(0, 2**122)) | 0x7 << 124))
    assume(not rules.allowed(caller, nowhere))
    client = hosted(rules)
    client.cookies.update(COOKIE)
    headers = principal_header(caller)
    spelled = data.draw(st.sampled_from([tenant, tenant.upper()]))
    for mine, other in zip(tenant_pages(spelled), tenant_pages(nowhere), strict=True):
        assert _answer(client, mine, headers) == _answer(client, other, headers), mine
    posted = [
        client.post(
            f"/tenants/{t}/evidence",
            data={"csrftoken": "x"},
            headers=headers,
            follow_redirects=False,
        )
        for t in (spelled, nowhere)
    ]
    assert (posted[0].status_code, posted[0].content) == (
        posted[1].status_code,
        posted[1].content,
    )


def test_a_tenant_self_user_sees_their_home_tenant_alone(
    hosted: HostedClient, scenario: Scenario
) -> None:
    rules = parse_policy(json.dumps({"grants": [{"principal": "*", "tenants": ["tenant:self"]}]}))
    customer = Principal(object_id=ALICE, auth_type="aad", home_tenant=TENANT_B)
    page = hosted(rules).get("/", headers=principal_header(customer)).text
    assert "1 of 1 tenants shown" in page
    assert f"/tenants/{TENANT_B}" in page
    assert TENANT_A not in page and TENANT_C not in page
    app_only = Principal(object_id=BOB, app_only=True, app_id=ALICE, home_tenant=TENANT_B)
    page = hosted(rules).get("/", headers=principal_header(app_only)).text
    assert "0 of 0 tenants shown" in page
