"""`GET /api/tenants/{tenantId}/diff`: what changed for a tenant between two snapshots."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import Field

from auditor.api import documents, paging
from auditor.api.answer import answer_derived, choose
from auditor.api.context import ApiContext, as_problem, caller, context
from auditor.api.etags import derived_etag
from auditor.api.params import (
    GUID_REGEX,
    REF_HELP,
    REF_REGEX,
    FormatQuery,
    SkipTokenQuery,
    TenantIdPath,
    choices,
    snapshot_ref,
    standards,
    subscriptions,
    tenant_id,
    top_query,
)
from auditor.api.problems import documented, invalid
from auditor.api.routes_tenants import CONDITIONAL
from auditor.api.schemas import DiffPage
from auditor.core.access import Principal
from auditor.core.diff import ChangeKind, Level
from auditor.services import diff_query
from auditor.services.diff_query import ChangeFilter

router = APIRouter(tags=["diff"])

DEFAULT_PAGE = 1000
MAX_PAGE = 5000

_KINDS = "|".join(kind.value for kind in ChangeKind)
_LEVELS = "|".join(level.value for level in Level)
_GUID = GUID_REGEX.strip("^$")


def _documented(pattern: str) -> Any:
    """A comma-separated value whose pattern the OpenAPI schema shows; checked by our own
    validators (auditor/services/diff_query.py), whose 400 names the value in words."""
    return Field(json_schema_extra={"pattern": pattern})


_SUBSCRIPTIONS = _documented(rf"^{_GUID}(,{_GUID})*$")
_CHANGES = _documented(rf"^({_KINDS})(,({_KINDS}))*$")
_LEVEL_VALUES = _documented(rf"^({_LEVELS})(,({_LEVELS}))*$")


@router.get(
    "/api/tenants/{tenantId}/diff",
    response_model=DiffPage,
    summary="What changed between two snapshots",
    description=(
        "The diff from snapshot `from` to snapshot `to` of one tenant: both snapshots "
        "(ids, times, statuses, hashes), a summary of the whole diff, and the changes "
        "matching the filters, paged in subscription, standard, control, assessment order. "
        "Each change is in exactly one category: `regressed` (to Failed), `improved` (Failed "
        "to Passed), `changed` (other transitions), `added` / `removed` (a standard, control "
        "or assessment appeared or vanished, reported at the highest level that did; or, at "
        "level `subscription`, the subscription entered or left the delegated scope), and "
        "`incomparable` (a subscription in scope at both ends whose data either snapshot "
        "lacks). Scope changes never count as posture changes. CSV on request: one row per "
        "change of the page (`before.*` and `after.*` columns), each ending with both "
        "snapshots' ids and content hashes (`from.snapshotId`, `from.contentHash`, "
        "`to.snapshotId`, `to.contentHash`); the next page is in the `Link` header."
    ),
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
        **CONDITIONAL,
        **documented(400, 401, 404, 406, 500, 503),
    },
)
def get_diff(
    request: Request,
    tenant: TenantIdPath,
    ctx: Annotated[ApiContext, Depends(context)],
    who: Annotated[Principal, Depends(caller)],
    from_: Annotated[
        str | None,
        Query(
            alias="from",
            pattern=REF_REGEX,
            description=f"{REF_HELP} Default: the snapshot just before `to`.",
        ),
    ] = None,
    to: Annotated[
        str | None,
        Query(pattern=REF_REGEX, description=f"{REF_HELP} Default: the latest snapshot."),
    ] = None,
    standard: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=256)]] | None,
        Query(
            max_length=100,
            description="Only changes of these standards (exact names; repeat the parameter). "
            "A name that neither snapshot has is a 400 listing the ones they have.",
        ),
    ] = None,
    subscription: Annotated[
        list[Annotated[str, _SUBSCRIPTIONS]] | None,
        Query(
            max_length=100,
            description="Only changes in these subscriptions (ids; repeat or comma-separate). "
            "A subscription that neither snapshot has in scope is a 400 listing the ones "
            "they have.",
        ),
    ] = None,
    change: Annotated[
        list[Annotated[str, _CHANGES]] | None,
        Query(
            max_length=100,
            description=f"Only these categories ({', '.join(k.value for k in ChangeKind)}); "
            "repeat or comma-separate.",
        ),
    ] = None,
    level: Annotated[
        list[Annotated[str, _LEVEL_VALUES]] | None,
        Query(
            max_length=100,
            description=f"Only these levels ({', '.join(v.value for v in Level)}); "
            "repeat or comma-separate.",
        ),
    ] = None,
    format: FormatQuery = None,
    top: Annotated[int, top_query(DEFAULT_PAGE, MAX_PAGE)] = DEFAULT_PAGE,
    skip_token: SkipTokenQuery = None,
) -> Response:
    # Everything the request says is checked before the tenant is, and the tenant before the
    # store is read: an invisible tenant costs no storage call and answers like an unknown one.
    tenant = tenant_id(tenant)
    start, end = snapshot_ref("from", from_), snapshot_ref("to", to)
    wanted = ChangeFilter(
        standards=standards(standard),
        subscriptions=subscriptions(subscription),
        kinds=choices("change", change, ChangeKind),
        levels=choices("level", level, Level),
    )
    fmt = choose(request, format, csv_offered=True)
    if start is not None and end is not None and start.moment > end.moment:
        raise invalid("from", "from is after to")
    ctx.visible_tenant(who, tenant)
    try:
        before, after = diff_query.resolve_ends(ctx.history, tenant, start, end)
        wanted.check_known(before, after)
    except diff_query.DiffQueryError as exc:
        raise as_problem(exc) from None

    query = paging.fingerprint(
        "diff", tenant, before.snapshot_id, before.content_hash, after.snapshot_id,
        after.content_hash, wanted.canonical(),
    )  # fmt: skip
    position = paging.decode_token(skip_token, query)
    if position.after is not None:
        raise invalid(paging.SKIP_TOKEN, f"{paging.SKIP_TOKEN} is not a token this query produced")
    # An end asked for by instant whose snapshot is much older than asked says so.
    warnings = ctx.history.staleness([("from", start, before), ("to", end, after)])
    etag = derived_etag(request, query, position.offset, top, fmt.value, warnings)

    def build() -> dict[str, Any]:
        diff = ctx.history.diff(before, after)
        matching = diff_query.matching(diff, wanted)
        page = list(matching[position.offset : position.offset + top])
        link = None
        if position.offset + top < len(matching):
            token = paging.encode_token(paging.Position(offset=position.offset + top), query)
            link = paging.next_link(
                request, token, pinned={"from": before.snapshot_id, "to": after.snapshot_id}
            )
        summary = documents.diff_summary(diff.summary)
        return documents.diff_page(diff, summary, page, len(matching), link, warnings)

    return answer_derived(
        request, etag, build, fmt, lambda _: documents.DIFF_CSV_COLUMNS, documents.diff_csv_rows
    )
