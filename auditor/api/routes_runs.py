"""`GET /api/runs`, `GET /api/runs/{slot}` and `GET /api/status`: operations data, operators
only (the access policy's ``operators``); tenant rows filtered by the caller's grant.

Included by ``create_app`` when the hosting passes ``extra["runs"]``
(auditor/services/operations.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from auditor.api.answer import answer_hashed, choose
from auditor.api.context import ApiContext, caller, context
from auditor.api.problems import OPERATORS_ONLY, RUN_NOT_FOUND, ApiProblem, documented, invalid
from auditor.core.access import Principal, TenantScope
from auditor.core.snapshot import SNAPSHOT_ID
from auditor.services.operations import Operations

router = APIRouter(tags=["operations"])

SlotPath = Annotated[
    str,
    Path(
        alias="slot",
        description="The run's slot, as a snapshot id (`YYYYMMDDTHHMMSSZ`).",
        pattern=SNAPSHOT_ID.pattern,
    ),
]
OBJECT = {"application/json": {"schema": {"type": "object"}}}


def _operator(ctx: ApiContext, who: Principal) -> tuple[Operations, TenantScope]:
    if not ctx.policy.is_operator(who):
        raise ApiProblem(
            403,
            OPERATORS_ONLY,
            "Runs and status are for operators (the access policy's operators).",
        )
    made = ctx.extra["runs"]
    # The hosting may pass a factory: storage clients are then made on the first request.
    operations: Operations = made if isinstance(made, Operations) else made()
    return operations, ctx.policy.scope_of(who)


@router.get(
    "/api/runs",
    summary="The latest runs (operators)",
    description=(
        "The latest full runs, newest first: slot, when planned and closed, by whom (`last-job`, "
        "`sweep`, `inline`), outcome, figures over the tenants the caller may see, the digest's "
        "hash, and each notification sink's delivery state."
    ),
    responses={200: {"content": OBJECT}, **documented(400, 401, 403, 406, 500, 503)},
)
def list_runs(
    request: Request,
    ctx: Annotated[ApiContext, Depends(context)],
    who: Annotated[Principal, Depends(caller)],
) -> Response:
    fmt = choose(request, None, csv_offered=False)
    operations, scope = _operator(ctx, who)
    document: dict[str, Any] = {"value": operations.list_runs(scope)}
    return answer_hashed(request, document, fmt)


@router.get(
    "/api/runs/{slot}",
    summary="One run and its digest (operators)",
    description=(
        "One run: open, or closed with its digest (per tenant the caller may see: status, "
        "reasons, stale, and `summary` in the shape of the diff's summary), tenants that joined "
        "or left the delegation, poison messages, and the delivery state of each sink."
    ),
    responses={200: {"content": OBJECT}, **documented(400, 401, 403, 404, 406, 500, 503)},
)
def get_run(
    request: Request,
    slot: SlotPath,
    ctx: Annotated[ApiContext, Depends(context)],
    who: Annotated[Principal, Depends(caller)],
) -> Response:
    fmt = choose(request, None, csv_offered=False)
    if not SNAPSHOT_ID.match(slot):  # pragma: no cover - the path pattern checked it
        raise invalid("slot", "must be a snapshot id YYYYMMDDTHHMMSSZ")
    operations, scope = _operator(ctx, who)
    run = operations.run(slot, scope)
    if run is None:
        raise ApiProblem(404, RUN_NOT_FOUND, "No run was planned for this slot.")
    return answer_hashed(request, run, fmt)


@router.get(
    "/api/status",
    summary="Deployment status (operators)",
    description=(
        "The latest run and the last closed one (slot, outcome, figures), tenants failed or "
        "stale in it, the job queues' depths and oldest messages as the collector last saw "
        "them, notification delivery state, and whether the evidence container is immutable. "
        "`/api/health` stays a liveness probe that reveals nothing."
    ),
    responses={200: {"content": OBJECT}, **documented(400, 401, 403, 406, 500, 503)},
)
def get_status(
    request: Request,
    ctx: Annotated[ApiContext, Depends(context)],
    who: Annotated[Principal, Depends(caller)],
) -> Response:
    fmt = choose(request, None, csv_offered=False)
    operations, scope = _operator(ctx, who)
    return answer_hashed(request, operations.status(scope), fmt)
