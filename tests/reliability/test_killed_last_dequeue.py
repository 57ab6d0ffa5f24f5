"""A worker SIGKILLed during its last dequeue still leaves the slot recorded as failed, with a
reason: the sweep (the next timer tick, or the close of a drained run) finds the planned tenant
without a committed slot whose job the host has given up on.

Issue 10: a crash during the last dequeue left nothing recorded for the tenant.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from auditor.adapters.queues import SnapshotQueue
from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.runs import RunStore
from auditor.core.model import CollectionStatus
from auditor.services.snapshot import SnapshotService
from auditor.settings import Settings, load_settings
from tools.devservices import Azurite
from tools.posture_factory import FakeSource, make_posture, tenant_id_for

REPO = Path(__file__).resolve().parents[2]
SLOT = datetime(2024, 5, 1, 2, tzinfo=UTC)
SLOT_ID = "20240501T020000Z"
A, B = tenant_id_for(31), tenant_id_for(32)


@pytest.fixture
def env(azurite: Azurite, table_prefix: str) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:10]
    return {
        "AUDITOR_STORAGE": azurite.connection_string,
        "AUDITOR_TABLE_PREFIX": table_prefix,
        "AUDITOR_SNAPSHOT_QUEUE": f"snap-{suffix}",
        "AUDITOR_EVIDENCE_CONTAINER": f"ev-{suffix}",
    }


@pytest.fixture
def service(env: dict[str, str]) -> Iterator[SnapshotService]:
    settings: Settings = load_settings(env)
    made = SnapshotService(
        SnapshotStore.from_settings(settings),
        RunStore.from_settings(settings),
        FakeSource([make_posture(A), make_posture(B)]),
        SnapshotQueue.from_settings(settings),
        clock=lambda: SLOT + timedelta(minutes=1),
    )
    yield made
    made.store.close()
    made.runs.close()


def kill_while_collecting(env: dict[str, str]) -> str:
    """Start the worker, wait until it collects, SIGKILL it; the job text it was working."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.last_dequeue_worker"],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None
    line = child.stdout.readline().decode()
    assert line.startswith("collecting "), line + child.stderr.read().decode()
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    return line.removeprefix("collecting ").strip()


def test_a_worker_killed_on_its_last_dequeue_leaves_the_slot_recorded_as_failed(
    service: SnapshotService, env: dict[str, str]
) -> None:
    service.plan_run(SLOT, enqueue=True, tenant_ids=[A])
    text = kill_while_collecting(env)
    assert service.store.slot_row(A, SLOT_ID) is None  # nothing recorded by the dead worker
    # The host gives up on the message: past its last dequeue it goes to the poison queue.
    assert service.queue is not None
    service.queue._poison.send_message(text)

    [outcome] = service.sweep_run(SLOT_ID)  # the next timer tick
    assert outcome.outcome == "failed" and outcome.entry is not None
    entry = service.store.get_index(A, SLOT_ID)  # verified against its anchor
    assert entry.status is CollectionStatus.FAILED
    assert entry.reasons == (outcome.reason,) and "poison queue" in outcome.reason
    assert service.sweep_run(SLOT_ID) == []  # once recorded, never again


def test_past_the_run_deadline_a_silent_tenant_is_recorded_as_failed(
    service: SnapshotService,
) -> None:
    service.plan_run(SLOT, enqueue=True)
    service.run_inline(SLOT, [B])  # B is done; A's job was lost without a trace
    assert service.sweep_run(SLOT_ID) == []  # within the deadline: A may still come
    service.clock = lambda: SLOT + service.deadline + timedelta(hours=1)
    [outcome] = service.sweep_run(SLOT_ID)
    assert outcome.tenant_id == A and "by the run's deadline" in outcome.reason
    assert service.store.get_index(B, SLOT_ID).status is CollectionStatus.COMPLETE
