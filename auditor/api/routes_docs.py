"""`GET /api/docs`: the browsable API reference (auditor/api/reference.py), and its stylesheet.

Served by the app itself, from its own OpenAPI document: no CDN, no script. The reference
follows the API's access rule for routes that need a caller: in Azure the function key and a
signed-in caller (App Service Authentication), locally the `serve` principal; it names no
tenant, so the access policy's grants do not narrow it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from auditor.api import reference
from auditor.api.context import caller
from auditor.api.problems import documented
from auditor.core.access import Principal

router = APIRouter(tags=["reference"])

DOCS_URL = "/api/docs"
STYLESHEET_URL = "/api/docs/style.css"


@router.get(
    DOCS_URL,
    summary="Browsable API reference",
    description=(
        "This document as an HTML page: every route, parameter, response and schema. Served "
        "with its stylesheet by the app (no script, no third-party asset; a strict "
        "Content-Security-Policy). Needs a caller, like the tenant routes."
    ),
    responses={
        200: {"content": {"text/html": {"schema": {"type": "string"}}}},
        **documented(400, 401, 500),
    },
)
def docs(request: Request, _: Annotated[Principal, Depends(caller)]) -> Response:
    page = getattr(request.app.state, "reference_page", None)
    if page is None:
        # The document is fixed for the app's life: render it once.
        page = reference.render(request.app.openapi(), STYLESHEET_URL).encode()
        request.app.state.reference_page = page
    return Response(page, media_type="text/html; charset=utf-8", headers=reference.HEADERS)


@router.get(
    STYLESHEET_URL,
    summary="Stylesheet of the API reference",
    description="The stylesheet `/api/docs` links to.",
    responses={
        200: {"content": {"text/css": {"schema": {"type": "string"}}}},
        **documented(400, 401, 500),
    },
)
def stylesheet(_: Annotated[Principal, Depends(caller)]) -> Response:
    return Response(
        reference.STYLESHEET, media_type="text/css; charset=utf-8", headers=reference.HEADERS
    )
