"""A fleet of workers sharing the identity's Resource Graph quota, and the run's deadline
(issue 15 §1): real collector over HTTPS against the simulator, storage on Azurite."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from auditor.adapters.queues import SnapshotQueue
from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.run_digests import RunDigestStore
from auditor.adapters.tables.runs import RunStore
from auditor.core.model import CollectionStatus
from auditor.core.runs import SnapshotJob, encode_job
from auditor.core.schedule import latest_occurrence
from auditor.services.collect import Collector
from auditor.services.snapshot import open_service
from auditor.settings import Settings, load_settings
from tools.azure_sim.launcher import Simulator
from tools.devservices import REPO, Azurite


@pytest.fixture
def env(sim: Simulator, azurite: Azurite, table_prefix: str) -> Iterator[dict[str, str]]:
    sim.set_quota(15, 5)
    sim.clear_faults()
    yield {
        **os.environ,
        "AUDITOR_STORAGE": azurite.connection_string,
        "AUDITOR_TABLE_PREFIX": table_prefix,
        "AUDITOR_SNAPSHOT_QUEUE": f"q{table_prefix}",
        "AUDITOR_REPORT_QUEUE": f"r{table_prefix}",
        "AUDITOR_ARG_QUOTA": "15/5",
    }
    sim.set_quota(15, 5)


def plan(settings: Settings) -> str:
    with open_service(settings) as service:
        slot = latest_occurrence(settings.snapshot_schedule, datetime.now(UTC))
        return service.plan_run(slot, enqueue=True).snapshot_id


def test_a_fleet_of_two_workers_commits_each_tenant_once_and_closes_the_run_once(
    env: dict[str, str],
) -> None:
    settings = load_settings(env)
    slot = plan(settings)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "auditor", "worker", "--queues", "snapshots"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    # Each message taken once in all: no tenant collected twice, none left.
    handled = sum(int(out.split(" messages:")[0]) for out, _ in outputs)
    runs = RunStore.from_settings(settings)
    digests = RunDigestStore.from_settings(settings)
    try:
        manifest = runs.get_manifest(slot)
        assert manifest is not None and len(manifest.tenants) == 2
        assert handled == len(manifest.tenants)
        with SnapshotStore.from_settings(settings) as store:
            for tenant in manifest.tenants:
                entry = store.get_index(tenant.tenant_id, slot)
                assert entry.status is not CollectionStatus.FAILED, entry.reasons
                assert not entry.supersedes  # the first attempt of the slot is the one
        record = digests.record(slot)
        assert record is not None and record.closed
        # Exactly one closer won: one digest stored for the run, the one the close names.
        rows = list(digests._table.query_entities("PartitionKey eq @pk", parameters={"pk": slot}))
        attempts = [r["attempt"] for r in rows if "attempt" in r and r["RowKey"] != "manifest"]
        assert attempts == [record.close_attempt]
    finally:
        runs.close()
        digests.close()
    with SnapshotQueue.from_settings(settings) as queue:
        assert list(queue.peek_texts(poison=True)) == []


def test_a_tenant_still_waiting_for_quota_at_the_runs_deadline_is_committed_incomplete(
    env: dict[str, str],
) -> None:
    planning = load_settings({**env, "AUDITOR_ARG_QUOTA": "off"})
    slot = plan(planning)
    # One query of the identity every 600 s: the tenant's second query would wait past the
    # run's deadline (2 minutes after planning), far inside its own 900 s time bound.
    settings = load_settings({**env, "AUDITOR_ARG_QUOTA": "1/600"})
    with Collector(settings) as collector, open_service(settings, source=collector) as service:
        service.deadline = timedelta(minutes=2)
        manifest = service.runs.get_manifest(slot)
        assert manifest is not None
        tenant = manifest.tenants[0]
        text = encode_job(SnapshotJob(tenant.tenant_id, slot))
        outcome = service.process_job(text, dequeue_count=1, max_dequeues=5)  # no raise: done
    assert outcome.outcome == "incomplete"
    assert "the run's deadline came before these queries were read" in outcome.reason
    assert outcome.entry is not None and outcome.entry.counts.get("compliance", 0) > 0


def test_a_retry_dequeued_after_the_runs_deadline_reads_nothing_and_is_recorded(
    env: dict[str, str], sim: Simulator
) -> None:
    planning = load_settings({**env, "AUDITOR_ARG_QUOTA": "off"})
    slot = plan(planning)
    settings = load_settings(env)
    with Collector(settings) as collector, open_service(settings, source=collector) as service:
        service.deadline = timedelta(minutes=2)
        manifest = service.runs.get_manifest(slot)
        assert manifest is not None
        late = manifest.planned_at + timedelta(minutes=2, seconds=1)
        service.clock = lambda: late  # the first attempt failed; its retry comes too late
        sim.reset_stats()
        text = encode_job(SnapshotJob(manifest.tenants[0].tenant_id, slot))
        outcome = service.process_job(text, dequeue_count=2, max_dequeues=5)  # no raise: done
    assert sim.stats().get("arg_queries", 0) == 0  # nothing read past the run's deadline
    assert outcome.outcome == "failed"
    assert "the run's deadline came before these queries were read" in outcome.reason
