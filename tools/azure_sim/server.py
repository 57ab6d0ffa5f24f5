"""HTTPS server of the simulator: managed identity, Resource Graph, two REST operations, control.

Standard library only (``http.server``); TLS from a trustme CA created by ``__main__``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import math
import secrets
import socket
import ssl
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import arg as argmod
from .estate import MAX_DAY, Estate, det_guid
from .hostile import KEYS as HOSTILE_KEYS
from .hostile import Hostile, padded_parts

MSI_API_VERSION = "2019-08-01"
METADATA_API_VERSIONS = ("2021-06-01", "2019-01-01-preview")
JIT_API_VERSIONS = ("2020-01-01", "2015-06-01-preview")
METADATA_PAGE = 50
JIT_PAGE = 2
TOKEN_LIFETIME_S = 24 * 3600
ARG_PATH = "/providers/microsoft.resourcegraph/resources"
METADATA_PATH = "/providers/microsoft.security/assessmentmetadata"
TENANTS_PATH = "/tenants"
TENANTS_API_VERSIONS = ("2022-12-01", "2020-01-01")
TENANTS_PAGE = 50
JIT_SUFFIX = "/providers/microsoft.security/jitnetworkaccesspolicies"


# --- quota -------------------------------------------------------------------------------------


class Quota:
    """ARG user quota: ``limit`` queries per sliding ``window`` seconds, per principal."""

    def __init__(self, limit: int | None, window: float) -> None:
        self.limit = limit
        self.window = window
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def set(self, limit: int | None, window: float) -> None:
        with self._lock:
            self.limit, self.window = limit, window
            self._events.clear()

    def describe(self) -> dict[str, Any]:
        if self.limit is None:
            return {"off": True}
        return {"limit": self.limit, "window_s": self.window}

    def _prune(self, q: deque[float], now: float) -> None:
        while q and q[0] <= now - self.window:
            q.popleft()

    def take(self, principal: str, consume: bool) -> tuple[bool, int, float]:
        """(allowed, remaining, seconds until the window frees a slot)."""
        now = time.monotonic()
        with self._lock:
            if self.limit is None:
                return True, 1_000_000, 0.0
            q = self._events.setdefault(principal, deque())
            self._prune(q, now)
            if consume and len(q) >= self.limit:
                return False, 0, q[0] + self.window - now
            if consume:
                q.append(now)
            resets = (q[0] + self.window - now) if q else self.window
            return True, self.limit - len(q), resets


def hhmmss(seconds: float) -> str:
    s = max(0, math.ceil(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


# --- state -------------------------------------------------------------------------------------


@dataclass
class Faults:
    http_5xx: int = 0
    slow_ms: int = 0
    drop: int = 0
    forbidden_tenants: list[str] = field(default_factory=list)
    fail_queries_matching: str | None = None
    # tenant id -> first simulated day on which the tenant's delegation is removed (its
    # subscriptions leave Resource Graph's scope and the tenant directory). Mutated in place:
    # the estate holds the same dict.
    undelegated_from: dict[str, int] = field(default_factory=dict)
    _served_5xx: int = 0
    # Hostile modes (tools/azure_sim/hostile.py): their keys are routed there.
    hostile: Hostile = field(default_factory=Hostile)

    def describe(self) -> dict[str, Any]:
        return (
            {
                "http_5xx": self.http_5xx,
                "slow_ms": self.slow_ms,
                "drop": self.drop,
                "forbidden_tenants": list(self.forbidden_tenants),
                "fail_queries_matching": self.fail_queries_matching,
            }
            | self.hostile.describe()
            | ({"undelegated_from": dict(self.undelegated_from)} if self.undelegated_from else {})
        )

    def update(self, spec: dict[str, Any]) -> None:
        """Merge ``spec``; ``{}`` or ``{"clear": true}`` resets everything first."""
        if not isinstance(spec, dict):
            raise ValueError("faults must be a JSON object")
        hostile = {k: v for k, v in spec.items() if k in HOSTILE_KEYS}
        honest = {k: v for k, v in spec.items() if k not in HOSTILE_KEYS}
        if not spec or spec.get("clear"):
            self.hostile.clear()
        self.hostile.update(hostile)
        if hostile and not honest:
            return
        spec = honest
        known = {
            "http_5xx",
            "slow_ms",
            "drop",
            "forbidden_tenants",
            "fail_queries_matching",
            "undelegated_from",
            "clear",
        }
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        if not spec or spec.get("clear"):
            self.http_5xx = self.slow_ms = self.drop = 0
            self.forbidden_tenants = []
            self.fail_queries_matching = None
            self.undelegated_from.clear()
        for name in ("http_5xx", "slow_ms", "drop"):
            if name in spec:
                v = spec[name]
                v = 0 if v is None else v
                if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    raise ValueError(f"{name} must be a non-negative integer")
                setattr(self, name, v)
        if "forbidden_tenants" in spec:
            v = spec["forbidden_tenants"] or []
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise ValueError("forbidden_tenants must be a list of tenant ids")
            self.forbidden_tenants = sorted({x.lower() for x in v})
        if "fail_queries_matching" in spec:
            v = spec["fail_queries_matching"]
            if v is not None and not isinstance(v, str):
                raise ValueError("fail_queries_matching must be a string or null")
            self.fail_queries_matching = v or None
        if "undelegated_from" in spec:
            v = spec["undelegated_from"] or {}
            if not isinstance(v, dict) or not all(
                isinstance(k, str) and isinstance(d, int) and not isinstance(d, bool) and d >= 0
                for k, d in v.items()
            ):
                raise ValueError("undelegated_from must map tenant ids to a day (integer >= 0)")
            self.undelegated_from.clear()
            self.undelegated_from.update({k.lower(): d for k, d in v.items()})


class Stats:
    FIELDS = (
        "arg_queries",
        "arg_pages_served",
        "arg_rows_served",
        "arg_429",
        "arg_5xx",
        "arg_403",
        "arg_400",
        "rest_5xx",
        "rest_403",
        "dropped",
        "token_requests",
        "tokens_issued",
        "auth_failures",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.counts = dict.fromkeys(self.FIELDS, 0)
            self.rest_calls = {"assessmentMetadata": 0, "jitNetworkAccessPolicies": 0, "tenants": 0}

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] += n

    def rest(self, op: str) -> None:
        with self._lock:
            self.rest_calls[op] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self.counts) | {"rest_calls": dict(self.rest_calls)}


class SimState:
    """Everything the handlers share."""

    def __init__(
        self,
        estate: Estate,
        *,
        day: int = 0,
        quota: tuple[int, float] | None = (15, 5.0),
        faults: dict[str, Any] | None = None,
        identity_header: str | None = None,
    ) -> None:
        self.estate = estate
        self.graph = argmod.ResourceGraph(estate)
        self.day = day
        self.quota = Quota(quota[0] if quota else None, quota[1] if quota else 5.0)
        self.faults = Faults()
        estate.undelegated_from = self.faults.undelegated_from  # one dict, updated in place
        if faults:
            self.faults.update(faults)
        self.stats = Stats()
        self.identity_header = identity_header or secrets.token_urlsafe(24)
        self.client_id = det_guid(estate.seed, "client-id")
        self._secret = secrets.token_bytes(32)
        self.base_url = ""  # set once the port is known
        self.lock = threading.Lock()

    # --- tokens ------------------------------------------------------------------------------

    def issue_token(self, audience: str) -> tuple[str, int]:
        now = int(time.time())
        exp = now + TOKEN_LIFETIME_S
        est = self.estate
        header = {"alg": "HS256", "typ": "JWT"}
        payload = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{est.managing_tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": exp,
            "appid": self.client_id,
            "idtyp": "app",
            "oid": est.principal_id,
            "sub": est.principal_id,
            "tid": est.managing_tenant_id,
            "jti": uuid.uuid4().hex,
        }
        signing = _b64(json.dumps(header)) + "." + _b64(json.dumps(payload))
        sig = hmac.new(self._secret, signing.encode(), hashlib.sha256).digest()
        return signing + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode(), exp

    def verify_token(self, token: str) -> tuple[dict[str, Any] | None, str]:
        try:
            h, p, s = token.split(".")
            expect = hmac.new(self._secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
            got = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
            if not hmac.compare_digest(expect, got):
                return None, "The access token signature is invalid (not issued by this server)."
            payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
        except (ValueError, TypeError):
            return None, "The access token is malformed."
        if payload.get("exp", 0) < time.time():
            return None, "The access token expiry UTC time is earlier than current UTC time."
        if _norm(payload.get("aud", "")) != _norm(self.base_url):
            return None, (
                f"The access token has an invalid audience '{payload.get('aud')}'; expected "
                f"'{self.base_url}'."
            )
        return payload, ""


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _norm(url: str) -> str:
    return url.rstrip("/").lower()


def _arm_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


# --- HTTP --------------------------------------------------------------------------------------


class _Drop(Exception):
    """Close the connection without answering."""


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: SimState, ssl_context: ssl.SSLContext):
        self.state = state
        self.ssl_context = ssl_context
        super().__init__(address, Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # TLS handshake in the connection's own thread, so a slow client never blocks accept()
        try:
            request.settimeout(30)
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        try:
            Handler(tls, client_address, self)
        finally:
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, socket.timeout, TimeoutError)):
            return
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "azure-sim/1.0"
    sys_version = ""
    timeout = 120
    server: SimServer

    def log_message(self, format: str, *args: Any) -> None:
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    # --- plumbing ------------------------------------------------------------------------------

    @property
    def st(self) -> SimState:
        return self.server.state

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(
        self,
        status: int,
        body: str | bytes | dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        if isinstance(body, dict):
            body = json.dumps(body)
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        body = self._body()
        try:
            if path == "/msi/token":
                self._msi(method, query)
            elif path.startswith("/_sim/"):
                self._control(method, path, query, body)
            else:
                self._arm(method, path.lower().rstrip("/"), query, body)
        except _Drop:
            self.close_connection = True
        except (ConnectionError, ssl.SSLError):
            self.close_connection = True
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            self._send(500, _arm_error("InternalServerError", f"Simulator error: {exc!r}"))

    # --- managed identity ----------------------------------------------------------------------

    def _msi(self, method: str, query: dict[str, str]) -> None:
        st = self.st
        st.stats.add("token_requests")
        cid = str(uuid.uuid4())
        if method != "GET":
            self._send(
                405, {"statusCode": 405, "message": "Method not allowed", "correlationId": cid}
            )
            return
        secret = self.headers.get("X-IDENTITY-HEADER") or ""
        if not hmac.compare_digest(secret.encode(), st.identity_header.encode()):
            self._send(
                401,
                {
                    "statusCode": 401,
                    "message": "Missing or invalid X-IDENTITY-HEADER.",
                    "correlationId": cid,
                },
            )
            return
        if query.get("api-version") != MSI_API_VERSION:
            self._send(
                400,
                {
                    "statusCode": 400,
                    "message": f"api-version must be {MSI_API_VERSION}.",
                    "correlationId": cid,
                },
            )
            return
        for p in ("principal_id", "object_id", "mi_res_id"):
            if query.get(p):
                self._send(
                    400,
                    {
                        "statusCode": 400,
                        "message": "Unable to load the proper Managed Identity: only the "
                        "system-assigned identity exists.",
                        "correlationId": cid,
                    },
                )
                return
        if query.get("client_id") and query["client_id"].lower() != st.client_id:
            self._send(
                400,
                {
                    "statusCode": 400,
                    "message": "Unable to load the proper Managed Identity: unknown client_id.",
                    "correlationId": cid,
                },
            )
            return
        resource = query.get("resource", "")
        if _norm(resource) != _norm(st.base_url):
            self._send(
                400,
                {
                    "statusCode": 400,
                    "message": f"Unable to issue a token for resource '{resource}': this "
                    f"simulator only issues tokens for '{st.base_url}'.",
                    "correlationId": cid,
                },
            )
            return
        token, exp = st.issue_token(resource)
        st.stats.add("tokens_issued")
        self._send(
            200,
            {
                "access_token": token,
                "expires_on": str(exp),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": st.client_id,
            },
        )

    # --- ARM -----------------------------------------------------------------------------------

    def _arm(self, method: str, path: str, query: dict[str, str], body: bytes) -> None:
        st = self.st
        is_arg = path == ARG_PATH
        rid = str(uuid.uuid4())
        headers = {"x-ms-request-id": rid, "x-ms-correlation-request-id": rid}
        with st.lock:
            faults = st.faults
            slow_ms = faults.slow_ms
            drop = faults.drop > 0
            if drop:
                faults.drop -= 1
            fail_status = 0
            if not drop and faults.http_5xx > 0:
                faults.http_5xx -= 1
                fail_status = 500 if faults._served_5xx % 2 == 0 else 503
                faults._served_5xx += 1
        if slow_ms:
            time.sleep(slow_ms / 1000.0)
        if drop:
            st.stats.add("dropped")
            raise _Drop()
        if fail_status:
            st.stats.add("arg_5xx" if is_arg else "rest_5xx")
            code = "InternalServerError" if fail_status == 500 else "ServiceUnavailable"
            self._send(
                fail_status,
                _arm_error(code, f"Injected fault: HTTP {fail_status}."),
                headers | (self._quota_headers(None) if is_arg else {}),
            )
            return

        principal = self._authenticate(headers)
        if principal is None:
            return
        location = self.st.faults.hostile.redirect_for(self.path)
        if location is not None:
            self._send(307, _arm_error("Redirect", "Moved."), headers | {"Location": location})
            return
        if is_arg:
            if method != "POST":
                self._send(405, _arm_error("MethodNotAllowed", "Use POST."), headers)
                return
            self._resource_graph(query, body, principal, headers)
        elif path == METADATA_PATH and method == "GET":
            self._metadata(query, headers)
        elif path == TENANTS_PATH and method == "GET":
            self._tenants(query, headers)
        elif path.startswith("/subscriptions/") and path.endswith(JIT_SUFFIX) and method == "GET":
            sid = path[len("/subscriptions/") : -len(JIT_SUFFIX)]
            self._jit(sid, query, principal, headers)
        else:
            self._send(
                404,
                _arm_error(
                    "InvalidResourceType",
                    f"The simulator does not serve {method} {self.path.split('?')[0]}.",
                ),
                headers,
            )

    def _authenticate(self, headers: dict[str, str]) -> str | None:
        st = self.st
        auth = self.headers.get("Authorization") or ""
        if not auth.lower().startswith("bearer "):
            message = "Authentication failed. The 'Authorization' header is missing."
        else:
            payload, message = st.verify_token(auth[7:].strip())
            if payload is not None:
                return str(payload["oid"])
        st.stats.add("auth_failures")
        self._send(
            401,
            _arm_error("AuthenticationFailed", message),
            headers | {"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
        return None

    def _api_version(self, query: dict[str, str], allowed: tuple[str, ...]) -> str | None:
        v = query.get("api-version")
        if not v:
            return None
        return v if v in allowed else ""

    def _check_api(
        self, query: dict[str, str], allowed: tuple[str, ...], headers: dict[str, str]
    ) -> str | None:
        v = self._api_version(query, allowed)
        if v is None:
            self._send(
                400,
                _arm_error(
                    "MissingApiVersionParameter",
                    "The api-version query parameter (?api-version=) is required for all requests.",
                ),
                headers,
            )
            return None
        if v == "":
            self._send(
                400,
                _arm_error(
                    "InvalidApiVersionParameter",
                    f"The api-version '{query.get('api-version')}' is invalid. The supported "
                    f"versions are '{','.join(allowed)}'.",
                ),
                headers,
            )
            return None
        return v

    def _quota_headers(
        self, principal: str | None, remaining: int | None = None, resets: float | None = None
    ) -> dict[str, str]:
        if remaining is None or resets is None:
            _ok, remaining, resets = self.st.quota.take(principal or "", consume=False)
        return {
            "x-ms-user-quota-remaining": str(remaining),
            "x-ms-user-quota-resets-after": hhmmss(resets),
            "x-ms-ratelimit-remaining-tenant-resource-requests": str(remaining),
        }

    def _resource_graph(
        self, query: dict[str, str], body: bytes, principal: str, headers: dict[str, str]
    ) -> None:
        st = self.st
        api = self._check_api(query, argmod.API_VERSIONS, headers | self._quota_headers(principal))
        if api is None:
            return
        allowed, remaining, resets = st.quota.take(principal, consume=True)
        if not allowed:
            st.stats.add("arg_429")
            retry = max(1, math.ceil(resets))
            self._send(
                429,
                _arm_error(
                    "RateLimiting",
                    "Please provide below info when asking for support: timestamp = "
                    f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, correlationId = "
                    f"{headers['x-ms-request-id']}. Client application has been throttled and "
                    "should not attempt to repeat the request until an amount of time has "
                    f"elapsed. Retry after {retry} seconds.",
                ),
                headers
                | {
                    "Retry-After": str(retry),
                    "x-ms-user-quota-remaining": "0",
                    "x-ms-user-quota-resets-after": hhmmss(resets),
                    "x-ms-ratelimit-remaining-tenant-resource-requests": "0",
                },
            )
            return
        st.stats.add("arg_queries")
        qh = headers | self._quota_headers(principal, remaining, resets)
        try:
            parsed = json.loads(body or b"null")
        except ValueError:
            st.stats.add("arg_400")
            self._send(
                400,
                argmod.bad_request(
                    [{"code": "InvalidRequestContent", "message": "The request body is not JSON."}]
                ).body,
                qh,
            )
            return
        with st.lock:
            day = st.day
            forbidden = frozenset(st.faults.forbidden_tenants)
            failing = st.faults.fail_queries_matching
            hostile = st.faults.hostile
        if failing and isinstance(parsed, dict) and failing in str(parsed.get("query", "")):
            st.stats.add("arg_5xx")
            self._send(500, _arm_error("InternalServerError", "Injected query failure."), qh)
            return
        discovery = hostile.discovery_failure(parsed)
        if discovery == "drop":
            st.stats.add("dropped")
            raise _Drop()
        if discovery == "5xx":
            st.stats.add("arg_5xx")
            self._send(
                503, _arm_error("ServiceUnavailable", "Injected."), qh | {"Retry-After": "0"}
            )
            return
        parsed, hostile_page = hostile.arg_request(parsed)
        try:
            text, info = st.graph.query(
                parsed, day=day, forbidden_tenants=forbidden, principal=principal, api_version=api
            )
        except argmod.ArgError as err:
            st.stats.add("arg_403" if err.status == 403 else "arg_400")
            self._send(err.status, err.body, qh)
            return
        st.stats.add("arg_pages_served")
        st.stats.add("arg_rows_served", info["rows"])
        text = hostile.arg_answer(text, hostile_page)
        oversized = hostile.oversized("arg") if hostile_page is not None else None
        if oversized is not None:
            self._send_padded(text, *oversized, qh)
            return
        self._send(200, text, qh)

    # --- REST (nextLink paging) ----------------------------------------------------------------

    def _page_token(self, day: int, offset: int, kind: str) -> str:
        raw = f"{kind}.{day}.{offset}"
        mac = hmac.new(self.st._secret, raw.encode(), hashlib.sha256).hexdigest()[:12]
        return base64.urlsafe_b64encode(f"{raw}.{mac}".encode()).rstrip(b"=").decode()

    def _read_page_token(self, token: str, kind: str) -> tuple[int, int] | None:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            k, day, offset, mac = raw.split(".")
            expect = hmac.new(
                self.st._secret, f"{k}.{day}.{offset}".encode(), hashlib.sha256
            ).hexdigest()[:12]
            if k != kind or not hmac.compare_digest(mac, expect):
                return None
            return int(day), int(offset)
        except (ValueError, UnicodeDecodeError):
            return None

    def _paged(
        self,
        op: str,
        items: list[dict[str, Any]],
        offset: int,
        size: int,
        next_url: Callable[[int], str],
        headers: dict[str, str],
    ) -> None:
        page = items[offset : offset + size]
        body: dict[str, Any] = {"value": page}
        if offset + size < len(items):
            body["nextLink"] = next_url(offset + size)
        hostile = self.st.faults.hostile
        if not hostile.rest_applies(op):
            self._send(200, body, headers)
            return
        if hostile.slow_rest_ms:
            time.sleep(hostile.slow_rest_ms / 1000.0)
        text = hostile.rest_answer(op, body, self.st.base_url + self.path, next_url(0))
        oversized = hostile.oversized("rest")
        if oversized is not None:
            self._send_padded(text, *oversized, headers)
            return
        self._send(200, text, headers)

    def _send_padded(self, text: str, size: int, chunked: bool, headers: dict[str, str]) -> None:
        """A 200 of `size` bytes (a valid page, padded), streamed: with a Content-Length, or
        chunked so that the client cannot know the size before reading."""
        head, padding, tail = padded_parts(text, size)
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(head) + padding + len(tail)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        block = b"A" * (1 << 20)
        try:
            self._write_piece(head, chunked)
            left = padding
            while left:
                piece = block[: min(left, len(block))]
                self._write_piece(piece, chunked)
                left -= len(piece)
            self._write_piece(tail, chunked)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except (ConnectionError, ssl.SSLError, OSError):
            self.close_connection = True  # the client stopped reading: as intended

    def _write_piece(self, piece: bytes, chunked: bool) -> None:
        if chunked:
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        else:
            self.wfile.write(piece)

    def _page_offset(self, query: dict[str, str], kind: str, headers: dict[str, str]) -> int | None:
        """Where a nextLink page starts (0 without a token); None after answering 400."""
        token = query.get("$skipToken")
        if not token:
            return 0
        parsed = self._read_page_token(token, kind)
        if parsed is None:
            self._send(400, _arm_error("InvalidSkipToken", "The skip token is invalid."), headers)
            return None
        return int(parsed[1])

    def _metadata(self, query: dict[str, str], headers: dict[str, str]) -> None:
        st = self.st
        st.stats.rest("assessmentMetadata")
        api = self._check_api(query, METADATA_API_VERSIONS, headers)
        if api is None:
            return
        offset = self._page_offset(query, "md", headers)
        if offset is None:
            return
        items = st.estate.assessment_metadata()

        def next_url(o: int) -> str:
            tok = self._page_token(0, o, "md")
            return (
                f"{st.base_url}/providers/Microsoft.Security/assessmentMetadata?"
                f"api-version={api}&$skipToken={tok}"
            )

        self._paged("assessmentMetadata", items, offset, METADATA_PAGE, next_url, headers)

    def _tenants(self, query: dict[str, str], headers: dict[str, str]) -> None:
        """GET /tenants (Subscriptions API, shape of GetTenants.json): the managing tenant
        ("Home") and every tenant that delegates to it ("ProjectedBy"), with display names."""
        st = self.st
        st.stats.rest("tenants")
        api = self._check_api(query, TENANTS_API_VERSIONS, headers)
        if api is None:
            return
        offset = self._page_offset(query, "tn", headers)
        if offset is None:
            return
        estate = st.estate
        listed = [(estate.managing_tenant_id, estate.managing_tenant_name, "Home")]
        listed += [
            (t["tenantId"], t["displayName"], "ProjectedBy")
            for t in estate.tenants(st.day)
            if t["subscriptions"]
        ]
        items = []
        for tenant_id, name, category in listed:
            domain = "".join(ch for ch in name.lower() if ch.isalnum()) + ".onmicrosoft.com"
            items.append(
                {
                    "id": f"/tenants/{tenant_id}",
                    "tenantId": tenant_id,
                    "countryCode": "US",
                    "displayName": name,
                    "domains": [domain],
                    "tenantCategory": category,
                    "defaultDomain": domain,
                    "tenantType": "AAD",
                }
            )

        def next_url(o: int) -> str:
            tok = self._page_token(0, o, "tn")
            return f"{st.base_url}/tenants?api-version={api}&$skipToken={tok}"

        self._paged("tenants", items, offset, TENANTS_PAGE, next_url, headers)

    def _jit(
        self, sid: str, query: dict[str, str], principal: str, headers: dict[str, str]
    ) -> None:
        st = self.st
        st.stats.rest("jitNetworkAccessPolicies")
        api = self._check_api(query, JIT_API_VERSIONS, headers)
        if api is None:
            return
        with st.lock:
            day = st.day
            forbidden = set(st.faults.forbidden_tenants)
        if query.get("$skipToken"):
            parsed = self._read_page_token(query["$skipToken"], "jit-" + sid)
            if parsed is None:
                self._send(
                    400, _arm_error("InvalidSkipToken", "The skip token is invalid."), headers
                )
                return
            day, offset = parsed
        else:
            offset = 0
        sub = st.estate.subscription(sid)
        if sub is None or not st.estate.is_delegated(sub.sid, day):
            self._send(
                404,
                _arm_error("SubscriptionNotFound", f"The subscription '{sid}' could not be found."),
                headers,
            )
            return
        if sub.tenant.tenant_id in forbidden:
            st.stats.add("rest_403")
            self._send(
                403,
                _arm_error(
                    "AuthorizationFailed",
                    f"The client '{principal}' with object id '{principal}' does not have "
                    "authorization to perform action "
                    "'Microsoft.Security/locations/jitNetworkAccessPolicies/read' over scope "
                    f"'/subscriptions/{sub.sid}' or the scope is invalid. If access was recently "
                    "granted, please refresh your credentials.",
                ),
                headers,
            )
            return
        items = st.estate.jit_policies(sub.sid, day)

        def next_url(o: int) -> str:
            tok = self._page_token(day, o, "jit-" + sid)
            return (
                f"{st.base_url}/subscriptions/{sub.sid}/providers/Microsoft.Security/"
                f"jitNetworkAccessPolicies?api-version={api}&$skipToken={tok}"
            )

        self._paged("jitNetworkAccessPolicies", items, offset, JIT_PAGE, next_url, headers)

    # --- control API ---------------------------------------------------------------------------

    def _stats(self) -> dict[str, Any]:
        return self.st.stats.snapshot() | {"hostile_served": self.st.faults.hostile.served_counts()}

    def _control(self, method: str, path: str, query: dict[str, str], body: bytes) -> None:
        st = self.st
        host = self.client_address[0] if self.client_address else ""
        loopback = host.startswith("127.") or host in ("::1", "localhost")
        secret = self.headers.get("X-Sim-Control") or ""
        if not loopback or not hmac.compare_digest(secret.encode(), st.identity_header.encode()):
            self._send(
                403, _arm_error("Forbidden", "Control API needs X-Sim-Control from loopback.")
            )
            return
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            self._send(400, _arm_error("BadRequest", "Body is not JSON."))
            return
        route = (method, path.rstrip("/"))
        try:
            if route == ("POST", "/_sim/day"):
                day = data.get("day") if isinstance(data, dict) else None
                if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= MAX_DAY:
                    raise ValueError(f"day must be an integer between 0 and {MAX_DAY}")
                with st.lock:
                    st.day = day
                self._send(200, {"day": day})
            elif route == ("POST", "/_sim/faults"):
                with st.lock:
                    st.faults.update(data)
                    out = st.faults.describe()
                self._send(200, out)
            elif route == ("POST", "/_sim/quota"):
                if not isinstance(data, dict):
                    raise ValueError("quota must be a JSON object")
                if data.get("off"):
                    st.quota.set(None, 5.0)
                else:
                    limit, window = data.get("limit"), data.get("window_s")
                    if (
                        isinstance(limit, bool)
                        or not isinstance(limit, int)
                        or limit < 1
                        or not isinstance(window, (int, float))
                        or window <= 0
                    ):
                        raise ValueError(
                            'quota needs {"limit": int>=1, "window_s": >0} or {"off": true}'
                        )
                    st.quota.set(limit, float(window))
                self._send(200, st.quota.describe())
            elif route == ("GET", "/_sim/estate"):
                day = int(query["day"]) if "day" in query else st.day
                details = query.get("details", "1") not in ("0", "false")
                summary = st.estate.summary(day, details=details)
                summary["clientId"] = st.client_id
                self._send(200, summary)
            elif route == ("GET", "/_sim/stats"):
                self._send(200, self._stats())
            elif route == ("POST", "/_sim/reset-stats"):
                st.stats.reset()
                st.faults.hostile.reset_counts()
                self._send(200, self._stats())
            elif route == ("GET", "/_sim/config"):
                with st.lock:
                    cfg = {
                        "size": st.estate.size,
                        "seed": st.estate.seed,
                        "day": st.day,
                        "quota": st.quota.describe(),
                        "faults": st.faults.describe(),
                        "base_url": st.base_url,
                        "cache_rows": st.estate.cache_rows,
                    }
                self._send(200, cfg)
            else:
                self._send(404, _arm_error("NotFound", f"No control route {method} {path}."))
        except ValueError as exc:
            self._send(400, _arm_error("BadRequest", str(exc)))
