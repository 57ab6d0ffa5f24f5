"""The fleet's Resource Graph quota: one slot lease in Table Storage shared by every worker
(auditor/adapters/quota_lease.py), against Azurite. Clocks are fakes: nothing sleeps."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

import pytest
from azure.data.tables import TableServiceClient

from auditor.adapters.quota_lease import SharedQuotaPacer, quota_table_name, shared_pacer
from auditor.settings import Settings, load_settings
from tools.devservices import Azurite

SPEC_LIMIT, SPEC_WINDOW = 15, 5.0


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def settings(azurite: Azurite, table_prefix: str) -> Settings:
    return load_settings(
        {
            "AUDITOR_STORAGE": azurite.connection_string,
            "AUDITOR_TABLE_PREFIX": table_prefix,
            "AUDITOR_ARG_QUOTA": f"{SPEC_LIMIT}/{SPEC_WINDOW:g}",
        }
    )


@pytest.fixture
def pacers(settings: Settings) -> Iterator[list[SharedQuotaPacer]]:
    """Two workers' pacers (as two processes would have) on one clock."""
    made: list[SharedQuotaPacer] = []
    for _ in range(2):
        pacer = shared_pacer(settings)
        assert pacer is not None
        made.append(pacer)
    yield made
    for pacer in made:
        pacer.close()


def on_clock(pacer: SharedQuotaPacer, clock: Clock) -> SharedQuotaPacer:
    pacer._wall = clock  # type: ignore[attr-defined]
    pacer._clock = clock  # type: ignore[attr-defined]
    return pacer


def test_two_workers_take_turns_one_interval_apart(pacers: list[SharedQuotaPacer]) -> None:
    clock = Clock()
    a, b = (on_clock(p, clock) for p in pacers)
    interval = a.spec.interval
    assert SPEC_WINDOW / SPEC_LIMIT < interval < 1.1 * SPEC_WINDOW / SPEC_LIMIT
    # Neither knows the other: each claim sees the other's, so their waits interleave.
    waits = [a.delay(), b.delay(), a.delay(), b.delay(), b.delay()]
    assert waits == pytest.approx([0, interval, 2 * interval, 3 * interval, 4 * interval])
    # Time passing frees the quota: a claim after a quiet spell waits for nothing.
    clock.now += 60
    assert a.delay() == 0
    assert b.delay() == pytest.approx(interval)


def test_a_429_met_by_one_worker_makes_every_worker_wait_it_out(
    pacers: list[SharedQuotaPacer],
) -> None:
    clock = Clock()
    a, b = (on_clock(p, clock) for p in pacers)
    assert a.delay() == 0
    a.throttled(7.0)  # another client of the identity spent the window
    assert b.delay() == pytest.approx(7.0)
    assert a.delay() >= 7.0


def test_a_429_widens_the_spacing_of_the_worker_that_met_it_then_it_narrows_back(
    pacers: list[SharedQuotaPacer],
) -> None:
    clock = Clock()
    a, _ = (on_clock(p, clock) for p in pacers)
    interval = a.spec.interval
    a.throttled(0.0)  # the arrivals spread wider than the headroom allows
    first = a.delay()
    assert a.delay() - first == pytest.approx(interval * 1.1, rel=0.01)
    for _ in range(400):
        clock.now += 10
        a.delay()
    assert a.stretch == 1.0


def test_workers_on_threads_never_share_a_slot(pacers: list[SharedQuotaPacer]) -> None:
    clock = Clock()
    for pacer in pacers:
        on_clock(pacer, clock)
    slots: list[float] = []
    lock = threading.Lock()

    def claim(pacer: SharedQuotaPacer) -> None:
        for _ in range(10):
            wait = pacer.delay()
            with lock:
                slots.append(round(clock.now + wait, 6))

    threads = [threading.Thread(target=claim, args=(p,)) for p in pacers for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    interval = pacers[0].spec.interval
    ordered = sorted(slots)
    assert len(set(ordered)) == 60
    assert all(b - a >= interval * 0.999 for a, b in itertools.pairwise(ordered))


def test_the_first_claim_of_a_deployment_makes_its_table(
    pacers: list[SharedQuotaPacer], settings: Settings, azurite: Azurite
) -> None:
    assert pacers[0].delay() == 0
    with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        names = {t.name for t in service.list_tables()}
    assert quota_table_name(settings.table_prefix) in names


def test_storage_down_paces_the_process_alone_and_says_so_once(
    caplog: pytest.LogCaptureFixture, table_prefix: str
) -> None:
    # Nothing listens on port 9 of the loopback: every claim fails at once.
    closed = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )
    pacer = shared_pacer(
        load_settings({"AUDITOR_STORAGE": closed, "AUDITOR_TABLE_PREFIX": table_prefix})
    )
    assert pacer is not None
    clock = Clock()
    on_clock(pacer, clock)
    with caplog.at_level("WARNING"):
        waits = [pacer.delay(), pacer.delay()]
    pacer.close()
    assert waits == pytest.approx([0, pacer.spec.interval])
    warnings = [r for r in caplog.records if "pacing this process alone" in r.getMessage()]
    assert len(warnings) == 1


def test_quota_off_or_no_storage_leaves_pacing_to_each_process(azurite: Azurite) -> None:
    assert shared_pacer(load_settings({"AUDITOR_ARG_QUOTA": "15/5"})) is None
    off = {"AUDITOR_STORAGE": azurite.connection_string, "AUDITOR_ARG_QUOTA": "off"}
    assert shared_pacer(load_settings(off)) is None


@pytest.mark.parametrize(
    "stored",
    [1_000_000.0 + 100 * 365 * 86_400, 1e300, "abc", "1e300"],
    ids=["a-century-ahead", "1e300", "text", "numeric-text"],
)
def test_a_stored_instant_far_ahead_or_not_a_time_never_stalls_the_fleet(
    pacers: list[SharedQuotaPacer], settings: Settings, stored: object
) -> None:
    # A clock that jumped, or anyone who can write the table, must not park every worker of
    # the identity: each claim would also have pushed the instant further ahead.
    clock = Clock()
    a, b = (on_clock(p, clock) for p in pacers)
    assert a.delay() == 0  # the entity exists
    assert settings.storage is not None
    with TableServiceClient.from_connection_string(settings.storage.connection_string) as svc:
        table = svc.get_table_client(quota_table_name(settings.table_prefix))
        table.upsert_entity({"PartitionKey": "quota", "RowKey": "resource-graph", "NextAt": stored})
    interval = a.spec.interval
    clock.now += 10
    assert b.delay() == 0  # ignored: claimed from now, and the sane instant written back
    assert a.delay() == pytest.approx(interval)


def test_a_huge_retry_after_holds_the_fleet_at_most_a_minute(
    pacers: list[SharedQuotaPacer],
) -> None:
    clock = Clock()
    a, b = (on_clock(p, clock) for p in pacers)
    a.delay()
    a.throttled(1e12)
    assert 0 < b.delay() <= 60.0
