"""The simulator's hostile modes serve exactly what docs/simulator.md says (raw HTTP, no product).

Each mode rewrites the honest answer: these tests read the bytes on the wire, so that the
collector's tests (tests/integration/test_hostile_control_plane.py) can rely on them.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tools.azure_sim.estate import T_COMPLIANCE
from tools.azure_sim.hostile import HOSTILE_TEXT
from tools.azure_sim.launcher import Simulator

ARG_URL = "/providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01"
METADATA_URL = "/providers/Microsoft.Security/assessmentMetadata?api-version=2021-06-01"
COMPLIANCE_Q = (
    f"securityresources | where type == '{T_COMPLIANCE}' | project id, name, type, properties"
)
DISCOVERY_Q = "resourcecontainers | where type == 'microsoft.resources/subscriptions' | project id"


@pytest.fixture(scope="module")
def raw(sim: Simulator) -> Iterator[httpx.Client]:
    context = ssl.create_default_context(cafile=sim.ca_bundle)
    with httpx.Client(base_url=sim.base_url, verify=context, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def bearer(sim: Simulator, raw: httpx.Client) -> dict[str, str]:
    answer = raw.get(
        "/msi/token",
        params={"api-version": "2019-08-01", "resource": sim.base_url},
        headers={"X-IDENTITY-HEADER": sim.identity_header},
    )
    return {"Authorization": "Bearer " + answer.json()["access_token"]}


@pytest.fixture(autouse=True)
def _clean(sim: Simulator) -> Iterator[None]:
    sim.clear_faults()
    sim.set_quota(None)
    sim.reset_stats()
    yield
    sim.clear_faults()


def arg(raw: httpx.Client, bearer: dict[str, str], query: str, token: Any = None) -> httpx.Response:
    options: dict[str, Any] = {"resultFormat": "objectArray"}
    if token is not None:
        options["$skipToken"] = token
    return raw.post(ARG_URL, json={"query": query, "options": options}, headers=bearer)


def test_hostile_keys_merge_validate_and_clear_like_the_other_faults(sim: Simulator) -> None:
    faults = sim.set_faults({"skip_token": "endless", "http_5xx": 1})
    assert (faults["skip_token"], faults["http_5xx"]) == ("endless", 1)
    faults = sim.set_faults({"hostile_names": True})
    assert faults["skip_token"] == "endless" and faults["hostile_names"] is True
    faults = sim.set_faults({"skip_token": None})
    assert faults["skip_token"] is None and faults["hostile_names"] is True
    for bad in (
        {"skip_token": "forever"},
        {"next_link": {"mode": "foreign"}},
        {"oversized_page": {"bytes": 0}},
        {"rest_ops": ["nope"]},
    ):
        with pytest.raises(RuntimeError, match="400"):
            sim.set_faults(bad)
    assert sim.clear_faults()["hostile_names"] is False


def test_foreign_next_link_points_every_rest_page_at_the_given_origin(
    sim: Simulator, raw: httpx.Client, bearer: dict[str, str]
) -> None:
    sim.set_faults({"next_link": {"mode": "foreign", "base": "https://127.0.0.1:9"}})
    for url in (METADATA_URL, "/tenants?api-version=2022-12-01"):
        page = raw.get(url, headers=bearer).json()
        assert page["nextLink"].startswith("https://127.0.0.1:9/")
        assert page["value"]  # real items beside the link


def test_a_self_next_link_names_the_page_it_is_on(
    sim: Simulator, raw: httpx.Client, bearer: dict[str, str]
) -> None:
    sim.set_faults({"next_link": {"mode": "self"}})
    first = sim.base_url + METADATA_URL
    assert raw.get(first, headers=bearer).json()["nextLink"] == first


def test_a_looping_next_link_leads_back_to_the_first_page(
    sim: Simulator, raw: httpx.Client, bearer: dict[str, str]
) -> None:
    sim.set_faults({"next_link": {"mode": "loop"}})
    first = raw.get(METADATA_URL, headers=bearer).json()
    page = first
    for _ in range(10):  # 202 items at 50 a page: the real list ends on page 5
        page = raw.get(page["nextLink"], headers=bearer).json()
        if page["value"] == first["value"]:
            break
    assert page["value"] == first["value"] and page["nextLink"]


def test_endless_skip_token_hands_out_a_new_token_with_real_rows_every_page(
    sim: Simulator, raw: httpx.Client, bearer: dict[str, str]
) -> None:
    sim.set_faults({"skip_token": "endless"})
    tokens, ids, token = [], set(), None
    for _ in range(5):
        page = arg(raw, bearer, COMPLIANCE_Q, token).json()
        assert len(page["data"]) == 1000
        ids.update(row["id"] for row in page["data"])
        token = page["$skipToken"]
        tokens.append(token)
    assert len(set(tokens)) == 5
    assert len(ids) == 5000  # every page brings rows never seen before
    assert "$skipToken" not in arg(raw, bearer, DISCOVERY_Q).json()  # discovery untouched


def test_repeat_skip_token_hands_out_the_same_token_forever(
    sim: Simulator, raw: httpx.Client, bearer: dict[str, str]
) -> None:
    sim.set_faults({"skip_token": "repeat"})
    first = arg(raw, bearer, COMPLIANCE_Q).json()["$skipToken"]
    assert arg(raw, bearer, COMPLIANCE_Q, first).json()["$skipToken"] == first


@pytest.mark.parametrize("chunked", [False, True])
def test_an_oversized_page_is_valid_json_of_the_size_asked(
    sim: Simulator, raw: httpx.Client, bearer: dict[str, str], chunked: bool
) -> None:
    size = 3 * (1 << 20)
    sim.set_faults({"oversized_page": {"bytes": size, "chunked": chunked}})
    answer = arg(raw, bearer, COMPLIANCE_Q)
    assert len(answer.content) == size
    assert ("content-length" in answer.headers) is not chunked
    page = json.loads(answer.content)
    assert len(page["data"][0]["properties"]["description"]) > size - 1_000_000


@pytest.mark.parametrize(
    ("shape", "check"),
    [
        ("data_null", lambda page: page["data"] is None),
        ("data_object", lambda page: isinstance(page["data"], dict)),
        ("data_missing", lambda page: "data" not in page),
        ("rows_not_objects", lambda page: page["data"][:3] == [None, "a row", 7]),
        ("token_not_string", lambda page: page["$skipToken"] == 12345),
    ],
)
def test_malformed_resource_graph_shapes(
    sim: Simulator, raw: httpx.Client, bearer: dict[str, str], shape: str, check: Any
) -> None:
    sim.set_faults({"malformed_page": shape})
    assert check(arg(raw, bearer, COMPLIANCE_Q).json())


def test_deeply_nested_and_non_json_pages(
    sim: Simulator, raw: httpx.Client, bearer: dict[str, str]
) -> None:
    sim.set_faults({"malformed_page": "deep_nesting"})
    assert b"[" * 100_000 in arg(raw, bearer, COMPLIANCE_Q).content
    sim.set_faults({"malformed_page": "rest_not_json"})
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw.get(METADATA_URL, headers=bearer).content)


def test_overflowing_numbers_are_written_literally(
    sim: Simulator, raw: httpx.Client, bearer: dict[str, str]
) -> None:
    sim.set_faults({"overflow_numbers": True})
    text = arg(raw, bearer, COMPLIANCE_Q).text
    assert text.count('"passedResources": 1e309') == 1
    assert sim.stats()["hostile_served"]["overflow_numbers"] == 1


@pytest.mark.parametrize("kind", ["conflicting", "identical"])
def test_duplicate_ids_repeat_the_first_compliance_row(
    sim: Simulator, raw: httpx.Client, bearer: dict[str, str], kind: str
) -> None:
    sim.set_faults({"duplicate_ids": kind})
    rows = arg(raw, bearer, COMPLIANCE_Q).json()["data"]
    first, twin = rows[0], rows[-1]
    assert twin["id"] == first["id"] and len(rows) == 1001
    same_state = twin["properties"]["state"] == first["properties"]["state"]
    assert same_state is (kind == "identical")


def test_hostile_names_reach_display_names_and_descriptions(
    sim: Simulator, raw: httpx.Client, bearer: dict[str, str]
) -> None:
    sim.set_faults({"hostile_names": True})
    subs = arg(raw, bearer, "resourcecontainers | project id, name, subscriptionId").json()
    assert any(r["name"].startswith(HOSTILE_TEXT) for r in subs["data"])
    rows = arg(raw, bearer, COMPLIANCE_Q).json()["data"]
    assert all(r["properties"]["description"].startswith(HOSTILE_TEXT) for r in rows)
    tenants = raw.get("/tenants?api-version=2022-12-01", headers=bearer).json()["value"]
    assert all(t["displayName"].startswith(HOSTILE_TEXT) for t in tenants)
    assert "\x1b[" in HOSTILE_TEXT and "\x00" in HOSTILE_TEXT and HOSTILE_TEXT.startswith("=")


@pytest.mark.parametrize(("mode", "status"), [("5xx", 503), ("drop", None)])
def test_failing_discovery_fails_only_discovery_queries(
    sim: Simulator, raw: httpx.Client, bearer: dict[str, str], mode: str, status: int | None
) -> None:
    sim.set_faults({"fail_discovery": mode})
    if status is None:
        with pytest.raises(httpx.RemoteProtocolError):
            arg(raw, bearer, DISCOVERY_Q)
    else:
        answer = arg(raw, bearer, DISCOVERY_Q)
        assert answer.status_code == status and answer.headers["Retry-After"] == "0"
    assert arg(raw, bearer, COMPLIANCE_Q).status_code == 200


def test_redirect_answers_307_to_the_other_origin(
    sim: Simulator, raw: httpx.Client, bearer: dict[str, str]
) -> None:
    sim.set_faults({"redirect": "https://127.0.0.1:9"})
    answer = raw.get(METADATA_URL, headers=bearer)
    assert answer.status_code == 307
    assert answer.headers["Location"] == "https://127.0.0.1:9" + METADATA_URL


def test_slow_rest_only_leaves_resource_graph_alone(sim: Simulator) -> None:
    faults = sim.set_faults({"slow_rest_ms": 250, "rest_ops": ["jitNetworkAccessPolicies"]})
    assert faults["slow_rest_ms"] == 250 and faults["slow_ms"] == 0
    assert faults["rest_ops"] == ["jitNetworkAccessPolicies"]
