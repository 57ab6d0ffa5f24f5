"""Paging: opaque continuation tokens and ARM-style ``nextLink`` URLs.

A page answers ``{"value": [...], "nextLink": <absolute URL> | null}``. The next page is asked
for by following ``nextLink`` as is: it repeats the request's parameters (with ``from`` / ``to``
pinned to the snapshot ids they resolved to, so that a snapshot committed meanwhile does not
shift the pages) and adds ``$skipToken``. The Functions key (``code``) is never copied into a
link: send it again, preferably as the ``x-functions-key`` header.

The token is base64url JSON: a position and a fingerprint of the query it belongs to. A token
used with another query, or damaged, is a 400 naming ``$skipToken``. It is opaque to callers:
only its meaning above is part of the contract.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import Request

from auditor.api.params import FUNCTION_KEY_PARAMETER
from auditor.api.problems import invalid

SKIP_TOKEN = "$skipToken"  # noqa: S105 - a parameter name, not a secret
TOP = "$top"
_VERSION = 1
MAX_TOKEN_LENGTH = 2048


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page starts: after a key (keyset paging) or at an offset (immutable lists)."""

    after: str | None = None
    offset: int = 0


def fingerprint(*parts: object) -> str:
    """A short digest binding a token to the query (tenant, resolved snapshots, filters)."""
    text = json.dumps([str(p) for p in parts], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_token(position: Position, query: str) -> str:
    document = {"v": _VERSION, "q": query, "a": position.after, "o": position.offset}
    raw = json.dumps(document, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None, query: str) -> Position:
    """The position a token names for this query (the first page when there is no token)."""
    if token is None:
        return Position()
    bad = invalid(SKIP_TOKEN, f"{SKIP_TOKEN} is not a token this query produced")
    if len(token) > MAX_TOKEN_LENGTH:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        document = json.loads(raw)
    except (binascii.Error, ValueError):
        raise bad from None
    if not isinstance(document, dict) or document.get("v") != _VERSION:
        raise bad
    after, offset = document.get("a"), document.get("o")
    if document.get("q") != query:
        raise bad
    if not (after is None or isinstance(after, str)) or not isinstance(offset, int):
        raise bad
    if isinstance(offset, bool) or offset < 0:
        raise bad
    return Position(after=after, offset=offset)


def decode_after(token: str | None, query: str, valid: Callable[[str], bool]) -> Position:
    """decode_token for keyset paging: a token whose key `valid` refuses (a well-formed token
    naming an impossible tenant or slot) is the same 400 as any token this query never made."""
    position = decode_token(token, query)
    if position.after is not None and not valid(position.after):
        raise invalid(SKIP_TOKEN, f"{SKIP_TOKEN} is not a token this query produced")
    return position


def next_link(
    request: Request,
    token: str,
    *,
    pinned: Mapping[str, str] | None = None,
) -> str:
    """The absolute URL of the next page: this request's URL and parameters, `pinned` ones
    replaced, the function key dropped, and the token set."""
    pinned = dict(pinned or {})
    items: list[tuple[str, str]] = []
    for name, value in request.query_params.multi_items():
        if name in (FUNCTION_KEY_PARAMETER, SKIP_TOKEN) or name in pinned:
            continue
        items.append((name, value))
    items.extend(pinned.items())
    items.append((SKIP_TOKEN, token))
    # Local mode builds links from the bound address, never from the client's Host header.
    link_base = getattr(request.app.state, "link_base", None)
    if link_base:
        base = f"{link_base}{request.url.path}"
    else:
        base = str(request.url.replace(query="", fragment=""))
    return f"{base}?{urlencode(items, safe='$')}"


def page_of(items: Sequence[object], offset: int, size: int) -> tuple[Sequence[object], bool]:
    """(the page, whether more follow)."""
    return items[offset : offset + size], offset + size < len(items)
