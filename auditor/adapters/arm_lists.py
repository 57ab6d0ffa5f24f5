"""ARM list operations paged by ``nextLink``, within bounds.

One pager for every REST list the collector reads (tenant directory, assessment metadata,
just-in-time policies). It sends through the client's own SDK pipeline (credential, token scope,
ARM policies, and ``ArmOnlyPolicy``), and:

- follows a ``nextLink`` only when it is on Resource Manager's origin (else nothing is sent:
  ``UntrustedEndpointError``), and never one that repeats an earlier page (``PagingCycle``);
- stops at the page cap (``LimitReached``) and at the deadline (``TimeBoundReached``): each
  request's connection and read timeouts are the time left;
- reads each body within the byte cap and checks the documented shape (an object whose ``value``
  is a list of objects and whose ``nextLink`` is a string or absent): ``MalformedAnswer``;
- retries 429, 5xx and dropped connections itself (the SDK's own retries are off), honouring
  ``Retry-After`` only while it fits before the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError, ClientAuthenticationError
from azure.core.rest import HttpRequest, HttpResponse

from auditor.adapters.arm_guard import require_arm_url
from auditor.adapters.bounded import (
    ERROR_BODY_BYTES,
    CollectionStopped,
    LimitReached,
    MalformedAnswer,
    PagingCycle,
    TimeBoundReached,
    deadline_reached,
    error_summary,
    jittered_backoff,
    parse_json,
    parse_retry_after,
    read_body,
    request_timeouts,
    seconds_left,
)
from auditor.core.quoted import first_line
from auditor.settings import CollectLimits

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class _Transient(Exception):
    """One attempt failed in a way a later attempt may not (429, 5xx, a dropped connection)."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        code: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after


class ArmCallError(RuntimeError):
    """An ARM call answered an error for good (not retryable, or its retries ran out)."""

    def __init__(self, message: str, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass
class ListStats:
    calls: int = 0  # requests sent
    pages: int = 0  # pages received
    retries: int = 0
    throttles: int = 0


class ArmLists:
    """Pages of ARM list operations through one SDK pipeline client."""

    def __init__(
        self,
        client: Any,  # an azure-core PipelineClient (ARMPipelineClient) with ArmOnlyPolicy
        arm_endpoint: str,
        limits: CollectLimits,
        *,
        max_attempts: int = 4,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._endpoint = arm_endpoint.rstrip("/")
        self._limits = limits
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._sleep = sleep

    def pages(
        self,
        path: str,
        *,
        what: str,
        deadline: float | None = None,
        stats: ListStats | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield the `value` of every page of the list at `path` (relative to the endpoint)."""
        stats = stats if stats is not None else ListStats()
        url = self._endpoint + path
        visited: set[str] = set()
        while True:
            if len(visited) >= self._limits.max_pages_per_query:
                raise LimitReached(
                    f"{what}: more than {self._limits.max_pages_per_query:,} pages "
                    "(the cap of pages per query); stopped"
                )
            visited.add(url)
            value, next_link = _page_shape(self._get(url, what, deadline, stats), what)
            stats.pages += 1
            yield value
            if next_link is None:
                return
            require_arm_url(next_link, self._endpoint, f"{what}: nextLink")
            if next_link in visited:
                raise PagingCycle(f"{what}: nextLink repeats an earlier page; stopped")
            url = next_link

    def _get(self, url: str, what: str, deadline: float | None, stats: ListStats) -> Any:
        for attempt in range(1, self._max_attempts + 1):
            try:
                return self._attempt(url, what, deadline, stats)
            except _Transient as exc:
                if attempt == self._max_attempts:
                    raise ArmCallError(f"{what}: {exc}", exc.status, exc.code) from None
                stats.retries += 1
                stats.throttles += exc.status == 429
                wait = exc.retry_after if exc.retry_after is not None else self._backoff(attempt)
                self._wait(wait, what, deadline)
        raise ArmCallError(f"{what}: retries exhausted")  # pragma: no cover - loop returns

    def _attempt(self, url: str, what: str, deadline: float | None, stats: ListStats) -> Any:
        try:
            timeouts = request_timeouts(deadline, connect=20.0, read=60.0)
            stats.calls += 1
            response: HttpResponse = self._client.send_request(
                HttpRequest("GET", url), stream=True, **timeouts
            )
            status = response.status_code
            if status == 200:
                return parse_json(read_body(response, self._limits.max_response_bytes, deadline))
            code, message = error_summary(status, _error_body(response, deadline))
        except ClientAuthenticationError as exc:
            raise ArmCallError(f"{what}: authentication failed: {first_line(exc)}") from exc
        except AzureError as exc:  # no connection, dropped, timed out, cut mid-body
            if deadline_reached(deadline):
                raise TimeBoundReached(f"{what}: collection time bound reached") from exc
            raise _Transient(f"connection failed: {first_line(exc)}") from exc
        except CollectionStopped as exc:
            raise type(exc)(f"{what}: {exc}") from None
        text = f"HTTP {status} {code}: {message}".strip()
        if status in RETRYABLE_STATUS:
            raise _Transient(
                text, status, code, parse_retry_after(response.headers.get("Retry-After"))
            )
        raise ArmCallError(f"{what}: {text}", status, code)

    def _wait(self, seconds: float, what: str, deadline: float | None) -> None:
        left = seconds_left(deadline)
        if left is not None and seconds >= left:
            raise TimeBoundReached(
                f"{what}: collection time bound reached (a retry would wait {seconds:.1f}s)"
            )
        if seconds > 0:
            self._sleep(seconds)

    def _backoff(self, attempt: int) -> float:
        return jittered_backoff(attempt, self._backoff_base, self._backoff_cap)


def _page_shape(body: Any, what: str) -> tuple[list[dict[str, Any]], str | None]:
    if not isinstance(body, dict):
        raise MalformedAnswer(f"{what}: page is not a JSON object")
    value = body.get("value")
    if not isinstance(value, list):
        raise MalformedAnswer(f"{what}: page 'value' is {_kind(value)}, not a list")
    if not all(isinstance(item, dict) for item in value):
        raise MalformedAnswer(f"{what}: page 'value' holds items that are not objects")
    next_link = body.get("nextLink")
    if next_link is not None and not isinstance(next_link, str):
        raise MalformedAnswer(f"{what}: page 'nextLink' is {_kind(next_link)}, not a string")
    return value, next_link or None


def _kind(value: Any) -> str:
    if value is None:
        return "null or missing"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def _error_body(response: HttpResponse, deadline: float | None) -> bytes:
    try:
        return read_body(response, ERROR_BODY_BYTES, deadline)
    except CollectionStopped:
        return b""


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
