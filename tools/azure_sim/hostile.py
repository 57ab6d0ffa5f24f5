"""Hostile modes of the simulator: a control plane that lies, loops, floods or points elsewhere.

Each mode is a fault key (``POST /_sim/faults``, merged like the others; docs/simulator.md).
They rewrite answers the honest engine produced, so ground truth stays the estate's:

- REST (``nextLink`` lists: tenants, assessment metadata, JIT policies): ``next_link`` foreign
  (to another origin), ``self`` (each page links to itself) or ``loop`` (the last page links
  back to the first); ``redirect`` (answer 307 to another origin); ``slow_rest_ms``.
- Resource Graph (queries whose text contains ``arg_matching``, default ``securityresources``,
  so that discovery still works): ``skip_token`` ``endless`` (a new token on every page, with
  the first page's real rows under new ids) or ``repeat`` (the same token forever);
  ``overflow_numbers`` (``passedResources: 1e309`` written literally); ``duplicate_ids``
  (the first compliance row again, ``conflicting`` state or ``identical``);
  ``fail_discovery`` (``5xx`` or ``drop`` for every discovery query).
- Both: ``oversized_page`` (``{"bytes": N, "chunked": bool, "on": "arg" | "rest"}``: the page
  padded to N bytes, streamed); ``malformed_page`` (a shape: ``data_null``, ``data_object``,
  ``data_missing``, ``rows_not_objects``, ``token_not_string``, ``deep_nesting``, ``not_json``
  for Resource Graph; ``value_not_list``, ``items_not_objects``, ``next_link_not_string``,
  ``rest_deep_nesting``, ``rest_not_json`` for REST); ``hostile_names`` (control characters,
  terminal escapes and formula-like text in display names, resource names and descriptions).
- ``rest_ops`` limits the REST modes to some operations (``tenants``, ``assessmentMetadata``,
  ``jitNetworkAccessPolicies``; default all).

Kept apart from ``server.Faults`` (which routes these keys here) so that the honest faults and
the estate's own modes change independently.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

REST_OPS = ("tenants", "assessmentMetadata", "jitNetworkAccessPolicies")
ARG_SHAPES = (
    "data_null",
    "data_object",
    "data_missing",
    "rows_not_objects",
    "token_not_string",
    "deep_nesting",
    "not_json",
)
REST_SHAPES = (
    "value_not_list",
    "items_not_objects",
    "next_link_not_string",
    "rest_deep_nesting",
    "rest_not_json",
)
DISCOVERY_TABLES = ("resourcecontainers", "managedserviceresources")
HOSTILE_PREFIX = "hostile:"  # $skipToken values this module hands out
DEEP = 100_000  # nesting of the deep_nesting shapes (any real payload nests under 10)
OVERFLOW_LITERAL = "1e309"  # valid JSON; read as infinity
T_COMPLIANCE = (
    "microsoft.security/regulatorycompliancestandards/regulatorycompliancecontrols/"
    "regulatorycomplianceassessments"
)
# Text a customer controls in its own tenant: control characters, an ANSI escape that would
# recolour and clear a terminal line, a bidi override, and a spreadsheet formula.
HOSTILE_TEXT = '=HYPERLINK("http://evil.example","x")\x1b[31m\x1b[2K\r\x07\u202e\x00 '

KEYS = frozenset(
    {
        "next_link",
        "redirect",
        "slow_rest_ms",
        "skip_token",
        "overflow_numbers",
        "duplicate_ids",
        "fail_discovery",
        "oversized_page",
        "malformed_page",
        "hostile_names",
        "rest_ops",
        "arg_matching",
    }
)


@dataclass
class Hostile:
    next_link: dict[str, Any] | None = None  # {"mode": "foreign", "base": URL} | self | loop
    redirect: str | None = None  # base URL of the origin to redirect to
    slow_rest_ms: int = 0
    skip_token: str | None = None  # endless | repeat
    overflow_numbers: bool = False
    duplicate_ids: str | None = None  # conflicting | identical
    fail_discovery: str | None = None  # 5xx | drop
    oversized_page: dict[str, Any] | None = None  # {"bytes": N, "chunked": bool, "on": ...}
    malformed_page: str | None = None
    hostile_names: bool = False
    rest_ops: list[str] = field(default_factory=lambda: list(REST_OPS))
    arg_matching: str = "securityresources"
    served: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # --- control ----------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        return {
            "next_link": self.next_link,
            "redirect": self.redirect,
            "slow_rest_ms": self.slow_rest_ms,
            "skip_token": self.skip_token,
            "overflow_numbers": self.overflow_numbers,
            "duplicate_ids": self.duplicate_ids,
            "fail_discovery": self.fail_discovery,
            "oversized_page": self.oversized_page,
            "malformed_page": self.malformed_page,
            "hostile_names": self.hostile_names,
            "rest_ops": list(self.rest_ops),
            "arg_matching": self.arg_matching,
        }

    def clear(self) -> None:
        fresh = Hostile()
        for name in KEYS:
            setattr(self, name, getattr(fresh, name))

    def update(self, spec: dict[str, Any]) -> None:
        """Merge the hostile keys of a faults object (a key set to null resets it)."""
        fresh = Hostile()
        for name, value in spec.items():
            setattr(self, name, getattr(fresh, name) if value is None else _checked(name, value))

    def count(self, mode: str) -> None:
        with self._lock:
            self.served[mode] = self.served.get(mode, 0) + 1

    def served_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.served)

    def reset_counts(self) -> None:
        with self._lock:
            self.served.clear()

    # --- any ARM request ----------------------------------------------------------------------

    def redirect_for(self, path_and_query: str) -> str | None:
        """Location of a 307 to the foreign origin, when the redirect mode is on."""
        if not self.redirect:
            return None
        self.count("redirect")
        return self.redirect.rstrip("/") + path_and_query

    # --- Resource Graph -----------------------------------------------------------------------

    def arg_applies(self, request: Any) -> bool:
        text = request.get("query", "") if isinstance(request, dict) else ""
        return isinstance(text, str) and self.arg_matching in text

    def discovery_failure(self, request: Any) -> str | None:
        text = request.get("query", "") if isinstance(request, dict) else ""
        if self.fail_discovery and isinstance(text, str):
            table = text.strip().split("|", 1)[0].strip().lower()
            if table in DISCOVERY_TABLES:
                self.count("fail_discovery")
                return self.fail_discovery
        return None

    def arg_request(self, request: Any) -> tuple[Any, int | None]:
        """(request for the honest engine, number of the hostile continuation page or None).

        A continuation of an endless or repeating token asks the engine for the first page
        again: real rows, every time."""
        if not self.arg_applies(request):
            return request, None
        options = request.get("options") if isinstance(request.get("options"), dict) else {}
        token = options.get("$skipToken")
        if not (isinstance(token, str) and token.startswith(HOSTILE_PREFIX)):
            return request, 0
        honest = dict(request, options={k: v for k, v in options.items() if k != "$skipToken"})
        try:
            number = int(token.rsplit(":", 1)[1])
        except ValueError:
            number = 1
        return honest, number

    def arg_answer(self, text: str, page_number: int | None) -> str:
        """The honest page text, rewritten by the ARG modes in force (hostile names in every
        query, discovery included; the other modes in matching queries only)."""
        matching = page_number is not None and self._arg_modes_on()
        if not matching and not self.hostile_names:
            return text
        if matching and self.malformed_page == "not_json":
            self.count("malformed_page")
            return '{"count": 1, "data": [{"id": '
        page = json.loads(text)
        rows = page.get("data") if isinstance(page.get("data"), list) else []
        if self.hostile_names:
            for row in rows:
                _hostile_row(row)
            self.count("hostile_names")
        if not matching:
            return json.dumps(page)
        assert page_number is not None
        if self.skip_token in ("endless", "repeat"):
            # endless: a new token per page; repeat: always the same one.
            number = {"endless": page_number + 1, "repeat": 1}[self.skip_token]
            page["$skipToken"] = f"{HOSTILE_PREFIX}{self.skip_token}:{number}"
            self.count("skip_token")
            if number > 1 and page_number:  # endless, after the first page
                _renumber(rows, page_number)
        if self.duplicate_ids:
            self._duplicate(rows)
        overflow = self.overflow_numbers and self._mark_overflow(rows)
        if self.malformed_page in ARG_SHAPES:
            page = self._arg_shape(page, rows)
        out = json.dumps(page)
        if overflow:
            out = out.replace(f'"{_OVERFLOW_MARK}"', OVERFLOW_LITERAL, 1)
        return out.replace(f'"{_DEEP_MARK}"', "[" * DEEP + "]" * DEEP, 1)

    def _arg_modes_on(self) -> bool:
        return bool(
            self.skip_token
            or self.duplicate_ids
            or self.overflow_numbers
            or self.malformed_page in ARG_SHAPES
        )

    def _duplicate(self, rows: list[Any]) -> None:
        first = next(
            (r for r in rows if isinstance(r, dict) and r.get("type") == T_COMPLIANCE), None
        )
        if first is None:
            return
        twin = json.loads(json.dumps(first))
        if self.duplicate_ids == "conflicting":
            state = twin["properties"].get("state")
            twin["properties"]["state"] = "Passed" if state != "Passed" else "Failed"
        rows.append(twin)
        self.count("duplicate_ids")

    def _mark_overflow(self, rows: list[Any]) -> bool:
        for row in rows:
            if isinstance(row, dict) and row.get("type") == T_COMPLIANCE:
                props = row.get("properties")
                if isinstance(props, dict) and "passedResources" in props:
                    props["passedResources"] = _OVERFLOW_MARK
                    self.count("overflow_numbers")
                    return True
        return False

    def _arg_shape(self, page: dict[str, Any], rows: list[Any]) -> dict[str, Any]:
        shape = self.malformed_page
        self.count("malformed_page")
        if shape == "data_null":
            page["data"] = None
        elif shape == "data_object":
            page["data"] = {"rows": rows[:1]}
        elif shape == "data_missing":
            page.pop("data", None)
        elif shape == "rows_not_objects":
            page["data"] = [None, "a row", 7, ["not", "an", "object"], *rows]
        elif shape == "token_not_string":
            page["$skipToken"] = 12345
        elif shape == "deep_nesting":
            page["data"] = [_DEEP_MARK, *rows]
        return page

    # --- REST -----------------------------------------------------------------------------------

    def rest_applies(self, op: str) -> bool:
        return op in self.rest_ops

    def rest_answer(self, op: str, body: dict[str, Any], request_url: str, first_url: str) -> str:
        """The honest REST page, rewritten by the REST modes in force, as JSON text."""
        if not self.rest_applies(op):
            return json.dumps(body)
        if self.malformed_page == "rest_not_json":
            self.count("malformed_page")
            return '{"value": [{"id": '
        self._rest_links(body, request_url, first_url)
        if self.hostile_names:
            for item in body.get("value") or ():
                _hostile_rest_item(item)
            self.count("hostile_names")
        text = json.dumps(self._rest_shape(body))
        return text.replace(f'"{_DEEP_MARK}"', "[" * DEEP + "]" * DEEP, 1)

    def _rest_links(self, body: dict[str, Any], request_url: str, first_url: str) -> None:
        spec = self.next_link or {}
        mode = spec.get("mode")
        if mode == "foreign":
            base = str(spec.get("base", "")).rstrip("/")
            parts = urlsplit(body.get("nextLink") or request_url)
            body["nextLink"] = f"{base}{parts.path}?{parts.query}"
            self.count("next_link")
        elif mode == "self":
            body["nextLink"] = request_url
            self.count("next_link")
        elif mode == "loop" and not body.get("nextLink"):
            body["nextLink"] = first_url
            self.count("next_link")

    def _rest_shape(self, body: dict[str, Any]) -> dict[str, Any]:
        shape = self.malformed_page
        if shape not in REST_SHAPES:
            return body
        self.count("malformed_page")
        if shape == "value_not_list":
            body["value"] = {"items": body.get("value")}
        elif shape == "items_not_objects":
            body["value"] = [1, "two", None]
        elif shape == "next_link_not_string":
            body["nextLink"] = 12345
        elif shape == "rest_deep_nesting":
            body["value"] = [_DEEP_MARK]
        return body

    # --- oversized pages ------------------------------------------------------------------------

    def oversized(self, api: str) -> tuple[int, bool] | None:
        """(bytes, chunked) when the page of this API ("arg" / "rest") is to be padded."""
        spec = self.oversized_page
        if not spec or spec.get("on", "arg") != api:
            return None
        self.count("oversized_page")
        return int(spec["bytes"]), bool(spec.get("chunked", False))


_OVERFLOW_MARK = "__hostile_overflow__"
_DEEP_MARK = "__hostile_deep__"


def padded_parts(text: str, size: int) -> tuple[bytes, int, bytes]:
    """(prefix, padding length, suffix) of a valid JSON page `size` bytes long: the padding is
    the description of the first object in it (or a property of the page when it has none)."""
    page = json.loads(text)
    rows = page.get("data") if isinstance(page.get("data"), list) else page.get("value")
    target: dict[str, Any] = page
    if isinstance(rows, list) and rows and isinstance(rows[0], dict):
        props = rows[0].setdefault("properties", {})
        target = props if isinstance(props, dict) else page
    target["description"] = _PAD_MARK
    prefix, suffix = json.dumps(page).split(f'"{_PAD_MARK}"', 1)
    head, tail = (prefix + '"').encode(), ('"' + suffix).encode()
    return head, max(0, size - len(head) - len(tail)), tail


_PAD_MARK = "__hostile_pad__"


def _renumber(rows: list[Any], page_number: int) -> None:
    """Rows of an endless continuation: the first page's real rows under new ids (the last id
    segment suffixed), so that every page brings rows never seen before."""
    for row in rows:
        if isinstance(row, dict) and isinstance(row.get("id"), str):
            row["id"] = f"{row['id']}-{page_number}"
            if isinstance(row.get("name"), str):
                row["name"] = f"{row['name']}-{page_number}"


def _hostile_row(row: Any) -> None:
    if not isinstance(row, dict):
        return
    # A subscription row (discovery projects no type): its name is the display name.
    is_subscription = row.get("id") == f"/subscriptions/{row.get('subscriptionId')}"
    if is_subscription and isinstance(row.get("name"), str):
        row["name"] = HOSTILE_TEXT + row["name"]
    props = row.get("properties")
    if isinstance(props, dict):
        for name in ("description", "displayName"):
            if isinstance(props.get(name), str):
                props[name] = HOSTILE_TEXT + props[name]


def _hostile_rest_item(item: Any) -> None:
    if not isinstance(item, dict):
        return
    if isinstance(item.get("displayName"), str):  # tenants
        item["displayName"] = HOSTILE_TEXT + item["displayName"]
    props = item.get("properties")
    if isinstance(props, dict):
        for name in ("displayName", "description", "remediationDescription"):
            if isinstance(props.get(name), str):
                props[name] = HOSTILE_TEXT + props[name]


def _checked(name: str, value: Any) -> Any:
    """The value of a hostile key, validated (ValueError names the key)."""
    if name == "next_link":
        if not isinstance(value, dict) or value.get("mode") not in ("foreign", "self", "loop"):
            raise ValueError('next_link must be {"mode": "foreign" | "self" | "loop", ...}')
        if value["mode"] == "foreign" and not _is_url(value.get("base")):
            raise ValueError('next_link foreign needs "base": "https://host:port"')
        return dict(value)
    if name == "redirect":
        if not _is_url(value):
            raise ValueError("redirect must be a base URL (https://host:port)")
        return value
    if name == "slow_rest_ms":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("slow_rest_ms must be a non-negative integer")
        return value
    choices = {
        "skip_token": ("endless", "repeat"),
        "duplicate_ids": ("conflicting", "identical"),
        "fail_discovery": ("5xx", "drop"),
        "malformed_page": ARG_SHAPES + REST_SHAPES,
    }
    if name in choices:
        if value not in choices[name]:
            raise ValueError(f"{name} must be one of {', '.join(choices[name])}")
        return value
    if name in ("overflow_numbers", "hostile_names"):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false")
        return value
    if name == "oversized_page":
        size = value.get("bytes") if isinstance(value, dict) else None
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError('oversized_page must be {"bytes": N, "chunked"?: bool, "on"?: ...}')
        if value.get("on", "arg") not in ("arg", "rest"):
            raise ValueError('oversized_page "on" must be "arg" or "rest"')
        return dict(value)
    if name == "rest_ops":
        if not isinstance(value, list) or not set(value) <= set(REST_OPS):
            raise ValueError(f"rest_ops must be a list of {', '.join(REST_OPS)}")
        return list(value)
    if name == "arg_matching":
        if not isinstance(value, str) or not value:
            raise ValueError("arg_matching must be a non-empty string")
        return value
    raise ValueError(f"unknown hostile key {name}")  # pragma: no cover - KEYS guards


def _is_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)
