"""Building a route's successful answer: representation, ETag, conditional request, links."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from auditor.api import etags
from auditor.api.problems import NOT_ACCEPTABLE, ApiProblem
from auditor.api.representation import (
    CSV_MEDIA_TYPE,
    JSON,
    Format,
    NotAcceptable,
    dump_json,
    negotiate,
    render_csv,
)

Columns = Callable[[list[dict[str, Any]]], Sequence[str]]
# The CSV rows of a document (default: its `value` array).
Rows = Callable[[dict[str, Any]], list[dict[str, Any]]]


def value_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = document["value"]
    return rows


def choose(request: Request, format_param: Format | None, *, csv_offered: bool) -> Format:
    """The representation to answer, or a 406 problem."""
    try:
        return negotiate(request.headers.get("accept"), format_param, csv_offered=csv_offered)
    except NotAcceptable:
        offered = "application/json or text/csv" if csv_offered else "application/json"
        raise ApiProblem(406, NOT_ACCEPTABLE, f"This resource is available as {offered}.") from None


def render(
    document: dict[str, Any], fmt: Format, columns: Columns | None, rows: Rows = value_rows
) -> tuple[bytes, str]:
    """(body, media type): the JSON document, or the CSV of its rows (``value`` by default)."""
    if fmt is Format.CSV:
        assert columns is not None, "CSV offered without columns"
        table = rows(document)
        return render_csv(table, columns(table)), CSV_MEDIA_TYPE
    return dump_json(document), JSON


def respond(
    body: bytes,
    media_type: str,
    etag: str,
    *,
    next_link: str | None = None,
) -> Response:
    headers = etags.cache_headers(etag)
    if next_link is not None:
        # CSV has no envelope: the next page is also announced in a Link header (RFC 8288).
        headers["Link"] = f'<{next_link}>; rel="next"'
    return Response(body, media_type=media_type, headers=headers)


def answer_derived(
    request: Request,
    etag: str,
    build: Callable[[], dict[str, Any]],
    fmt: Format,
    columns: Columns | None = None,
    rows: Rows = value_rows,
) -> Response:
    """Answer a response whose ETag is known before building it: 304 when it matches."""
    if etags.matches(request, etag):
        return etags.not_modified(etag)
    document = build()
    body, media_type = render(document, fmt, columns, rows)
    return respond(body, media_type, etag, next_link=document.get("nextLink"))


def answer_hashed(
    request: Request,
    document: dict[str, Any],
    fmt: Format,
    columns: Columns | None = None,
) -> Response:
    """Answer a response whose ETag is the hash of its body."""
    body, media_type = render(document, fmt, columns)
    return answer_body(request, body, media_type, document.get("nextLink"))


def answer_body(request: Request, body: bytes, media_type: str, next_link: str | None) -> Response:
    """answer_hashed for a body already rendered (a cached one)."""
    etag = etags.body_etag(body + media_type.encode())
    if etags.matches(request, etag):
        return etags.not_modified(etag)
    return respond(body, media_type, etag, next_link=next_link)
