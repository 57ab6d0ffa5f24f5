"""Azure Resource Graph through azure-mgmt-resourcegraph: paging, pacing, retries, accounting.

- Pages by ``$skipToken`` until it is absent. ``resultTruncated`` is ignored on purpose: Resource
  Graph may say "false" while a token is still present, and scanners that trusted it dropped rows.
- Paces on the quota headers (``x-ms-user-quota-remaining`` / ``-resets-after``) so that queries
  wait for the window instead of meeting 429s; a 429 still happens when another instance of the
  same identity spends the quota, and is retried after ``Retry-After``.
- Retries 429, 5xx and dropped connections with capped exponential backoff, inside a deadline;
  every request's connection and read timeouts are the time left before it.
- Bounded whatever the service sends (auditor/adapters/bounded.py): each body is read
  incrementally up to the byte cap; a query stops at the page cap, at the rows-per-tenant cap
  (counted on the caller's QueryStats) and when a ``$skipToken`` repeats; a page that is not the
  documented shape (``data`` a list, ``$skipToken`` a string or absent) is malformed. Each stop
  is a ``CollectionStopped`` naming the reason.
- Counts queries, pages, throttles and retries: completeness is data.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ClientAuthenticationError
from azure.core.rest import HttpRequest
from azure.mgmt.resourcegraph import ResourceGraphClient

from auditor.adapters.arm_guard import arm_only_policies, ensure_guarded
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
)
from auditor.core.quoted import first_line
from auditor.settings import CollectLimits

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
        limits: CollectLimits | None = None,
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
            connection_data_block_size=64 * 1024,  # bodies are read in chunks: fewer, larger
            **arm_only_policies(endpoint),
        )
        ensure_guarded(self._client._client)
        self.limits = limits or CollectLimits.defaults()
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
        seen: set[str] = set()
        pages = 0
        while True:
            if pages >= self.limits.max_pages_per_query:
                raise LimitReached(
                    f"more than {self.limits.max_pages_per_query:,} pages in one query "
                    "(the cap of pages per query); stopped"
                )
            options: dict[str, Any] = {"$top": PAGE_SIZE, "resultFormat": "objectArray"}
            if skip_token:
                options["$skipToken"] = skip_token
            body: dict[str, Any] = {"query": query, "options": options}
            if subscriptions is not None:
                body["subscriptions"] = subscriptions
            rows, skip_token = _page_shape(self._send(body, stats, deadline))
            pages += 1
            stats.pages += 1
            if stats.rows + len(rows) > self.limits.max_rows_per_tenant:
                raise LimitReached(
                    f"more than {self.limits.max_rows_per_tenant:,} rows "
                    "(the cap of rows per tenant); stopped"
                )
            stats.rows += len(rows)
            yield rows
            # Drive the loop by the token alone, never by resultTruncated.
            if not skip_token:
                return
            if skip_token in seen:
                raise PagingCycle("$skipToken repeats an earlier page; stopped")
            seen.add(skip_token)

    def _wait(self, seconds: float, stats: QueryStats, deadline: float | None) -> None:
        if seconds <= 0:
            return
        if deadline is not None and time.monotonic() + seconds > deadline:
            raise DeadlineExceeded(f"collection time bound reached (would wait {seconds:.1f}s)")
        stats.waited_seconds += seconds
        self._sleep(seconds)

    def _backoff(self, attempt: int) -> float:
        return jittered_backoff(attempt, self._backoff_base, self._backoff_cap)

    def _post(self, body: dict[str, Any], deadline: float | None) -> tuple[int, Any, Any]:
        """(status, headers, parsed JSON for a 200 or the raw error body otherwise)."""
        # The client's own pipeline (credential, scopes, headers, ArmOnlyPolicy) sends the
        # request; the JSON is parsed once here instead of through the generated model, whose
        # field-by-field deserialisation of `data` costs about 3x the service's own time.
        # stream=True keeps the pipeline from buffering the body: it is read here, within the
        # byte cap, and parsed once.
        request = HttpRequest(
            "POST",
            f"/providers/Microsoft.ResourceGraph/resources?api-version={API_VERSION}",
            json=body,
        )
        response = self._client._send_request(
            request, stream=True, **request_timeouts(deadline, connect=20.0, read=120.0)
        )
        if response.status_code == 200:
            content = read_body(
                response, self.limits.max_response_bytes, deadline, read_timeout=120.0
            )
            return 200, response.headers, parse_json(content)
        try:
            error_body = read_body(response, ERROR_BODY_BYTES, deadline)
        except CollectionStopped:
            error_body = b""
        return response.status_code, response.headers, error_body

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
                status, headers, content = self._post(body, deadline)
            except TimeBoundReached as exc:
                raise DeadlineExceeded(f"collection time bound reached ({exc})") from None
            except ClientAuthenticationError as exc:
                # No token: nothing to retry here; the queue retries the whole tenant later.
                raise GraphQueryError(f"authentication failed: {first_line(exc)}") from exc
            except AzureError as exc:
                # Queries are POSTs: azure-core does not retry a dropped one by itself. A read
                # that timed out at the deadline is the deadline, not a connection problem.
                if deadline_reached(deadline):
                    raise DeadlineExceeded("collection time bound reached") from exc
                if attempt == self._max_attempts:
                    raise GraphQueryError(f"connection failed: {first_line(exc)}") from exc
                stats.retries += 1
                self._wait(self._backoff(attempt), stats, deadline)
                continue
            self.pacer.observe(
                headers.get("x-ms-user-quota-remaining"),
                headers.get("x-ms-user-quota-resets-after"),
            )
            if status == 200:
                if not isinstance(content, dict):
                    raise MalformedAnswer("Resource Graph answered a page that is not an object")
                return content
            if status not in RETRYABLE_STATUS or attempt == self._max_attempts:
                code, message = error_summary(status, content)
                raise GraphQueryError(
                    f"HTTP {status} {code}: {message}".strip(), status=status, code=code
                )
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


def _page_shape(page: dict[str, Any]) -> tuple[list[Any], str | None]:
    """(rows, next $skipToken) of a page in Resource Graph's documented shape, else
    MalformedAnswer. Rows themselves are checked by the normalizer (a row that is not an
    object is a malformed row, not a malformed page)."""
    rows = page.get("data")
    if not isinstance(rows, list):
        what = "null or missing" if rows is None else f"a {type(rows).__name__}"
        raise MalformedAnswer(f"Resource Graph page 'data' is {what}, not a list of rows")
    token = page.get("$skipToken")
    if token is not None and not isinstance(token, str):
        raise MalformedAnswer("Resource Graph page '$skipToken' is not a string")
    return rows, token or None


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
