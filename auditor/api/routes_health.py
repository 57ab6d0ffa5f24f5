"""`GET /api/health`: the app is up (no store access, no caller needed, reveals no tenant)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from auditor import __version__
from auditor.api.problems import documented
from auditor.api.representation import JSON, dump_json
from auditor.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get(
    "/api/health",
    response_model=Health,
    summary="Liveness",
    description="Answers while the app runs. Needs no caller identity and reads no storage.",
    responses=documented(400, 500),
)
def health() -> Response:
    body = dump_json({"status": "ok", "version": __version__})
    return Response(body, media_type=JSON, headers={"Cache-Control": "no-store"})
