"""Integration: the real Azure SDK clients against the running simulator (one per module)."""

from __future__ import annotations

import http.client
import json
import os
import ssl
import time
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceResponseError,
)
from azure.identity import DefaultAzureCredential
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions
from azure.mgmt.security import SecurityCenter

from tools.azure_sim.estate import T_COMPLIANCE, T_SUBSCRIPTION, Estate
from tools.azure_sim.launcher import Simulator, start_simulator
from tools.azure_sim.server import Faults

COMPLIANCE_Q = (
    f"securityresources | where type == '{T_COMPLIANCE}' | project id, tenantId, subscriptionId, "
    "name, properties"
)
ARG_URL = "/providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01"


@pytest.fixture(scope="module")
def cred(sim_env: dict[str, str]) -> DefaultAzureCredential:
    return DefaultAzureCredential()


@pytest.fixture(scope="module")
def graph(sim: Simulator, cred: DefaultAzureCredential) -> ResourceGraphClient:
    return ResourceGraphClient(
        cred,
        base_url=sim.base_url,
        credential_scopes=[sim.base_url + "/.default"],
        retry_backoff_factor=0.01,
    )


@pytest.fixture(scope="module")
def raw(sim: Simulator) -> httpx.Client:
    return httpx.Client(
        base_url=sim.base_url, verify=ssl.create_default_context(cafile=sim.ca_bundle), timeout=30
    )


@pytest.fixture(scope="module")
def bearer(sim: Simulator, raw: httpx.Client) -> dict[str, str]:
    r = raw.get(
        "/msi/token",
        params={"api-version": "2019-08-01", "resource": sim.base_url},
        headers={"X-IDENTITY-HEADER": sim.identity_header},
    )
    assert r.status_code == 200
    return {"Authorization": "Bearer " + r.json()["access_token"]}


@pytest.fixture(autouse=True)
def _clean(sim: Simulator) -> Any:
    sim.clear_faults()
    sim.set_quota(None)
    sim.set_day(0)
    sim.reset_stats()
    yield
    sim.clear_faults()
    sim.set_quota(None)
    sim.set_day(0)


def sdk_page_all(client: ResourceGraphClient, query: str, **kw: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    token = None
    while True:
        resp = client.resources(
            QueryRequest(
                query=query,
                options=QueryRequestOptions(skip_token=token, result_format="objectArray"),
                **kw,
            )
        )
        rows += cast(list[dict[str, Any]], resp.data)
        token = resp.skip_token
        if not token:
            return rows


# --- process interface -------------------------------------------------------------------------


def test_ready_file_and_env(sim: Simulator) -> None:
    info = json.loads((sim.state_dir / "ready.json").read_text())
    assert info == sim.info
    assert info["base_url"] == f"https://127.0.0.1:{info['port']}"
    assert info["identity_endpoint"] == info["base_url"] + "/msi/token"
    assert Path(info["ca_bundle"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert info["pid"] == sim.pid
    env = sim.env()
    assert env == {
        "IDENTITY_ENDPOINT": sim.identity_endpoint,
        "IDENTITY_HEADER": sim.identity_header,
        "REQUESTS_CA_BUNDLE": sim.ca_bundle,
        "SSL_CERT_FILE": sim.ca_bundle,
        "AUDITOR_ARM_ENDPOINT": sim.base_url,
    }


def test_cli_options_and_clean_stop(tmp_path: Path) -> None:
    s = start_simulator(
        tmp_path,
        size="small",
        seed=9,
        day=2,
        quota="4/3",
        faults={"slow_ms": 1, "forbidden_tenants": ["ABC"]},
    )
    try:
        cfg = s.config()
        assert (cfg["size"], cfg["seed"], cfg["day"]) == ("small", 9, 2)
        assert cfg["quota"] == {"limit": 4, "window_s": 3.0}
        assert cfg["faults"]["slow_ms"] == 1 and cfg["faults"]["forbidden_tenants"] == ["abc"]
        assert len(s.estate(details=False)["tenants"]) == 10
    finally:
        s.stop()
    assert s.process.returncode == 0
    assert not (tmp_path / "ready.json").exists()
    with pytest.raises(OSError):
        http.client.HTTPSConnection(
            "127.0.0.1", s.port, timeout=2, context=ssl.create_default_context(cafile=s.ca_bundle)
        ).request("GET", "/")


# --- managed identity ----------------------------------------------------------------------------


def test_default_azure_credential_gets_a_token(
    sim: Simulator, cred: DefaultAzureCredential
) -> None:
    token = cred.get_token(sim.base_url + "/.default")
    assert token.token.count(".") == 2
    assert token.expires_on > time.time() + 3600
    assert sim.stats()["tokens_issued"] >= 1


def test_token_for_a_foreign_audience_is_refused(sim: Simulator, sim_env: dict[str, str]) -> None:
    with pytest.raises(ClientAuthenticationError):
        DefaultAzureCredential().get_token("https://management.azure.com/.default")


def test_msi_requires_the_identity_header(sim: Simulator, raw: httpx.Client) -> None:
    params = {"api-version": "2019-08-01", "resource": sim.base_url}
    assert raw.get("/msi/token", params=params).status_code == 401
    r = raw.get("/msi/token", params=params, headers={"X-IDENTITY-HEADER": "nope"})
    assert r.status_code == 401 and "message" in r.json()
    ok = raw.get(
        "/msi/token",
        params=params | {"resource": sim.base_url + "/"},
        headers={"X-IDENTITY-HEADER": sim.identity_header},
    )
    assert ok.status_code == 200
    body = ok.json()
    assert body["token_type"] == "Bearer" and int(body["expires_on"]) > time.time()


def test_arm_requires_a_token_of_this_server(sim: Simulator, raw: httpx.Client) -> None:
    body = {"query": "resourcecontainers"}
    for headers in ({}, {"Authorization": "Bearer abc.def.ghi"}, {"Authorization": "Basic x"}):
        r = raw.post(ARG_URL, json=body, headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "AuthenticationFailed"
    r = raw.get("/providers/Microsoft.Security/assessmentMetadata?api-version=2021-06-01")
    assert r.status_code == 401


def test_sdk_without_credential_scopes_asks_for_the_wrong_audience(
    sim: Simulator, cred: DefaultAzureCredential
) -> None:
    client = ResourceGraphClient(cred, base_url=sim.base_url)  # scope defaults to public cloud
    with pytest.raises(ClientAuthenticationError):
        client.resources(QueryRequest(query="resourcecontainers"))


# --- Resource Graph ------------------------------------------------------------------------------


def test_sdk_pages_by_skip_token_to_the_ground_truth(
    sim: Simulator, graph: ResourceGraphClient, tiny: Estate
) -> None:
    rows = sdk_page_all(graph, COMPLIANCE_Q)
    truth = [
        {k: r[k] for k in ("id", "tenantId", "subscriptionId", "name", "properties")}
        for r in tiny.rows("securityresources", 0)
        if r["type"] == T_COMPLIANCE
    ]
    assert len(truth) > 5000
    assert rows == truth
    stats = sim.stats()
    assert stats["arg_pages_served"] == stats["arg_queries"] == -(-len(truth) // 1000)
    assert stats["arg_rows_served"] == len(truth)


def test_sdk_scoped_to_a_tenant(graph: ResourceGraphClient, sim: Simulator) -> None:
    tenant = sim.estate()["tenants"][0]
    sids = [s["subscriptionId"] for s in tenant["subscriptions"]]
    rows = sdk_page_all(
        graph, f"resourcecontainers | where type == '{T_SUBSCRIPTION}'", subscriptions=sids
    )
    assert sorted(r["subscriptionId"] for r in rows) == sorted(sids)
    assert {r["tenantId"] for r in rows} == {tenant["tenantId"]}


def test_quota_headers_on_every_response(
    sim: Simulator, raw: httpx.Client, bearer: dict[str, str]
) -> None:
    sim.set_quota(15, 5)
    ok = raw.post(ARG_URL, json={"query": "resourcecontainers"}, headers=bearer)
    bad = raw.post(ARG_URL, json={"query": "resourcecontainers | extend x"}, headers=bearer)
    for r, remaining in ((ok, "14"), (bad, "13")):
        assert r.headers["x-ms-user-quota-remaining"] == remaining
        assert r.headers["x-ms-user-quota-resets-after"] == "00:00:05"
    assert bad.status_code == 400
    err = bad.json()["error"]
    assert err["code"] == "BadRequest"
    assert [d["code"] for d in err["details"]] == ["InvalidQuery", "ParserFailure"]


def test_quota_exceeded_gives_429_with_retry_after(
    sim: Simulator, raw: httpx.Client, bearer: dict[str, str]
) -> None:
    sim.set_quota(3, 60)
    statuses = [
        raw.post(ARG_URL, json={"query": "resourcecontainers"}, headers=bearer) for _ in range(5)
    ]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429]
    assert [r.headers["x-ms-user-quota-remaining"] for r in statuses] == ["2", "1", "0", "0", "0"]
    limited = statuses[3]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json()["error"]["code"] == "RateLimiting"
    stats = sim.stats()
    assert stats["arg_429"] == 2
    assert stats["arg_queries"] == 3  # a 429 does not consume quota
    sim.set_quota(None)
    assert (
        raw.post(ARG_URL, json={"query": "resourcecontainers"}, headers=bearer).status_code == 200
    )


def test_forbidden_tenant_403(
    sim: Simulator, graph: ResourceGraphClient, cred: DefaultAzureCredential
) -> None:
    truth = sim.estate()
    bad = truth["tenants"][1]
    bad_sub = bad["subscriptions"][0]["subscriptionId"]
    sim.set_faults({"forbidden_tenants": [bad["tenantId"]]})
    with pytest.raises(HttpResponseError) as err:
        graph.resources(QueryRequest(query=COMPLIANCE_Q, subscriptions=[bad_sub]))
    assert err.value.status_code == 403
    assert err.value.error is not None and err.value.error.code == "AuthorizationFailed"
    # discovery without a subscription list still works and shows the tenant
    rows = sdk_page_all(graph, f"resourcecontainers | where type == '{T_SUBSCRIPTION}'")
    assert bad["tenantId"] in {r["tenantId"] for r in rows}
    sc = SecurityCenter(
        cred, bad_sub, base_url=sim.base_url, credential_scopes=[sim.base_url + "/.default"]
    )
    with pytest.raises(HttpResponseError) as err2:
        list(sc.jit_network_access_policies.list())
    assert err2.value.status_code == 403
    stats = sim.stats()
    assert stats["arg_403"] == 1 and stats["rest_403"] == 1


def test_5xx_faults_alternate_and_the_sdk_retries(
    sim: Simulator, raw: httpx.Client, bearer: dict[str, str], graph: ResourceGraphClient
) -> None:
    sim.set_faults({"http_5xx": 2})
    r1 = raw.post(ARG_URL, json={"query": "resourcecontainers"}, headers=bearer)
    r2 = raw.post(ARG_URL, json={"query": "resourcecontainers"}, headers=bearer)
    assert (r1.status_code, r2.status_code) == (500, 503)
    assert r1.json()["error"]["code"] == "InternalServerError"
    assert r2.json()["error"]["code"] == "ServiceUnavailable"
    sim.set_faults({"http_5xx": 2})
    resp = graph.resources(QueryRequest(query="resourcecontainers"))
    assert resp.total_records > 0
    assert sim.stats()["arg_5xx"] == 4


def test_drop_closes_the_connection(
    sim: Simulator, bearer: dict[str, str], cred: DefaultAzureCredential
) -> None:
    sim.set_faults({"drop": 1})
    conn = http.client.HTTPSConnection(
        "127.0.0.1", sim.port, timeout=10, context=ssl.create_default_context(cafile=sim.ca_bundle)
    )
    conn.request(
        "POST",
        ARG_URL,
        body=json.dumps({"query": "resourcecontainers"}),
        headers=bearer | {"Content-Type": "application/json"},
    )
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        conn.getresponse()
    conn.close()
    # azure-core does not retry a POST whose connection dropped: ARG callers must treat
    # ServiceResponseError as transient themselves
    sim.set_faults({"drop": 1})
    graph_client = ResourceGraphClient(
        cred,
        base_url=sim.base_url,
        credential_scopes=[sim.base_url + "/.default"],
        retry_backoff_factor=0.01,
    )
    with pytest.raises(ServiceResponseError):
        graph_client.resources(QueryRequest(query="resourcecontainers"))
    # a GET through the SDK is retried after the dropped connection
    sub = sim.estate()["tenants"][0]["subscriptions"][0]["subscriptionId"]
    sim.set_faults({"drop": 1})
    sc = SecurityCenter(
        cred,
        sub,
        base_url=sim.base_url,
        credential_scopes=[sim.base_url + "/.default"],
        retry_backoff_factor=0.01,
    )
    assert list(sc.jit_network_access_policies.list())
    assert sim.stats()["dropped"] == 3


def test_slow_and_failing_queries(
    sim: Simulator, raw: httpx.Client, bearer: dict[str, str]
) -> None:
    sim.set_faults({"slow_ms": 300, "fail_queries_matching": "managedserviceresources"})
    t = time.perf_counter()
    assert (
        raw.post(ARG_URL, json={"query": "resourcecontainers"}, headers=bearer).status_code == 200
    )
    assert time.perf_counter() - t >= 0.3
    assert (
        raw.post(ARG_URL, json={"query": "managedserviceresources"}, headers=bearer).status_code
        == 500
    )
    merged = sim.set_faults({"drop": 0})  # merge keeps the others
    assert merged["slow_ms"] == 300
    assert sim.set_faults({}) == Faults().describe()  # every fault back to its default


# --- REST with nextLink --------------------------------------------------------------------------


def test_security_center_follows_next_links(
    sim: Simulator, cred: DefaultAzureCredential, tiny: Estate
) -> None:
    sub = tiny.subscriptions(0)[0].sid
    sc = SecurityCenter(
        cred, sub, base_url=sim.base_url, credential_scopes=[sim.base_url + "/.default"]
    )
    meta = list(sc.assessments_metadata.list())
    truth = tiny.assessment_metadata()
    assert [m.name for m in meta] == [m["name"] for m in truth]
    jit_key = "805651bc-6ecd-4c73-9b55-97a19d0582d4"
    assert next(m for m in meta if m.name == jit_key).severity == "High"
    policies = list(sc.jit_network_access_policies.list())
    assert [p.id for p in policies] == [p["id"] for p in tiny.jit_policies(sub, 0)]
    assert sorted(vm.id for p in policies for vm in p.virtual_machines) == sorted(
        vm["id"] for p in tiny.jit_policies(sub, 0) for vm in p["properties"]["virtualMachines"]
    )
    calls = sim.stats()["rest_calls"]
    assert calls["assessmentMetadata"] == -(-len(truth) // 50) > 1
    assert calls["jitNetworkAccessPolicies"] == -(-len(policies) // 2) > 1


def test_rest_unknown_or_removed_subscription_404(
    sim: Simulator, cred: DefaultAzureCredential, tiny: Estate
) -> None:
    for sub, day in (("00000000-0000-0000-0000-000000000001", 0), (tiny.removed_sub, 1)):
        sim.set_day(day)
        sc = SecurityCenter(
            cred, sub, base_url=sim.base_url, credential_scopes=[sim.base_url + "/.default"]
        )
        with pytest.raises(ResourceNotFoundError) as err:
            list(sc.jit_network_access_policies.list())
        assert err.value.error is not None and err.value.error.code == "SubscriptionNotFound"


def test_tenants_lists_home_and_delegating_tenants_with_names(
    sim: Simulator, raw: httpx.Client, bearer: dict[str, str], tiny: Estate
) -> None:
    answer = raw.get(f"{sim.base_url}/tenants?api-version=2022-12-01", headers=bearer)
    assert answer.status_code == 200
    listed = {t["tenantId"]: t for t in answer.json()["value"]}
    assert listed[tiny.managing_tenant_id]["tenantCategory"] == "Home"
    for tenant in tiny.tenants(0):
        assert listed[tenant["tenantId"]]["displayName"] == tenant["displayName"]
        assert listed[tenant["tenantId"]]["tenantCategory"] == "ProjectedBy"
    assert set(listed[tiny.managing_tenant_id]) >= {"id", "defaultDomain", "domains", "tenantType"}


# --- control API and days ------------------------------------------------------------------------


def test_control_api_needs_the_secret(sim: Simulator, raw: httpx.Client) -> None:
    assert raw.get("/_sim/stats").status_code == 403
    assert raw.get("/_sim/stats", headers={"X-Sim-Control": "x"}).status_code == 403
    r = raw.post("/_sim/day", json={"day": -1}, headers={"X-Sim-Control": sim.identity_header})
    assert r.status_code == 400


def test_day_switch_and_consistent_paging(
    sim: Simulator, raw: httpx.Client, bearer: dict[str, str], tiny: Estate
) -> None:
    q = {"query": COMPLIANCE_Q}
    first = raw.post(ARG_URL, json=q, headers=bearer).json()
    sim.set_day(1)
    assert sim.estate()["day"] == 1
    rest = []
    token = first["$skipToken"]
    while token:
        page = raw.post(ARG_URL, json=q | {"options": {"$skipToken": token}}, headers=bearer).json()
        rest += page["data"]
        token = page.get("$skipToken")
    day0 = [r["id"] for r in tiny.rows("securityresources", 0) if r["type"] == T_COMPLIANCE]
    assert [r["id"] for r in first["data"] + rest] == day0
    # a fresh query now sees day 1: the removed delegation is gone, the new one is there
    subs = raw.post(
        ARG_URL,
        json={
            "query": f"resourcecontainers | where type == "
            f"'{T_SUBSCRIPTION}' | project id, subscriptionId"
        },
        headers=bearer,
    ).json()["data"]
    sids = {r["subscriptionId"] for r in subs}
    drift = sim.estate()["drift"]["sinceDay0"]
    assert drift["subscriptionsAdded"][0]["subscriptionId"] in sids
    assert drift["subscriptionsRemoved"][0]["subscriptionId"] not in sids


def test_estate_summary_over_http_matches_estate(sim: Simulator, tiny: Estate) -> None:
    remote = sim.estate(day=2)
    local = tiny.summary(2)
    remote.pop("clientId")
    assert remote == json.loads(json.dumps(local))
    assert os.path.basename(sim.state_dir) != ""
