"""The immutable-value cache: bounded by weight, least recently used out, one load per key."""

from __future__ import annotations

import threading

import pytest

from auditor.services.bounded_cache import BoundedCache


def test_values_are_kept_until_their_weight_exceeds_the_bound_then_lru_goes_first() -> None:
    cache: BoundedCache[str, list[int]] = BoundedCache(10, len)
    cache.put("a", [1] * 4)
    cache.put("b", [1] * 4)
    assert cache.get("a") == [1] * 4  # a is now the most recently used
    cache.put("c", [1] * 4)
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None
    assert cache.stats().weight == 8


def test_a_value_heavier_than_the_bound_is_returned_but_not_kept() -> None:
    cache: BoundedCache[str, list[int]] = BoundedCache(3, len)
    assert cache.get_or_load("big", lambda: [1] * 5) == [1] * 5
    assert cache.get("big") is None


def test_concurrent_misses_of_one_key_load_it_once() -> None:
    cache: BoundedCache[str, int] = BoundedCache(100, lambda _: 1)
    calls = []
    started = threading.Event()
    release = threading.Event()

    def load() -> int:
        calls.append(1)
        started.set()
        release.wait(5)
        return 42

    results: list[int] = []
    first = threading.Thread(target=lambda: results.append(cache.get_or_load("k", load)))
    first.start()
    started.wait(5)
    others = [
        threading.Thread(target=lambda: results.append(cache.get_or_load("k", load)))
        for _ in range(4)
    ]
    for thread in others:
        thread.start()
    release.set()
    for thread in [first, *others]:
        thread.join(5)
    assert results == [42] * 5
    assert len(calls) == 1


def test_a_failed_load_is_not_cached_and_the_next_call_loads_again() -> None:
    cache: BoundedCache[str, int] = BoundedCache(100, lambda _: 1)

    def broken() -> int:
        raise RuntimeError("store down")

    with pytest.raises(RuntimeError):
        cache.get_or_load("k", broken)
    assert cache.get_or_load("k", lambda: 7) == 7
