from auditor.adapters.resource_graph import QuotaPacer, parse_resets_after, parse_retry_after
from auditor.services.collect import tenants_from_rows


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_resets_after_is_read_as_hh_mm_ss() -> None:
    assert parse_resets_after("00:00:05") == 5
    assert parse_resets_after("00:01:02.5") == 62.5
    assert parse_resets_after("garbage") is None
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None


def test_pacer_waits_only_when_quota_is_spent() -> None:
    clock = Clock()
    pacer = QuotaPacer(clock)
    assert pacer.delay() == 0  # nothing known yet
    pacer.observe("1", "00:00:04")
    assert pacer.delay() == 0
    pacer.spend()
    assert pacer.delay() == 4
    clock.now += 3
    assert pacer.delay() == 1
    clock.now += 2
    assert pacer.delay() == 0


def test_a_throttle_blocks_until_retry_after() -> None:
    clock = Clock()
    pacer = QuotaPacer(clock)
    pacer.observe("10", "00:00:05")
    pacer.throttled(7.0)
    assert pacer.delay() == 7.0


def test_only_delegated_subscriptions_are_grouped_by_tenant() -> None:
    subs = [
        {
            "subscriptionId": "S1",
            "tenantId": "T1",
            "name": "one",
            "properties": {"state": "Enabled"},
        },
        {"subscriptionId": "s2", "tenantId": "t1", "name": "two", "properties": {}},
        {"subscriptionId": "s3", "tenantId": "t2", "name": "three"},
        {"subscriptionId": "own", "tenantId": "managing", "name": "not delegated"},
    ]
    delegations = [{"subscriptionId": "s1"}, {"subscriptionId": "S2"}, {"subscriptionId": "s3"}]
    tenants = tenants_from_rows(subs, delegations, {"t1": "Contoso"})
    assert [(t.tenant_id, [s.subscription_id for s in t.subscriptions]) for t in tenants] == [
        ("t1", ["s1", "s2"]),
        ("t2", ["s3"]),
    ]
    assert [t.display_name for t in tenants] == ["Contoso", "t2"]


def test_prefetch_keeps_order_and_raises_fetch_errors_in_the_caller() -> None:
    import pytest

    from auditor.adapters.resource_graph import GraphQueryError, prefetch

    assert list(prefetch(iter(range(10)))) == list(range(10))

    def failing():  # type: ignore[no-untyped-def]
        yield 1
        raise GraphQueryError("boom", status=500)

    got = []
    with pytest.raises(GraphQueryError, match="boom"):
        for item in prefetch(failing()):
            got.append(item)
    assert got == [1]


def test_prefetch_stops_its_worker_when_the_caller_stops() -> None:
    import threading

    from auditor.adapters.resource_graph import prefetch

    produced = []

    def endless():  # type: ignore[no-untyped-def]
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    pages = prefetch(endless(), depth=2)
    assert next(pages) == 0
    pages.close()
    assert not any(t.name == "resource-graph-prefetch" for t in threading.enumerate())
    assert len(produced) <= 5
