"""Timer → queue → snapshot with the real collector over HTTPS against the simulator (tiny estate,
quota on), storage on Azurite: what the Function App does in Azure, minus the host."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest

from auditor.adapters.queues import SnapshotQueue
from auditor.adapters.tables import SnapshotStore
from auditor.core.canonical import snapshot_content_hash
from auditor.core.model import CollectionStatus
from auditor.core.schedule import latest_occurrence
from auditor.core.snapshot import snapshot_id_for
from auditor.settings import load_settings
from tests.functions.test_snapshot_functions import functions_by_name
from tools.devservices import Azurite


def test_a_scheduled_run_snapshots_every_simulated_tenant(
    sim_env: dict[str, str], azurite: Azurite, table_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDITOR_STORAGE", azurite.connection_string)
    monkeypatch.setenv("AUDITOR_TABLE_PREFIX", table_prefix)
    monkeypatch.setenv("AUDITOR_SNAPSHOT_QUEUE", f"q{table_prefix}")
    functions = functions_by_name()
    functions["plan_snapshot_run"].get_user_function()(TimerRequest(past_due=False))  # type: ignore[attr-defined]

    settings = load_settings()
    queue = SnapshotQueue.from_settings(settings)
    jobs = queue.receive_jobs(max_messages=32, visibility_timeout=300)
    assert jobs, "the timer queued no job"
    work = functions["snapshot_tenant"].get_user_function()  # type: ignore[attr-defined]
    for job in jobs:
        work(QueueMessage(body=job.text.encode(), dequeue_count=job.dequeue_count))
        queue.delete(job)
    queue.close()

    slot_id = snapshot_id_for(latest_occurrence(settings.snapshot_schedule, datetime.now(UTC)))
    with SnapshotStore.from_settings(settings) as store:
        tenants = store.list_tenants()
        assert len(tenants) == len(jobs)
        for entry in tenants:
            assert entry.snapshot_id == slot_id
            assert entry.status is not CollectionStatus.FAILED, entry.reasons
            assert entry.counts["compliance"] > 0
            snapshot = store.get_snapshot(entry.tenant_id, slot_id)
            assert snapshot_content_hash(snapshot) == entry.content_hash
            assert entry.collector_version.startswith("auditor-collector/")
