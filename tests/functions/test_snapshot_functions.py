"""The timer and queue functions, indexed like the worker and invoked with real trigger objects.

Storage is Azurite; the collector is replaced by a fake posture source (the simulator-backed
run is in test_snapshot_functions_sim.py).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueClient

from auditor.adapters.queues import max_dequeue_count
from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.runs import RunStore
from auditor.core.model import CollectionStatus
from auditor.core.runs import SnapshotJob, encode_job
from auditor.core.schedule import latest_occurrence, parse
from auditor.core.snapshot import snapshot_id_for
from auditor.services import snapshot as snapshot_service
from auditor.settings import load_settings
from tests.functions.worker import check_function, indexed_functions, local_settings
from tools.devservices import Azurite
from tools.posture_factory import FakeSource, make_posture, tenant_id_for

A, B = tenant_id_for(1), tenant_id_for(2)


def functions_by_name() -> dict[str, object]:
    return {f.get_function_name(): f for f in indexed_functions()}


def test_the_app_indexes_as_the_worker_loads_it() -> None:
    functions = indexed_functions()  # raises on duplicate names or missing triggers
    for function in functions:
        check_function(function)
    assert {"plan_snapshot_run", "snapshot_tenant"} <= {f.get_function_name() for f in functions}


def test_the_timer_runs_daily_on_the_configured_schedule_and_catches_up() -> None:
    timer = functions_by_name()["plan_snapshot_run"]
    [binding] = json.loads(timer.get_function_json())["bindings"]  # type: ignore[attr-defined]
    assert binding["type"] == "timerTrigger"
    assert binding["schedule"] == "%AUDITOR_SNAPSHOT_SCHEDULE%"
    assert binding["useMonitor"] is True and binding["runOnStartup"] is False
    schedule = local_settings()["AUDITOR_SNAPSHOT_SCHEDULE"]
    assert schedule == "0 0 2 * * *" and parse(schedule).hours == {2}
    retry = timer._settings[0].get_dict_repr()  # type: ignore[attr-defined]
    assert retry["setting_name"] == "retry_policy" and retry["strategy"] == "exponential_backoff"


def test_the_queue_trigger_reads_the_snapshot_queue_on_the_auditor_storage_connection() -> None:
    queue = functions_by_name()["snapshot_tenant"]
    [binding] = json.loads(queue.get_function_json())["bindings"]  # type: ignore[attr-defined]
    assert binding["type"] == "queueTrigger"
    assert binding["queueName"] == "%AUDITOR_SNAPSHOT_QUEUE%"
    assert binding["connection"] == "AUDITOR_STORAGE"
    assert max_dequeue_count() == 5  # host.json, what the poison rule counts against


@pytest.fixture
def app_env(
    azurite: Azurite, table_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeSource]:
    """Environment of the Function App on Azurite, with a fake posture source."""
    source = FakeSource(
        [make_posture(A), make_posture(B)], failures={B: [ConnectionError("ARG down")]}
    )
    monkeypatch.setenv("AUDITOR_STORAGE", azurite.connection_string)
    monkeypatch.setenv("AUDITOR_TABLE_PREFIX", table_prefix)
    monkeypatch.setenv("AUDITOR_SNAPSHOT_QUEUE", f"q{table_prefix}")
    monkeypatch.setenv("AUDITOR_SNAPSHOT_SCHEDULE", "0 0 2 * * *")
    monkeypatch.setattr(snapshot_service, "make_source", lambda settings: source)
    yield source


def raw_messages(azurite: Azurite, queue_name: str) -> list[str]:
    client = QueueClient.from_connection_string(azurite.connection_string, queue_name)
    with client:
        return [str(m.content) for m in client.peek_messages(max_messages=32)]


def test_timer_then_queue_snapshots_each_tenant_and_poisons_only_the_failing_one(
    app_env: FakeSource, azurite: Azurite, table_prefix: str
) -> None:
    functions = functions_by_name()
    plan = functions["plan_snapshot_run"].get_user_function()  # type: ignore[attr-defined]
    work = functions["snapshot_tenant"].get_user_function()  # type: ignore[attr-defined]

    plan(TimerRequest(past_due=False))

    slot = latest_occurrence("0 0 2 * * *", datetime.now(UTC))
    slot_id = snapshot_id_for(slot)
    # On the wire the messages are Base64, as the queue trigger expects by default.
    bodies = [base64.b64decode(m).decode() for m in raw_messages(azurite, f"q{table_prefix}")]
    assert sorted(bodies) == sorted(encode_job(SnapshotJob(t, slot_id)) for t in (A, B))

    body_a = encode_job(SnapshotJob(A, slot_id)).encode()
    work(QueueMessage(body=body_a, dequeue_count=1))
    work(QueueMessage(body=body_a, dequeue_count=2))  # duplicate delivery: nothing changes

    body_b = encode_job(SnapshotJob(B, slot_id)).encode()
    for attempt in range(1, 6):
        with pytest.raises(ConnectionError):
            work(QueueMessage(body=body_b, dequeue_count=attempt))

    store = SnapshotStore.from_settings(load_settings())
    with store:
        assert [e.snapshot_id for e in store.list_snapshots(A)] == [slot_id]
        assert store.get_index(A, slot_id).status is CollectionStatus.COMPLETE
        failed = store.get_index(B, slot_id)
        assert failed.status is CollectionStatus.FAILED
        assert failed.reasons == ("ConnectionError: ARG down (attempt 5 of 5)",)
    assert app_env.collected.count(A) == 1


def test_a_late_timer_run_plans_the_slot_it_missed(app_env: FakeSource) -> None:
    plan = functions_by_name()["plan_snapshot_run"].get_user_function()  # type: ignore[attr-defined]
    plan(TimerRequest(past_due=True))
    runs = RunStore.from_settings(load_settings())
    slot = latest_occurrence("0 0 2 * * *", datetime.now(UTC))
    manifest = runs.get_manifest(snapshot_id_for(slot))
    runs.close()
    assert manifest is not None and manifest.enqueued and manifest.tenant_ids == (A, B)


def test_the_worker_s_queue_message_carries_the_dequeue_count() -> None:
    # The worker passes azure.functions.queue.QueueMessage; the annotation is func.QueueMessage.
    message = QueueMessage(body=b"{}", dequeue_count=3)
    assert isinstance(message, func.QueueMessage) and message.dequeue_count == 3
