"""`GET /api/where-to-act`: recommendations and failing controls ranked over every tenant the
caller may see (auditor/services/ranking.py), paged, JSON or CSV."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from auditor.api import paging
from auditor.api.answer import answer_hashed, choose
from auditor.api.context import ApiContext, caller, context
from auditor.api.params import FormatQuery, SkipTokenQuery, top_query
from auditor.api.problems import documented
from auditor.api.routes_tenants import CONDITIONAL, TABLE_CONTENT
from auditor.api.schemas import WhereToAct
from auditor.core.access import Principal
from auditor.services.ranking import Kind, RankedItem, rank_where_to_act

router = APIRouter(tags=["where to act"])

# CSV: one row per item; the per-tenant breakdown is JSON only (a list per row).
RANKING_COLUMNS = (
    "rank",
    "kind",
    "key",
    "displayName",
    "severity",
    "unhealthyResources",
    "tenantCount",
    "remediation",
)


def ranked_item(rank: int, item: RankedItem) -> dict[str, Any]:
    return {
        "rank": rank,
        "kind": item.kind,
        "key": item.key,
        "displayName": item.display_name,
        "severity": item.severity,
        "unhealthyResources": item.unhealthy_resources,
        "tenantCount": len(item.tenants),
        "remediation": item.remediation,
        "tenants": [
            {
                "tenantId": t.tenant_id,
                "tenantName": t.tenant_name,
                "unhealthyResources": t.unhealthy_resources,
                "subscriptions": t.subscriptions,
            }
            for t in item.tenants
        ],
    }


@router.get(
    "/api/where-to-act",
    response_model=WhereToAct,
    summary="Where to act first, over every tenant the caller may see",
    description=(
        "Recommendations (by unhealthy resources) and failing regulatory controls (by failed "
        "resources) over the latest snapshot of every tenant the caller's access policy "
        "grants, ranked by severity (High, Medium, Low, then unknown), then resources, with "
        "per-tenant counts. A tenant outside the grant contributes nothing, not even to a "
        "total. Paged; CSV on request (without the per-tenant breakdown)."
    ),
    responses={
        200: {"content": TABLE_CONTENT},
        **CONDITIONAL,
        **documented(400, 401, 406, 500, 503),
    },
)
def where_to_act(
    request: Request,
    ctx: Annotated[ApiContext, Depends(context)],
    who: Annotated[Principal, Depends(caller)],
    kind: Annotated[
        Literal["recommendation", "control"] | None,
        Query(description="Only recommendations or only failing controls (default both)."),
    ] = None,
    format: FormatQuery = None,
    top: Annotated[int, top_query(100, 1000)] = 100,
    skip_token: SkipTokenQuery = None,
) -> Response:
    fmt = choose(request, format, csv_offered=True)
    scope = ctx.policy.scope_of(who)
    visible = [e for e in ctx.history.list_tenants() if e.tenant_id in scope]
    # A token is bound to the data it paged: a snapshot committed meanwhile ends the paging
    # with a 400 rather than skipping or repeating rows.
    state = hashlib.sha256(
        "".join(f"{e.tenant_id}{e.content_hash}" for e in visible).encode()
    ).hexdigest()
    query = paging.fingerprint("where-to-act", kind, state)
    position = paging.decode_token(skip_token, query)
    kinds: tuple[Kind, ...] = (kind,) if kind else ("recommendation", "control")
    ranking = rank_where_to_act(ctx.history, scope, kinds=kinds, offset=position.offset, limit=top)
    link = None
    if ranking.next_offset is not None:
        token = paging.encode_token(paging.Position(offset=ranking.next_offset), query)
        link = paging.next_link(request, token)
    document: dict[str, Any] = {
        "total": ranking.total,
        "tenantsRanked": ranking.tenants_ranked,
        "tenantsNotCollected": list(ranking.tenants_not_collected),
        "value": [
            ranked_item(position.offset + n + 1, item) for n, item in enumerate(ranking.items)
        ],
        "nextLink": link,
    }
    return answer_hashed(request, document, fmt, lambda _rows: RANKING_COLUMNS)
