"""The Where-to-act page (/act): services/ranking.py's ranking of recommendations and failing
controls by severity, then unhealthy resources, over the visible tenants only, paged, each
tenant's count linking to that tenant."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Iterator
from html import unescape

import pytest
from azure.data.tables import TableServiceClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.adapters.tables.store import SnapshotStore
from auditor.api import create_app
from auditor.core.access import Principal, parse_policy
from auditor.core.snapshot import slot_of
from auditor.services.history import SnapshotHistory
from auditor.services.ranking import RankedItem, rank_where_to_act
from auditor.web import views
from tests.api.conftest import TestClient, principal_header
from tests.unit.test_ranking import ESTATE, EVERYTHING, TENANTS, Latest, only, posture
from tools.devservices import Azurite
from tools.posture_factory import make_snapshot

CALLER = Principal("a11ce000-0000-4000-8000-000000000001", auth_type="aad")
ROW = re.compile(r"<tr>\s*<td>(\d+)</td>(.*?)</tr>", re.S)
# The ranking tests' estate, each tenant with a name of its own (theirs share one).
NAMED = [
    dataclasses.replace(p, tenant=dataclasses.replace(p.tenant, display_name=f"Tenant N{n}"))
    for n, p in enumerate(ESTATE)
]


@pytest.fixture(scope="module")
def history(azurite: Azurite) -> Iterator[SnapshotHistory]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    store = SnapshotStore(service, "act" + uuid.uuid4().hex[:10])
    for named in NAMED:
        store.commit_snapshot(named, slot_of("20261127T020000Z"), "test/1")
    try:
        yield SnapshotHistory(store)
    finally:
        store.close()


def client_for(history: SnapshotHistory, tenants: list[str] | str) -> TestClient:
    grant = {"principal": CALLER.object_id, "tenants": tenants}
    app = create_app(history, parse_policy(json.dumps({"grants": [grant]})))
    return TestClient(app, raise_server_exceptions=False)


def act(client: TestClient, query: str = "") -> str:
    answer = client.get(f"/act{query}", headers=principal_header(CALLER))
    assert answer.status_code == 200, answer.text
    return answer.text


def rows(html: str) -> list[tuple[int, str]]:
    return [(int(rank), unescape(cells)) for rank, cells in ROW.findall(html)]


def expected_cells(item: RankedItem) -> list[str]:
    """What a row must say of the item: severity, name, total, each tenant's link and count."""
    said = [item.severity or "unknown", item.display_name, f"<td>{item.unhealthy_resources}</td>"]
    for t in item.tenants:
        said.append(f">{t.tenant_name}</a>")
        said.append(f"{t.unhealthy_resources} in {t.subscriptions} subscription")
        said.append(f'href="/tenants/{t.tenant_id}')
    return said


def test_the_page_ranks_recommendations_and_controls_as_the_ranking_service_does(
    history: SnapshotHistory,
) -> None:
    html = act(client_for(history, "*"))
    ranking = rank_where_to_act(history, EVERYTHING, limit=1000)
    shown = rows(html)
    assert [rank for rank, _ in shown] == list(range(1, ranking.total + 1))
    for (_, cells), item in zip(shown, ranking.items, strict=True):
        for text in expected_cells(item):
            assert text in cells, (item.key, text)
    # Severity first: every High item is above every Medium one, and so on.
    assert [i.severity for i in ranking.items] == sorted(
        (i.severity for i in ranking.items), key=("High", "Medium", "Low", "").index
    )
    assert shown[0][1].count("High") >= 1


def test_a_control_links_each_tenant_to_that_control_on_its_page(
    history: SnapshotHistory,
) -> None:
    html = act(client_for(history, "*"), "?kind=control")
    ranking = rank_where_to_act(history, EVERYTHING, kinds=("control",), limit=1000)
    assert ranking.items, "the estate has failing controls"
    item = ranking.items[0]
    standard, _, control = item.key.partition("/")
    target = f"/tenants/{item.tenants[0].tenant_id}?standard={standard}&control={control}"
    assert f'href="{target.replace("&", "&amp;")}"'.replace(" ", "%20") in html
    assert "Recommendation" not in "".join(cells for _, cells in rows(html))


def test_a_caller_sees_the_ranking_over_the_tenants_granted_only(history: SnapshotHistory) -> None:
    granted = [TENANTS[1]]
    html = act(client_for(history, granted))
    ranking = rank_where_to_act(history, only(*granted), limit=1000)
    shown = rows(html)
    assert len(shown) == ranking.total
    for (_, cells), item in zip(shown, ranking.items, strict=True):
        assert [t.tenant_id for t in item.tenants] == granted
        for text in expected_cells(item):
            assert text in cells, (item.key, text)
    for hidden in (t for t in TENANTS if t not in granted):
        assert hidden not in html
        name = next(p.tenant.display_name for p in NAMED if p.tenant.tenant_id == hidden)
        assert name not in html


def test_a_tenant_whose_latest_snapshot_predates_recommendations_is_named_not_counted(
    history: SnapshotHistory,
) -> None:
    html = act(client_for(history, "*"))
    assert "Not ranked" in html and f'href="/tenants/{TENANTS[3]}"' in html
    assert f'href="/tenants/{TENANTS[3]}"' not in "".join(cells for _, cells in rows(html))
    assert "Not ranked" not in act(client_for(history, [TENANTS[0]]))


def test_the_ranking_is_paged_with_previous_and_next_links(
    history: SnapshotHistory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "ACTIONS_PER_PAGE", 2)
    client = client_for(history, "*")
    total = rank_where_to_act(history, EVERYTHING, limit=1000).total
    pages = -(-total // 2)
    assert pages >= 3
    first, second, last = act(client), act(client, "?page=2"), act(client, f"?page={pages}")
    assert [r for r, _ in rows(first)] == [1, 2]
    assert [r for r, _ in rows(second)] == [3, 4]
    assert 'href="/act?page=3" rel="next"' in second and 'href="/act?page=1" rel="prev"' in second
    assert 'rel="next"' not in last and f"Page {pages} of {pages}" in last
    assert 'href="/act?page=2&amp;kind=control" rel="next"' in act(client, "?kind=control")


@pytest.mark.parametrize("query", ["?page=0", "?page=abc", "?page=999", "?kind=bogus"])
def test_a_bad_page_or_kind_is_a_400_page_naming_it(history: SnapshotHistory, query: str) -> None:
    answer = client_for(history, "*").get(f"/act{query}", headers=principal_header(CALLER))
    assert answer.status_code == 400
    assert ("page" if "page" in query else "kind") in answer.text


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(granted=st.lists(st.sampled_from(TENANTS), unique=True, max_size=4), page=st.integers(1, 3))
def test_no_row_count_or_link_of_the_ranking_comes_from_a_tenant_outside_the_grant(
    history: SnapshotHistory, monkeypatch: pytest.MonkeyPatch, granted: list[str], page: int
) -> None:
    monkeypatch.setattr(views, "ACTIONS_PER_PAGE", 2)
    ranking = rank_where_to_act(history, only(*granted), offset=(page - 1) * 2, limit=2)
    answer = client_for(history, granted).get(f"/act?page={page}", headers=principal_header(CALLER))
    if page > 1 and not ranking.items:
        assert answer.status_code == 400  # past the last page
        return
    html = answer.text
    assert [r for r, _ in rows(html)] == list(
        range((page - 1) * 2 + 1, (page - 1) * 2 + 1 + len(ranking.items))
    )
    for (_, cells), item in zip(rows(html), ranking.items, strict=True):
        for text in expected_cells(item):
            assert text in cells, (item.key, text)
    for hidden in (p for p in NAMED if p.tenant.tenant_id not in granted):
        assert hidden.tenant.tenant_id not in html
        assert hidden.tenant.display_name not in html


def test_a_kept_ranking_is_never_served_for_other_snapshots_or_another_grant() -> None:
    cache = views.ranking_cache()
    before = Latest(ESTATE)
    first = views.where_to_act(before, EVERYTHING, cache=cache)
    assert views.where_to_act(before, EVERYTHING, cache=cache) == first  # kept
    # A new snapshot of one tenant (other content, other hash) ranks afresh.
    newer = Latest(ESTATE)
    newer.by_tenant[TENANTS[2]] = make_snapshot(posture(TENANTS[2], 9), "20261128T020000Z")
    fresh = views.where_to_act(newer, EVERYTHING, cache=cache)
    expected = rank_where_to_act(newer, EVERYTHING, limit=1000)
    assert [i for _, i in fresh.items] == list(expected.items[: len(fresh.items)])
    assert fresh != first
    # Another grant over the same snapshots is another ranking.
    narrow = views.where_to_act(before, only(TENANTS[0]), cache=cache)
    assert {t.tenant_id for _, i in narrow.items for t in i.tenants} == {TENANTS[0]}
