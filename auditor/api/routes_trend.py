"""`GET /api/tenants/{tenantId}/trend`: compliance per standard over time."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import Field

from auditor.api import documents
from auditor.api.answer import answer_derived, choose
from auditor.api.context import ApiContext, caller, context
from auditor.api.etags import derived_etag
from auditor.api.params import (
    REF_REGEX,
    FormatQuery,
    TenantIdPath,
    snapshot_ref,
    standards,
    tenant_id,
)
from auditor.api.problems import documented, invalid, snapshot_not_found, tenant_not_found
from auditor.api.routes_tenants import CONDITIONAL
from auditor.api.schemas import Trend
from auditor.core import wording
from auditor.core.access import Principal
from auditor.core.snapshot import SnapshotNotFound

router = APIRouter(tags=["trend"])

_BOUND_HELP = (
    f"A snapshot id like {wording.SNAPSHOT_ID_EXAMPLE} (that snapshot, which must exist) or an "
    f"instant with a zone like {wording.INSTANT_EXAMPLE}; the series holds the snapshots "
    "scheduled within [from, to]."
)


@router.get(
    "/api/tenants/{tenantId}/trend",
    response_model=Trend,
    summary="Compliance per standard over time",
    description=(
        "One point per committed snapshot and standard, oldest first: the percentage of "
        "passed controls among passed and failed ones (null when none), with the snapshot's "
        "status, so that an incomplete day is visible as such. CSV on request: the points."
    ),
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
        **CONDITIONAL,
        **documented(400, 401, 404, 406, 500, 503),
    },
)
def get_trend(
    request: Request,
    tenant: TenantIdPath,
    ctx: Annotated[ApiContext, Depends(context)],
    who: Annotated[Principal, Depends(caller)],
    standard: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=256)]] | None,
        Query(
            max_length=100,
            description="Only these standards (exact names; repeat the parameter). A name "
            "that no snapshot of the period has is a 400 listing the ones it has.",
        ),
    ] = None,
    from_: Annotated[
        str | None,
        Query(alias="from", pattern=REF_REGEX, description=f"{_BOUND_HELP} Default: the first."),
    ] = None,
    to: Annotated[
        str | None,
        Query(pattern=REF_REGEX, description=f"{_BOUND_HELP} Default: the latest."),
    ] = None,
    format: FormatQuery = None,
) -> Response:
    tenant = tenant_id(tenant)
    start, end = snapshot_ref("from", from_), snapshot_ref("to", to)
    wanted = standards(standard)
    fmt = choose(request, format, csv_offered=True)
    if start is not None and end is not None and start.moment > end.moment:
        raise invalid("from", "from is after to")
    ctx.visible_tenant(who, tenant)
    for name, ref in (("from", start), ("to", end)):
        if ref is not None and ref.snapshot_id is not None:
            try:
                ctx.history.reader.get_index(tenant, ref.snapshot_id)
            except SnapshotNotFound:
                if not ctx.history.has_snapshots(tenant):
                    raise tenant_not_found() from None
                raise snapshot_not_found(
                    f"{name}: no committed snapshot {ref.snapshot_id}"
                ) from None
    entries = ctx.history.list_snapshots(
        tenant,
        since=start.moment if start else None,
        until=end.moment if end else None,
    )
    if not entries and not ctx.history.has_snapshots(tenant):
        raise tenant_not_found()
    entries.reverse()  # oldest first
    seen = {s for entry in entries for s in entry.compliance_by_standard}
    for value in sorted(wanted - seen):
        raise invalid(
            "standard",
            wording.unknown_value(
                "standard",
                value,
                seen,
                "the standards of this tenant's snapshots in the period are",
            ),
        )
    series = sorted(wanted) if wanted else sorted(seen)
    etag = derived_etag(
        request,
        "trend",
        tenant,
        [(e.snapshot_id, e.content_hash) for e in entries],
        series,
        fmt.value,
    )

    def build() -> dict[str, Any]:
        return {
            "tenantId": tenant,
            "standards": series,
            "value": [documents.trend_point(e, s) for e in entries for s in series],
        }

    return answer_derived(request, etag, build, fmt, lambda _: documents.TREND_COLUMNS)
