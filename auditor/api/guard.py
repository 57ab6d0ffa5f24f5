"""What a request must be before the app reads it: a bounded body, JSON for state changes, and
(local mode) a loopback Host.

- Every request body is capped at ``MAX_BODY_BYTES`` (1 MiB; a pack request is under 200
  bytes): a longer one is a 413 problem before any route reads it, whether it announces its
  length or streams it. Applies in Azure too.
- A state-changing request (POST, PUT, PATCH, DELETE) must say ``Content-Type:
  application/json``, with or without a body; anything else is a 415 problem. A browser sends
  a cross-site form or ``text/plain`` POST without asking the server first (no CORS
  preflight), so this is what keeps a web page from queueing packs through a local ``serve``.
  Checked on routes only (a dependency of every router), so a method a path does not answer
  stays a 405. Applies in Azure too.
- Local mode only: the Host header must name a loopback address (127.0.0.0/8, ::1,
  localhost), or the request is a 400 naming ``Host``: a page of another site whose name an
  attacker resolves to 127.0.0.1 (DNS rebinding) cannot read the local API. Links are built
  from the bound address, never from the Host header. In Azure the platform fronts the app and
  routes by host name, so the rule is not needed there.
- Azure only: a path under ``/api`` is answered only when it came through the HTTP function
  that needs the function key (``ApiThroughKeyedFunction``; the functions are in
  auditor/api/http_functions.py). Through any other function (the dashboard's anonymous one)
  it answers exactly like an unknown path under /api and never reaches a route. The platform
  names the invoked function in the request (``azure_functions.function_name``); a request
  that names none is refused too.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import Request

from auditor.api.problems import (
    INVALID_PARAMETER,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    ApiProblem,
    problem_response,
    unknown_path,
)
from auditor.core.loopback import host_name, is_loopback

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 1024 * 1024
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_MEDIA_TYPE = "application/json"
# Any spelling a router or a host might take for /api: case and repeated slashes ignored.
_API_PATH = re.compile(r"^/*api(/|$)", re.IGNORECASE)
FUNCTION_NAME_KEY = "azure_functions.function_name"


def is_api_path(path: str) -> bool:
    return _API_PATH.match(path) is not None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _too_large() -> ApiProblem:
    return ApiProblem(
        413,
        PAYLOAD_TOO_LARGE,
        f"The request body is larger than {MAX_BODY_BYTES:,} bytes, the most this API accepts.",
    )


class BodyLimit:
    """ASGI middleware: refuse a body over `max_bytes` with a 413 problem, before the app."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_bytes:
            await problem_response(_too_large())(scope, receive, send)
            return
        # Read the body here, at most max_bytes of it, then hand it to the app in one message.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            chunk = bytes(message.get("body", b""))
            size += len(chunk)
            if size > self.max_bytes:
                await problem_response(_too_large())(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body: Message | None = {
            "type": "http.request",
            "body": b"".join(chunks),
            "more_body": False,
        }

        async def replay() -> Message:
            nonlocal body
            if body is not None:
                message, body = body, None
                return message
            return await receive()

        await self.app(scope, replay, send)


class LoopbackHostOnly:
    """ASGI middleware of local mode: a Host header that is not loopback is a 400 problem."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = _header(scope, b"host") or ""
            if not is_loopback(host_name(host.strip())):
                problem = ApiProblem(
                    400,
                    INVALID_PARAMETER,
                    "Local mode answers only requests addressed to a loopback host "
                    "(127.0.0.1, ::1 or localhost).",
                    parameter="Host",
                )
                await problem_response(problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class ApiThroughKeyedFunction:
    """ASGI middleware of Azure: a path under /api reaches the app only through `function`,
    the HTTP function whose route needs the function key; otherwise it is an unknown path."""

    def __init__(self, app: ASGIApp, *, function: str) -> None:
        self.app = app
        self.function = function

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get(FUNCTION_NAME_KEY) != self.function:
            raw = bytes(scope.get("raw_path") or b"").decode("latin-1")
            if is_api_path(str(scope.get("path", ""))) or is_api_path(raw):
                await problem_response(unknown_path())(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def require_json_for_changes(request: Request) -> None:
    """Dependency of every router: a state-changing request must be application/json (415)."""
    if request.method not in STATE_CHANGING:
        return
    declared = request.headers.get("content-type") or ""
    media = declared.split(";", 1)[0].strip().lower()
    if media != JSON_MEDIA_TYPE:
        said = f"got {media[:64]!r}" if media else "it sent none"
        raise ApiProblem(
            415,
            UNSUPPORTED_MEDIA_TYPE,
            f"A {request.method} request must send Content-Type: application/json ({said}).",
        )
