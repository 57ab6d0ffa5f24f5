"""RFC 9457 problem details: every error the API answers is ``application/problem+json``.

A problem names its type (a URN listed in docs/api.md), a title per type, the HTTP status, a
detail for the caller and, for a bad request, the parameter at fault. Nothing internal (stack,
storage error, setting) ever reaches a response body.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from auditor.adapters.tables.store import CorruptSnapshot
from auditor.api.representation import dump_json
from auditor.core.snapshot import SnapshotTampered

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

Handler = Callable[[Request, Exception], Awaitable[Response]]

INVALID_PARAMETER = "urn:auditor:problem:invalid-parameter"
TENANT_NOT_FOUND = "urn:auditor:problem:tenant-not-found"
SNAPSHOT_NOT_FOUND = "urn:auditor:problem:snapshot-not-found"
UNAUTHENTICATED = "urn:auditor:problem:unauthenticated"
NOT_ACCEPTABLE = "urn:auditor:problem:not-acceptable"
NOT_FOUND = "urn:auditor:problem:not-found"
METHOD_NOT_ALLOWED = "urn:auditor:problem:method-not-allowed"
UNAVAILABLE = "urn:auditor:problem:unavailable"
PAYLOAD_TOO_LARGE = "urn:auditor:problem:payload-too-large"
UNSUPPORTED_MEDIA_TYPE = "urn:auditor:problem:unsupported-media-type"
INTERNAL = "urn:auditor:problem:internal"
FAILED_VERIFICATION = "urn:auditor:problem:snapshot-failed-verification"
OPERATORS_ONLY = "urn:auditor:problem:operators-only"
RUN_NOT_FOUND = "urn:auditor:problem:run-not-found"

TITLES = {
    INVALID_PARAMETER: "A request parameter is invalid",
    TENANT_NOT_FOUND: "Tenant not found",
    SNAPSHOT_NOT_FOUND: "Snapshot not found",
    UNAUTHENTICATED: "Authentication required",
    NOT_ACCEPTABLE: "No acceptable representation",
    NOT_FOUND: "Not found",
    METHOD_NOT_ALLOWED: "Method not allowed",
    UNAVAILABLE: "Storage unavailable",
    PAYLOAD_TOO_LARGE: "Request body too large",
    UNSUPPORTED_MEDIA_TYPE: "Unsupported media type",
    INTERNAL: "Internal error",
    FAILED_VERIFICATION: "Snapshot failed verification",
    OPERATORS_ONLY: "Operators only",
    RUN_NOT_FOUND: "Run not found",
}

# One fixed answer for a tenant the caller may not see and for one that does not exist: no
# tenant id, no hint of which case it is.
TENANT_NOT_FOUND_DETAIL = "No tenant with this id is visible to the caller."


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="URN naming the kind of problem (see docs/api.md).")
    title: str = Field(description="Short summary of the problem type.")
    status: int = Field(description="HTTP status code.")
    detail: str = Field(description="What went wrong with this request.")
    parameter: str | None = Field(
        default=None, description="The request parameter at fault (400 only)."
    )


class ApiProblem(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        type_: str,
        detail: str,
        *,
        parameter: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.type = type_
        self.detail = detail
        self.parameter = parameter
        self.headers = headers or {}


def invalid(parameter: str, detail: str) -> ApiProblem:
    return ApiProblem(400, INVALID_PARAMETER, detail, parameter=parameter)


def tenant_not_found() -> ApiProblem:
    return ApiProblem(404, TENANT_NOT_FOUND, TENANT_NOT_FOUND_DETAIL)


def snapshot_not_found(detail: str) -> ApiProblem:
    return ApiProblem(404, SNAPSHOT_NOT_FOUND, detail)


def unknown_path() -> ApiProblem:
    """What a path under /api that no route answers gets."""
    return ApiProblem(404, NOT_FOUND, "No such path in this API.")


def problem_response(problem: ApiProblem) -> Response:
    body: dict[str, Any] = {
        "type": problem.type,
        "title": TITLES[problem.type],
        "status": problem.status,
        "detail": problem.detail,
    }
    if problem.parameter is not None:
        body["parameter"] = problem.parameter
    headers = {"Cache-Control": "no-store", **problem.headers}
    return Response(
        dump_json(body), status_code=problem.status, media_type=PROBLEM_JSON, headers=headers
    )


# FastAPI names parameters by location and alias: ("query", "$top"), ("path", "tenantId").
def _parameter_of(error: dict[str, Any]) -> str:
    loc = [str(part) for part in error.get("loc", ())]
    if len(loc) >= 2 and loc[0] in ("query", "path", "header"):
        return loc[1]
    return ".".join(loc) or "request"


def validation_detail(
    parameter: str, error: Mapping[str, Any], words: Mapping[str, str] | None = None
) -> str:
    """A validation error in words: what the parameter must be, never the pattern it failed
    (pydantic's message for a pattern quotes the regular expression)."""
    kind = str(error.get("type", ""))
    if kind == "missing":
        return f"{parameter} is required"
    if kind == "string_pattern_mismatch":
        return f"{parameter}: {(words or {}).get(parameter, 'is not in the documented form')}"
    message = str(error.get("msg", "is invalid"))
    return f"{parameter}: {message}"


async def _on_api_problem(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiProblem)
    return problem_response(exc)


def _on_validation_error(words: Mapping[str, str]) -> Handler:
    async def handle(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        first = errors[0] if errors else {}
        parameter = _parameter_of(first)
        return problem_response(invalid(parameter, validation_detail(parameter, first, words)))

    return handle


async def _on_http_exception(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        problem = ApiProblem(405, METHOD_NOT_ALLOWED, "This path does not answer that method.")
        allow = (exc.headers or {}).get("Allow") or (exc.headers or {}).get("allow")
        if allow:
            problem.headers["Allow"] = allow
        return problem_response(problem)
    if exc.status_code == 404:
        return problem_response(unknown_path())
    if exc.status_code == 400:
        # Starlette's own 400s (e.g. a body that does not decode) are the caller's error.
        return problem_response(
            ApiProblem(400, INVALID_PARAMETER, "The request is malformed.", parameter="body")
        )
    log.warning("unexpected HTTP exception %s", exc.status_code)
    return problem_response(ApiProblem(500, INTERNAL, "The request could not be answered."))


async def _on_failed_verification(_: Request, exc: Exception) -> Response:
    # A snapshot whose rows or content disagree with its attempt's anchor (or that has none):
    # never answered with its data. The tenant was checked visible before any store read.
    snapshot_id = getattr(exc, "snapshot_id", "")
    log.error("refused a snapshot that failed verification: %s", exc)
    return problem_response(
        ApiProblem(
            500,
            FAILED_VERIFICATION,
            f"Snapshot {snapshot_id} of this tenant failed verification against the anchor "
            "its collection wrote; it is not served (run `verify` to see why).",
        )
    )


async def _on_unexpected(_: Request, exc: Exception) -> Response:
    log.exception("unhandled error answering a request", exc_info=exc)
    return problem_response(ApiProblem(500, INTERNAL, "The request could not be answered."))


def install(app: FastAPI, words: Mapping[str, str] | None = None) -> None:
    """Make every error of `app` (ours, FastAPI's validation, routing, crashes) a problem;
    `words` says per parameter what a value failing its declared pattern must be."""
    app.add_exception_handler(ApiProblem, _on_api_problem)
    app.add_exception_handler(RequestValidationError, _on_validation_error(dict(words or {})))
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(SnapshotTampered, _on_failed_verification)
    app.add_exception_handler(CorruptSnapshot, _on_failed_verification)
    app.add_exception_handler(Exception, _on_unexpected)


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the problems a route can answer."""
    meaning = {
        400: "A parameter is malformed, unknown, or out of range (the problem names it).",
        401: "No authenticated caller (App Service Authentication did not identify one).",
        403: "The caller is not an operator (the access policy's `operators`).",
        404: "Unknown tenant (or one the caller may not see), or no matching snapshot.",
        406: "The Accept header allows no representation this route has.",
        413: "The request body is larger than the API accepts (1 MiB).",
        415: "A state-changing request must send Content-Type: application/json.",
        500: "Unexpected error (details are logged, never returned), or a snapshot that "
        "failed verification against its anchor (type snapshot-failed-verification).",
        503: "The snapshot store could not be reached; retry later.",
    }
    return {
        status: {
            "description": meaning[status],
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
