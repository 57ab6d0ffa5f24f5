"""Resource Graph engine without HTTP: paging contract, skip tokens, scope, forbidden tenants."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tools.azure_sim.arg import ArgError, ResourceGraph
from tools.azure_sim.estate import T_COMPLIANCE, T_STANDARD, T_SUBSCRIPTION, Estate

COMPLIANCE_Q = f"securityresources | where type == '{T_COMPLIANCE}'"


def q(graph: ResourceGraph, body: dict[str, Any], day: int = 0, **kw: Any) -> dict[str, Any]:
    text, _ = graph.query(body, day=day, **kw)
    result: dict[str, Any] = json.loads(text)
    return result


def page_all(
    graph: ResourceGraph, body: dict[str, Any], day: int = 0, **kw: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    pages: list[dict[str, Any]] = []
    body = json.loads(json.dumps(body))
    while True:
        page = q(graph, body, day, **kw)
        pages.append(page)
        rows += page["data"]
        token = page.get("$skipToken")
        if not token:
            return rows, pages
        body.setdefault("options", {})["$skipToken"] = token


@pytest.fixture(scope="module")
def graph(tiny: Estate) -> ResourceGraph:
    return ResourceGraph(tiny)


def test_pages_are_at_most_1000_and_cover_ground_truth(graph: ResourceGraph, tiny: Estate) -> None:
    rows, pages = page_all(graph, {"query": COMPLIANCE_Q, "options": {"$top": 5000}})
    truth = [r for r in tiny.rows("securityresources", 0) if r["type"] == T_COMPLIANCE]
    assert len(truth) > 5000
    assert rows == truth
    assert all(p["count"] == len(p["data"]) <= 1000 for p in pages)
    assert all(p["totalRecords"] == len(truth) for p in pages)
    # ARG answers "false" even while a $skipToken is present: drive paging by the token
    assert all(p["resultTruncated"] == "false" for p in pages)
    assert all("$skipToken" in p for p in pages[:-1]) and "$skipToken" not in pages[-1]
    assert pages[0]["facets"] == []


def test_default_page_size_and_top_and_skip(graph: ResourceGraph, tiny: Estate) -> None:
    first = q(graph, {"query": COMPLIANCE_Q})
    assert first["count"] == 1000
    small = q(graph, {"query": COMPLIANCE_Q, "options": {"$top": 7, "$skip": 3}})
    ids = [r["id"] for r in tiny.rows("securityresources", 0) if r["type"] == T_COMPLIANCE]
    assert [r["id"] for r in small["data"]] == ids[3:10]
    nxt = q(
        graph, {"query": COMPLIANCE_Q, "options": {"$top": 7, "$skipToken": small["$skipToken"]}}
    )
    assert [r["id"] for r in nxt["data"]] == ids[10:17]
    with pytest.raises(ArgError):
        q(graph, {"query": COMPLIANCE_Q, "options": {"$top": 0}})
    with pytest.raises(ArgError):
        q(graph, {"query": COMPLIANCE_Q, "options": {"$skip": -1}})


def test_skip_token_is_bound_to_query_and_scope(graph: ResourceGraph, tiny: Estate) -> None:
    first = q(graph, {"query": COMPLIANCE_Q})
    token = first["$skipToken"]
    sid = tiny.subscriptions(0)[0].sid
    for body in (
        {"query": COMPLIANCE_Q + " | project id", "options": {"$skipToken": token}},
        {"query": COMPLIANCE_Q, "subscriptions": [sid], "options": {"$skipToken": token}},
        {"query": COMPLIANCE_Q, "options": {"$skipToken": "eyAibm8iOiAibHVjayIgfQ=="}},
        {"query": COMPLIANCE_Q, "options": {"$skipToken": token[:-4] + "AAAA"}},
    ):
        with pytest.raises(ArgError) as err:
            q(graph, body)
        assert err.value.status == 400
        assert err.value.body["error"]["details"][0]["code"] == "CouldNotDecodeSkipToken"


def test_paging_keeps_its_day_when_the_day_changes(graph: ResourceGraph) -> None:
    body: dict[str, Any] = {"query": COMPLIANCE_Q + " | project id, properties"}
    day0, _ = page_all(graph, body, day=0)
    first = q(graph, body, day=0)
    rest, _ = page_all(graph, body | {"options": {"$skipToken": first["$skipToken"]}}, day=5)
    assert first["data"] + rest == day0
    day5, _ = page_all(graph, body, day=5)
    assert day5 != day0


def test_scope_by_subscriptions(graph: ResourceGraph, tiny: Estate) -> None:
    subs = [s.sid for s in tiny.subscriptions(0)]
    picked = [subs[0].upper(), subs[3], "00000000-0000-0000-0000-000000000000"]
    rows, _ = page_all(
        graph, {"query": COMPLIANCE_Q + " | project id, subscriptionId", "subscriptions": picked}
    )
    assert {r["subscriptionId"] for r in rows} == {subs[0], subs[3]}
    assert len(rows) == sum(tiny.type_count(s, 0, T_COMPLIANCE) for s in (subs[0], subs[3]))
    # a subscription whose delegation was removed (day 1) is out of scope
    gone = tiny.removed_sub
    page = q(graph, {"query": "resourcecontainers", "subscriptions": [gone]}, day=1)
    assert page["totalRecords"] == 0
    page = q(graph, {"query": "resourcecontainers", "subscriptions": [gone]}, day=0)
    assert page["totalRecords"] > 0
    # management group = tenant root group (tenant id)
    tid = tiny.tenant_list[0].tenant_id
    page = q(
        graph,
        {
            "query": f"resourcecontainers | where type == '{T_SUBSCRIPTION}'",
            "managementGroups": [tid],
        },
    )
    assert {r["tenantId"] for r in page["data"]} == {tid}


def test_forbidden_tenant(graph: ResourceGraph, tiny: Estate) -> None:
    bad = tiny.tenant_list[1].tenant_id
    bad_sub = next(s.sid for s in tiny.subscriptions(0) if s.tenant.tenant_id == bad)
    forbidden = frozenset({bad})
    with pytest.raises(ArgError) as err:
        q(graph, {"query": COMPLIANCE_Q, "subscriptions": [bad_sub]}, forbidden_tenants=forbidden)
    assert err.value.status == 403
    assert err.value.body["error"]["code"] == "AuthorizationFailed"
    # discovery without a subscription list still sees the tenant
    page = q(
        graph,
        {"query": f"resourcecontainers | where type == '{T_SUBSCRIPTION}'"},
        forbidden_tenants=forbidden,
    )
    assert bad in {r["tenantId"] for r in page["data"]}
    # but its security data is not served
    page = q(
        graph,
        {"query": f"securityresources | where type == '{T_STANDARD}'"},
        forbidden_tenants=forbidden,
    )
    assert page["data"] and bad not in {r["tenantId"] for r in page["data"]}


def test_without_id_the_result_is_truncated_not_paged(graph: ResourceGraph) -> None:
    page = q(graph, {"query": COMPLIANCE_Q + " | project name, properties"})
    assert page["count"] == 1000 and page["totalRecords"] > 1000
    assert page["resultTruncated"] == "true"
    assert "$skipToken" not in page


def test_table_format(graph: ResourceGraph, tiny: Estate) -> None:
    body = {
        "query": f"resourcecontainers | where type == '{T_SUBSCRIPTION}' | project id, properties",
        "options": {"resultFormat": "table"},
    }
    page = q(graph, body)
    assert page["data"]["columns"] == [
        {"name": "id", "type": "string"},
        {"name": "properties", "type": "object"},
    ]
    assert [r[0] for r in page["data"]["rows"]] == [
        f"/subscriptions/{s.sid}" for s in tiny.subscriptions(0)
    ]
    # api-version 2019-04-01 defaults to the table format
    old = q(graph, {"query": "resourcecontainers"}, api_version="2019-04-01")
    assert "columns" in old["data"]


def test_bad_bodies(graph: ResourceGraph) -> None:
    bodies: tuple[Any, ...] = (
        {},
        {"query": 5},
        [],
        {"query": "resourcecontainers", "subscriptions": "x"},
        {"query": "resourcecontainers", "options": {"resultFormat": "csv"}},
    )
    for body in bodies:
        with pytest.raises(ArgError) as err:
            q(graph, body)
        assert err.value.status == 400


def test_byte_identical_responses(tiny: Estate) -> None:
    a, b = ResourceGraph(tiny), ResourceGraph(Estate("tiny", 1))
    body = {"query": COMPLIANCE_Q, "options": {"$top": 50}}
    ta, _ = a.query(body, day=2)
    tb, _ = b.query(body, day=2)
    assert ta == tb
