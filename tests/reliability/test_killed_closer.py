"""A worker SIGKILLed after committing the run's last tenant, before it closed the run: the
timer's next sweep closes the run, and the webhook receives exactly one digest.

Issue 14: the run's completion must survive the crash of the worker that would have closed it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from auditor.adapters.queues import SnapshotQueue
from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.runs import RunStore
from auditor.core.runs import SnapshotJob, encode_job
from auditor.services.runclose import make_closer
from auditor.services.snapshot import SnapshotService
from auditor.settings import load_settings
from tests.receiver import Receiver, deployment_env
from tests.reliability.closing_worker import TENANTS
from tools.devservices import Azurite
from tools.posture_factory import FakeSource, make_posture

REPO = Path(__file__).resolve().parents[2]
SLOT = datetime(2024, 5, 1, 2, tzinfo=UTC)
SLOT_ID = "20240501T020000Z"
A, B = TENANTS


@pytest.fixture
def env(azurite: Azurite, table_prefix: str, receiver: Receiver) -> dict[str, str]:
    return deployment_env(
        azurite.connection_string,
        table_prefix,
        AUDITOR_NOTIFY_WEBHOOK_URL=receiver.url,
        AUDITOR_NOTIFY_WEBHOOK_SECRET="a-secret-of-sixteen-or-more",
    )


@pytest.fixture
def service(env: dict[str, str], receiver: Receiver) -> Iterator[SnapshotService]:
    settings = load_settings(env)
    store = SnapshotStore.from_settings(settings)
    runs = RunStore.from_settings(settings)
    queue = SnapshotQueue.from_settings(settings)
    closer = make_closer(settings, store, runs, queue, verify=receiver.ca_path)
    clock = lambda: SLOT + timedelta(minutes=5)  # noqa: E731
    closer.clock = clock
    made = SnapshotService(
        store, runs, FakeSource([make_posture(t) for t in TENANTS]), queue, clock=clock,
        closer=closer,
    )  # fmt: skip
    yield made
    closer.close()
    store.close()
    runs.close()
    queue.close()


def kill_while_closing(env: dict[str, str], job: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.closing_worker", job],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None
    line = child.stdout.readline().decode()
    assert line == "closing\n", line + child.stderr.read().decode()
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL


def test_a_worker_killed_before_closing_leaves_the_run_to_the_sweep_which_sends_one_digest(
    service: SnapshotService, env: dict[str, str], receiver: Receiver
) -> None:
    service.plan_run(SLOT, enqueue=False)
    service.process_job(encode_job(SnapshotJob(A, SLOT_ID)), 1, 5)
    assert receiver.received == []  # B is not done: the run stays open
    kill_while_closing(env, encode_job(SnapshotJob(B, SLOT_ID)))
    assert service.store.get_index(B, SLOT_ID).status.value == "complete"
    assert receiver.received == []  # the killed worker closed nothing and sent nothing

    service.sweep_recent()  # the next timer tick
    [post] = receiver.received
    data = json.loads(post.body)["data"]
    assert data["closedBy"] == "sweep" and {t["tenantId"] for t in data["tenants"]} == {A, B}
    service.sweep_recent()
    service.process_job(encode_job(SnapshotJob(B, SLOT_ID)), 2, 5)  # the host's retry
    assert len(receiver.received) == 1
