"""Reading API answers in tests: problems, CSV rows, pages."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx

PROBLEM = "application/problem+json"


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem document of `response`, checked to be RFC 9457 with `status`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= set(body)
    return body


def csv_rows(response: httpx.Response) -> list[dict[str, str]]:
    """The rows of a CSV answer, read by the standard CSV reader (as a spreadsheet would)."""
    assert response.headers["content-type"].startswith("text/csv")
    text = response.content.decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def expected_cell(value: Any) -> str:
    """What a CSV cell must hold for a JSON value (docs/api.md, "CSV")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, list):
        value = "; ".join(expected_cell(v) for v in value)
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def as_csv_row(item: dict[str, Any], columns: list[str]) -> dict[str, str]:
    """A JSON item as the CSV row it must be: nested objects as parent.child columns."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}{key}.", inner)
        else:
            flat[prefix[:-1]] = value

    walk("", item)
    return {column: expected_cell(flat.get(column)) for column in columns}


def all_pages(client: Any, url: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every page from `url` on, following nextLink."""
    pages = []
    next_url: str | None = url
    while next_url:
        response = client.get(next_url, **kwargs)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        next_url = pages[-1]["nextLink"]
    return pages
