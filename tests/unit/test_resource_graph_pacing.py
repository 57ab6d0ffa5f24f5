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


S1, S2, S3 = (f"{n}1111111-1111-4111-8111-111111111111" for n in "abc")
T1, T2 = "d2222222-2222-4222-8222-222222222222", "e3333333-3333-4333-8333-333333333333"


def test_only_delegated_subscriptions_are_grouped_by_tenant() -> None:
    subs = [
        {
            "subscriptionId": S1.upper(),
            "tenantId": T1.upper(),
            "name": "one",
            "properties": {"state": "Enabled"},
        },
        {"subscriptionId": S2, "tenantId": T1, "name": "two", "properties": {}},
        {"subscriptionId": S3, "tenantId": T2, "name": "three"},
        {"subscriptionId": "own", "tenantId": "managing", "name": "not delegated"},
    ]
    delegations = [{"subscriptionId": S1}, {"subscriptionId": S2.upper()}, {"subscriptionId": S3}]
    tenants = tenants_from_rows(subs, delegations, {T1: "Contoso"})
    assert [(t.tenant_id, [s.subscription_id for s in t.subscriptions]) for t in tenants] == [
        (T1, [S1, S2]),
        (T2, [S3]),
    ]
    assert [t.display_name for t in tenants] == ["Contoso", T2]


def test_discovery_rows_that_are_not_objects_or_not_guids_are_malformed() -> None:
    import pytest

    from auditor.adapters.bounded import MalformedAnswer

    delegations = [{"subscriptionId": S1}, {"subscriptionId": "../x"}]
    with pytest.raises(MalformedAnswer, match="not an object"):
        tenants_from_rows([None], delegations)  # type: ignore[list-item]
    with pytest.raises(MalformedAnswer, match="not an object"):
        tenants_from_rows([], ["row"])  # type: ignore[list-item]
    bad = [{"subscriptionId": "../x", "tenantId": T1}]
    with pytest.raises(MalformedAnswer, match="an id is not a GUID"):
        tenants_from_rows(bad, delegations)
    with pytest.raises(MalformedAnswer, match="an id is not a GUID"):
        tenants_from_rows([{"subscriptionId": S1, "tenantId": "evil/../../x"}], delegations)


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
