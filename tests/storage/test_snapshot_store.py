"""SnapshotStore against Azurite: what is committed is what is read, once, and only when whole."""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.pipeline import PipelineResponse

from auditor.adapters.storage import table_service_client
from auditor.adapters.tables import CorruptSnapshot, SnapshotStore, SnapshotSuperseded
from auditor.adapters.tables.packing import (
    MAX_BATCH_REQUEST_BYTES,
    compress_lines,
    iter_section_lines,
)
from auditor.core.canonical import snapshot_content_hash
from auditor.core.model import CollectionStatus, ComplianceRecord, State, TenantPosture
from auditor.core.snapshot import SnapshotNotFound, SnapshotReader, SnapshotTampered, Transition
from auditor.settings import Settings, require_storage
from tools.posture_factory import make_posture, missing_subscription, tenant_id_for, with_states

DAY1 = datetime(2024, 5, 1, 2, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
DAY3 = DAY2 + timedelta(days=1)
TENANT = tenant_id_for(1)


def rows(settings: Settings, table: str) -> list[dict[str, Any]]:
    service = table_service_client(require_storage(settings))
    with service:
        return [dict(e) for e in service.get_table_client(table).list_entities()]


def same_records(a: TenantPosture, b: TenantPosture) -> None:
    for field in dataclasses.fields(TenantPosture):
        left, right = getattr(a, field.name), getattr(b, field.name)
        if isinstance(left, tuple):
            assert sorted(map(repr, left)) == sorted(map(repr, right)), field.name
        else:
            assert left == right, field.name


class Crash(Exception):
    """Stands for the process dying at a chosen request."""


def crash_after(table: str, responses: int) -> Callable[[PipelineResponse[Any, Any]], None]:
    """A response hook that 'dies' after the n-th response concerning `table`."""
    pattern = re.compile(rf"/{table}(?:[(?]|$)", re.MULTILINE)
    seen = [0]

    def hook(response: PipelineResponse[Any, Any]) -> None:
        request = response.http_request
        body = request.body if isinstance(request.body, bytes | str) else b""
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        if pattern.search(request.url) or pattern.search(text):
            seen[0] += 1
            if seen[0] == responses:
                raise Crash(f"after response {responses} of {table}")

    return hook


def test_the_store_is_a_snapshot_reader(store: SnapshotStore) -> None:
    reader: SnapshotReader = store
    assert reader.list_tenants() == []


def test_a_committed_snapshot_reads_back_whole_and_its_hash_verifies(store: SnapshotStore) -> None:
    posture = make_posture(TENANT, subscriptions=3, standards=3)
    entry = store.commit_snapshot(posture, DAY1, "collector/1")

    snapshot = store.get_snapshot(TENANT, "20240501T020000Z")
    same_records(snapshot.posture, posture)
    assert snapshot.index == entry == store.get_index(TENANT, entry.snapshot_id)
    assert snapshot_content_hash(snapshot) == entry.content_hash
    assert entry.status is CollectionStatus.COMPLETE and entry.reasons == ()
    assert entry.scheduled_at == DAY1 and entry.finished_at >= DAY1
    assert entry.previous_snapshot_id is None and entry.previous_hash is None
    assert entry.expected_subscriptions == entry.collected_subscriptions
    assert len(entry.expected_subscriptions) == 3
    assert entry.counts["compliance"] == len(posture.compliance)
    assert entry.counts["compliance_failed"] == sum(
        r.state is State.FAILED for r in posture.compliance
    )
    assert set(entry.compliance_by_standard) == {r.standard for r in posture.compliance}
    assert all(t == Transition(DAY1, DAY1, t.first_failed) for t in snapshot.transitions.values())


def test_rerunning_a_slot_writes_nothing_and_returns_the_same_snapshot(
    store: SnapshotStore, settings: Settings
) -> None:
    posture = make_posture(TENANT)
    first = store.commit_snapshot(posture, DAY1, "collector/1")
    content_before = rows(settings, store.tables.content)

    changed = with_states(posture, {posture.compliance[0].key: State.SKIPPED})
    again = store.commit_snapshot(changed, DAY1, "collector/1")

    assert again == first
    assert rows(settings, store.tables.content) == content_before
    assert len(rows(settings, store.tables.index)) == 1
    assert [e.snapshot_id for e in store.list_snapshots(TENANT)] == [first.snapshot_id]


def test_snapshots_chain_by_hash_and_carry_history(store: SnapshotStore) -> None:
    posture = make_posture(TENANT)
    failed = next(r for r in posture.compliance if r.state is State.FAILED)
    passed = next(r for r in posture.compliance if r.state is State.PASSED)
    day1 = store.commit_snapshot(posture, DAY1, "c")
    day2 = store.commit_snapshot(with_states(posture, {passed.key: State.FAILED}), DAY2, "c")

    assert (day2.previous_snapshot_id, day2.previous_hash) == (day1.snapshot_id, day1.content_hash)
    snapshot = store.get_snapshot(TENANT, day2.snapshot_id)
    assert snapshot.transitions[failed.key] == Transition(DAY1, DAY1, DAY1)
    assert snapshot.transitions[passed.key] == Transition(DAY1, DAY2, DAY2)
    streamed = dict((r.key, t) for r, t in store.iter_compliance(TENANT, day2.snapshot_id))
    assert streamed == snapshot.transitions


def test_listing_is_newest_first_and_bounded_by_scheduled_time(store: SnapshotStore) -> None:
    posture = make_posture(TENANT)
    entries = [store.commit_snapshot(posture, day, "c") for day in (DAY1, DAY2, DAY3)]
    other = store.commit_snapshot(make_posture(tenant_id_for(2)), DAY1, "c")

    assert store.list_snapshots(TENANT) == entries[::-1]
    assert store.list_snapshots(TENANT, since=DAY2) == entries[:0:-1]
    assert store.list_snapshots(TENANT, until=DAY2) == entries[1::-1]
    assert store.list_snapshots(TENANT, since=DAY1 + timedelta(seconds=1), until=DAY2) == [
        entries[1]
    ]
    assert store.find_at(TENANT, DAY2 + timedelta(hours=5)) == entries[1]
    assert store.find_at(TENANT, DAY2) == entries[1]
    with pytest.raises(SnapshotNotFound):
        store.find_at(TENANT, DAY1 - timedelta(seconds=1))
    assert store.list_tenants() == [entries[2], other]
    assert store.list_snapshots(tenant_id_for(3)) == []


def test_unknown_or_malformed_snapshots_are_not_found(store: SnapshotStore) -> None:
    with pytest.raises(SnapshotNotFound):
        store.get_snapshot(TENANT, "20240501T020000Z")  # tables do not even exist yet
    store.commit_snapshot(make_posture(TENANT), DAY1, "c")
    for snapshot_id in ("20240502T020000Z", "latest", "../x", ""):
        with pytest.raises(SnapshotNotFound):
            store.get_index(TENANT, snapshot_id)
        with pytest.raises(SnapshotNotFound):
            store.get_snapshot(TENANT, snapshot_id)


def test_any_standard_control_or_assessment_name_is_stored_safely(store: SnapshotStore) -> None:
    posture = make_posture(TENANT, subscriptions=1, standards=1, controls=1, assessments=1)
    odd = ComplianceRecord(
        subscription_id=posture.tenant.subscriptions[0].subscription_id,
        standard="PCI/DSS#4?\\v2",
        control="1.2\t\x00\x7f\x85~%",
        assessment="a/b#c?d\\e\ud800",
        state=State.FAILED,
        passed_resources=0,
        failed_resources=1,
        skipped_resources=0,
        description="x" * 70_000 + "— ünïcode",  # longer than a property may be
    )
    posture = dataclasses.replace(posture, compliance=(*posture.compliance, odd))
    entry = store.commit_snapshot(posture, DAY1, "c")
    snapshot = store.get_snapshot(TENANT, entry.snapshot_id)
    assert odd in snapshot.posture.compliance
    assert snapshot.transitions[odd.key] == Transition(DAY1, DAY1, DAY1)


def test_a_tenant_id_with_forbidden_characters_is_stored_safely(
    make_store: Callable[..., SnapshotStore],
) -> None:
    tenant = "weird/tenant#1?\\"
    posture = make_posture(tenant_id_for(9))
    posture = dataclasses.replace(
        posture, tenant=dataclasses.replace(posture.tenant, tenant_id=tenant)
    )
    raw = make_store(anchored=False)  # keys are escaped whatever the id
    entry = raw.commit_snapshot(posture, DAY1, "c")
    assert raw.get_snapshot(tenant, entry.snapshot_id).index.tenant_id == tenant
    assert [e.tenant_id for e in raw.list_tenants()] == [tenant]


def test_the_anchored_store_commits_nothing_for_an_id_no_anchor_can_be_named_by(
    store: SnapshotStore,
) -> None:
    """A tenant id is never part of a blob name unless it is a GUID: no anchor, no commit."""
    posture = make_posture(tenant_id_for(9))
    evil = "evil/../../anchors/" + tenant_id_for(9)
    posture = dataclasses.replace(
        posture, tenant=dataclasses.replace(posture.tenant, tenant_id=evil)
    )
    with pytest.raises(ValueError, match="not a tenant id"):
        store.commit_snapshot(posture, DAY1, "c")
    assert store.list_snapshots(evil) == [] and store.list_tenants() == []


def test_a_large_snapshot_is_written_in_transactions_under_4_mib(
    make_store: Callable[..., SnapshotStore],
) -> None:
    bodies: list[int] = []

    def measure(request: Any) -> None:
        body = request.http_request.body
        if body is not None:
            bodies.append(len(body))

    store = make_store(raw_request_hook=measure)
    # Random descriptions defeat compression: about 9 MB of content.
    posture = make_posture(
        TENANT,
        subscriptions=4,
        standards=3,
        controls=25,
        assessments=10,
        description=lambda rng: rng.randbytes(1500).hex(),
    )
    entry = store.commit_snapshot(posture, DAY1, "c")
    assert len(bodies) > 3
    assert max(bodies) <= MAX_BATCH_REQUEST_BYTES < 4 * 1024 * 1024
    same_records(store.get_snapshot(TENANT, entry.snapshot_id).posture, posture)


@pytest.mark.parametrize(
    ("table", "responses"),
    [
        ("Snapshots", 3),  # index: row read, predecessors, claim (pending) -> crash
        ("SnapshotContent", 1),  # first of several content transactions -> crash
        ("Snapshots", 4),  # the commit itself -> crash before the latest row
        ("Tenants", 1),  # latest row read -> crash before it is written
    ],
)
def test_an_interrupted_commit_is_invisible_and_the_next_attempt_completes_it(
    make_store: Callable[..., SnapshotStore], settings: Settings, table: str, responses: int
) -> None:
    posture = make_posture(
        TENANT,
        subscriptions=4,
        controls=25,
        assessments=10,
        description=lambda r: r.randbytes(1500).hex(),
    )
    prefix = settings.table_prefix
    crashing = make_store(raw_response_hook=crash_after(prefix + table, responses))
    crashing.create_tables()
    with pytest.raises(Crash):
        crashing.commit_snapshot(posture, DAY1, "c")

    reader = make_store()
    committed = reader.list_snapshots(TENANT)
    if committed:  # the crash came after the commit point: the snapshot is whole
        assert reader.get_snapshot(TENANT, committed[0].snapshot_id).index == committed[0]
    entry = reader.commit_snapshot(posture, DAY1, "c")
    assert reader.list_snapshots(TENANT) == [entry]
    assert reader.list_tenants() == [entry]
    same_records(reader.get_snapshot(TENANT, entry.snapshot_id).posture, posture)
    # Only the committed attempt's content remains.
    partitions = {row["PartitionKey"] for row in rows(settings, reader.tables.content)}
    assert len(partitions) == 1


def test_a_crash_between_commit_and_latest_row_is_repaired_by_the_rerun(
    make_store: Callable[..., SnapshotStore], settings: Settings
) -> None:
    posture = make_posture(TENANT)
    first = make_store().commit_snapshot(posture, DAY1, "c")
    crashing = make_store(raw_response_hook=crash_after(settings.table_prefix + "Tenants", 1))
    crashing.create_tables()
    with pytest.raises(Crash):
        crashing.commit_snapshot(posture, DAY2, "c")
    reader = make_store()
    day2 = reader.get_index(TENANT, "20240502T020000Z")
    assert reader.list_tenants() == [first]  # one behind, never partial
    assert reader.commit_snapshot(posture, DAY2, "c") == day2
    assert reader.list_tenants() == [day2]


def test_concurrent_attempts_on_one_slot_commit_exactly_one_snapshot(
    make_store: Callable[..., SnapshotStore], settings: Settings
) -> None:
    posture = make_posture(TENANT, subscriptions=3)
    stores = [make_store() for _ in range(4)]
    for s in stores:
        s.create_tables()
    results: list[object] = []
    start = threading.Barrier(len(stores))

    def attempt(s: SnapshotStore) -> None:
        start.wait()
        try:
            results.append(s.commit_snapshot(posture, DAY1, "c"))
        except Exception as exc:  # SlotBusy is allowed: the message would be retried
            results.append(exc)

    threads = [threading.Thread(target=attempt, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    committed = stores[0].list_snapshots(TENANT)
    assert len(committed) == 1
    entries = [r for r in results if not isinstance(r, Exception)]
    assert entries and all(e == committed[0] for e in entries)
    assert all(type(r).__name__ == "SlotBusy" for r in results if isinstance(r, Exception))
    same_records(stores[0].get_snapshot(TENANT, committed[0].snapshot_id).posture, posture)


def test_a_failed_collection_is_a_committed_link_in_the_chain(store: SnapshotStore) -> None:
    posture = make_posture(TENANT)
    failed = next(r for r in posture.compliance if r.state is State.FAILED)
    day1 = store.commit_snapshot(posture, DAY1, "c")
    day2 = store.commit_failed(posture.tenant, DAY2, "Resource Graph unreachable after 5 tries")
    day3 = store.commit_snapshot(posture, DAY3, "c")

    assert day2.status is CollectionStatus.FAILED
    assert day2.reasons == ("Resource Graph unreachable after 5 tries",)
    assert day2.counts["compliance"] == 0
    assert day2.expected_subscriptions == tuple(
        s.subscription_id for s in posture.tenant.subscriptions
    )
    assert (day2.previous_snapshot_id, day2.previous_hash) == (day1.snapshot_id, day1.content_hash)
    assert (day3.previous_snapshot_id, day3.previous_hash) == (day2.snapshot_id, day2.content_hash)
    # History skips the failed day: still failing since day 1.
    assert store.get_snapshot(TENANT, day3.snapshot_id).transitions[failed.key] == Transition(
        DAY1, DAY1, DAY1
    )
    assert snapshot_content_hash(store.get_snapshot(TENANT, day2.snapshot_id)) == day2.content_hash


def test_an_incomplete_collection_carries_what_it_could_not_read(store: SnapshotStore) -> None:
    posture = make_posture(TENANT, subscriptions=2)
    lost = posture.tenant.subscriptions[1].subscription_id
    store.commit_snapshot(posture, DAY1, "c")
    day2 = store.commit_snapshot(missing_subscription(posture, lost), DAY2, "c")
    assert day2.status is CollectionStatus.INCOMPLETE
    assert day2.reasons == (f"subscription {lost}: 403 AuthorizationFailed",)
    snapshot = store.get_snapshot(TENANT, day2.snapshot_id)
    assert day2.counts["carried"] == len(snapshot.carried) > 0
    assert {key[0] for key in snapshot.carried} == {lost}
    assert all(item.last_seen == DAY1 for item in snapshot.carried.values())
    assert not set(snapshot.carried) & {r.key for r in snapshot.posture.compliance}


def test_history_is_append_only(store: SnapshotStore) -> None:
    posture = make_posture(TENANT)
    store.commit_snapshot(posture, DAY2, "c")
    with pytest.raises(SnapshotSuperseded):
        store.commit_snapshot(posture, DAY1, "c")
    with pytest.raises(SnapshotSuperseded):
        store.commit_failed(posture.tenant, DAY1, "late")


def test_tampered_content_or_index_is_detected_on_read(
    store: SnapshotStore, settings: Settings
) -> None:
    entry = store.commit_snapshot(make_posture(TENANT), DAY1, "c")
    service = table_service_client(require_storage(settings))
    content = service.get_table_client(store.tables.content)
    row = next(r for r in content.list_entities() if r["section"] == "plans")
    lines = list(iter_section_lines([row]))
    free = next(i for i, line in enumerate(lines) if '"tier":"Free"' in line)
    lines[free] = lines[free].replace('"tier":"Free"', '"tier":"Standard"')
    row["p00"] = compress_lines(lines)  # same count of lines, one plan upgraded
    content.upsert_entity(row)
    with pytest.raises(CorruptSnapshot, match="hashes to"):
        store.get_snapshot(TENANT, entry.snapshot_id)

    index = service.get_table_client(store.tables.index)
    index_row = next(iter(index.list_entities()))
    index_row["sections"] = index_row["sections"].replace('"plans":[1,', '"plans":[2,')
    index.upsert_entity(index_row)
    with pytest.raises(SnapshotTampered, match="index row properties differ"):
        store.get_snapshot(TENANT, entry.snapshot_id)
    raw = SnapshotStore(service, store.tables.prefix)  # no anchors: the layout check alone
    with pytest.raises(CorruptSnapshot, match="section plans"):
        raw.get_snapshot(TENANT, entry.snapshot_id)


def test_a_commit_whose_response_is_lost_keeps_its_content(
    make_store: Callable[..., SnapshotStore],
) -> None:
    from azure.core.exceptions import ServiceResponseError

    lost = [False]

    def lose_the_commit_response(response: PipelineResponse[Any, Any]) -> None:
        request = response.http_request
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        if request.method == "PUT" and '"committed": true' in body and not lost[0]:
            lost[0] = True  # the service committed; the client never hears of it, and retries
            raise ServiceResponseError("connection reset while reading the response")

    store = make_store(raw_response_hook=lose_the_commit_response)
    posture = make_posture(TENANT)
    entry = store.commit_snapshot(posture, DAY1, "c")
    assert lost[0]
    snapshot = make_store().get_snapshot(TENANT, entry.snapshot_id)
    assert snapshot.index.content_hash == entry.content_hash
    same_records(snapshot.posture, posture)


def test_missing_content_is_reported_as_a_corrupt_snapshot(
    store: SnapshotStore, settings: Settings
) -> None:
    entry = store.commit_snapshot(make_posture(TENANT), DAY1, "c")
    service = table_service_client(require_storage(settings))
    content = service.get_table_client(store.tables.content)
    compliance = next(r for r in content.list_entities() if r["section"] == "compliance")
    content.delete_entity(compliance["PartitionKey"], compliance["RowKey"])
    with pytest.raises(CorruptSnapshot, match="compliance"):
        store.get_snapshot(TENANT, entry.snapshot_id)
    with pytest.raises(CorruptSnapshot):
        list(store.iter_compliance(TENANT, entry.snapshot_id))
