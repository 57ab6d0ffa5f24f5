"""Control-plane answers read within bounds: bytes, time and shape.

Whatever Resource Manager (or anything impersonating it) sends, the collector reads a body
incrementally and abandons it at the byte cap, waits for each read at most until the deadline,
and treats a body that is not JSON, nests beyond the decoder's limit or holds more values than
any real page as malformed. Memory per answer is therefore bounded by the byte cap and the value
cap below, not by what the server chose to send.

Every way a pager can stop early for a lasting reason is a ``CollectionStopped``: what was read
before stays, and the tenant is incomplete with the reason (never complete, never a crash).
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from typing import Any, Protocol
from urllib.parse import urlsplit

from azure.core.exceptions import AzureError

from auditor.core.quoted import first_line, quote

# A body over this size is checked for how many JSON values it holds before it is parsed: a
# compact body of tiny values ("[{},{},...]") costs Python twenty times its size.
VALUE_CHECK_ABOVE_BYTES = 1 << 20
# 1,000 rows of a real Resource Graph page hold about 13,000 values: twenty times that is beyond
# any real page, and keeps a parsed page under about 30 MB whatever it holds.
MAX_VALUES_PER_ANSWER = 250_000
DEADLINE_SLACK_SECONDS = 0.25  # a read timing out this close to the deadline is the deadline
ERROR_BODY_BYTES = 64 * 1024  # an error answer is read this far, for its code and message


class CollectionStopped(RuntimeError):
    """Reading stopped early for a lasting reason; str() is the reason, one line."""


class LimitReached(CollectionStopped):
    """A cap (bytes per response, rows per tenant, pages per query) was reached."""


class PagingCycle(CollectionStopped):
    """A nextLink or $skipToken came back a second time: following it would never end."""


class MalformedAnswer(CollectionStopped):
    """An answer is not the documented shape (not JSON, wrong types, too deep, too many values)."""


class TimeBoundReached(CollectionStopped):
    """The collection's deadline passed before the answer was complete."""


def origin_text(url: str) -> str:
    """scheme://host:port of a URL, for a reason (never the path or query, which may be long)."""
    try:
        parts = urlsplit(url)
        return quote(f"{parts.scheme}://{parts.hostname}:{parts.port or ''}".rstrip(":"))
    except ValueError:
        return quote(url)


def seconds_left(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def deadline_reached(deadline: float | None) -> bool:
    """Whether the deadline has passed, or is so close that a timeout now is the deadline's."""
    left = seconds_left(deadline)
    return left is not None and left <= DEADLINE_SLACK_SECONDS


def parse_retry_after(value: str | None) -> float | None:
    """Seconds of a Retry-After header; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def jittered_backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds before retry `attempt` (1, 2, ...): capped exponential, full jitter, which
    spreads instances that failed together."""
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security


def request_timeouts(
    deadline: float | None, *, connect: float = 20.0, read: float = 120.0
) -> dict[str, float]:
    """Connection and read timeouts of one request: never beyond the time left.

    Raises TimeBoundReached when no time is left, so nothing is sent after the deadline.
    """
    left = seconds_left(deadline)
    if left is None:
        return {"connection_timeout": connect, "read_timeout": read}
    if left <= 0:
        raise TimeBoundReached("collection time bound reached")
    return {"connection_timeout": min(connect, left), "read_timeout": min(read, left)}


class StreamedResponse(Protocol):
    @property
    def headers(self) -> Any: ...

    def iter_bytes(self, **kwargs: Any) -> Any: ...

    def close(self) -> None: ...


def read_body(
    response: StreamedResponse,
    max_bytes: int,
    deadline: float | None,
    *,
    read_timeout: float = 60.0,
) -> bytes:
    """The body of a streamed response, read chunk by chunk: at most `max_bytes`, by `deadline`
    (each read waits at most `read_timeout`, the request's own, and never past the deadline).

    A declared Content-Length above the cap is refused before anything is read. On any stop
    the response is closed (its connection is dropped, not reused).
    """
    declared = _content_length(response)
    if declared is not None and declared > max_bytes:
        response.close()
        raise LimitReached(
            f"response of {declared:,} bytes exceeds the cap of {max_bytes:,} bytes per response"
        )
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise LimitReached(
                    f"response exceeds the cap of {max_bytes:,} bytes per response"
                    " (stopped reading there)"
                )
            chunks.append(chunk)
            left = seconds_left(deadline)
            if left is not None:
                if left <= 0:
                    raise TimeBoundReached("collection time bound reached while reading an answer")
                if left < read_timeout:
                    _tighten_read_timeout(response, left)
    except CollectionStopped:
        response.close()
        raise
    except AzureError as exc:
        # The socket's read timeout was brought down to the deadline: a read that timed out
        # there is the deadline, anything else (cut, reset) is the transport's error.
        if deadline_reached(deadline):
            response.close()
            raise TimeBoundReached("collection time bound reached while reading an answer") from exc
        raise
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """Parse a body; MalformedAnswer (never another error) when it is not plausible JSON."""
    if len(body) > VALUE_CHECK_ABOVE_BYTES:
        values = body.count(b",") + body.count(b"{") + body.count(b"[")
        if values > MAX_VALUES_PER_ANSWER:
            raise MalformedAnswer(
                f"answer holds about {values:,} JSON values (more than {MAX_VALUES_PER_ANSWER:,},"
                " beyond any real page)"
            )
    try:
        return json.loads(body)
    except RecursionError:
        raise MalformedAnswer("answer nests deeper than any real payload") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too many digits
        raise MalformedAnswer(f"answer is not JSON: {first_line(exc)}") from None


def error_summary(status: int, body: bytes) -> tuple[str, str]:
    """(code, first line of message) of an ARM error answer; empty strings when absent."""
    try:
        parsed = json.loads(body) if body else None
    except (RecursionError, ValueError):
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        return "", ""
    code = error.get("code")
    message = error.get("message")
    details = error.get("details")
    if isinstance(details, list) and details and isinstance(details[0], dict):
        # Resource Graph puts the useful part (InvalidQuery, ...) in the first detail.
        code = details[0].get("code") or code
        message = details[0].get("message") or message
    code_text = quote(code) if isinstance(code, str) else ""
    message_text = quote(message.splitlines()[0]) if isinstance(message, str) and message else ""
    return code_text, message_text


def _content_length(response: StreamedResponse) -> int | None:
    try:
        value = response.headers.get("Content-Length")
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _tighten_read_timeout(response: Any, seconds: float) -> None:
    # The read timeout set when the request was sent applies to every later read of the body:
    # bring it down to the time left, so a server that trickles bytes cannot outlast the
    # deadline by a whole read timeout. Best effort: a transport without a socket keeps its own.
    raw = getattr(getattr(response, "internal_response", None), "raw", None)
    connection = getattr(raw, "_connection", None) or getattr(raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.settimeout(max(0.01, seconds))
