"""A thread-safe least-recently-used cache bounded by total weight, loading each key once.

Used for immutable values only (committed snapshots, their diffs): a cached value never goes
stale, so there is no expiry, only eviction when the weight bound is reached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class CacheStats:
    entries: int
    weight: int
    max_weight: int
    hits: int
    misses: int


class BoundedCache(Generic[K, V]):
    """LRU cache whose entries' weights (e.g. record counts) add up to at most `max_weight`.

    ``get_or_load`` runs the loader outside the cache lock, once per key even when many threads
    ask for the same missing key at the same time; the others wait for that one load. A value
    heavier than the whole bound is returned but not kept.
    """

    def __init__(self, max_weight: int, weigh: Callable[[V], int]) -> None:
        if max_weight < 0:
            raise ValueError("max_weight must be >= 0")
        self._max_weight = max_weight
        self._weigh = weigh
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._weight = 0
        self._lock = threading.Lock()
        self._loading: dict[K, threading.Lock] = {}
        self._hits = 0
        self._misses = 0

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
            self._hits += 1
            return found[0]

    def put(self, key: K, value: V) -> None:
        weight = max(0, self._weigh(value))
        with self._lock:
            if key in self._entries:
                self._weight -= self._entries.pop(key)[1]
            if weight > self._max_weight:
                return
            self._entries[key] = (value, weight)
            self._weight += weight
            while self._weight > self._max_weight:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._weight -= dropped

    def get_or_load(self, key: K, load: Callable[[], V]) -> V:
        found = self.get(key)
        if found is not None:
            return found
        with self._lock:
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            found = self.get(key)
            if found is not None:
                return found
            with self._lock:
                self._misses += 1
            try:
                value = load()
                self.put(key, value)
            finally:
                with self._lock:
                    self._loading.pop(key, None)
            return value

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                entries=len(self._entries),
                weight=self._weight,
                max_weight=self._max_weight,
                hits=self._hits,
                misses=self._misses,
            )
