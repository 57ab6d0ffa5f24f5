"""The diff projection in Azurite: a cold diff reads it (not the records), says what the records
say, and any edit of it is caught: by the anchor when read, by verify against the content."""

from __future__ import annotations

import array
import base64
import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from auditor.adapters.blobs import EvidenceStore
from auditor.adapters.storage import table_service_client
from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.packing import compress_lines, iter_section_lines
from auditor.api.hosting import LazyReader
from auditor.core import prepared
from auditor.core.diff import diff_snapshots
from auditor.core.model import State, TenantPosture
from auditor.core.snapshot import Snapshot, SnapshotTampered
from auditor.services.history import SnapshotHistory
from auditor.services.verify import verify
from auditor.settings import Settings, require_storage
from tools.posture_factory import flip_states, make_posture, tenant_id_for

DAY1 = datetime(2024, 5, 1, 2, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
TENANT = tenant_id_for(1)


class CountingStore(SnapshotStore):
    """The product's store, noting which snapshots were read in full."""

    full_reads: list[str]

    def get_snapshot(self, tenant_id: str, snapshot_id: str, *, verify: bool = True) -> Snapshot:
        self.full_reads.append(snapshot_id)
        return super().get_snapshot(tenant_id, snapshot_id, verify=verify)


@pytest.fixture
def counting(settings: Settings) -> Callable[..., CountingStore]:
    opened: list[CountingStore] = []

    def make(**options: Any) -> CountingStore:
        store = CountingStore.from_settings(settings, **options)
        assert isinstance(store, CountingStore)
        store.full_reads = []
        opened.append(store)
        return store

    yield make  # type: ignore[misc]
    for store in opened:
        store.close()


def two_days() -> tuple[TenantPosture, TenantPosture]:
    before = make_posture(TENANT, subscriptions=3, standards=2, controls=4, assessments=5, seed=2)
    return before, flip_states(before, 0.2, seed=5)


def reference(store: SnapshotStore, before: str, after: str) -> Any:
    return diff_snapshots(store.get_snapshot(TENANT, before), store.get_snapshot(TENANT, after))


def projection_entity(settings: Settings, store: SnapshotStore, partition: str) -> Any:
    service = table_service_client(require_storage(settings))
    content = service.get_table_client(store.tables.content)
    rows = content.query_entities("PartitionKey eq @pk", parameters={"pk": partition})
    return content, next(r for r in rows if r["section"] == "projection")


def test_a_cold_diff_reads_the_projections_not_the_records_and_says_the_same(
    counting: Callable[..., CountingStore],
) -> None:
    store = counting()
    before, after = two_days()
    first = store.commit_snapshot(before, DAY1, "c")
    second = store.commit_snapshot(after, DAY2, "c")
    diff = SnapshotHistory(store).diff(first, second)
    assert store.full_reads == []
    assert diff == reference(store, first.snapshot_id, second.snapshot_id)
    assert diff.summary.posture[next(iter(diff.summary.posture))] > 0  # changes were found


def test_snapshots_stored_without_a_projection_still_diff_by_their_records(
    counting: Callable[..., CountingStore],
) -> None:
    before, after = two_days()
    old_style = counting(write_projection=False)
    first = old_style.commit_snapshot(before, DAY1, "c")
    store = counting()
    second = store.commit_snapshot(after, DAY2, "c")
    assert store.get_diff_view(TENANT, first.snapshot_id) is None
    diff = SnapshotHistory(store).diff(first, second)
    assert store.full_reads == [first.snapshot_id]  # only the end without a projection
    assert diff == reference(store, first.snapshot_id, second.snapshot_id)


def test_a_tampered_projection_entity_is_caught_on_read_and_by_verify(
    counting: Callable[..., CountingStore], settings: Settings
) -> None:
    store = counting()
    before, after = two_days()
    first = store.commit_snapshot(before, DAY1, "c")
    second = store.commit_snapshot(after, DAY2, "c")
    row = store.slot_row(TENANT, second.snapshot_id)
    assert row is not None
    content, entity = projection_entity(settings, store, row["content_partition"])
    lines = list(iter_section_lines([entity]))
    strings = json.loads(lines[1])
    failed, passed = strings.index(State.FAILED.value), strings.index(State.PASSED.value)
    at = next(i for i, line in enumerate(lines) if line.startswith("records.state="))
    states = array.array("I", base64.b64decode(lines[at].partition("=I:")[2]))
    assert failed in states
    # Every failing record reads as passing: a well-formed projection hiding the regressions.
    hidden = array.array("I", [passed if n == failed else n for n in states])
    lines[at] = "records.state=I:" + base64.b64encode(hidden.tobytes()).decode()
    entity["p00"] = compress_lines(lines)
    content.upsert_entity(entity)

    reader = counting()  # a fresh process: nothing cached
    with pytest.raises(SnapshotTampered, match="diff projection entities differ"):
        SnapshotHistory(reader).diff(first, second)
    with pytest.raises(SnapshotTampered, match="content entities differ"):
        reader.get_snapshot(TENANT, second.snapshot_id)
    with (
        SnapshotStore.from_settings(settings, anchored=False) as raw,
        EvidenceStore.from_settings(settings) as evidence,
    ):
        result = verify(raw, evidence, [TENANT])
    problems = [f.problem for f in result.findings if f.subject == f"snapshot {second.snapshot_id}"]
    assert problems == [
        "stored content entities differ from what the attempt wrote (a property of a content "
        "entity was edited, added or removed)"
    ]


def test_an_edited_projection_digest_in_the_index_row_is_caught_by_the_anchor(
    counting: Callable[..., CountingStore], settings: Settings
) -> None:
    store = counting()
    before, after = two_days()
    first = store.commit_snapshot(before, DAY1, "c")
    second = store.commit_snapshot(after, DAY2, "c")
    service = table_service_client(require_storage(settings))
    index = service.get_table_client(store.tables.index)
    row = next(r for r in index.list_entities() if r["snapshot_id"] == second.snapshot_id)
    row["diff_view_digest"] = "0" * 64
    index.upsert_entity(row)
    with pytest.raises(SnapshotTampered, match="index row properties differ"):
        SnapshotHistory(counting()).diff(first, second)


def test_verify_reports_a_projection_that_disagrees_with_its_content(
    counting: Callable[..., CountingStore], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, after = two_days()
    store = counting()
    store.commit_snapshot(before, DAY1, "c")
    wrong = prepared.projection_lines

    def of_other_states(compliance: Any, transitions: Any, controls: Any) -> list[str]:
        flipped = [dataclasses.replace(r, state=State.PASSED) for r in compliance]
        return wrong(flipped, transitions, controls)

    # A product fault, not an edit: the attempt itself writes (and anchors) a wrong projection.
    monkeypatch.setattr(prepared, "projection_lines", of_other_states)
    second = store.commit_snapshot(after, DAY2, "c")
    monkeypatch.undo()
    with (
        SnapshotStore.from_settings(settings, anchored=False) as raw,
        EvidenceStore.from_settings(settings) as evidence,
    ):
        result = verify(raw, evidence, [TENANT])
    assert [(f.subject, f.problem) for f in result.findings] == [
        (
            f"snapshot {second.snapshot_id}",
            "the diff projection disagrees with the content it was derived from",
        )
    ]


def test_the_hosted_apps_lazy_reader_passes_the_diff_view_on(
    counting: Callable[..., CountingStore],
) -> None:
    store = counting()
    before, after = two_days()
    first = store.commit_snapshot(before, DAY1, "c")
    second = store.commit_snapshot(after, DAY2, "c")
    reader = LazyReader(lambda: store)  # what azure_app serves the API from
    diff = SnapshotHistory(reader).diff(first, second)
    assert store.full_reads == []
    assert diff == reference(store, first.snapshot_id, second.snapshot_id)
