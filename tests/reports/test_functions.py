"""The evidence-pack timer and queue functions, indexed like the worker and invoked with real
trigger objects on Azurite."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueClient

from auditor.adapters.blobs import EvidenceStore
from auditor.adapters.tables import SnapshotStore
from auditor.core.evidence import ReportJob, previous_month
from auditor.core.schedule import parse
from auditor.settings import Settings, load_settings
from tests.functions.worker import check_function, indexed_functions, local_settings
from tests.reports.conftest import commit_days
from tools.devservices import Azurite

TENANT = "7e0a0000-0000-0000-0000-0000000000b1"


def functions_by_name() -> dict[str, object]:
    return {f.get_function_name(): f for f in indexed_functions()}


def test_the_pack_functions_index_as_the_worker_loads_them() -> None:
    functions = functions_by_name()
    for name in ("queue_monthly_packs", "build_evidence_pack"):
        check_function(functions[name])


def test_the_timer_runs_monthly_on_the_configured_schedule() -> None:
    timer = functions_by_name()["queue_monthly_packs"]
    [binding] = json.loads(timer.get_function_json())["bindings"]  # type: ignore[attr-defined]
    assert binding["type"] == "timerTrigger"
    assert binding["schedule"] == "%AUDITOR_REPORT_SCHEDULE%"
    assert binding["useMonitor"] is True and binding["runOnStartup"] is False
    schedule = parse(local_settings()["AUDITOR_REPORT_SCHEDULE"])
    assert schedule.hours == {4}


def test_the_queue_trigger_reads_the_report_queue_on_the_auditor_storage_connection() -> None:
    queue = functions_by_name()["build_evidence_pack"]
    [binding] = json.loads(queue.get_function_json())["bindings"]  # type: ignore[attr-defined]
    assert binding["type"] == "queueTrigger"
    assert binding["queueName"] == "%AUDITOR_REPORT_QUEUE%"
    assert binding["connection"] == "AUDITOR_STORAGE"


@pytest.fixture
def app_env(
    azurite: Azurite, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    monkeypatch.setenv("AUDITOR_STORAGE", azurite.connection_string)
    monkeypatch.setenv("AUDITOR_TABLE_PREFIX", settings.table_prefix)
    monkeypatch.setenv("AUDITOR_EVIDENCE_CONTAINER", settings.evidence_container)
    monkeypatch.setenv("AUDITOR_REPORT_QUEUE", settings.report_queue)
    yield load_settings()


def test_timer_queues_a_pack_per_tenant_and_the_queue_function_stores_it(
    app_env: Settings, azurite: Azurite, store: SnapshotStore, evidence: EvidenceStore
) -> None:
    # The timer packs the previous calendar month: snapshots from its first days.
    month_start, _ = previous_month(datetime.now(UTC))
    commit_days(store, evidence, TENANT, days=2, first=month_start + timedelta(hours=2))
    functions = functions_by_name()
    plan = functions["queue_monthly_packs"].get_user_function()  # type: ignore[attr-defined]
    build = functions["build_evidence_pack"].get_user_function()  # type: ignore[attr-defined]

    plan(TimerRequest(past_due=False))
    client = QueueClient.from_connection_string(azurite.connection_string, app_env.report_queue)
    with client:
        # On the wire the messages are Base64, as the queue trigger expects by default.
        bodies = [base64.b64decode(m.content) for m in client.peek_messages(max_messages=32)]
    (body,) = bodies
    job = ReportJob.decode(body)
    assert job.tenant_id == TENANT and job.requested_by == "timer"
    assert job.end is not None and job.start is not None

    build(QueueMessage(body=body, dequeue_count=1))
    stored = evidence.list_blobs(f"{TENANT}/")
    # The workbook, its OSCAL assessment results and the manifest, all of the one job.
    assert sorted(b.name.rsplit("/", 1)[-1] for b in stored) == [
        f"{job.report_id}{suffix}" for suffix in (".json", ".oscal.json", ".xlsx")
    ]
    assert {b.metadata["reportid"] for b in stored} == {job.report_id}
    build(QueueMessage(body=body, dequeue_count=2))  # duplicate delivery: nothing new
    assert len(evidence.list_blobs(f"{TENANT}/")) == 3


def test_a_malformed_message_raises_so_that_the_host_poisons_it(app_env: Settings) -> None:
    build = functions_by_name()["build_evidence_pack"].get_user_function()  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        build(QueueMessage(body=b"not json", dequeue_count=1))


def test_previous_month_is_the_whole_calendar_month_before() -> None:
    assert previous_month(datetime(2025, 3, 1, 4, tzinfo=UTC)) == (
        datetime(2025, 2, 1, tzinfo=UTC),
        datetime(2025, 2, 28, 23, 59, 59, tzinfo=UTC),
    )
    assert previous_month(datetime(2025, 1, 15, tzinfo=UTC))[0] == datetime(2024, 12, 1, tzinfo=UTC)
