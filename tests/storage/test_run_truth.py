"""Runs that never lie (issue 10) and inputs that cannot block tomorrow (issue 9 §3-4), against
Azurite with the real store, runs table, queue and evidence container.

Each test names the finding it pins; each failed on the code before this change.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableServiceClient, UpdateMode

from auditor.adapters.blobs import EvidenceStore
from auditor.adapters.queues import SnapshotQueue
from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.packing import compress_lines, iter_section_lines
from auditor.adapters.tables.runs import RunStore
from auditor.adapters.tables.store import StorageReset
from auditor.api import create_app
from auditor.core.access import AccessPolicy
from auditor.core.model import CollectionStatus, Tenant
from auditor.core.runs import SnapshotJob, encode_job
from auditor.core.schedule import SlotError
from auditor.core.snapshot import SnapshotNotFound
from auditor.services.snapshot import RunNotPlanned, SnapshotService
from auditor.services.verify import verify
from auditor.settings import Settings
from tools.posture_factory import FakeSource, make_posture, tenant_id_for

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

DAY1 = datetime(2024, 5, 1, 2, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
A, B = tenant_id_for(1), tenant_id_for(2)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(DAY1 + timedelta(minutes=5))


@pytest.fixture
def source() -> FakeSource:
    return FakeSource([make_posture(A), make_posture(B)])


@pytest.fixture
def service(settings: Settings, source: FakeSource, clock: Clock) -> Iterator[SnapshotService]:
    made = SnapshotService(
        SnapshotStore.from_settings(settings),
        RunStore.from_settings(settings),
        source,
        SnapshotQueue.from_settings(settings),
        clock=clock,
    )
    yield made
    made.store.close()
    made.runs.close()
    assert made.queue is not None
    made.queue.close()


def tables(settings: Settings) -> TableServiceClient:
    assert settings.storage is not None and settings.storage.connection_string
    return TableServiceClient.from_connection_string(settings.storage.connection_string)


def poison(service: SnapshotService) -> list[dict[str, str]]:
    assert service.queue is not None
    return [json.loads(t) for t in service.queue.peek_texts(poison=True)]


# --- queue messages are validated before any work (issue 9 §3, issue 10) ---------------------


@pytest.mark.parametrize(
    ("tenant", "slot", "why"),
    [
        (f"evil/../../anchors/{A}", "20240501T020000Z", "is not a tenant id"),
        (A, "20240601T020000Z", "no run was planned for slot 20240601T020000Z"),
        (tenant_id_for(9), "20240501T020000Z", "is not in the manifest of run"),
    ],
)
def test_a_job_this_deployment_did_not_plan_is_poisoned_with_its_reason_and_commits_nothing(
    service: SnapshotService, source: FakeSource, tenant: str, slot: str, why: str
) -> None:
    service.plan_run(DAY1, enqueue=True)
    text = encode_job(SnapshotJob(tenant, slot))
    outcome = service.process_job(text, 1, 5)
    assert outcome.outcome == "rejected" and why in outcome.reason
    assert source.collected == []
    with pytest.raises(SnapshotNotFound):
        service.store.get_index(tenant, slot)
    assert service.store.list_tenants() == []
    [wrapped] = poison(service)
    assert wrapped["message"] == text and why in wrapped["reason"]
    assert [m for _, m in service.runs.rejected()] == [text]


# --- no input can block tomorrow's snapshot (issue 9 §4) -------------------------------------


def test_a_slot_after_the_current_one_or_off_the_schedule_is_refused(
    service: SnapshotService,
) -> None:
    with pytest.raises(SlotError, match="later than the current scheduled slot"):
        service.check_slot(datetime(2027, 6, 1, 2, tzinfo=UTC))
    with pytest.raises(SlotError, match="2024-04-30T02:00:00Z and 2024-05-01T02:00:00Z"):
        service.check_slot(datetime(2024, 4, 30, 14, 30, tzinfo=UTC))
    assert service.check_slot(DAY1) == DAY1


def test_a_snapshot_collected_after_its_successor_began_is_a_backfill_covered_by_the_anchor(
    service: SnapshotService, clock: Clock, settings: Settings, evidence_of: EvidenceStore
) -> None:
    clock.now = DAY2 + timedelta(hours=3)  # day 1's slot, taken on day 2
    [outcome, *_] = service.run_inline(DAY1, [A])
    assert outcome.entry is not None and outcome.entry.backfill
    anchor = evidence_of.read_anchor(A, outcome.entry.snapshot_id, outcome.entry.attempt)
    assert anchor is not None and anchor.index_digest == outcome.entry.row_digest
    client = TestClient(create_app(service.store, AccessPolicy.allow_all(), local_principal="x"))
    [summary] = client.get(f"/api/tenants/{A}/snapshots").json()["value"]
    assert summary["backfill"] is True
    # Flipping the flag in the table is an edit of the anchored row.
    index = tables(settings).get_table_client(service.store.tables.index)
    row = next(iter(index.list_entities()))
    row["backfill"] = False
    index.upsert_entity(row, mode=UpdateMode.REPLACE)
    with SnapshotStore.from_settings(settings, anchored=False) as raw:
        assert not verify(raw, evidence_of, [A]).ok


@pytest.fixture
def evidence_of(settings: Settings) -> Iterator[EvidenceStore]:
    with EvidenceStore.from_settings(settings) as evidence:
        yield evidence


# --- a failed slot can be retaken; a complete one never is (issue 10) -----------------------


def test_a_failed_slot_is_retaken_by_a_later_run_and_both_attempts_stay_anchored(
    service: SnapshotService, source: FakeSource, settings: Settings, evidence_of: EvidenceStore
) -> None:
    source.failures[A] = [ConnectionError("late 5xx burst"), None]
    [first, _] = service.run_inline(DAY1)
    assert first.outcome == "failed" and first.entry is not None
    [again, other] = service.run_inline(DAY1)  # the control plane is healthy again
    assert (again.outcome, other.outcome) == ("complete", "duplicate")
    assert again.entry is not None and again.entry.supersedes == first.entry.attempt
    assert service.store.list_tenants()[0] == again.entry
    attempts = {a.attempt for a in evidence_of.list_anchors(A)}
    assert {first.entry.attempt, again.entry.attempt} <= attempts
    [third, _] = service.run_inline(DAY1)
    assert third.outcome == "duplicate" and third.entry == again.entry  # complete: never again
    with SnapshotStore.from_settings(settings, anchored=False) as raw:
        result = verify(raw, evidence_of, [A])
    assert result.ok, [str(f) for f in result.findings]


# --- discovery that fails is recorded (issue 10) ----------------------------------------------


class FailingDiscovery(FakeSource):
    def discover(self) -> list[Tenant]:
        raise ConnectionError("Resource Graph: 8 consecutive 503s")


def test_a_failed_discovery_records_the_run_as_failed_with_its_reason(settings: Settings) -> None:
    service = SnapshotService(
        SnapshotStore.from_settings(settings), RunStore.from_settings(settings),
        FailingDiscovery([]), SnapshotQueue.from_settings(settings),
    )  # fmt: skip
    with pytest.raises(RunNotPlanned, match="discovery failed: ConnectionError: Resource Graph"):
        service.run_inline(DAY1)
    failure = service.runs.run_failure("20240501T020000Z")
    assert failure is not None and "8 consecutive 503s" in failure
    assert service.runs.get_manifest("20240501T020000Z") is None


# --- a tenant whose delegation is removed does not vanish (issue 10) -------------------------


def test_a_tenant_that_left_the_delegation_is_recorded_and_shown_as_such(
    service: SnapshotService, source: FakeSource, clock: Clock
) -> None:
    service.run_inline(DAY1)
    del source.postures[B]  # the customer removed the delegation
    clock.now = DAY2 + timedelta(minutes=5)
    outcomes = service.run_inline(DAY2)
    assert [(o.tenant_id, o.outcome) for o in outcomes] == [
        (A, "complete"),
        (B, "left-delegation"),
    ]
    assert "latest snapshot 20240501T020000Z" in outcomes[1].reason
    manifest = service.runs.get_manifest("20240502T020000Z")
    assert manifest is not None and manifest.left == (B,)

    client = TestClient(create_app(service.store, AccessPolicy.allow_all(), local_principal="x"))
    items = {t["tenantId"]: t for t in client.get("/api/tenants").json()["value"]}
    assert items[A]["delegated"] is True and items[A]["leftDelegationAt"] is None
    assert items[B]["delegated"] is False
    assert items[B]["leftDelegationAt"] == "2024-05-02T02:00:00Z"
    assert items[B]["snapshotAgeDays"] > 100
    asked = {"from": "20240501T020000Z", "to": "2024-05-09T00:00:00Z"}
    later = client.get(f"/api/tenants/{B}/diff", params=asked)
    assert later.status_code == 200
    [warning] = later.json()["warnings"]
    assert warning.startswith("to: the latest snapshot at or before 2024-05-09T00:00:00Z is ")
    assert "no longer delegated (since 20240502T020000Z)" in warning


# --- a commit verifies the history it builds on (issue 10) -----------------------------------


def test_a_rewritten_history_is_not_inherited_and_the_next_snapshot_says_so(
    service: SnapshotService, settings: Settings
) -> None:
    service.run_inline(DAY1, [A])
    content = tables(settings).get_table_client(service.store.tables.content)
    row = next(r for r in content.list_entities() if r["section"] == "compliance")
    lines = list(iter_section_lines([row]))
    failing = next(i for i, line in enumerate(lines) if '"first_failed"' in line)
    record = json.loads(lines[failing])
    record["transition"]["first_failed"] = "2020-01-01T00:00:00+00:00"
    lines[failing] = json.dumps(record, sort_keys=True, separators=(",", ":"))
    row["p00"] = compress_lines(lines)
    content.upsert_entity(row, mode=UpdateMode.REPLACE)

    [outcome] = service.run_inline(DAY2, [A])
    entry = outcome.entry
    assert entry is not None and "20240501T020000Z failed verification" in entry.history_break
    snapshot = service.store.get_snapshot(A, entry.snapshot_id)
    assert any("history not inherited" in w for w in snapshot.posture.completeness.warnings)
    first_failed = {t.first_failed for t in snapshot.transitions.values() if t.first_failed}
    assert first_failed == {DAY2}  # nothing from the rewritten day, 2020 least of all


# --- verify compares the store with the runs' manifests (issue 10) ---------------------------


def test_a_lost_commit_of_a_finished_run_is_a_finding(
    service: SnapshotService, settings: Settings, evidence_of: EvidenceStore
) -> None:
    service.run_inline(DAY1)
    index = tables(settings).get_table_client(service.store.tables.index)
    lost = next(r for r in index.list_entities() if r["tenant_id"] == B)
    index.delete_entity(lost["PartitionKey"], lost["RowKey"])  # as a crashed storage would
    with SnapshotStore.from_settings(settings, anchored=False) as raw:
        result = verify(raw, evidence_of, runs=service.runs)
    problems = [(f.tenant_id, f.problem) for f in result.findings]
    assert (
        B,
        "expected by run 20240501T020000Z's manifest, but no snapshot (complete, incomplete or "
        "failed) is committed for it: a lost commit",
    ) in problems


def test_a_table_lost_by_the_storage_is_named_not_called_contention(
    service: SnapshotService, settings: Settings
) -> None:
    service.store.create_tables()
    tables(settings).delete_table(service.store.tables.index)  # an in-memory restart
    with pytest.raises(StorageReset, match="storage lost its data"):
        service.store.commit_snapshot(make_posture(A), DAY1, "c")
    [outcome] = service.run_inline(DAY1, [A])
    assert outcome.outcome == "retry" and "StorageReset" in outcome.reason


def test_dropped_malformed_rows_make_the_snapshot_incomplete_with_the_counts_as_reason(
    service: SnapshotService, source: FakeSource
) -> None:
    """Issue 10: malformed rows never changed a tenant's status, so a pack of a tenant with
    dropped rows read as complete."""
    posture = source.postures[A]
    source.postures[A] = dataclasses.replace(
        posture,
        completeness=dataclasses.replace(posture.completeness, malformed={"compliance": 3}),
    )
    outcomes = {o.tenant_id: o for o in service.run_inline(DAY1)}
    entry = outcomes[A].entry
    assert entry is not None and entry.status is CollectionStatus.INCOMPLETE
    assert entry.reasons == ("3 malformed rows or pages dropped (compliance 3); see the warnings",)
    assert outcomes[B].outcome == "complete"
