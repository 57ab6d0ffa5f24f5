"""Azurite stopped and restarted in the middle of a snapshot run.

Each test starts its own Azurite persisted on disk (so data survives the restart) and stops it
from inside the writer, at a chosen storage response: the failure lands at a known point of the
commit, and nothing waits on a clock. Either the SDK's retries ride through the restart and the
snapshot completes, or the tenant's slot is recorded as failed with the reason, or (storage still
down) nothing is recorded and the next delivery completes it. Never anything half-written.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from auditor.adapters.queues import SnapshotQueue
from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.runs import RunStore
from auditor.core.model import CollectionStatus
from auditor.core.runs import SnapshotJob, encode_job
from auditor.core.snapshot import SnapshotNotFound
from auditor.services.snapshot import SnapshotService
from auditor.settings import Settings, load_settings
from tools.devservices import Azurite, start_azurite
from tools.posture_factory import FakeSource, make_posture, tenant_id_for

SLOT = datetime(2024, 5, 1, 2, tzinfo=UTC)
SLOT_ID = "20240501T020000Z"
A, B = tenant_id_for(1), tenant_id_for(2)


@pytest.fixture
def own_azurite(tmp_path: Path) -> Iterator[Azurite]:
    service = start_azurite(location=tmp_path / "azurite")
    try:
        yield service
    finally:
        service.stop()


def settings_of(azurite: Azurite) -> Settings:
    return load_settings(
        {"AUDITOR_STORAGE": azurite.connection_string, "AUDITOR_SNAPSHOT_QUEUE": "snapshots"}
    )


class Outage:
    """Stops Azurite right after the n-th content response of the writer; restarts it on demand
    (in a thread while the writer retries, or synchronously before a chosen later request)."""

    def __init__(self, azurite: Azurite, after_content_responses: int) -> None:
        self.azurite = azurite
        self.after = after_content_responses
        self.content_responses = 0
        self.stopped = False
        self.requests_while_stopped = 0
        self.restart_thread: threading.Thread | None = None

    def stop_then_restart_in_background(self, response: Any) -> None:
        if self._due(response):
            self.azurite.stop()
            self.stopped = True
            self.restart_thread = threading.Thread(target=self.azurite.start)
            self.restart_thread.start()

    def stop(self, response: Any) -> None:
        if self._due(response):
            self.azurite.stop()
            self.stopped = True

    def restart_before_second_request_while_down(self, request: Any) -> None:
        # The first request after the stop fails (no retries); the next one (the failure being
        # recorded) finds storage back.
        if self.stopped:
            self.requests_while_stopped += 1
            if self.requests_while_stopped == 2:
                self.azurite.start()
                self.stopped = False

    def _due(self, response: Any) -> bool:
        body = response.http_request.body
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
        transaction = response.http_request.url.endswith("$batch")
        if transaction and "SnapshotContent" in text and not self.stopped:
            self.content_responses += 1
            return self.content_responses == self.after
        return False


def service_with(settings: Settings, source: FakeSource, **store_options: Any) -> SnapshotService:
    service = SnapshotService(
        SnapshotStore.from_settings(settings, **store_options),
        RunStore.from_settings(settings),
        source,
        SnapshotQueue.from_settings(settings),
    )
    if not store_options:  # before any outage: the run the jobs belong to is planned
        service.plan_run(SLOT, enqueue=False)
    return service


def big_posture(tenant_id: str) -> Any:
    return make_posture(
        tenant_id, subscriptions=4, controls=25, assessments=10,
        description=lambda rng: rng.randbytes(1200).hex(),
    )  # fmt: skip


@pytest.mark.slow
def test_the_writer_retries_through_a_restart_and_completes(own_azurite: Azurite) -> None:
    settings = settings_of(own_azurite)
    posture = big_posture(A)
    service_with(settings, FakeSource([posture]))
    outage = Outage(own_azurite, after_content_responses=1)
    service = service_with(
        settings, FakeSource([posture]), raw_response_hook=outage.stop_then_restart_in_background
    )
    outcome = service.process_job(encode_job(SnapshotJob(A, SLOT_ID)), 1, 5)

    assert outage.restart_thread is not None, "storage was never stopped"
    outage.restart_thread.join()
    assert outcome.outcome == "complete"
    reader = SnapshotStore.from_settings(settings)
    snapshot = reader.get_snapshot(A, SLOT_ID)  # verifies the content hash
    assert len(snapshot.posture.compliance) == len(posture.compliance)
    reference = SnapshotStore.from_settings(
        load_settings(
            {"AUDITOR_STORAGE": own_azurite.connection_string, "AUDITOR_TABLE_PREFIX": "ref"}
        )
    )
    assert reference.commit_snapshot(posture, SLOT, "fake-collector/1").content_hash == (
        snapshot.index.content_hash
    )


@pytest.mark.slow
def test_on_the_last_attempt_a_storage_outage_is_recorded_as_the_tenant_s_failure(
    own_azurite: Azurite,
) -> None:
    settings = settings_of(own_azurite)
    service_with(settings, FakeSource([big_posture(A)]))
    outage = Outage(own_azurite, after_content_responses=1)
    service = service_with(
        settings,
        FakeSource([big_posture(A)]),
        retry_total=0,
        write_retries=0,
        raw_response_hook=outage.stop,
        raw_request_hook=outage.restart_before_second_request_while_down,
    )
    with pytest.raises(Exception, match=r"Connection refused"):
        service.process_job(encode_job(SnapshotJob(A, SLOT_ID)), 5, 5)

    reader = SnapshotStore.from_settings(settings)
    entry = reader.get_index(A, SLOT_ID)
    assert entry.status is CollectionStatus.FAILED
    [reason] = entry.reasons
    assert reason.startswith("ServiceRequestError: ") and reason.endswith("(attempt 5 of 5)")
    assert reader.get_snapshot(A, SLOT_ID).posture.compliance == ()
    assert [e.snapshot_id for e in reader.list_tenants()] == [SLOT_ID]


@pytest.mark.slow
def test_storage_still_down_leaves_nothing_and_the_next_delivery_completes(
    own_azurite: Azurite,
) -> None:
    settings = settings_of(own_azurite)
    posture_a, posture_b = big_posture(A), make_posture(B)
    source = FakeSource([posture_a, posture_b])
    first = service_with(settings, source).store
    first.commit_snapshot(posture_b, SLOT, source.version)  # another tenant, already done

    outage = Outage(own_azurite, after_content_responses=1)
    service = service_with(
        settings, source, retry_total=1, write_retries=1, raw_response_hook=outage.stop
    )
    with pytest.raises(Exception, match=r"Connection refused"):
        service.process_job(encode_job(SnapshotJob(A, SLOT_ID)), 2, 5)
    own_azurite.start()  # back, with what it had on disk

    reader = service_with(settings, source)
    with pytest.raises(SnapshotNotFound):
        reader.store.get_index(A, SLOT_ID)
    assert [e.tenant_id for e in reader.store.list_tenants()] == [B]
    assert reader.store.get_index(B, SLOT_ID).status is CollectionStatus.COMPLETE

    outcome = reader.process_job(encode_job(SnapshotJob(A, SLOT_ID)), 3, 5)
    assert outcome.outcome == "complete"
    assert reader.store.get_snapshot(A, SLOT_ID).index == outcome.entry
