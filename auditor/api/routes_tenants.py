"""`GET /api/tenants` and `GET /api/tenants/{tenantId}/snapshots`: what the caller may see."""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from auditor.api import documents, paging
from auditor.api.answer import answer_body, answer_hashed, choose, render
from auditor.api.context import ApiContext, caller, context
from auditor.api.params import (
    FormatQuery,
    SkipTokenQuery,
    TenantIdPath,
    tenant_id,
    top_query,
)
from auditor.api.problems import documented, tenant_not_found
from auditor.api.representation import Format, columns_of
from auditor.api.schemas import SnapshotList, TenantList
from auditor.core.access import Principal
from auditor.core.runs import Delegation
from auditor.core.snapshot import TENANT_ID, SnapshotIndexEntry, slot_of

router = APIRouter(tags=["tenants"])


def _pages_before(snapshot_id: str) -> bool:
    """A snapshot id a page can continue after: a real slot with a second before it."""
    try:
        return slot_of(snapshot_id) > datetime.min.replace(tzinfo=UTC)
    except ValueError:
        return False


TABLE_CONTENT = {
    "text/csv": {"schema": {"type": "string"}, "example": "tenantId,tenantName,...\r\n"}
}
CONDITIONAL: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: If-None-Match names the current ETag."}
}


@router.get(
    "/api/tenants",
    response_model=TenantList,
    summary="Tenants the caller may see",
    description=(
        "Every tenant the caller's access policy grants that has a committed snapshot, ordered "
        "by tenant id, each with its latest snapshot's status, compliance per standard and "
        "summary (secure score, Defender plans, hardening, open alerts, regressions, previous "
        "compliance, 30-day sparkline), all read from the anchored latest rows. Paged; CSV on "
        "request (one row per tenant, a `compliance.<standard>` column per standard and "
        "`summary.<figure>` columns; the sparkline is JSON only)."
    ),
    responses={
        200: {"content": TABLE_CONTENT},
        **CONDITIONAL,
        **documented(400, 401, 406, 500, 503),
    },
)
def list_tenants(
    request: Request,
    ctx: Annotated[ApiContext, Depends(context)],
    who: Annotated[Principal, Depends(caller)],
    format: FormatQuery = None,
    top: Annotated[int, top_query(100, 1000)] = 100,
    skip_token: SkipTokenQuery = None,
) -> Response:
    fmt = choose(request, format, csv_offered=True)
    query = paging.fingerprint("tenants")
    position = paging.decode_after(skip_token, query, lambda key: bool(TENANT_ID.match(key)))
    scope = ctx.policy.scope_of(who)
    visible = [
        entry
        for entry in ctx.history.list_tenants()
        if entry.tenant_id in scope and (position.after is None or entry.tenant_id > position.after)
    ]
    page, more = visible[:top], len(visible) > top
    delegation = ctx.history.delegation()
    key = _body_key(request, fmt, page, more, delegation)
    cached = _BODIES.get(key)
    if cached is None:
        link = None
        if more:
            token = paging.encode_token(paging.Position(after=page[-1].tenant_id), query)
            link = paging.next_link(request, token)
        document: dict[str, Any] = {
            "value": [documents.tenant_item(entry, delegation) for entry in page],
            "nextLink": link,
        }
        body, media_type = render(document, fmt, _tenant_columns)
        cached = _BODIES.put(key, (body, media_type, link))
    return answer_body(request, *cached)


def _tenant_columns(rows: list[dict[str, Any]]) -> list[str]:
    return [
        column
        for column in columns_of(rows, documents.TENANT_COLUMNS, "compliance", "summary")
        if column != "summary.sparkline"  # a list of points: JSON only
    ]


class _BodyCache:
    """Rendered tenant lists, by everything they are made of: the request's URL and format,
    each listed row's tenant and digest (which covers every stored property), whether more
    follow, the delegation and the age in days of the tenants no longer delegated. Rendering
    1,000 tenants costs more than listing their rows; an unchanged list is not rendered again."""

    def __init__(self, size: int = 32) -> None:
        self._items: OrderedDict[tuple[Any, ...], tuple[bytes, str, str | None]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> tuple[bytes, str, str | None] | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(
        self, key: tuple[Any, ...], value: tuple[bytes, str, str | None]
    ) -> tuple[bytes, str, str | None]:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


_BODIES = _BodyCache()


def _body_key(
    request: Request,
    fmt: Format,
    page: list[SnapshotIndexEntry],
    more: bool,
    delegation: Delegation | None,
) -> tuple[Any, ...]:
    held = (
        None
        if delegation is None
        else (delegation.run, delegation.tenant_ids, tuple(sorted(delegation.left_at.items())))
    )
    rows = tuple((e.tenant_id, e.attempt, e.row_digest) for e in page)
    now = datetime.now(UTC)
    ages = tuple(
        (now - e.scheduled_at).days
        for e in page
        if delegation is not None and not delegation.delegated(e.tenant_id)
    )
    return (str(request.url), fmt, more, held, ages, rows)


@router.get(
    "/api/tenants/{tenantId}/snapshots",
    response_model=SnapshotList,
    summary="A tenant's snapshots, newest first",
    description=(
        "The tenant's committed snapshots, newest first, paged. Incomplete and failed "
        "snapshots are listed with their status and reasons. CSV on request."
    ),
    responses={
        200: {"content": TABLE_CONTENT},
        **CONDITIONAL,
        **documented(400, 401, 404, 406, 500, 503),
    },
)
def list_snapshots(
    request: Request,
    tenant: TenantIdPath,
    ctx: Annotated[ApiContext, Depends(context)],
    who: Annotated[Principal, Depends(caller)],
    format: FormatQuery = None,
    top: Annotated[int, top_query(100, 1000)] = 100,
    skip_token: SkipTokenQuery = None,
) -> Response:
    tenant = tenant_id(tenant)
    fmt = choose(request, format, csv_offered=True)
    query = paging.fingerprint("snapshots", tenant)
    position = paging.decode_after(skip_token, query, _pages_before)
    ctx.visible_tenant(who, tenant)
    until = slot_of(position.after) - timedelta(seconds=1) if position.after else None
    entries = ctx.history.list_snapshots(tenant, until=until)
    if not entries and position.after is None:
        raise tenant_not_found()
    page, more = entries[:top], len(entries) > top
    link = None
    if more:
        token = paging.encode_token(paging.Position(after=page[-1].snapshot_id), query)
        link = paging.next_link(request, token)
    document: dict[str, Any] = {
        "tenantId": tenant,
        "value": [documents.snapshot_summary(entry) for entry in page],
        "nextLink": link,
    }
    return answer_hashed(
        request,
        document,
        fmt,
        lambda rows: columns_of(rows, documents.SNAPSHOT_COLUMNS, "counts", "compliance"),
    )
