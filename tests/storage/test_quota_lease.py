"""The fleet's Resource Graph quota: one slot lease in Table Storage shared by every worker
(auditor/adapters/quota_lease.py), against Azurite. Clocks are fakes: nothing sleeps."""

from __future__ import annotations

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


def spans_hold(slots: list[float], limit: int, span: float) -> bool:
    """Whether no `limit` + 1 of `slots` fall within one `span` (Resource Graph's own rule,
    with the lease's headroom)."""
    ordered = sorted(slots)
    return all(ordered[i + limit] - ordered[i] >= span * 0.999 for i in range(len(ordered) - limit))


def test_two_workers_share_one_window_and_burst_after_a_quiet_spell(
    pacers: list[SharedQuotaPacer],
) -> None:
    clock = Clock()
    a, b = (on_clock(p, clock) for p in pacers)
    span = a.spec.span
    assert SPEC_WINDOW < span < 1.1 * SPEC_WINDOW
    # Neither knows the other: each claim sees the other's. The first window's 15 queries go
    # at once; the 16th waits until the first is a span old, and so on.
    waits = [(a if i % 2 else b).delay() for i in range(31)]
    assert waits[:15] == [0] * 15
    assert waits[15:30] == pytest.approx([span] * 15, abs=0.002)
    assert waits[30] == pytest.approx(2 * span, abs=0.002)
    # Time passing frees the quota: after a quiet spell a whole window's burst goes at once.
    clock.now += 60
    assert [a.delay() for _ in range(15)] == [0] * 15
    assert b.delay() == pytest.approx(span, abs=0.002)


def test_the_log_holds_the_fleet_to_the_quota_when_claims_arrive_spread_out(
    pacers: list[SharedQuotaPacer],
) -> None:
    clock = Clock()
    a, b = (on_clock(p, clock) for p in pacers)
    slots = []
    for i in range(100):
        clock.now += 0.1 * (i % 7)  # workers come back at uneven times
        slots.append(clock.now + (a if i % 3 else b).delay())
    assert spans_hold(slots, SPEC_LIMIT, a.spec.span)
    assert slots == sorted(slots)  # a claim is never before one already given


def test_a_429_met_by_one_worker_makes_every_worker_wait_it_out(
    pacers: list[SharedQuotaPacer],
) -> None:
    clock = Clock()
    a, b = (on_clock(p, clock) for p in pacers)
    assert a.delay() == 0
    a.throttled(7.0)  # another client of the identity spent the window
    assert b.delay() == pytest.approx(7.0)
    assert a.delay() >= 7.0


def test_a_429_widens_the_span_of_the_worker_that_met_it_then_it_narrows_back(
    pacers: list[SharedQuotaPacer],
) -> None:
    clock = Clock()
    a, _ = (on_clock(p, clock) for p in pacers)
    span = a.spec.span
    a.throttled(0.0)  # the arrivals spread wider than the headroom allows
    waits = [a.delay() for _ in range(SPEC_LIMIT + 1)]
    assert span * 1.05 < waits[-1] <= span * 1.1 + 0.002
    for _ in range(400):
        clock.now += 10
        a.delay()
    assert a.stretch == 1.0


def test_workers_on_threads_never_claim_past_the_quota(pacers: list[SharedQuotaPacer]) -> None:
    clock = Clock()
    for pacer in pacers:
        on_clock(pacer, clock)
    slots: list[float] = []
    lock = threading.Lock()

    def claim(pacer: SharedQuotaPacer) -> None:
        for _ in range(10):
            wait = pacer.delay()
            with lock:
                slots.append(clock.now + wait)

    threads = [threading.Thread(target=claim, args=(p,)) for p in pacers for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    span = pacers[0].spec.span
    assert len(slots) == 60
    # Every claim was counted: 60 claims at one instant need exactly three spans after it.
    assert max(slots) - clock.now == pytest.approx(3 * span, abs=0.004)
    assert spans_hold(slots, SPEC_LIMIT, span)


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
    ("field", "stored"),
    [
        ("Slots", f"{1_000_000.0 + 100 * 365 * 86_400}"),
        ("Slots", "1e300"),
        ("Slots", "nan"),
        ("Slots", "abc"),
        ("Slots", "1000000.5 1000000.0"),
        ("Slots", " ".join(["1000000.0"] * (SPEC_LIMIT + 1))),
        ("Slots", 1e300),
        ("NotBefore", 1_000_000.0 + 100 * 365 * 86_400),
        ("NotBefore", 1e300),
        ("NotBefore", "abc"),
    ],
    ids=[
        "a-century-ahead",
        "1e300",
        "nan",
        "text",
        "descending",
        "too-many",
        "a-number",
        "not-before-a-century-ahead",
        "not-before-1e300",
        "not-before-text",
    ],
)
def test_a_stored_slot_far_ahead_or_not_a_time_never_stalls_the_fleet(
    pacers: list[SharedQuotaPacer], settings: Settings, field: str, stored: object
) -> None:
    # A clock that jumped, or anyone who can write the table, must not park every worker of
    # the identity: each claim would also have pushed the slots further ahead.
    clock = Clock()
    a, b = (on_clock(p, clock) for p in pacers)
    assert a.delay() == 0  # the entity exists
    assert settings.storage is not None
    with TableServiceClient.from_connection_string(settings.storage.connection_string) as svc:
        table = svc.get_table_client(quota_table_name(settings.table_prefix))
        entity = {"PartitionKey": "quota", "RowKey": "resource-graph", "Slots": "", field: stored}
        table.upsert_entity(entity)
    clock.now += 10
    assert b.delay() == 0  # ignored: claimed from now, and a sane log written back
    assert [a.delay() for _ in range(SPEC_LIMIT - 1)] == [0] * (SPEC_LIMIT - 1)
    assert b.delay() == pytest.approx(a.spec.span, abs=0.002)


def test_a_huge_retry_after_holds_the_fleet_at_most_a_minute(
    pacers: list[SharedQuotaPacer],
) -> None:
    clock = Clock()
    a, b = (on_clock(p, clock) for p in pacers)
    a.delay()
    a.throttled(1e12)
    assert 0 < b.delay() <= 60.0
