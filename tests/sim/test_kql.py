"""The KQL subset: accepted forms, evaluation, and every rejected form -> ARG's InvalidQuery."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools.azure_sim.arg import ArgError, ResourceGraph
from tools.azure_sim.estate import (
    SCALAR_COLUMNS,
    T_COMPLIANCE,
    T_REG_ASSIGNMENT,
    T_SUBSCRIPTION,
    Estate,
)
from tools.azure_sim.kql import KqlError, Predicate, parse


def run(graph: ResourceGraph, query: str, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"query": query, "options": {"resultFormat": "objectArray"}}
    body.update(kw)
    text, _ = graph.query(body, day=0)
    result: dict[str, Any] = json.loads(text)
    return result


def all_rows(graph: ResourceGraph, query: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    token = None
    while True:
        opts: dict[str, Any] = {"resultFormat": "objectArray"}
        if token:
            opts["$skipToken"] = token
        text, _ = graph.query({"query": query, "options": opts}, day=0)
        page = json.loads(text)
        rows += page["data"]
        token = page.get("$skipToken")
        if not token:
            return rows


@pytest.fixture(scope="module")
def graph(tiny: Estate) -> ResourceGraph:
    return ResourceGraph(tiny)


# --- accepted forms ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "table", "preds", "project", "order"),
    [
        ("securityresources", "securityresources", [], None, ()),
        ("SecurityResources", "securityresources", [], None, ()),
        (
            "ResourceContainers | where type == 'x'",
            "resourcecontainers",
            [Predicate("type", "==", ("x",))],
            None,
            (),
        ),
        (
            'managedserviceresources | where type =~ "X"',
            "managedserviceresources",
            [Predicate("type", "=~", ("X",))],
            None,
            (),
        ),
        (
            "securityresources | where type in ('a', 'b') and name in~ ('C')",
            "securityresources",
            [Predicate("type", "in", ("a", "b")), Predicate("name", "in~", ("C",))],
            None,
            (),
        ),
        (
            "securityresources | where name != 'a' | where id !~ 'b'",
            "securityresources",
            [Predicate("name", "!=", ("a",)), Predicate("id", "!~", ("b",))],
            None,
            (),
        ),
        (
            "securityresources | where name !in ('a') and kind !in~ ('b')",
            "securityresources",
            [Predicate("name", "!in", ("a",)), Predicate("kind", "!in~", ("b",))],
            None,
            (),
        ),
        (
            "securityresources | project id, properties, tenantId",
            "securityresources",
            [],
            ("id", "properties", "tenantId"),
            (),
        ),
        (
            "securityresources | order by name asc, id desc",
            "securityresources",
            [],
            None,
            (("name", False), ("id", True)),
        ),
        ("securityresources | sort by name", "securityresources", [], None, (("name", True),)),
        (
            "securityresources | project id, name | order by name asc",
            "securityresources",
            [],
            ("id", "name"),
            (("name", False),),
        ),
        (
            "securityresources | where name == 'it\\'s'",
            "securityresources",
            [Predicate("name", "==", ("it's",))],
            None,
            (),
        ),
        (
            "\n  securityresources\n\t| where type == 'x'\n",
            "securityresources",
            [Predicate("type", "==", ("x",))],
            None,
            (),
        ),
    ],
)
def test_accepted_forms(
    text: str, table: str, preds: list[Predicate], project: Any, order: Any
) -> None:
    q = parse(text)
    assert q.table == table
    assert q.predicates == preds
    assert q.project == project
    assert q.order == order


# --- rejected forms ----------------------------------------------------------------------------

REJECTED_PARSER = [
    "securityresources | extend x = name",
    "securityresources | summarize count() by type",
    "securityresources | join kind=inner (resourcecontainers) on subscriptionId",
    "securityresources | where type == 'a' or type == 'b'",
    "securityresources | where name contains 'a'",
    "securityresources | where properties.state == 'Failed'",
    "securityresources | where tolower(name) == 'a'",
    "securityresources | where name == 5",
    "securityresources | take 5",
    "securityresources | limit 5",
    "securityresources | where name == 'unterminated",
    "securityresources | order name",
    "securityresources | where",
    "securityresources | where name ==",
    "securityresources | where name in 'a'",
    "securityresources | where name in ('a' 'b')",
    "securityresources | project id, id",
    "securityresources | project",
    "securityresources where name == 'a'",
    "securityresources | mv-expand x",
    "",
]
REJECTED_SEMANTIC = [
    ("resources | project id", "resources"),
    ("Resources", "Resources"),
    ("where type == 'a'", "Resources"),
    ("securityresources | where Name == 'a'", "Name"),
    ("securityresources | where properties == 'a'", "properties"),
    ("securityresources | order by properties", "properties"),
    ("securityresources | project id | where name == 'a'", "name"),
    ("securityresources | project id | order by name", "name"),
]


@pytest.mark.parametrize("text", REJECTED_PARSER)
def test_rejected_parser_failure(text: str, graph: ResourceGraph) -> None:
    with pytest.raises(KqlError) as info:
        parse(text)
    assert info.value.kind == "parser"
    with pytest.raises(ArgError) as err:
        graph.query({"query": text}, day=0)
    assert err.value.status == 400
    error = err.value.body["error"]
    assert error["code"] == "BadRequest"
    codes = [d["code"] for d in error["details"]]
    assert codes == ["InvalidQuery", "ParserFailure"]
    assert error["details"][0]["message"].startswith("Query is invalid.")


@pytest.mark.parametrize(("text", "named"), REJECTED_SEMANTIC)
def test_rejected_semantic_names_the_culprit(text: str, named: str, graph: ResourceGraph) -> None:
    with pytest.raises(ArgError) as err:
        graph.query({"query": text}, day=0)
    assert err.value.status == 400
    details = err.value.body["error"]["details"]
    assert details[0]["code"] == "InvalidQuery"
    assert f"'{named}'" in details[0]["message"]


# --- evaluation --------------------------------------------------------------------------------


def test_case_sensitivity_of_operators(graph: ResourceGraph) -> None:
    upper = "Microsoft.Resources/Subscriptions"
    assert run(graph, f"resourcecontainers | where type == '{upper}'")["totalRecords"] == 0
    n = run(graph, f"resourcecontainers | where type =~ '{upper}'")["totalRecords"]
    assert n == 6
    assert run(graph, f"resourcecontainers | where type in ('{upper}')")["totalRecords"] == 0
    assert run(graph, f"resourcecontainers | where type in~ ('{upper}')")["totalRecords"] == 6
    both = run(graph, f"resourcecontainers | where type !~ '{upper}'")["totalRecords"]
    total = run(graph, "resourcecontainers")["totalRecords"]
    assert both == total - 6
    assert run(graph, f"resourcecontainers | where type != '{upper}'")["totalRecords"] == total


def test_project_keeps_order_and_only_those_columns(graph: ResourceGraph) -> None:
    page = run(
        graph,
        f"resourcecontainers | where type == '{T_SUBSCRIPTION}' | project tenantId, id, properties",
    )
    assert page["data"]
    for row in page["data"]:
        assert list(row) == ["tenantId", "id", "properties"]
        assert row["properties"]["state"] == "Enabled"


def test_default_order_is_by_id(graph: ResourceGraph) -> None:
    ids = [r["id"] for r in all_rows(graph, "managedserviceresources | project id")]
    assert ids == sorted(ids)


def test_order_by_and_sort_by(graph: ResourceGraph, tiny: Estate) -> None:
    q = f"securityresources | where type == '{T_COMPLIANCE}' | project id, name"
    asc = all_rows(graph, q + " | order by name asc")
    assert [r["name"] for r in asc] == sorted(r["name"] for r in asc)
    desc = all_rows(graph, q + " | sort by name")  # KQL: descending by default
    assert [r["name"] for r in desc] == sorted((r["name"] for r in desc), reverse=True)
    # ties keep id order (stable): within one name, ids ascending
    first_name = asc[0]["name"]
    same = [r["id"] for r in asc if r["name"] == first_name]
    assert same == sorted(same)
    by_id_desc = all_rows(graph, q + " | order by id desc")
    assert [r["id"] for r in by_id_desc] == sorted((r["id"] for r in asc), reverse=True)
    multi = all_rows(
        graph, "resourcecontainers | project id, name, type | order by type asc, name desc"
    )
    keys = [(r["type"], r["name"]) for r in multi]
    assert keys == sorted(keys, key=lambda k: (k[0], [-ord(c) for c in k[1]]))


def test_where_on_subscription_and_tenant(graph: ResourceGraph, tiny: Estate) -> None:
    tenant = tiny.tenants(0)[1]
    tid = tenant["tenantId"]
    sids = [s["subscriptionId"] for s in tenant["subscriptions"]]
    page = run(
        graph,
        f"resourcecontainers | where type == '{T_SUBSCRIPTION}' and tenantId == "
        f"'{tid}' | project subscriptionId",
    )
    assert sorted(r["subscriptionId"] for r in page["data"]) == sorted(sids)
    one = run(
        graph,
        f"managedserviceresources | where subscriptionId in ('{sids[0]}') and type "
        f"== '{T_REG_ASSIGNMENT}'",
    )
    assert one["totalRecords"] == 1


# property: the engine's filter equals a plain Python filter over the ground-truth rows
_values = st.sampled_from(
    [
        T_SUBSCRIPTION,
        "microsoft.resources/subscriptions/resourcegroups",
        "MICROSOFT.RESOURCES/SUBSCRIPTIONS",
        "rg-app",
        "rg-data",
        "RG-WEB",
        "westeurope",
        "",
        "nothing",
    ]
)
_preds = st.builds(
    Predicate,
    st.sampled_from([c for c in SCALAR_COLUMNS if c not in ("subscriptionId", "tenantId")]),
    st.sampled_from(["==", "=~", "!=", "!~", "in", "in~", "!in", "!in~"]),
    st.lists(_values, min_size=1, max_size=3).map(tuple),
)


def _kql(p: Predicate) -> str:
    if p.op in ("==", "=~", "!=", "!~"):
        return f"{p.column} {p.op} '{p.values[0]}'"
    return f"{p.column} {p.op} (" + ", ".join(f"'{v}'" for v in p.values) + ")"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(preds=st.lists(_preds, min_size=1, max_size=3))
def test_filter_matches_reference(
    preds: list[Predicate], graph: ResourceGraph, tiny: Estate
) -> None:
    preds = [
        p if p.op not in ("==", "=~", "!=", "!~") else Predicate(p.column, p.op, p.values[:1])
        for p in preds
    ]
    q = "resourcecontainers | where " + " and ".join(_kql(p) for p in preds) + " | project id"
    got = [r["id"] for r in all_rows(graph, q)]
    want = [
        r["id"]
        for r in tiny.rows("resourcecontainers", 0)
        if all(p.matches(r[p.column]) for p in preds)
    ]
    assert got == want
