"""Strong ETags and conditional requests (RFC 9110 §8.8.3, §13.1.2).

A committed snapshot never changes, so a response about snapshots is fully determined by their
content hashes and the (resolved) query: its ETag is derived from those before any content is
read, and a matching ``If-None-Match`` answers 304 without reading the snapshots at all. Lists
whose membership moves (tenants, a tenant's index) hash their own body instead.

The API version is part of every ETag: a deployment that changes a representation changes the
tags, so a strong tag always names exactly one byte sequence.
"""

from __future__ import annotations

import hashlib
import json

from fastapi import Request
from fastapi.responses import Response

from auditor import __version__

_FORMAT = "etag-v1"
VARY = "Accept, X-MS-CLIENT-PRINCIPAL"
CACHE_CONTROL = "private, no-cache"


def derived_etag(request: Request, *parts: object) -> str:
    """A strong ETag for a response determined by `parts` (content hashes, resolved query)
    and by the request's base URL (links in the body name it)."""
    text = json.dumps(
        [_FORMAT, __version__, str(request.base_url), *[str(p) for p in parts]],
        separators=(",", ":"),
    )
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:40] + '"'


def body_etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:40] + '"'


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def matches(request: Request, etag: str) -> bool:
    """If-None-Match names this ETag (weak comparison, as §13.1.2 requires) or is ``*``."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    if header.strip() == "*":
        return True
    wanted = _opaque(etag)
    return any(_opaque(tag) == wanted for tag in header.split(","))


def cache_headers(etag: str) -> dict[str, str]:
    return {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": VARY}


def not_modified(etag: str) -> Response:
    return Response(status_code=304, headers=cache_headers(etag))
