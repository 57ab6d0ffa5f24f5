"""The FastAPI application: the auditor's public HTTP contract.

``create_app`` composes the routers named in ``ROUTERS`` (module ``auditor.api.routes_<name>``,
each exposing ``router``), the problem+json error handlers and the audit middleware. To add
endpoints (e.g. evidence-pack reports), write ``routes_<name>.py`` and add its name here;
services it needs go in ``create_app(extra={...})`` and are read from ``ApiContext.extra``.

Hosting: ``function_app.py`` serves the app on two HTTP functions (Azure: the function key for
/api, App Service Authentication's principal header for everything); ``python -m auditor
serve`` runs it with uvicorn in local mode (loopback only, one fixed principal).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import AzureError
from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response

from auditor import __version__
from auditor.api import problems
from auditor.api.audit import AuditMiddleware
from auditor.api.context import ApiContext
from auditor.api.guard import (
    ApiThroughKeyedFunction,
    BodyLimit,
    LoopbackHostOnly,
    require_json_for_changes,
)
from auditor.api.params import WORDS, reject_unknown_query
from auditor.api.problems import Problem
from auditor.core.access import AccessPolicy, Principal
from auditor.core.snapshot import SnapshotReader
from auditor.services.history import SnapshotHistory

# Order is the order of the OpenAPI document.
ROUTERS: tuple[str, ...] = (
    "tenants", "diff", "coverage", "alerts", "ranking", "trend", "health", "docs"
)  # fmt: skip

OPENAPI_URL = "/api/openapi.json"
LOCAL_PRINCIPAL = "local-dev"

DESCRIPTION = """\
Per-tenant Defender for Cloud regulatory compliance history of Lighthouse-delegated tenants:
what changed between two daily snapshots, coverage, and trends.

**Access.** In Azure every request needs the function key (`x-functions-key` header or `code`
parameter, security schemes `functionKey` / `functionKeyQuery`) and an Entra ID bearer token,
validated by App Service Authentication (scheme `entraId`); the access policy
(`AUDITOR_ACCESS_POLICY`) grants tenants to principals, roles and groups. A tenant outside the
caller's grant answers exactly like a tenant that does not exist (404).

**Errors** are RFC 9457 `application/problem+json`; a 400 names the parameter at fault.

**Caching.** Responses carry a strong `ETag`; send it back in `If-None-Match` for a 304.

**CSV.** Where a route returns a table, `format=csv` (or `Accept: text/csv`) answers the rows of
`value` as CSV.
"""


async def _on_storage_error(_: Request, exc: Exception) -> Response:
    problems.log.warning("snapshot store unavailable: %s", type(exc).__name__)
    return problems.problem_response(
        problems.ApiProblem(
            503,
            problems.UNAVAILABLE,
            "The snapshot store could not be read; retry later.",
            headers={"Retry-After": "5"},
        )
    )


SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "entraId": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An Entra ID access token for the API's app registration (user or "
        "application), validated by App Service Authentication in front of the app, which "
        "hands the app the caller's identity. Requests without one are refused with 401.",
    },
    "functionKey": {
        "type": "apiKey",
        "in": "header",
        "name": "x-functions-key",
        "description": "The Function App's function key, checked by the Functions host "
        "(preferred over the query parameter: links never carry it).",
    },
    "functionKeyQuery": {
        "type": "apiKey",
        "in": "query",
        "name": "code",
        "description": "The function key as a query parameter, for clients that cannot set "
        "headers.",
    },
}
# In Azure both are needed: the key and a signed-in caller.
SECURITY: list[dict[str, list[str]]] = [
    {"entraId": [], "functionKey": []},
    {"entraId": [], "functionKeyQuery": []},
]


def _servers(app: FastAPI) -> list[dict[str, str]]:
    base = app.state.link_base or app.state.public_base
    if base:
        return [{"url": base, "description": "This deployment."}]
    return [{"url": "/", "description": "The host that serves this document."}]


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document with our error contract (no 422: validation is a 400 problem), the
    servers it is answered on and its security schemes (required in Azure; local mode has no
    authentication, so its document requires none)."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        servers=_servers(app),
    )
    document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    if not app.state.context.local:
        document["security"] = SECURITY
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path in document.get("paths", {}).values():
        for operation in path.values():
            operation.get("responses", {}).pop("422", None)
    app.openapi_schema = document
    return document


def create_app(
    reader: SnapshotReader | SnapshotHistory,
    policy: AccessPolicy,
    *,
    local_principal: str | None = None,
    extra: Mapping[str, Any] | None = None,
    trust_principal_header: bool = True,
    local_base_url: str | None = None,
    public_base_url: str | None = None,
    dashboard: bool = True,
    snapshot_schedule: str | None = None,
    keyed_function: str | None = None,
    web_secret: str | None = None,
) -> FastAPI:
    """The API over `reader` (wrapped in a caching SnapshotHistory unless it is one).

    `local_principal` switches on local mode: every request comes from that principal and the
    principal header is ignored. Without it (Azure) the caller is the one App Service
    Authentication names, and a request without one is 401. `trust_principal_header=False`
    ignores that header (App Service Authentication off: a client could have forged it), so
    every request is 401. `local_base_url` (``serve``: the bound address, e.g.
    ``http://127.0.0.1:7071``) makes the app answer only loopback Host headers and build its
    links from that address (auditor/api/guard.py). `public_base_url` (Azure: the app's
    ``https://`` host name) is the server the OpenAPI document names. `dashboard` mounts the
    web dashboard at ``/`` (auditor/web); `snapshot_schedule` lets it tell stale tenants.
    `keyed_function` (Azure: the HTTP function that needs the function key) answers paths
    under /api only when they came through that function (auditor/api/guard.py).
    `web_secret` signs the dashboard's CSRF tokens (AUDITOR_WEB_SECRET: the same on every
    instance); without it the app makes one of its own.
    """
    history = reader if isinstance(reader, SnapshotHistory) else SnapshotHistory(reader)
    local = Principal(object_id=local_principal, auth_type="local") if local_principal else None
    app = FastAPI(
        title="Lighthouse compliance auditor API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=OPENAPI_URL,
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.router.redirect_slashes = False
    app.state.link_base = local_base_url.rstrip("/") if local_base_url else None
    app.state.public_base = public_base_url.rstrip("/") if public_base_url else None
    app.state.context = ApiContext(
        history=history, policy=policy, local_principal=local, extra=dict(extra or {})
    )
    problems.install(app, WORDS)
    app.add_exception_handler(AzureError, _on_storage_error)
    checks = [Depends(reject_unknown_query), Depends(require_json_for_changes)]
    for name in ROUTERS:
        module = importlib.import_module(f"auditor.api.routes_{name}")
        app.include_router(module.router, dependencies=checks)
    if "reports" in app.state.context.extra:
        # Evidence packs need the evidence container and report queue (hosting passes them).
        from auditor.api import routes_reports

        app.include_router(routes_reports.router, dependencies=checks)
    if "runs" in app.state.context.extra:
        # Runs, digests and status need the runs table (hosting passes it).
        from auditor.api import routes_runs

        app.include_router(routes_runs.router, dependencies=checks)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    if dashboard:
        from auditor import web

        web.install(
            app,
            sign_in_redirect=local is None and trust_principal_header,
            secure_cookies=local is None,
            snapshot_schedule=snapshot_schedule,
            secret=web_secret,
        )
    # Outermost last: the audit record covers every answer, the guards' refusals included.
    app.add_middleware(BodyLimit)
    if local_base_url:
        app.add_middleware(LoopbackHostOnly)
    if keyed_function is not None:
        app.add_middleware(ApiThroughKeyedFunction, function=keyed_function)
    app.add_middleware(
        AuditMiddleware, local_principal=local, trust_principal_header=trust_principal_header
    )
    return app
