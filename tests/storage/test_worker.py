"""`python -m auditor worker`: the queues worked as the Functions host works them (Azurite)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest

from auditor.adapters.queues import HostQueueOptions, WorkQueue
from auditor.adapters.tables import SnapshotStore
from auditor.cli import main
from auditor.services import snapshot as snapshot_service
from auditor.services import worker as worker_service
from auditor.services.worker import Lane, Worker
from auditor.settings import Settings, load_settings
from tools.devservices import REPO, Azurite
from tools.posture_factory import FakeSource, make_posture, tenant_id_for

A, B, C = tenant_id_for(1), tenant_id_for(2), tenant_id_for(3)
SLOT = datetime(2024, 5, 1, 2, tzinfo=UTC)
FAST = HostQueueOptions(max_dequeue_count=3, retry_delay_seconds=0, hold_seconds=30)


@pytest.fixture
def settings(azurite: Azurite, table_prefix: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("AUDITOR_STORAGE", azurite.connection_string)
    monkeypatch.setenv("AUDITOR_TABLE_PREFIX", table_prefix)
    monkeypatch.setenv("AUDITOR_SNAPSHOT_QUEUE", f"q{table_prefix}")
    monkeypatch.setenv("AUDITOR_REPORT_QUEUE", f"r{table_prefix}")
    return load_settings()


@pytest.fixture
def queue(settings: Settings) -> Iterator[WorkQueue]:
    with WorkQueue.named(settings, settings.report_queue) as work:
        work.create_queues()
        yield work


def test_host_json_gives_the_hosts_rules() -> None:
    options = HostQueueOptions.from_host_json()
    assert options == HostQueueOptions(max_dequeue_count=5, retry_delay_seconds=30,
                                       hold_seconds=1800, in_hand=3)  # fmt: skip


@pytest.mark.parametrize(
    ("queues", "in_hand"),
    [({"batchSize": 2, "newBatchThreshold": 1}, 3), ({"batchSize": 4}, 6), ({}, 24)],
    ids=["both", "threshold-unset", "neither"],
)
def test_an_instance_works_a_batch_and_its_threshold_at_once(
    tmp_path: Path, queues: dict[str, int], in_hand: int
) -> None:
    host = tmp_path / "host.json"
    host.write_text(json.dumps({"version": "2.0", "extensions": {"queues": queues}}))
    assert HostQueueOptions.from_host_json(host).in_hand == in_hand


def test_the_worker_command_snapshots_every_queued_tenant_through_the_triggers_call(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeSource([make_posture(t) for t in (A, B, C)])
    monkeypatch.setattr(snapshot_service, "make_source", lambda _: fake)
    calls: list[int] = []
    trigger = snapshot_service.on_queue_message

    def counted(text: str, dequeue_count: int) -> object:
        calls.append(dequeue_count)
        return trigger(text, dequeue_count)

    # The function_app.py trigger's own service call is the one the worker makes.
    monkeypatch.setattr(snapshot_service, "on_queue_message", counted)
    with snapshot_service.open_service(settings, source=fake) as service:
        service.plan_run(SLOT, enqueue=True)
    # By default as one instance of the host: batchSize + newBatchThreshold messages at once.
    assert main(["worker", "--queues", "snapshots"]) == 0
    out, err = capsys.readouterr()
    assert out == "3 messages: 3 succeeded, 0 to retry, 0 moved to a poison queue\n"
    assert err.startswith("working snapshots with 3 at once, until empty")
    assert calls == [1, 1, 1] and sorted(fake.collected) == [A, B, C]
    with SnapshotStore.from_settings(settings) as store:
        assert [e.tenant_id for e in store.list_tenants()] == sorted([A, B, C])
    with WorkQueue.named(settings, settings.snapshot_queue) as work:
        assert work.approximate_count() == 0


def test_a_failing_message_is_retried_then_poisoned_on_its_last_dequeue(
    queue: WorkQueue,
) -> None:
    seen: list[int] = []

    def failing(text: str, dequeue_count: int) -> object:
        seen.append(dequeue_count)
        raise ConnectionError("storage down")

    queue._queue.send_message("job-1")
    tally = Worker([Lane("reports", queue, failing)], FAST).run()
    assert seen == [1, 2, 3]
    assert (tally.succeeded, tally.retried, tally.poisoned) == (0, 2, 1)
    assert list(queue.peek_texts(poison=True)) == ["job-1"]
    assert queue.approximate_count() == 0


def test_a_message_dequeued_past_the_limit_is_poisoned_without_running(
    queue: WorkQueue,
) -> None:
    # Its worker died on the last try: the host does not run it again.
    queue._queue.send_message("job-dead")
    for _ in range(FAST.max_dequeue_count):
        (job,) = queue.receive_jobs(1, visibility_timeout=30)
        queue.release(job, 0)
    ran: list[str] = []
    tally = Worker([Lane("reports", queue, lambda text, n: ran.append(text))], FAST).run()
    assert ran == [] and tally.poisoned == 1
    assert list(queue.peek_texts(poison=True)) == ["job-dead"]


def test_stopping_finishes_the_message_in_hand_and_leaves_the_others_visible(
    queue: WorkQueue,
) -> None:
    for n in range(3):
        queue._queue.send_message(f"job-{n}")
    started, release = threading.Event(), threading.Event()
    done: list[str] = []

    def slow(text: str, dequeue_count: int) -> object:
        started.set()
        release.wait(30)
        done.append(text)
        return None

    worker = Worker([Lane("reports", queue, slow)], FAST, until_empty=False)
    running = threading.Thread(target=worker.run)
    running.start()
    assert started.wait(30)
    worker.stop()  # what SIGTERM does
    release.set()
    running.join(30)
    assert not running.is_alive()
    assert done == ["job-0"] and worker.tally.succeeded == 1
    left = queue.receive_jobs(32, visibility_timeout=30)
    assert sorted(j.text for j in left) == ["job-1", "job-2"]
    assert all(j.dequeue_count == 1 for j in left)  # never taken


def test_sigterm_stops_a_waiting_worker_cleanly(settings: Settings, azurite: Azurite) -> None:
    env = {**os.environ, "AUDITOR_STORAGE": azurite.connection_string,
           "AUDITOR_TABLE_PREFIX": settings.table_prefix,
           "AUDITOR_REPORT_QUEUE": settings.report_queue}  # fmt: skip
    with subprocess.Popen(
        [sys.executable, "-m", "auditor", "worker", "--queues", "reports", "--no-until-empty"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:  # fmt: skip
        assert proc.stderr is not None
        first = proc.stderr.readline()
        proc.send_signal(signal.SIGTERM)  # before any assertion: a failing one must not hang
        out, err = proc.communicate(timeout=60)
    in_hand = HostQueueOptions.from_host_json().in_hand
    assert first.startswith(f"working reports with {in_hand} at once, until stopped"), first
    assert proc.returncode == 0
    assert "SIGTERM: finishing the messages in hand" in err
    assert out == "0 messages: 0 succeeded, 0 to retry, 0 moved to a poison queue (stopped)\n"


def test_the_worker_names_no_queue_it_does_not_know(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "--queues", "snapshots,alerts"]) == 2
    assert capsys.readouterr().err == (
        "error: --queues: 'snapshots,alerts': must be one or more of snapshots, reports, "
        "comma-separated\n"
    )
    assert worker_service.QUEUE_KINDS == ("snapshots", "reports")


def test_open_lanes_takes_the_queue_names_from_the_settings(settings: Settings) -> None:
    with ExitStack() as stack:
        lanes = worker_service.open_lanes(settings, ["reports", "snapshots"], stack)
        assert [(lane.kind, lane.queue.name) for lane in lanes] == [
            ("reports", settings.report_queue),
            ("snapshots", settings.snapshot_queue),
        ]
