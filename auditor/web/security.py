"""Browser-facing protections of the dashboard: security headers and CSRF on forms.

- ``SecurityHeaders``: every answer outside ``/api`` carries a strict Content-Security-Policy
  (only the app's own assets; no inline script or style, no framing, forms post only here),
  ``nosniff``, no referrer and no caching of pages (they hold tenant data).
- ``FormCSRF``: starlette-csrf's double-submit cookie check, extended to read the token from
  the form field ``csrftoken`` as well as the header, so that plain HTML forms (no script)
  carry it. The form body is read once (the app's BodyLimit caps it at 1 MiB) and replayed.
  ``/api`` is exempt: the API takes only JSON with a caller identity, never a cookie.
"""

from __future__ import annotations

import http.cookies
import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from itsdangerous.url_safe import URLSafeSerializer
from starlette.requests import Request
from starlette_csrf.middleware import CSRFMiddleware

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSRF_COOKIE = "csrftoken"
CSRF_FIELD = "csrftoken"
_FORM_TOKEN_KEY = "auditor.csrf.form"  # noqa: S105 - a scope key, not a secret
_NEW_TOKEN_KEY = "auditor.csrf.new"  # noqa: S105 - a scope key, not a secret
API_PATHS = re.compile(r"^/api(/|$)")

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)


def is_page_path(path: str) -> bool:
    return not API_PATHS.match(path)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_page_path(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = (
                    [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                    if not static
                    else list(message.get("headers", []))
                )
                headers.extend(PAGE_HEADERS)
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class FormCSRF(CSRFMiddleware):
    """starlette-csrf, with the token also accepted from an urlencoded form's field."""

    def __init__(self, app: ASGIApp, *, secure_cookie: bool, secret: str) -> None:
        super().__init__(
            app,
            secret,
            exempt_urls=[API_PATHS],
            cookie_name=CSRF_COOKIE,
            cookie_secure=secure_cookie,
            cookie_httponly=True,
            cookie_samesite="strict",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_page_path(scope.get("path", "")):
            # The API: no cookie set, none read (its callers send JSON and an identity).
            await self.app(scope, receive, send)
            return
        if scope.get("method") not in self.safe_methods:
            body = b""
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = bool(message.get("more_body"))
            content_type = Request(scope).headers.get("content-type", "")
            if content_type.startswith("application/x-www-form-urlencoded"):
                values = parse_qs(body.decode("latin-1"), max_num_fields=100).get(CSRF_FIELD)
                if values:
                    scope[_FORM_TOKEN_KEY] = values[0]
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if replayed:
                    return {"type": "http.disconnect"}
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            await super().__call__(scope, replay, send)
            return
        await super().__call__(scope, receive, send)

    async def send(self, message: Message, send: Send, scope: Scope) -> None:
        # A page that rendered a form before the browser had the cookie made the token the
        # form echoes (csrf_token): set that one, not a fresh one.
        if message["type"] == "http.response.start" and CSRF_COOKIE not in Request(scope).cookies:
            token = scope.get(_NEW_TOKEN_KEY) or self._generate_csrf_token()
            cookie: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
            cookie[CSRF_COOKIE] = token
            cookie[CSRF_COOKIE]["path"] = "/"
            cookie[CSRF_COOKIE]["secure"] = self.cookie_secure
            cookie[CSRF_COOKIE]["httponly"] = True
            cookie[CSRF_COOKIE]["samesite"] = self.cookie_samesite
            headers = list(message.get("headers", []))
            headers.append((b"set-cookie", cookie.output(header="").strip().encode("latin-1")))
            message["headers"] = headers
        await send(message)

    async def _get_submitted_csrf_token(self, request: Request) -> str | None:
        header = request.headers.get(self.header_name)
        form: str | None = request.scope.get(_FORM_TOKEN_KEY)
        return header or form


def csrf_token(request: Request) -> str:
    """The token a form must echo: the cookie's, or the one this answer will set.

    starlette-csrf sets the cookie on the first answer without one; a page that renders a
    form before the browser has the cookie makes it here and sets it itself.
    """
    existing = request.cookies.get(CSRF_COOKIE)
    if existing:
        return existing
    token: str | None = request.scope.get(_NEW_TOKEN_KEY)
    if token is None:
        serializer = URLSafeSerializer(request.app.state.csrf_secret, "csrftoken")
        token = str(serializer.dumps(secrets.token_urlsafe(64)))
        request.scope[_NEW_TOKEN_KEY] = token
    return token
