"""One Resource Graph quota shared by every worker of the identity: a slot lease in Table Storage.

Resource Graph's quota (``AUDITOR_ARG_QUOTA``, 15 queries per 5 s by default) belongs to the
managed identity, and every instance of the collector app is that identity. The per-process
pacer (auditor/adapters/resource_graph.py) only knows the headers its own answers carried, so a
fleet of processes spends the quota together and meets 429s, then waits out whole windows.

This pacer keeps the fleet's sent queries in one entity instead (``{prefix}Quota``,
``resource-graph``): the instants of the identity's last `limit` queries, a sliding-window log
like Resource Graph's own count. A query claims the next free instant with a conditional update
(ETag), then sleeps until it: free is no earlier than the latest claimed instant, and no earlier
than ``span`` after the `limit`-th latest, where the span is the window widened by ``HEADROOM``
so that the jitter between a slot and its request reaching Resource Graph never puts one query
too many in a window. A fleet that left the quota idle (every worker committing) may so send a
burst of up to `limit` queries at once, as Resource Graph allows; a busy fleet is held to
`limit` per span. A 429 (another client of the identity, a clock step) moves a shared
``NotBefore`` past its Retry-After, so the whole fleet waits once instead of each worker
meeting its own 429.

Why a lease and not headers treated as shared state: measured in bench/bench_fleet.py and
docs/scale.md (the headers say how many queries remain, not who will send the next one).

Each claim costs one table transaction when this process wrote the entity last (its ETag still
holds), two otherwise (read, update). Storage failing never stops a collection: the pacer says
so once and paces this process alone on the interval until storage answers again.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from auditor.adapters.resource_graph import QuotaPacer
from auditor.adapters.storage import table_service_client
from auditor.settings import Settings

log = logging.getLogger(__name__)

PARTITION = "quota"
ROW = "resource-graph"
# Share of the quota the fleet plans to use: 15 slots then span 5.26 s of a 5 s window,
# leaving 0.26 s for the spread between a slot and its request's arrival.
HEADROOM = 0.95
CLAIM_ATTEMPTS = 20  # conditional updates lost to other workers before pacing alone
# A 429 means the spread between slots and arrivals is wider than the headroom (a loaded host,
# a slow network): this process then spaces its claims wider, by STRETCH_UP a 429 up to
# STRETCH_MAX, and back by STRETCH_DOWN a claim (about 140 claims to undo one 429).
STRETCH_UP, STRETCH_MAX, STRETCH_DOWN = 1.1, 1.5, 0.9993
# The furthest ahead a shared instant can honestly be: a few hundred claims queued at once, or
# one Retry-After. Anything later (a clock that jumped, a huge Retry-After, an edited entity)
# would stall every worker of the identity, and each claim would push it further: such a value
# is ignored (this process claims from now and overwrites it under its ETag) and logged once.
MAX_AHEAD = 60.0  # seconds


@dataclass(frozen=True, slots=True)
class QuotaSpec:
    """The identity's Resource Graph quota: `limit` queries per `window` seconds."""

    limit: int
    window: float

    @property
    def span(self) -> float:
        """Seconds that any `limit` consecutive slots of the fleet span at least."""
        return self.window / HEADROOM

    @property
    def interval(self) -> float:
        """Seconds between two queries of a fleet that keeps the quota busy."""
        return self.span / self.limit

    @property
    def rate(self) -> float:
        """Queries a second at the quota floor (what no client of the identity can beat)."""
        return self.limit / self.window


def quota_table_name(table_prefix: str) -> str:
    return f"{table_prefix}Quota"


class SharedQuotaPacer(QuotaPacer):
    """A QuotaPacer whose slots come from the one entity every worker of the identity shares."""

    def __init__(
        self,
        table: TableClient,
        spec: QuotaSpec,
        *,
        clock: Callable[[], float] = time.time,
        service: TableServiceClient | None = None,
    ) -> None:
        super().__init__(clock)
        self.spec = spec
        self._table = table
        self._service = service
        self._wall = clock
        self._claim_lock = threading.Lock()
        self._etag: str | None = None  # of the entity as this process last read or wrote it
        self._slots: list[float] = []  # the fleet's last `limit` slots, ascending (ditto)
        self._not_before = 0.0  # no slot before this instant (a 429's Retry-After)
        self._alone_next_at = 0.0  # pacing alone while storage fails
        self._storage_down = False
        self._warned_bogus = False
        self.stretch = 1.0  # this process's widening of the interval (see STRETCH_UP)
        self.claims = 0  # slots claimed
        self.transactions = 0  # table requests spent on them

    @classmethod
    def from_service(
        cls, service: TableServiceClient, table_prefix: str, spec: QuotaSpec
    ) -> SharedQuotaPacer:
        """The pacer on `service` (closed with it); the table is made on the first claim."""
        return cls(service.get_table_client(quota_table_name(table_prefix)), spec, service=service)

    def close(self) -> None:
        self._table.close()
        if self._service is not None:
            self._service.close()

    # The headers' remaining count is not used: the shared slots keep the fleet under it, and
    # a count that reaches 0 between two slots would only add a wait the slots already make.
    def observe(self, remaining: str | None, resets_after: str | None) -> None:
        return None

    def spend(self) -> None:
        return None

    def delay(self) -> float:
        """Claim the identity's next slot: seconds until it (and until any Retry-After)."""
        throttled = super().delay()
        slot = self._claim(self._wall())
        return max(throttled, slot - self._wall())

    def throttled(self, retry_after: float) -> None:
        """A 429: the fleet waits out `retry_after` (at most MAX_AHEAD), and this process
        spaces its slots wider for a while."""
        super().throttled(retry_after)
        self.stretch = min(STRETCH_MAX, self.stretch * STRETCH_UP)
        self._push(self._wall() + min(max(retry_after, 0.0), MAX_AHEAD))

    # --- the shared entity -------------------------------------------------------------------

    def _claim(self, now: float) -> float:
        """The instant of a slot of our own (claimed in storage, or alone when it fails)."""
        with self._claim_lock:
            self.claims += 1
            try:
                for _ in range(CLAIM_ATTEMPTS):
                    # Stored to the millisecond, rounded up: never a shade before it is free.
                    slot = math.ceil(self._free_at(now) * 1000) / 1000
                    slots = [*self._slots, slot][-self.spec.limit :]
                    if self._write(slots, self._not_before):
                        self._recovered()
                        self.stretch = max(1.0, self.stretch * STRETCH_DOWN)
                        return slot
                    self._read()
            except AzureError as exc:
                self._failed(exc)
            return self._alone(now)

    def _free_at(self, now: float) -> float:
        """The first free instant from `now`: after the latest slot, and a span after the
        `limit`-th latest (this process's stretch widens the span after its 429s)."""
        slot = max(now, self._not_before, self._slots[-1] if self._slots else 0.0)
        if len(self._slots) >= self.spec.limit:
            slot = max(slot, self._slots[-self.spec.limit] + self.spec.span * self.stretch)
        return slot

    def _push(self, not_before: float) -> None:
        """Hold every slot to at least `not_before` (after a 429)."""
        with self._claim_lock:
            try:
                for _ in range(CLAIM_ATTEMPTS):
                    if self._not_before >= not_before or self._write(self._slots, not_before):
                        return
                    self._read()
            except AzureError as exc:
                self._failed(exc)
            self._alone_next_at = max(self._alone_next_at, not_before)

    def _write(self, slots: list[float], not_before: float) -> bool:
        """Store the log if nobody wrote it since we last saw it; False when lost."""
        entity = {
            "PartitionKey": PARTITION,
            "RowKey": ROW,
            "Slots": " ".join(f"{t:.3f}" for t in slots),
            "NotBefore": not_before,
        }
        self.transactions += 1
        try:
            if self._etag is None:
                meta = self._table.create_entity(entity)
            else:
                meta = self._table.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=self._etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        except ResourceNotFoundError:
            if self._etag is None:  # no table yet: the first claim of the deployment makes it
                self.transactions += 1
                with contextlib.suppress(ResourceExistsError):
                    self._table.create_table()
            return False
        except (ResourceExistsError, ResourceModifiedError):
            return False
        self._etag = str(meta["etag"])
        self._slots = slots
        self._not_before = not_before
        return True

    def _read(self) -> None:
        self.transactions += 1
        try:
            entity = self._table.get_entity(PARTITION, ROW)
        except ResourceNotFoundError:
            self._etag, self._slots, self._not_before = None, [], 0.0
            return
        self._etag = str(entity.metadata["etag"])
        self._slots = self._sane_slots(entity.get("Slots"))
        self._not_before = self._sane(entity.get("NotBefore"))

    def _sane_slots(self, stored: object) -> list[float]:
        """The stored log when it is `limit` or fewer ascending times, none more than MAX_AHEAD
        from now; else empty (claim from now), warned once."""
        if stored in (None, ""):
            return []
        try:
            slots = [float(part) for part in str(stored).split(" ")]
        except ValueError:
            slots = []
        horizon = self._wall() + MAX_AHEAD
        if (
            0 < len(slots) <= self.spec.limit
            and all(0.0 <= t <= horizon for t in slots)  # NaN fails, inf fails
            and slots == sorted(slots)
        ):
            return slots
        self._bogus(type(stored).__name__)
        return []

    def _sane(self, stored: object) -> float:
        """The stored instant when it is a finite time at most MAX_AHEAD from now; else 0.0
        (claim from now), warned once: it is a clock that jumped or an edited entity."""
        value = stored if isinstance(stored, int | float) and not isinstance(stored, bool) else None
        if value is not None and value <= self._wall() + MAX_AHEAD:  # NaN fails, inf fails
            return float(value)
        if value is None and stored in (None, ""):
            return 0.0
        self._bogus(type(stored).__name__)
        return 0.0

    def _bogus(self, kind: str) -> None:
        if not self._warned_bogus:
            self._warned_bogus = True
            log.warning(
                "shared Resource Graph quota: ignoring a stored slot that is not a time within "
                "%.0f s from now (%s); claiming from now",
                MAX_AHEAD,
                kind,
            )

    def _alone(self, now: float) -> float:
        slot = max(now, self._alone_next_at, self._not_before)
        self._alone_next_at = slot + self.spec.interval
        return slot

    def _failed(self, exc: AzureError) -> None:
        self._etag = None
        if not self._storage_down:
            self._storage_down = True
            log.warning(
                "shared Resource Graph quota unavailable, pacing this process alone: %s",
                str(exc).splitlines()[0],
            )

    def _recovered(self) -> None:
        if self._storage_down:
            self._storage_down = False
            log.info("shared Resource Graph quota available again")


# A claim must not stall the query it paces: few, short storage retries (then pace alone).
PACER_STORAGE_OPTIONS: dict[str, Any] = {
    "retry_total": 2,
    "retry_backoff_factor": 0.2,
    "retry_backoff_max": 1,
    "connection_timeout": 5,
    "read_timeout": 10,
}


def shared_pacer(settings: Settings) -> SharedQuotaPacer | None:
    """The fleet's pacer for `settings` (None when AUDITOR_ARG_QUOTA is off or there is no
    storage: then each process paces on the headers it sees)."""
    if settings.arg_quota is None or settings.storage is None:
        return None
    service = table_service_client(settings.storage, **PACER_STORAGE_OPTIONS)
    spec = QuotaSpec(*settings.arg_quota)
    return SharedQuotaPacer.from_service(service, settings.table_prefix, spec)
