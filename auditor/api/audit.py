"""Who is calling, and one audit record per request.

An ASGI middleware (not Starlette's BaseHTTPMiddleware: no extra task or body copy per request):

- it identifies the caller: in local mode the fixed local principal; in Azure the principal in
  ``X-MS-CLIENT-PRINCIPAL``, which App Service Authentication sets (and strips from what the
  client sent). A request without one has no caller: routes about tenants answer 401; one whose
  header is not a principal document (not base64 JSON, nested too deep) is marked malformed:
  those routes answer 400, and the request is still audited;
- when the response is done it logs one record on the ``auditor.audit`` logger: who (object id
  or ``anonymous``), which tenant, what (method, route template, query parameter names and
  snapshot parameters), the result (status) and the duration.

Never logged: the function key (``code`` parameter, ``x-functions-key`` header), the principal
header, any other header, filter values beyond names.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from auditor.api.context import CALLER_SCOPE_KEY, MALFORMED_CALLER_SCOPE_KEY
from auditor.api.params import FUNCTION_KEY_PARAMETER
from auditor.core.access import MalformedPrincipal, Principal, read_client_principal

audit_log = logging.getLogger("auditor.audit")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PRINCIPAL_HEADER = b"x-ms-client-principal"
# Parameters whose values say *what* was asked for and are safe to keep (ids, instants).
_LOGGED_VALUES = frozenset({"from", "to", "snapshot"})
_MAX_LOGGED = 64
STATIC_PREFIX = "/static/"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _what(scope: Scope) -> dict[str, Any]:
    route = scope.get("route")
    template = getattr(route, "path", None) or "(no route)"
    query = bytes(scope.get("query_string") or b"").decode("latin-1")
    names: list[str] = []
    values: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == FUNCTION_KEY_PARAMETER:
            continue
        if name not in names:
            names.append(name[:_MAX_LOGGED])
        if name in _LOGGED_VALUES:
            values[name] = value[:_MAX_LOGGED]
    return {"method": scope.get("method"), "route": template, "query": names, **values}


class AuditMiddleware:
    def __init__(
        self, app: ASGIApp, *, local_principal: Principal | None, trust_principal_header: bool
    ) -> None:
        self.app = app
        self.local_principal = local_principal
        self.trust_principal_header = trust_principal_header

    def identify(self, scope: Scope) -> Principal | None:
        """The caller; MalformedPrincipal when the trusted header is not a principal."""
        if self.local_principal is not None:
            return self.local_principal
        if not self.trust_principal_header:
            # Without App Service Authentication nothing strips a header the client forged.
            return None
        return read_client_principal(_header(scope, PRINCIPAL_HEADER))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            caller = self.identify(scope)
        except MalformedPrincipal as exc:
            caller = None
            scope[MALFORMED_CALLER_SCOPE_KEY] = str(exc)
        scope[CALLER_SCOPE_KEY] = caller
        status = 500

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            # The dashboard's own CSS and script hold no caller data: not a page view.
            if not str(scope.get("path", "")).startswith(STATIC_PREFIX):
                path_params = scope.get("path_params") or {}
                record = {
                    "event": "api.request",
                    "principal": caller.object_id if caller else "anonymous",
                    "authType": (caller.auth_type or "local") if caller else None,
                    # tenantId: the API's routes; tenant: the dashboard's pages.
                    "tenant": str(path_params.get("tenantId") or path_params.get("tenant") or "")[
                        :_MAX_LOGGED
                    ]
                    or None,
                    **_what(scope),
                    "status": status,
                    "durationMs": round((time.perf_counter() - started) * 1000, 1),
                    "invocationId": scope.get("azure_functions.invocation_id"),
                }
                audit_log.info(json.dumps(record, separators=(",", ":")), extra={"audit": record})
