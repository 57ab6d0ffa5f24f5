"""Azure Resource Graph through azure-mgmt-resourcegraph: paging, pacing, retries, accounting.

- Pages by ``$skipToken`` until it is absent. ``resultTruncated`` is ignored on purpose: Resource
  Graph may say "false" while a token is still present, and scanners that trusted it dropped rows.
- Paces on the quota headers (``x-ms-user-quota-remaining`` / ``-resets-after``) so that queries
  wait for the window instead of meeting 429s; a 429 still happens when another instance of the
  same identity spends the quota, and is retried after ``Retry-After``.
- Retries 429, 5xx and dropped connections with capped exponential backoff, inside a deadline.
- Counts queries, pages, throttles and retries: completeness is data.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.rest import HttpRequest, HttpResponse
from azure.mgmt.core.exceptions import ARMErrorFormat
from azure.mgmt.resourcegraph import ResourceGraphClient

log = logging.getLogger(__name__)
_T = TypeVar("_T")

PAGE_SIZE = 1000  # Resource Graph's maximum rows per page
MAX_SUBSCRIPTIONS_PER_QUERY = 1000
API_VERSION = "2021-03-01"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class GraphQueryError(RuntimeError):
    """A query failed for good (not retryable, or retries and time ran out)."""

    def __init__(self, message: str, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class DeadlineExceeded(GraphQueryError):
    """The collection's time bound ran out while waiting or retrying."""


@dataclass
class QueryStats:
    queries: int = 0  # requests sent (each page is a query of quota)
    pages: int = 0  # pages received
    rows: int = 0
    throttles: int = 0  # 429s met
    retries: int = 0  # requests repeated after a transient failure
    waited_seconds: float = 0.0  # time spent pacing or backing off

    def add(self, other: QueryStats) -> None:
        self.queries += other.queries
        self.pages += other.pages
        self.rows += other.rows
        self.throttles += other.throttles
        self.retries += other.retries
        self.waited_seconds += other.waited_seconds


def parse_resets_after(value: str | None) -> float | None:
    """'hh:mm:ss' (possibly with fractions) → seconds; None when absent or unreadable."""
    if not value:
        return None
    try:
        hours, minutes, seconds = value.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class QuotaPacer:
    """Remembers the last quota headers and makes the next query wait while the quota is spent.

    Shared by every query of the process (the quota is per principal, not per query).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._remaining: int | None = None
        self._resets_at: float = 0.0

    def observe(self, remaining: str | None, resets_after: str | None) -> None:
        reset = parse_resets_after(resets_after)
        with self._lock:
            try:
                self._remaining = int(remaining) if remaining is not None else None
            except ValueError:
                self._remaining = None
            if reset is not None:
                self._resets_at = self._clock() + reset

    def throttled(self, retry_after: float) -> None:
        with self._lock:
            self._remaining = 0
            self._resets_at = max(self._resets_at, self._clock() + retry_after)

    def delay(self) -> float:
        """Seconds to wait before the next query (0 when quota remains)."""
        with self._lock:
            if self._remaining is None or self._remaining > 0:
                return 0.0
            return max(0.0, self._resets_at - self._clock())

    def spend(self) -> None:
        with self._lock:
            if self._remaining is not None and self._remaining > 0:
                self._remaining -= 1


def error_code(exc: HttpResponseError) -> str:
    error = getattr(exc, "error", None)
    return str(getattr(error, "code", "") or "")


class ResourceGraph:
    """Runs Resource Graph queries to completion. One per process; thread-safe pacing."""

    def __init__(
        self,
        credential: TokenCredential,
        arm_endpoint: str,
        *,
        max_attempts: int = 8,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        pacer: QuotaPacer | None = None,
    ) -> None:
        endpoint = arm_endpoint.rstrip("/")
        # SDK retries are off: this class retries itself so that it can count and bound them.
        self._client = ResourceGraphClient(
            credential,
            base_url=endpoint,
            credential_scopes=[endpoint + "/.default"],
            retry_total=0,
            connection_timeout=20,
            read_timeout=120,
        )
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._sleep = sleep
        self.pacer = pacer or QuotaPacer()

    def close(self) -> None:
        self._client.close()

    def query(
        self,
        query: str,
        *,
        subscriptions: Sequence[str] | None = None,
        stats: QueryStats | None = None,
        deadline: float | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield every page of `query`'s rows, over `subscriptions` (batched) or all in scope."""
        stats = stats if stats is not None else QueryStats()
        if subscriptions is None:
            yield from self._pages(query, None, stats, deadline)
            return
        subs = list(subscriptions)
        for start in range(0, len(subs), MAX_SUBSCRIPTIONS_PER_QUERY):
            batch = subs[start : start + MAX_SUBSCRIPTIONS_PER_QUERY]
            yield from self._pages(query, batch, stats, deadline)

    def _pages(
        self,
        query: str,
        subscriptions: list[str] | None,
        stats: QueryStats,
        deadline: float | None,
    ) -> Iterator[list[dict[str, Any]]]:
        skip_token: str | None = None
        while True:
            options: dict[str, Any] = {"$top": PAGE_SIZE, "resultFormat": "objectArray"}
            if skip_token:
                options["$skipToken"] = skip_token
            body: dict[str, Any] = {"query": query, "options": options}
            if subscriptions is not None:
                body["subscriptions"] = subscriptions
            response = self._send(body, stats, deadline)
            rows = response.get("data")
            rows = rows if isinstance(rows, list) else []
            stats.pages += 1
            stats.rows += len(rows)
            yield rows
            # Drive the loop by the token alone, never by resultTruncated.
            skip_token = response.get("$skipToken")
            if not skip_token:
                return

    def _wait(self, seconds: float, stats: QueryStats, deadline: float | None) -> None:
        if seconds <= 0:
            return
        if deadline is not None and time.monotonic() + seconds > deadline:
            raise DeadlineExceeded(f"collection time bound reached (would wait {seconds:.1f}s)")
        stats.waited_seconds += seconds
        self._sleep(seconds)

    def _backoff(self, attempt: int) -> float:
        # Full jitter: spreads instances that were throttled together.
        ceiling = min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security

    def _post(self, body: dict[str, Any]) -> HttpResponse:
        # The client's own pipeline (credential, scopes, headers, logging) sends the request;
        # the JSON is parsed once here instead of through the generated model, whose
        # field-by-field deserialisation of `data` costs about 3x the service's own time.
        # stream=True keeps the pipeline's content-decode policy from parsing it a second time.
        request = HttpRequest(
            "POST",
            f"/providers/Microsoft.ResourceGraph/resources?api-version={API_VERSION}",
            json=body,
        )
        response = self._client._send_request(request, stream=True)
        response.read()
        return response

    def _send(
        self, body: dict[str, Any], stats: QueryStats, deadline: float | None
    ) -> dict[str, Any]:
        for attempt in range(1, self._max_attempts + 1):
            self._wait(self.pacer.delay(), stats, deadline)
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlineExceeded("collection time bound reached")
            stats.queries += 1
            self.pacer.spend()
            try:
                response = self._post(body)
            except ClientAuthenticationError as exc:
                # No token: nothing to retry here; the queue retries the whole tenant later.
                raise GraphQueryError(f"authentication failed: {_first_line(exc)}") from exc
            except (ServiceRequestError, ServiceResponseError) as exc:
                # Queries are POSTs: azure-core does not retry a dropped one by itself.
                if attempt == self._max_attempts:
                    raise GraphQueryError(f"connection failed: {exc}") from exc
                stats.retries += 1
                self._wait(self._backoff(attempt), stats, deadline)
                continue
            headers = response.headers
            self.pacer.observe(
                headers.get("x-ms-user-quota-remaining"),
                headers.get("x-ms-user-quota-resets-after"),
            )
            status = response.status_code
            if status == 200:
                parsed = json.loads(response.content)
                if not isinstance(parsed, dict):
                    raise GraphQueryError("Resource Graph answered a non-object body", status)
                return parsed
            if status not in RETRYABLE_STATUS or attempt == self._max_attempts:
                error = HttpResponseError(response=response, error_format=ARMErrorFormat)
                raise GraphQueryError(_describe(error), status=status, code=error_code(error))
            stats.retries += 1
            retry_after = parse_retry_after(headers.get("Retry-After"))
            wait = retry_after if retry_after is not None else self._backoff(attempt)
            if status == 429:
                stats.throttles += 1
                self.pacer.throttled(wait)  # the pacer makes the next attempt wait
                log.info("resource graph throttled; retrying in %.1fs", wait)
                continue
            log.info("resource graph answered %s; retrying in %.1fs", status, wait)
            self._wait(wait, stats, deadline)
        raise GraphQueryError("retries exhausted")  # pragma: no cover - loop returns or raises


def _describe(exc: HttpResponseError) -> str:
    code = error_code(exc)
    message = str(getattr(getattr(exc, "error", None), "message", "") or exc.message or "")
    first_line = message.splitlines()[0] if message else ""
    return f"HTTP {exc.status_code} {code}: {first_line}".strip()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_DONE = object()


def prefetch(pages: Iterator[_T], depth: int = 2) -> Iterator[_T]:
    """Fetch the next pages on a worker thread while the caller normalises the current one.

    Waiting on the network releases the GIL, so fetching and normalising overlap. Exceptions
    from the fetching side are raised in the caller, in order. The worker stops when the caller
    stops consuming (the bounded queue blocks it) and the generator is closed.
    """
    box: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        box.put(page, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            box.put(exc)

    worker = threading.Thread(target=work, name="resource-graph-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = box.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join(timeout=5)
