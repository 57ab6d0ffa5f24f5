"""`/api/docs`: the API reference, served by the app with its own assets; the OpenAPI document's
servers and security schemes; docs/api.md's route list is the app's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Route

from auditor.api import create_app
from auditor.api.hosting import public_base_url
from auditor.core.access import AccessPolicy, Principal
from auditor.services.history import SnapshotHistory
from tests.api.conftest import HostedClient, TestClient, principal_header
from tests.api.helpers import problem

REPO = Path(__file__).resolve().parents[2]
# The report routes are mounted; nothing here calls their service.
NO_SERVICE = SimpleNamespace(service=None)


class Links(HTMLParser):
    """Every URL a page makes the browser fetch or follow, and its scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts += 1
        for name, value in attrs:
            if name in ("href", "src", "srcset", "action", "data") and value:
                self.urls.append(value)
            if name.startswith("on") or name == "style":
                raise AssertionError(f"inline {name} on <{tag}>")


def test_the_reference_is_served_by_the_app_with_its_stylesheet_and_nothing_from_outside(
    local_client: TestClient,
) -> None:
    page = local_client.get("/api/docs")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "style-src 'self'" in csp
    assert "script-src" not in csp and "unsafe" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    links = Links()
    links.feed(page.text)
    assert links.scripts == 0
    for url in links.urls:
        assert url.startswith(("#", "/api/", "openapi.json")), url
        if url.startswith("/"):
            assert local_client.get(url).status_code == 200, url
    assert "/api/docs/style.css" in links.urls
    css = local_client.get("/api/docs/style.css")
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert "url(" not in css.text and "@import" not in css.text


def test_the_reference_lists_every_operation_and_schema_of_the_openapi_document(
    local_client: TestClient,
) -> None:
    document = local_client.get("/api/openapi.json").json()
    page = local_client.get("/api/docs").text
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert f"{method.upper()}</span> <code>{path}</code>" in page, (method, path)
            for parameter in operation.get("parameters", []):
                assert f"<code>{parameter['name']}</code>" in page
    for name in document["components"]["schemas"]:
        assert f">{name}</h3>" in page, name


def test_text_of_the_document_is_escaped_in_the_page(history: SnapshotHistory) -> None:
    app = create_app(history, AccessPolicy.allow_all(), local_principal="local-dev")
    app.description = 'Hostile <script>alert(1)</script> "quoted" `code`'
    app.openapi_schema = None
    page = TestClient(app).get("/api/docs").text
    assert "<script>" not in page
    assert (
        "Hostile &lt;script&gt;alert(1)&lt;/script&gt; &quot;quoted&quot; <code>code</code>" in page
    )


def test_in_azure_the_reference_needs_a_signed_in_caller_like_the_tenant_routes(
    hosted: HostedClient,
) -> None:
    client = hosted(AccessPolicy.deny_all())
    for url in ("/api/docs", "/api/docs/style.css"):
        assert problem(client.get(url), 401)["type"] == "urn:auditor:problem:unauthenticated"
    caller = principal_header(Principal(object_id="11111111-1111-4111-8111-111111111111"))
    assert client.get("/api/docs", headers=caller).status_code == 200


def test_the_document_names_its_server_and_security_schemes_required_in_azure(
    history: SnapshotHistory, hosted: HostedClient, local_client: TestClient
) -> None:
    hosted_doc = hosted(AccessPolicy.deny_all()).get("/api/openapi.json").json()
    schemes = hosted_doc["components"]["securitySchemes"]
    assert schemes["entraId"] == {**schemes["entraId"], "type": "http", "scheme": "bearer"}
    assert schemes["functionKey"]["in"] == "header"
    assert schemes["functionKey"]["name"] == "x-functions-key"
    assert {"entraId", "functionKey"} == set(hosted_doc["security"][0])
    assert hosted_doc["servers"] == [
        {"url": "/", "description": hosted_doc["servers"][0]["description"]}
    ]
    # Local mode has no authentication: its document requires none, and names the bound address.
    served = create_app(history, AccessPolicy.allow_all(), local_principal="local-dev",
                        local_base_url="http://127.0.0.1:7071")  # fmt: skip
    local_doc = TestClient(served, base_url="http://127.0.0.1:7071").get("/api/openapi.json").json()
    assert "security" not in local_doc
    assert local_doc["servers"][0]["url"] == "http://127.0.0.1:7071"
    assert public_base_url({"WEBSITE_HOSTNAME": "auditor-api.azurewebsites.net"}) == (
        "https://auditor-api.azurewebsites.net"
    )
    assert public_base_url({}) is None


def _routes(routes: list[Any]) -> Iterator[tuple[str, str]]:
    for route in routes:
        if isinstance(route, APIRoute):
            if route.include_in_schema:
                yield from ((method, route.path) for method in route.methods)
        elif isinstance(route, Route):
            yield from ((m, route.path) for m in route.methods or () if m != "HEAD")
        elif hasattr(route, "original_router"):  # FastAPI's included routers
            yield from _routes(route.original_router.routes)


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    return set(_routes(app.routes))


def test_docs_api_md_lists_every_route_of_the_app(history: SnapshotHistory) -> None:
    # Every optional router on: evidence packs and the operators' runs and status (issue 14).
    extra = {"reports": NO_SERVICE, "operations": NO_SERVICE, "runs": NO_SERVICE}
    app = create_app(history, AccessPolicy.allow_all(), extra=extra)
    text = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    table = text.split("## Endpoints", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(GET|POST|PUT|PATCH|DELETE) (/api/[^`]*)`", table, re.M))
    routes = app_routes(app)
    assert ("POST", "/api/tenants/{tenantId}/reports") in routes
    assert ("GET", "/api/runs/{slot}") in routes
    assert listed == routes
