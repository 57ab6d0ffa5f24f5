"""Azure Resource Graph query engine of the simulator (no HTTP here).

``ResourceGraph.query(body, day=..., forbidden_tenants=...)`` takes the JSON body of
``POST /providers/Microsoft.ResourceGraph/resources`` and answers ``(status, json_text)`` with
ARG's response or error shapes.

Paging: at most 1,000 rows a page. A ``$skipToken`` encodes the query, the requested scope, the
day and the offset, with a MAC keyed on (size, seed): continuation pages come from the same day
even if the simulator's day changes mid-paging, and a token replayed with another query or scope
is refused (400 CouldNotDecodeSkipToken, as ARG does). Result sets are kept in a bounded LRU, and
for queries in id order (the default) a result set only holds per-subscription counts: pages are
cut from the per-subscription row cache, so paging a million rows never holds them all.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .estate import SCALAR_COLUMNS, TABLES, Estate, Row
from .kql import SCALAR_INDEX, KqlError, Predicate, Query, parse

MAX_PAGE = 1000
API_VERSIONS = ("2019-04-01", "2021-03-01", "2022-10-01", "2024-04-01")
SUB_LEVEL_COLUMNS = ("subscriptionId", "tenantId")


class ArgError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(json.dumps(body))
        self.status = status
        self.body = body


def _support_message() -> str:
    ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    return (
        "Please provide below info when asking for support: timestamp = "
        f"{ts}, correlationId = {uuid.uuid4()}."
    )


def bad_request(details: list[dict[str, Any]]) -> ArgError:
    return ArgError(
        400, {"error": {"code": "BadRequest", "message": _support_message(), "details": details}}
    )


def invalid_query(err: KqlError) -> ArgError:
    first = {
        "code": "InvalidQuery",
        "message": "Query is invalid. Please refer to the documentation for the Azure Resource "
        f"Graph service and fix the error before retrying. {err.message}",
    }
    if err.kind == "parser":
        second: dict[str, Any] = {
            "code": "ParserFailure",
            "message": f"ParserFailure: {err.message}",
            "line": 1,
            "characterPositionInLine": err.position,
            "token": err.near,
        }
    else:
        second = {"code": "FailedToResolveEntity", "message": err.message}
    return bad_request([first, second])


def authorization_failed(principal: str, scope: str) -> ArgError:
    return ArgError(
        403,
        {
            "error": {
                "code": "AuthorizationFailed",
                "message": f"The client '{principal}' with object id '{principal}' does not have "
                "authorization to perform action 'Microsoft.ResourceGraph/resources/read' over "
                f"scope '{scope}' or the scope is invalid. If access was recently granted, "
                "please refresh your credentials.",
            }
        },
    )


@dataclass(frozen=True)
class _Plan:
    day: int
    subs: tuple[str, ...]
    types: tuple[str, ...]
    row_filter: Callable[[tuple[str, ...]], bool] | None
    order: tuple[tuple[str, bool], ...]


class ResultSet:
    """The matching rows of one (query, scope, day), addressable by offset."""

    def __init__(self, estate: Estate, plan: _Plan, max_sorted_rows: int) -> None:
        self.estate = estate
        self.plan = plan
        self._lock = threading.Lock()
        self._recent: OrderedDict[int, list[Row]] = OrderedDict()
        order = plan.order
        self.descending_id = order == (("id", True),)
        self.lazy = not order or order == (("id", False),) or self.descending_id
        subs = list(plan.subs)
        if self.descending_id:
            subs.reverse()
        self.subs = subs
        counts = []
        for i, sid in enumerate(subs):
            if plan.row_filter is None:
                counts.append(sum(estate.type_count(sid, plan.day, t) for t in plan.types))
            else:
                counts.append(len(self._rows_of(i)))
        self.cum = [0]
        for n in counts:
            self.cum.append(self.cum[-1] + n)
        self.total = self.cum[-1]
        self.sorted_rows: list[Row] | None = None
        if not self.lazy:
            if self.total > max_sorted_rows:
                raise bad_request(
                    [
                        {
                            "code": "InvalidQuery",
                            "message": "Query is invalid. Simulator limit: 'order by' on a column "
                            f"other than id over more than {max_sorted_rows} rows "
                            f"({self.total} matched). Narrow the scope or order by id.",
                        }
                    ]
                )
            rows: list[Row] = []
            for i in range(len(subs)):
                rows.extend(self._rows_of(i))
            for col, desc in reversed(order):
                rows.sort(key=_scalar_key(SCALAR_INDEX[col]), reverse=desc)
            self.sorted_rows = rows
            self._recent.clear()

    @property
    def held_rows(self) -> int:
        return len(self.sorted_rows) if self.sorted_rows is not None else 0

    def _rows_of(self, i: int) -> list[Row]:
        with self._lock:
            got = self._recent.get(i)
            if got is not None:
                return got
        plan = self.plan
        rows = self.estate.sub_rows(self.subs[i], plan.day, plan.types)
        if plan.row_filter is not None:
            f = plan.row_filter
            rows = [r for r in rows if f(r.scalars)]
        if self.descending_id:
            rows = rows[::-1]
        with self._lock:
            self._recent[i] = rows
            while len(self._recent) > 4:
                self._recent.popitem(last=False)
        return rows

    def page(self, offset: int, n: int) -> list[Row]:
        if self.sorted_rows is not None:
            return self.sorted_rows[offset : offset + n]
        out: list[Row] = []
        if offset >= self.total or n <= 0:
            return out
        i = bisect.bisect_right(self.cum, offset) - 1
        pos = offset - self.cum[i]
        while len(out) < n and i < len(self.subs):
            rows = self._rows_of(i)
            out.extend(rows[pos : pos + n - len(out)])
            i += 1
            pos = 0
        return out


def render_data(rows: Iterable[Row], query: Query, result_format: str) -> str:
    idx = query.column_indexes
    if result_format == "objectArray":
        return "[" + ",".join(r.to_json(idx) for r in rows) + "]"
    cols = ",".join(
        json.dumps({"name": c, "type": "string" if c in SCALAR_COLUMNS else "object"})
        for c in query.columns
    )
    body = ",".join("[" + ",".join(r.fragments[i] for i in idx) + "]" for r in rows)
    return '{"columns":[' + cols + '],"rows":[' + body + "]}"


class ResourceGraph:
    """Evaluates ARG request bodies against an ``Estate``."""

    def __init__(
        self,
        estate: Estate,
        *,
        max_result_sets: int = 32,
        max_held_rows: int = 500_000,
        max_sorted_rows: int = 250_000,
    ) -> None:
        self.estate = estate
        self.max_result_sets = max_result_sets
        self.max_held_rows = max_held_rows
        self.max_sorted_rows = max_sorted_rows
        self._sets: OrderedDict[tuple[Any, ...], ResultSet] = OrderedDict()
        self._lock = threading.Lock()
        self._key = hashlib.sha256(f"skiptoken|{estate.size}|{estate.seed}".encode()).digest()

    # --- skip tokens -------------------------------------------------------------------------

    def _mac(self, payload: bytes) -> str:
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()[:24]

    def encode_token(self, day: int, offset: int, fingerprint: str) -> str:
        payload = json.dumps({"d": day, "o": offset, "f": fingerprint}, separators=(",", ":"))
        raw = payload.encode()
        return base64.b64encode(raw + b"." + self._mac(raw).encode()).decode()

    def decode_token(self, token: str, fingerprint: str) -> tuple[int, int]:
        try:
            raw = base64.b64decode(token.encode(), validate=True)
            payload, mac = raw.rsplit(b".", 1)
            if not hmac.compare_digest(mac.decode(), self._mac(payload)):
                raise ValueError("mac")
            data = json.loads(payload)
            if data["f"] != fingerprint:
                raise ValueError("fingerprint")
            day, offset = int(data["d"]), int(data["o"])
            if day < 0 or offset < 0:
                raise ValueError("range")
            return day, offset
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise bad_request(
                [{"code": "CouldNotDecodeSkipToken", "message": "Skip token could not be decoded."}]
            ) from None

    # --- query -------------------------------------------------------------------------------

    def query(
        self,
        body: Any,
        *,
        day: int,
        forbidden_tenants: frozenset[str] = frozenset(),
        principal: str = "",
        api_version: str = "2021-03-01",
    ) -> tuple[str, dict[str, int]]:
        """Answer a request body. Returns (json_text, info) or raises ``ArgError``."""
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            raise bad_request(
                [
                    {
                        "code": "InvalidRequestContent",
                        "message": "The request content must be an object with a 'query' string.",
                    }
                ]
            )
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise bad_request([{"code": "InvalidRequestContent", "message": "Bad options."}])
        default_format = "table" if api_version == "2019-04-01" else "objectArray"
        result_format = options.get("resultFormat") or default_format
        if result_format not in ("objectArray", "table"):
            raise bad_request(
                [
                    {
                        "code": "InvalidRequestContent",
                        "message": f"Unknown resultFormat '{result_format}'.",
                    }
                ]
            )
        top = _int_option(options, "$top", MAX_PAGE)
        skip = _int_option(options, "$skip", 0)
        if top < 1:
            raise bad_request(
                [{"code": "InvalidRequestContent", "message": "Option '$top' must be at least 1."}]
            )
        top = min(top, MAX_PAGE)

        try:
            query = parse(body["query"])
        except KqlError as err:
            raise invalid_query(err) from None

        subs_req = body.get("subscriptions")
        mgs_req = body.get("managementGroups")
        for name, value in (("subscriptions", subs_req), ("managementGroups", mgs_req)):
            if value is not None and (
                not isinstance(value, list) or not all(isinstance(v, str) for v in value)
            ):
                raise bad_request(
                    [{"code": "InvalidRequestContent", "message": f"'{name}' must be strings."}]
                )
        scope_key = (
            "subs:" + ",".join(sorted(s.lower() for s in subs_req))
            if subs_req is not None
            else "mgs:" + ",".join(sorted(m.lower() for m in mgs_req))
            if mgs_req is not None
            else "*"
        )
        fingerprint = hashlib.sha256(
            f"{query.normalized()}\n{scope_key}\n{result_format}".encode()
        ).hexdigest()[:16]

        token = options.get("$skipToken")
        if token:
            if not isinstance(token, str):
                raise bad_request(
                    [
                        {
                            "code": "CouldNotDecodeSkipToken",
                            "message": "Skip token could not be decoded.",
                        }
                    ]
                )
            day, offset = self.decode_token(token, fingerprint)
        else:
            offset = skip

        subs = self._scope(query, subs_req, mgs_req, day, forbidden_tenants, principal)
        rs = self._result_set(query, subs, day)
        rows = rs.page(offset, top)
        end = offset + len(rows)
        more = end < rs.total
        parts = []
        truncated = "false"
        if more and "id" in query.columns:
            parts.append('"$skipToken":' + json.dumps(self.encode_token(day, end, fingerprint)))
        elif more:
            truncated = "true"  # no id column: ARG cannot page, it truncates
        parts.append(f'"count":{len(rows)}')
        parts.append('"data":' + render_data(rows, query, result_format))
        parts.append('"facets":[]')
        parts.append(f'"resultTruncated":"{truncated}"')
        parts.append(f'"totalRecords":{rs.total}')
        return "{" + ",".join(parts) + "}", {"rows": len(rows), "day": day}

    def _scope(
        self,
        query: Query,
        subs_req: list[str] | None,
        mgs_req: list[str] | None,
        day: int,
        forbidden: frozenset[str],
        principal: str,
    ) -> list[str]:
        est = self.estate
        delegated = {s.sid: s for s in est.subscriptions(day)}
        if subs_req is not None:
            chosen = []
            for s in subs_req:
                sub = delegated.get(s.lower())
                if sub is None:
                    continue  # unknown or not delegated: ignored, like ARG
                if sub.tenant.tenant_id in forbidden:
                    raise authorization_failed(principal, f"/subscriptions/{sub.sid}")
                chosen.append(sub.sid)
            subs = sorted(set(chosen))
        elif mgs_req is not None:
            wanted = {m.lower() for m in mgs_req}
            for m in sorted(wanted):
                if m in forbidden:
                    raise authorization_failed(
                        principal, f"/providers/Microsoft.Management/managementGroups/{m}"
                    )
            subs = sorted(s for s, sub in delegated.items() if sub.tenant.tenant_id in wanted)
        else:
            subs = sorted(delegated)
            if query.table == "securityresources" and forbidden:
                subs = [s for s in subs if delegated[s].tenant.tenant_id not in forbidden]
        # subscription-level predicates (subscriptionId, tenantId) prune whole subscriptions
        sub_preds = [p for p in query.predicates if p.column in SUB_LEVEL_COLUMNS]
        if sub_preds:
            subs = [
                s
                for s in subs
                if all(
                    p.matches(s if p.column == "subscriptionId" else delegated[s].tenant.tenant_id)
                    for p in sub_preds
                )
            ]
        return subs

    def _result_set(self, query: Query, subs: list[str], day: int) -> ResultSet:
        types = TABLES[query.table]
        type_preds = [p for p in query.predicates if p.column == "type"]
        types = tuple(t for t in types if all(p.matches(t) for p in type_preds))
        row_preds: list[Predicate] = [
            p for p in query.predicates if p.column not in ("type", *SUB_LEVEL_COLUMNS)
        ]
        key = (
            tuple((p.column, p.op, p.values) for p in row_preds),
            types,
            tuple(subs),
            day,
            query.order,
        )
        with self._lock:
            rs = self._sets.get(key)
            if rs is not None:
                self._sets.move_to_end(key)
                return rs
        row_filter = _compile(row_preds)
        plan = _Plan(day, tuple(subs), types, row_filter, query.order)
        rs = ResultSet(self.estate, plan, self.max_sorted_rows)
        with self._lock:
            self._sets[key] = rs
            while len(self._sets) > 1 and (
                len(self._sets) > self.max_result_sets
                or sum(s.held_rows for s in self._sets.values()) > self.max_held_rows
            ):
                self._sets.popitem(last=False)
        return rs


def _scalar_key(ci: int) -> Callable[[Row], str]:
    def key(r: Row) -> str:
        return r.scalars[ci]

    return key


def _compile(preds: list[Predicate]) -> Callable[[tuple[str, ...]], bool] | None:
    if not preds:
        return None
    fns = [p.compile() for p in preds]
    if len(fns) == 1:
        return fns[0]
    return lambda s: all(f(s) for f in fns)


def _int_option(options: dict[str, Any], name: str, default: int) -> int:
    value = options.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise bad_request(
            [
                {
                    "code": "InvalidRequestContent",
                    "message": f"Option '{name}' must be a non-negative integer.",
                }
            ]
        )
    return value
