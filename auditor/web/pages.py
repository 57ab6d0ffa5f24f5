"""The dashboard's pages: server-rendered HTML over the API's read paths.

Every route identifies the caller exactly as the API does (the audit middleware's caller),
checks the tenant against the access policy before any store read (a hidden tenant answers
byte for byte like an unknown one), and renders a template from a view model that holds only
visible tenants. Routes are not in the OpenAPI document: the API's contract stays /api.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, cast
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from auditor.adapters.queues import run_deadline
from auditor.api import routes_diff, routes_reports
from auditor.api.context import (
    CALLER_SCOPE_KEY,
    MALFORMED_CALLER_SCOPE_KEY,
    ApiContext,
    context,
)
from auditor.api.problems import ApiProblem
from auditor.api.representation import Format
from auditor.core.access import Principal
from auditor.core.diff import ChangeKind, Level
from auditor.core.schedule import ScheduleError, latest_occurrence
from auditor.core.snapshot import (
    SnapshotIndexEntry,
    SnapshotNotFound,
    UnverifiedLatest,
    is_tenant_id,
    slot_of,
)
from auditor.services import diff_query
from auditor.services.history import SnapshotRef
from auditor.services.ranking import Kind
from auditor.services.verify import check_link
from auditor.web import charts
from auditor.web.render import RowCache, render
from auditor.web.security import csrf_token
from auditor.web.summary import TenantSummaries
from auditor.web.views import (
    SORTS,
    STATUSES,
    PortfolioRow,
    VisibleLatest,
    build_portfolio,
    control_place,
    portfolio_row,
    status_of,
    where_to_act,
)

router = APIRouter(include_in_schema=False)

OPERATOR_ROLE = "operator"
COLD_READERS = 8
PERIODS = (7, 30, 90, 365)
SIGN_IN = "/.auth/login/aad"
_SNAPSHOT_ID = re.compile(r"^\d{8}T\d{6}Z$")
_REPORT_ID = re.compile(r"^[0-9A-Za-z-]{1,80}$")


class PageError(Exception):
    """An error page: status, a title and a sentence (never a tenant id or name)."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


class SignInRequired(Exception):
    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to


def not_found() -> PageError:
    # One answer for an unknown tenant, a hidden one and a malformed id.
    return PageError(404, "Not found", "There is no page here that you may see.")


def viewer(request: Request) -> Principal:
    """The caller as the API decides; a sign-in redirect (Azure) or an error page otherwise."""
    if request.scope.get(MALFORMED_CALLER_SCOPE_KEY):
        raise PageError(400, "Bad sign-in", "The sign-in header is not a principal document.")
    principal = request.scope.get(CALLER_SCOPE_KEY)
    if isinstance(principal, Principal):
        return principal
    if request.app.state.sign_in_redirect:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(back)
    raise PageError(401, "Sign-in required", "Sign in through the app's Entra ID authentication.")


Ctx = Annotated[ApiContext, Depends(context)]
Who = Annotated[Principal, Depends(viewer)]


def summaries(request: Request) -> TenantSummaries:
    found: TenantSummaries = request.app.state.summaries
    return found


Sums = Annotated[TenantSummaries, Depends(summaries)]


def is_operator(ctx: ApiContext, who: Principal) -> bool:
    """Operations is for callers with the app role ``operator``; locally (no roles) for a
    principal that may see every tenant. Never for a customer: a foreign tenant's admin
    assigns app roles in their own tenant."""
    if ctx.policy.is_customer(who):
        return False
    if ctx.local:
        return ctx.policy.scope_of(who).everything
    return not who.app_only and OPERATOR_ROLE in who.roles


def page(
    request: Request, ctx: ApiContext, who: Principal, template: str, **values: Any
) -> HTMLResponse:
    return HTMLResponse(
        render(
            template,
            request=request,
            operator=is_operator(ctx, who),
            caller=who.object_id,
            csrf=csrf_token(request),
            **values,
        )
    )


def expected_slot(request: Request, now: datetime | None = None) -> datetime | None:
    """The latest slot whose run should have finished by now (None: no schedule known)."""
    schedule: str | None = request.app.state.snapshot_schedule
    if not schedule:
        return None
    now = now or datetime.now(UTC)
    try:
        return latest_occurrence(schedule, now - request.app.state.run_grace)
    except ScheduleError:
        return None


def visible_rows(
    request: Request,
    ctx: ApiContext,
    who: Principal,
    sums: TenantSummaries,
    *,
    detail: bool = False,
) -> list[PortfolioRow]:
    scope = ctx.policy.scope_of(who)
    slot = expected_slot(request)
    entries = [e for e in sums.latest_entries() if e.tenant_id in scope]
    if not detail and all(e.summary is not None for e in entries):
        # Every figure is in the anchored latest rows: no store read, no thread needed.
        return [portfolio_row(entry, sums, slot) for entry in entries]
    # Rows without a stored summary (or with detail) read the store, so those reads overlap
    # (the caches load each key once whatever the threads).
    with ThreadPoolExecutor(max_workers=COLD_READERS) as pool:
        return list(
            pool.map(lambda entry: portfolio_row(entry, sums, slot, detail=detail), entries)
        )


def visible_unverified(
    ctx: ApiContext, who: Principal, sums: TenantSummaries
) -> tuple[UnverifiedLatest, ...]:
    """Visible tenants whose latest row fails verification (named by their row's keys)."""
    scope = ctx.policy.scope_of(who)
    return tuple(u for u in sums.unverified() if u.tenant_id in scope)


def _choice(name: str, value: str | None, allowed: tuple[str, ...] | frozenset[str]) -> str | None:
    if value in (None, ""):
        return None
    if value not in allowed:
        raise PageError(400, "Bad request", f"{name} must be one of: {', '.join(allowed)}.")
    return value


@router.get("/", response_class=HTMLResponse)
def portfolio(
    request: Request,
    ctx: Ctx,
    who: Who,
    sums: Sums,
    status: str | None = None,
    standard: str | None = None,
    name: str | None = None,
    sort: str = "name",
    order: str = "asc",
) -> HTMLResponse:
    rows = visible_rows(request, ctx, who, sums)
    known = frozenset(c.standard for r in rows for c in r.standards)
    view = build_portfolio(
        rows,
        status=_choice("status", status, STATUSES),
        standard=_choice("standard", standard, known) if standard else None,
        name=(name or "")[:200],
        sort=_choice("sort", sort, SORTS) or "name",
        descending=_choice("order", order, ("asc", "desc")) == "desc",
    )
    view = replace(view, unverified=visible_unverified(ctx, who, sums))
    rows_html: RowCache = request.app.state.portfolio_rows

    def row_html(row: PortfolioRow) -> Markup:
        return rows_html(row.key, row=row, spark=charts.sparkline)

    return page(
        request, ctx, who, "portfolio.html", view=view, statuses=STATUSES, sorts=SORTS,
        row_html=row_html,
        chosen={"status": status or "", "standard": standard or "", "name": name or "",
                "sort": sort, "order": order},
    )  # fmt: skip


ACTION_KINDS = ("recommendation", "control")
MAX_PAGE = 10_000
PageNumber = Annotated[str | None, Query(alias="page")]


@router.get("/act", response_class=HTMLResponse)
def act_first(
    request: Request,
    ctx: Ctx,
    who: Who,
    sums: Sums,
    kind: str | None = None,
    page_number: PageNumber = None,
) -> HTMLResponse:
    chosen = cast(Kind | None, _choice("kind", kind, ACTION_KINDS))
    number = _page_number(page_number)
    # The latest entries as the portfolio reads them (at most a minute old), content from
    # the history's cache, the ranking kept per visible snapshots.
    latest = VisibleLatest(sums.latest_entries(), ctx.history)
    actions = where_to_act(
        latest, ctx.policy.scope_of(who), kind=chosen, page=number,
        cache=request.app.state.rankings,
    )  # fmt: skip
    if number > actions.pages:
        raise PageError(400, "Bad request", f"page must be between 1 and {actions.pages}.")
    return page(
        request, ctx, who, "act.html",
        actions=actions, kinds=ACTION_KINDS, control_place=control_place,
    )  # fmt: skip


def _page_number(value: str | None) -> int:
    if value in (None, ""):
        return 1
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise PageError(400, "Bad request", f"page must be a whole number from 1 to {MAX_PAGE:,}.")
    return int(value)


def latest_visible(ctx: ApiContext, who: Principal, tenant: str) -> SnapshotIndexEntry:
    """The tenant's latest snapshot when the caller may see it; the not-found page otherwise
    (checked before any store read)."""
    if not is_tenant_id(tenant) or not ctx.policy.allowed(who, tenant.lower()):
        raise not_found()
    try:
        return ctx.history.latest(tenant.lower())
    except SnapshotNotFound:
        raise not_found() from None


@router.get("/tenants/{tenant}", response_class=HTMLResponse)
def tenant_page(
    request: Request,
    tenant: str,
    ctx: Ctx,
    who: Who,
    sums: Sums,
    days: int = 30,
    control: str | None = None,
    standard: str | None = None,
) -> HTMLResponse:
    latest = latest_visible(ctx, who, tenant)
    if days not in PERIODS:
        raise PageError(400, "Bad request", f"days must be one of {', '.join(map(str, PERIODS))}.")
    start = latest.scheduled_at - timedelta(days=days)
    entries = list(reversed(ctx.history.list_snapshots(latest.tenant_id, since=start)))
    series: dict[str, list[tuple[datetime, float | None]]] = {}
    for entry in entries:
        for name, value in entry.compliance_by_standard.items():
            series.setdefault(name, []).append((entry.scheduled_at, value))
    summary = sums.summary(latest)
    chosen = (standard, control) if standard and control else None
    failing = summary.failing.get(chosen, ()) if summary and chosen else ()
    recent = sums.recent(latest)
    return page(
        request, ctx, who, "tenant.html", latest=latest,
        status=status_of(latest, expected_slot(request)), summary=summary, days=days,
        periods=PERIODS, entries=list(reversed(entries)), series=sorted(series),
        chart=charts.trend_chart(series, start, latest.scheduled_at),
        colour=charts.colour, chosen=chosen, failing=failing[:500],
        failing_total=len(failing), previous=recent.previous, chain=chain_links(entries),
    )  # fmt: skip


def chain_links(entries: list[SnapshotIndexEntry]) -> dict[str, str | None]:
    """Per snapshot (given oldest first): `verify`'s own link check against the snapshot before
    it ("" when it holds; None when that predecessor lies before the listed period)."""
    out: dict[str, str | None] = {}
    for previous, entry in zip([None, *entries], entries, strict=False):
        if previous is None and entry.previous_snapshot_id is not None:
            out[entry.snapshot_id] = None
            continue
        out[entry.snapshot_id] = check_link(entry, previous) or ""
    return out


def _snapshot(
    ctx: ApiContext, tenant: str, name: str, value: str | None
) -> SnapshotIndexEntry | None:
    if not value:
        return None
    if not _SNAPSHOT_ID.match(value):
        raise PageError(
            400, "Bad request", f"{name} must be a snapshot id such as 20261127T020000Z."
        )
    try:
        return ctx.history.resolve(tenant, SnapshotRef(snapshot_id=value))
    except SnapshotNotFound:
        raise PageError(
            404, "Snapshot not found", f"{name}: no committed snapshot {value}."
        ) from None


@dataclass(frozen=True)
class ChangeQuery:
    """The filters of a comparison (``from`` is read from the query: a Python keyword)."""

    to: str | None = None
    change: str | None = None
    level: str | None = None
    standard: str | None = None


@router.get("/tenants/{tenant}/changes", response_class=HTMLResponse)
def changes_page(
    request: Request,
    tenant: str,
    ctx: Ctx,
    who: Who,
    asked: Annotated[ChangeQuery, Depends()],
) -> HTMLResponse:
    to, change, level, standard = asked.to, asked.change, asked.level, asked.standard
    latest = latest_visible(ctx, who, tenant)
    start_id = request.query_params.get("from")
    after = _snapshot(ctx, latest.tenant_id, "to", to) or latest
    before = _snapshot(ctx, latest.tenant_id, "from", start_id)
    if before is None:
        try:
            before = ctx.history.previous(after)
        except SnapshotNotFound:
            before = None
    kinds = _choice("change", change, tuple(k.value for k in ChangeKind))
    levels = _choice("level", level, tuple(v.value for v in Level))
    snapshots = ctx.history.list_snapshots(latest.tenant_id)
    if before is None:
        return page(request, ctx, who, "changes.html", latest=latest, diff=None,
                    snapshots=snapshots, before=None, after=after, rows=[], total=0, query={},
                    csv_url=None)  # fmt: skip
    if before.scheduled_at > after.scheduled_at:
        raise PageError(400, "Bad request", "from is after to.")
    diff = ctx.history.diff(before, after)
    wanted = diff_query.ChangeFilter(
        standards=frozenset({standard}) if standard else frozenset(),
        subscriptions=frozenset(),
        kinds=frozenset({ChangeKind(kinds)}) if kinds else frozenset(),
        levels=frozenset({Level(levels)}) if levels else frozenset(),
    )
    matching = diff_query.matching(diff, wanted)
    query = {k: v for k, v in (("from", before.snapshot_id), ("to", after.snapshot_id),
             ("change", kinds), ("level", levels), ("standard", standard)) if v}  # fmt: skip
    return page(
        request, ctx, who, "changes.html", latest=latest, diff=diff, before=before, after=after,
        snapshots=snapshots, rows=list(matching[:1000]), total=len(matching), query=query,
        kinds=[k.value for k in ChangeKind], levels=[v.value for v in Level],
        standards=sorted({c.standard for c in diff.summary.compliance}),
        csv_url=f"/tenants/{latest.tenant_id}/changes.csv?{urlencode(query)}",
    )  # fmt: skip


@router.get("/tenants/{tenant}/changes.csv")
def changes_csv(
    request: Request,
    tenant: str,
    ctx: Ctx,
    who: Who,
    asked: Annotated[ChangeQuery, Depends()],
) -> Response:
    """The API's own diff CSV (same rows, columns and sanitising), for a signed-in browser."""
    to, change, level, standard = asked.to, asked.change, asked.level, asked.standard
    latest_visible(ctx, who, tenant)
    try:
        return routes_diff.get_diff(
            request, tenant.lower(), ctx, who, from_=request.query_params.get("from"), to=to,
            standard=[standard] if standard else None, subscription=None,
            change=[change] if change else None, level=[level] if level else None,
            format=Format.CSV, top=routes_diff.MAX_PAGE, skip_token=None,
        )  # fmt: skip
    except ApiProblem as problem:
        raise PageError(problem.status, "Bad request", problem.detail) from None


def _reports(ctx: ApiContext) -> Any:
    if "reports" not in ctx.extra:
        raise PageError(404, "Not found", "Evidence packs are not configured here.")
    return routes_reports.reports(ctx)


@router.get("/tenants/{tenant}/evidence", response_class=HTMLResponse)
def evidence_page(request: Request, tenant: str, ctx: Ctx, who: Who) -> HTMLResponse:
    latest = latest_visible(ctx, who, tenant)
    service = _reports(ctx)
    packs = [routes_reports._item(s) for s in service.list_packs(latest.tenant_id)]
    snapshots = ctx.history.list_snapshots(latest.tenant_id)
    return page(request, ctx, who, "evidence.html", latest=latest, packs=packs,
                snapshots=snapshots, requested=request.query_params.get("requested"))  # fmt: skip


async def form_fields(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the first value of each); a 415 page for anything else."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise PageError(415, "Unsupported form", "The form must be sent urlencoded.")
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[0] for k, v in parse_qs(body, max_num_fields=20).items()}


@router.post("/tenants/{tenant}/evidence")
def request_pack(
    request: Request,
    tenant: str,
    ctx: Ctx,
    who: Who,
    fields: Annotated[dict[str, str], Depends(form_fields)],
) -> Response:
    latest = latest_visible(ctx, who, tenant)
    service = _reports(ctx)
    start, end = fields.get("from", ""), fields.get("to", "")
    for name, value in (("from", start), ("to", end)):
        if value and not _SNAPSHOT_ID.match(value):
            raise PageError(400, "Bad request", f"{name} must be a snapshot of the list.")
    if start and end and slot_of(start) > slot_of(end):
        raise PageError(400, "Bad request", "The period starts after it ends.")
    job = service.request(latest.tenant_id, start or None, end or None, who.object_id)
    return RedirectResponse(
        f"/tenants/{latest.tenant_id}/evidence?requested={quote(job.report_id)}", status_code=303
    )


def _pack_file(
    tenant: str,
    report: str,
    ctx: ApiContext,
    who: Principal,
    route: Callable[[str, str, ApiContext, Principal, Any], Response],
) -> Response:
    """One of a visible tenant's pack files through its API route; a problem is a page error."""
    latest = latest_visible(ctx, who, tenant)
    if not _REPORT_ID.match(report):
        raise not_found()
    try:
        return route(latest.tenant_id, report, ctx, who, _reports(ctx))
    except ApiProblem as problem:
        raise PageError(problem.status, "Not found", problem.detail) from None


@router.get("/tenants/{tenant}/evidence/{report}.xlsx")
def download(request: Request, tenant: str, report: str, ctx: Ctx, who: Who) -> Response:
    return _pack_file(tenant, report, ctx, who, routes_reports.download_pack)


@router.get("/tenants/{tenant}/evidence/{report}.oscal.json")
def download_oscal(request: Request, tenant: str, report: str, ctx: Ctx, who: Who) -> Response:
    return _pack_file(tenant, report, ctx, who, routes_reports.download_oscal)


@router.get("/operations", response_class=HTMLResponse)
def operations(request: Request, ctx: Ctx, who: Who, sums: Sums) -> HTMLResponse:
    if not is_operator(ctx, who):
        raise not_found()
    source = ctx.extra.get("operations")
    rows = visible_rows(request, ctx, who, sums)
    visible = {r.entry.tenant_id: r for r in rows}
    runs = []
    if source is not None:
        for manifest in source.recent_runs():
            planned = [t for t in manifest.tenant_ids if t in visible]
            committed = [
                t
                for t in planned
                if any(
                    e.snapshot_id == manifest.snapshot_id
                    for e in sums.recent(visible[t].entry).entries
                )
            ]
            runs.append({"manifest": manifest, "planned": len(planned), "committed": len(committed),
                         "failure": source.run_failure(manifest.snapshot_id)})  # fmt: skip
    troubled = [r for r in rows if r.status in ("failed", "incomplete")]
    stale_rows = [r for r in rows if r.status == "stale"]
    depths = source.poison_depths() if source is not None else []
    return page(request, ctx, who, "operations.html", runs=runs, troubled=troubled,
                stale=stale_rows, depths=depths, configured=source is not None)  # fmt: skip


def install_handlers(app: Any) -> None:
    async def on_page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        body = render(
            "error.html", request=request, error=exc, operator=False, caller=None, csrf=""
        )
        return HTMLResponse(body, status_code=exc.status)

    async def on_sign_in(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        target = f"{SIGN_IN}?post_login_redirect_uri={quote(exc.back_to, safe='')}"
        return RedirectResponse(target, status_code=302)

    app.add_exception_handler(PageError, on_page_error)
    app.add_exception_handler(SignInRequired, on_sign_in)


def grace() -> timedelta:
    """How long a run may take before its slot's missing snapshot makes a tenant stale."""
    return run_deadline()
