"""Snapshot service against Azurite: plan → queue → one tenant per job, failures isolated."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from auditor.adapters.queues import SnapshotQueue
from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.runs import RunStore
from auditor.core.model import CollectionStatus, TenantPosture
from auditor.core.runs import JobFormatError, SnapshotJob, decode_job, encode_job
from auditor.services.snapshot import SnapshotService, TenantNotDelegated
from auditor.settings import Settings
from tools.posture_factory import FakeSource, make_posture, tenant_id_for

SLOT = datetime(2024, 5, 1, 2, tzinfo=UTC)
SLOT_ID = "20240501T020000Z"
A, B, C = tenant_id_for(1), tenant_id_for(2), tenant_id_for(3)


@pytest.fixture
def postures() -> list[TenantPosture]:
    return [make_posture(t, subscriptions=2) for t in (A, B, C)]


@pytest.fixture
def service_for(settings: Settings) -> Iterator[object]:
    made: list[SnapshotService] = []

    def make(source: FakeSource) -> SnapshotService:
        service = SnapshotService(
            SnapshotStore.from_settings(settings),
            RunStore.from_settings(settings),
            source,
            SnapshotQueue.from_settings(settings),
        )
        made.append(service)
        return service

    yield make
    for service in made:
        service.store.close()
        service.runs.close()
        assert service.queue is not None
        service.queue.close()


def drain(service: SnapshotService) -> list[object]:
    return list(service.drain(5, retry_delay_seconds=0))


def test_planning_records_the_manifest_and_queues_one_job_per_tenant(service_for, postures) -> None:
    service = service_for(FakeSource(postures))
    manifest = service.plan_run(SLOT, enqueue=True)
    assert manifest.tenant_ids == (A, B, C)
    stored = service.runs.get_manifest(SLOT_ID)
    assert stored is not None and stored.enqueued and stored.tenants == manifest.tenants
    jobs = sorted((decode_job(t) for t in service.queue.peek_texts()), key=lambda j: j.tenant_id)
    assert jobs == [SnapshotJob(t, SLOT_ID) for t in (A, B, C)]

    service.plan_run(SLOT, enqueue=True)  # the timer fires twice for one slot
    assert len(list(service.queue.peek_texts())) == 3


def test_the_queue_path_snapshots_every_tenant_once(service_for, postures) -> None:
    source = FakeSource(postures)
    service = service_for(source)
    service.plan_run(SLOT, enqueue=True)
    outcomes = drain(service)
    assert sorted(o.outcome for o in outcomes) == ["complete"] * 3
    assert [e.tenant_id for e in service.store.list_tenants()] == [A, B, C]
    assert sorted(source.collected) == [A, B, C]
    assert service.queue.approximate_count() == 0


def test_a_duplicate_message_changes_nothing(service_for, postures) -> None:
    source = FakeSource(postures)
    service = service_for(source)
    service.plan_run(SLOT, enqueue=True)
    drain(service)
    before = service.store.list_snapshots(A)

    outcome = service.process_job(encode_job(SnapshotJob(A, SLOT_ID)), 1, 5)
    assert outcome.outcome == "duplicate" and outcome.entry == before[0]
    assert service.store.list_snapshots(A) == before
    assert source.collected.count(A) == 1  # not even collected again


def test_transient_failures_are_retried_until_the_snapshot_completes(service_for, postures) -> None:
    source = FakeSource(postures, failures={B: [ConnectionError("ARG 503"), TimeoutError(), None]})
    service = service_for(source)
    service.plan_run(SLOT, enqueue=True)
    outcomes = drain(service)
    assert {o.tenant_id: o.outcome for o in outcomes} == {
        A: "complete",
        B: "complete",
        C: "complete",
    }
    assert source.collected.count(B) == 3
    assert list(service.queue.peek_texts(poison=True)) == []


def test_after_the_last_dequeue_the_slot_is_committed_failed_and_the_message_poisoned(
    service_for, postures
) -> None:
    source = FakeSource(postures, failures={B: [ConnectionError("Resource Graph unreachable")]})
    service = service_for(source)
    service.plan_run(SLOT, enqueue=True)
    drain(service)

    failed = service.store.get_index(B, SLOT_ID)
    assert failed.status is CollectionStatus.FAILED
    assert failed.reasons == ("ConnectionError: Resource Graph unreachable (attempt 5 of 5)",)
    assert failed.expected_subscriptions == tuple(
        s.subscription_id for s in postures[1].tenant.subscriptions
    )
    assert source.collected.count(B) == 5
    assert list(service.queue.peek_texts(poison=True)) == [encode_job(SnapshotJob(B, SLOT_ID))]
    # Every other tenant is whole.
    for tenant in (A, C):
        assert service.store.get_index(tenant, SLOT_ID).status is CollectionStatus.COMPLETE


def test_a_collection_that_read_nothing_is_retried_then_recorded(service_for, postures) -> None:
    nothing = dataclasses.replace(
        postures[1],
        compliance=(),
        completeness=dataclasses.replace(
            postures[1].completeness,
            collected_subscriptions=(),
            missing={
                s: "403 AuthorizationFailed"
                for s in postures[1].completeness.expected_subscriptions
            },
        ),
    )
    source = FakeSource([postures[0], nothing, postures[2]])
    service = service_for(source)
    service.plan_run(SLOT, enqueue=True)
    drain(service)
    entry = service.store.get_index(B, SLOT_ID)
    assert entry.status is CollectionStatus.FAILED
    assert all("403 AuthorizationFailed" in reason for reason in entry.reasons)
    assert source.collected.count(B) == 5
    assert len(list(service.queue.peek_texts(poison=True))) == 1


def test_a_malformed_message_ends_in_the_poison_queue_with_its_reason(
    service_for, postures
) -> None:
    service = service_for(FakeSource(postures))
    outcome = service.process_job("not a job", 1, 5)
    assert outcome.outcome == "rejected" and "not JSON" in outcome.reason
    service.queue.create_queues()
    service.queue._queue.send_message("not a job")  # as anyone with queue access could
    drain(service)
    poisoned = [json.loads(t) for t in service.queue.peek_texts(poison=True)]
    assert [(p["message"], p["format"]) for p in poisoned] == [
        ("not a job", "auditor-rejected-job/1")
    ] * 2
    assert all("not JSON" in p["reason"] for p in poisoned)
    assert [m for _, m in service.runs.rejected()] == ["not a job", "not a job"]
    with pytest.raises(JobFormatError):
        decode_job("not a job")


def test_inline_runs_record_a_failing_tenant_at_once_and_finish_the_others(
    service_for, postures
) -> None:
    source = FakeSource(postures, failures={C: [PermissionError("403 on every subscription")]})
    service = service_for(source)
    outcomes = service.run_inline(SLOT)
    assert {o.tenant_id: o.outcome for o in outcomes} == {A: "complete", B: "complete", C: "failed"}
    assert service.store.get_index(C, SLOT_ID).reasons == (
        "PermissionError: 403 on every subscription",
    )
    manifest = service.runs.get_manifest(SLOT_ID)
    assert manifest is not None and manifest.tenant_ids == (A, B, C) and not manifest.enqueued


def test_one_tenant_can_be_snapshotted_alone_and_unknown_tenants_are_refused(
    service_for, postures
) -> None:
    source = FakeSource(postures)
    service = service_for(source)
    [outcome] = service.run_inline(SLOT, tenant_ids=[B.upper()])
    assert outcome.tenant_id == B and outcome.outcome == "complete"
    assert source.collected == [B]
    with pytest.raises(TenantNotDelegated, match=tenant_id_for(9)):
        service.run_inline(SLOT + timedelta(days=1), tenant_ids=[tenant_id_for(9)])


def test_every_tenant_and_run_logs_one_structured_event(
    service_for, postures, caplog: pytest.LogCaptureFixture
) -> None:
    service = service_for(FakeSource(postures, failures={B: [TimeoutError("slow"), None]}))
    with caplog.at_level(logging.INFO, logger="auditor.snapshot"):
        service.plan_run(SLOT, enqueue=True)
        drain(service)
    records = [r for r in caplog.records if r.name == "auditor.snapshot"]  # the worker logs too
    events = [(r.getMessage().split(" ", 1)[0], r.auditor) for r in records]  # type: ignore[attr-defined]
    names = [name for name, _ in events]
    assert names.count("snapshot.run.planned") == 1
    assert names.count("snapshot.tenant") == 3
    assert names.count("snapshot.tenant.retry") == 1
    tenant_event = next(f for n, f in events if n == "snapshot.tenant" and f["tenant"] == A)
    assert tenant_event["slot"] == SLOT_ID and tenant_event["status"] == "complete"
    assert tenant_event["counts"]["compliance"] == len(postures[0].compliance)
    for key in ("duration_seconds", "throttles", "retries", "queries", "content_hash"):
        assert key in tenant_event
    # The message is the event name followed by the same fields as JSON.
    record = next(r for r in caplog.records if r.getMessage().startswith("snapshot.run.planned"))
    assert json.loads(record.getMessage().split(" ", 1)[1])["tenants"] == 3
