"""The API app's two HTTP functions over one ASGI app: the API with its function key, the
dashboard's pages without one.

- ``api`` (route ``api/{*route}``, ``AuthLevel.FUNCTION``): every path under ``/api``. The
  Functions host checks the key before the app runs, as it always did.
- ``pages`` (route ``{*route}``, ``AuthLevel.ANONYMOUS``): everything else — the dashboard's
  pages and static assets. A person signs in through App Service Authentication and never
  handles a key; the app decides who may see a page, exactly as it decides for the API.

The host does not order routes by how specific they are: it tries them in the order of the
functions' names (azure-functions-host#9876, azure-webjobs-sdk-extensions#842). ``api`` sorts
before ``pages``, so ``/api/...`` meets the keyed route first. Should a request under ``/api``
still arrive through ``pages`` (another host's ordering, an encoded or differently cased path),
the app refuses it (``auditor.api.guard.ApiThroughKeyedFunction``): it answers like an unknown
path and never reaches a route, so the anonymous function cannot stand in for the key.
"""

from __future__ import annotations

import azure.functions as func

from auditor.api.guard import ASGIApp

API_FUNCTION = "api"
PAGES_FUNCTION = "pages"
METHODS = tuple(func.HttpMethod)


class AsgiHost:
    """One AsgiMiddleware for both functions: the app's lifespan starts once, on first use
    (as ``func.AsgiFunctionApp`` does for its one function)."""

    def __init__(self, app: ASGIApp) -> None:
        # azure-functions leaves these constructors and coroutines unannotated.
        self.middleware = func.AsgiMiddleware(app)  # type: ignore[no-untyped-call]
        self.started = False

    async def handle(self, req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
        if not self.started:
            if not await self.middleware.notify_startup():  # type: ignore[no-untyped-call]
                raise RuntimeError("ASGI app startup failed.")
            self.started = True
        response: func.HttpResponse = await self.middleware.handle_async(req, context)
        return response


def http_functions(app: ASGIApp) -> func.Blueprint:
    """The blueprint of the two HTTP functions serving `app` (see the module docstring)."""
    host = AsgiHost(app)
    blueprint = func.Blueprint()  # type: ignore[no-untyped-call]

    @blueprint.function_name(name=API_FUNCTION)
    @blueprint.http_type(http_type="asgi")
    @blueprint.route(route="api/{*route}", methods=METHODS, auth_level=func.AuthLevel.FUNCTION)
    async def api(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
        return await host.handle(req, context)

    @blueprint.function_name(name=PAGES_FUNCTION)
    @blueprint.http_type(http_type="asgi")
    @blueprint.route(route="{*route}", methods=METHODS, auth_level=func.AuthLevel.ANONYMOUS)
    async def pages(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
        return await host.handle(req, context)

    return blueprint
