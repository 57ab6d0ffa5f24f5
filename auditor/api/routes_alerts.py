"""`GET /api/tenants/{tenantId}/alerts`: a snapshot's security alerts (JSON or CSV)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from auditor.api.answer import answer_derived, choose
from auditor.api.context import ApiContext, caller, context
from auditor.api.documents_alerts import ALERT_COLUMNS, alerts_document
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
from auditor.api.routes_tenants import CONDITIONAL, TABLE_CONTENT
from auditor.api.schemas import AlertsDocument
from auditor.core.access import Principal

router = APIRouter(tags=["alerts"])


@router.get(
    "/api/tenants/{tenantId}/alerts",
    response_model=AlertsDocument,
    summary="Security alerts in one snapshot",
    description=(
        "Per subscription, severity and status: the alerts counted (resolved and dismissed "
        "ones that ended within the look-back, `AUDITOR_ALERTS_LOOKBACK_DAYS`); and the open "
        "(active, in-progress) alerts, most severe and newest first, up to the per-tenant cap "
        "(`AUDITOR_ALERTS_MAX_PER_TENANT`; `leftOut` says how many it left out). A snapshot "
        "taken before alerts were collected says `collected: false`. CSV on request: the open "
        "alerts."
    ),
    responses={
        200: {"content": TABLE_CONTENT},
        **CONDITIONAL,
        **documented(400, 401, 404, 406, 500, 503),
    },
)
def get_alerts(
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
    etag = derived_etag(request, "alerts", fmt.value, tenant, entry.snapshot_id, entry.content_hash)
    return answer_derived(
        request,
        etag,
        lambda: alerts_document(ctx.history.snapshot(entry)),
        fmt,
        lambda _rows: ALERT_COLUMNS,
    )
