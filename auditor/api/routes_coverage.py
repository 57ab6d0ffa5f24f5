"""`GET /api/tenants/{tenantId}/coverage`: hardening coverage, Defender plans, secure scores."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from auditor.api import documents
from auditor.api.answer import answer_derived, choose
from auditor.api.context import ApiContext, caller, context
from auditor.api.etags import derived_etag
from auditor.api.params import (
    REF_HELP,
    REF_REGEX,
    FormatQuery,
    TenantIdPath,
    snapshot_ref,
    tenant_id,
)
from auditor.api.problems import documented
from auditor.api.routes_tenants import CONDITIONAL
from auditor.api.schemas import Coverage
from auditor.core.access import Principal

router = APIRouter(tags=["coverage"])


@router.get(
    "/api/tenants/{tenantId}/coverage",
    response_model=Coverage,
    summary="Hardening coverage and Defender plans in one snapshot",
    description=(
        "Per subscription: resources healthy / unhealthy / not applicable for each hardening "
        "recommendation (retired features say `retired`, recommendations without data say "
        "`missing`, neither is ever passed), the Defender plans with tier and sub-plan, and "
        "the secure score. CSV on request (`format=csv` or `Accept: text/csv`): the three "
        "tables in one, each row saying its `table` (`hardening`, `plan`, `secureScore`) and "
        "the snapshot's id and content hash."
    ),
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
        **CONDITIONAL,
        **documented(400, 401, 404, 406, 500, 503),
    },
)
def get_coverage(
    request: Request,
    tenant: TenantIdPath,
    ctx: Annotated[ApiContext, Depends(context)],
    who: Annotated[Principal, Depends(caller)],
    snapshot: Annotated[
        str | None,
        Query(pattern=REF_REGEX, description=f"{REF_HELP} Default: the latest snapshot."),
    ] = None,
    format: FormatQuery = None,
) -> Response:
    tenant = tenant_id(tenant)
    ref = snapshot_ref("snapshot", snapshot)
    fmt = choose(request, format, csv_offered=True)
    ctx.visible_tenant(who, tenant)
    entry = ctx.resolve(tenant, ref, "snapshot")
    etag = derived_etag(
        request, "coverage", tenant, entry.snapshot_id, entry.content_hash, fmt.value
    )
    return answer_derived(
        request,
        etag,
        lambda: documents.coverage(ctx.history.snapshot(entry)),
        fmt,
        lambda _: documents.COVERAGE_COLUMNS,
        documents.coverage_csv_rows,
    )
