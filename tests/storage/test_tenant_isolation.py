"""One tenant's failing collection never stops or corrupts another tenant's snapshot."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from auditor.adapters.queues import SnapshotQueue
from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.runs import RunStore
from auditor.core.canonical import snapshot_content_hash
from auditor.core.model import CollectionStatus
from auditor.services.snapshot import SnapshotService
from auditor.settings import Settings
from tools.posture_factory import FakeSource, make_posture, missing_subscription, tenant_id_for

SLOT = datetime(2024, 5, 1, 2, tzinfo=UTC)
SLOT_ID = "20240501T020000Z"


def test_every_other_tenant_completes_whatever_one_tenant_does(settings: Settings) -> None:
    tenants = [tenant_id_for(n) for n in range(1, 9)]
    postures = [make_posture(t, subscriptions=2) for t in tenants]
    lost = postures[3].tenant.subscriptions[0].subscription_id
    postures[3] = missing_subscription(postures[3], lost)  # incomplete, committed as such
    bad = dataclasses.replace(postures[5], compliance=(*postures[5].compliance, "not a record"))
    postures[5] = bad  # type: ignore[arg-type]  # a collector bug: unencodable content
    failures: dict[str, list[Exception | None]] = {
        tenants[1]: [ConnectionError("Resource Graph unreachable")],  # always
        tenants[2]: [TimeoutError("slow"), TimeoutError("slow"), None],  # recovers on try 3
        tenants[6]: [MemoryError("collector ran out of memory")],  # always
    }
    source = FakeSource(postures, failures)
    service = SnapshotService(
        SnapshotStore.from_settings(settings),
        RunStore.from_settings(settings),
        source,
        SnapshotQueue.from_settings(settings),
    )
    service.plan_run(SLOT, enqueue=True)
    service.drain(5, retry_delay_seconds=0)

    store = service.store
    status = {t: store.get_index(t, SLOT_ID).status for t in tenants}
    assert status == {
        tenants[0]: CollectionStatus.COMPLETE,
        tenants[1]: CollectionStatus.FAILED,
        tenants[2]: CollectionStatus.COMPLETE,
        tenants[3]: CollectionStatus.INCOMPLETE,
        tenants[4]: CollectionStatus.COMPLETE,
        tenants[5]: CollectionStatus.FAILED,
        tenants[6]: CollectionStatus.FAILED,
        tenants[7]: CollectionStatus.COMPLETE,
    }
    for tenant in tenants:
        snapshot = store.get_snapshot(tenant, SLOT_ID)
        assert snapshot_content_hash(snapshot) == snapshot.index.content_hash
    assert len(list(service.queue.peek_texts(poison=True))) == 3  # type: ignore[union-attr]
    for number in (0, 2, 4, 7):
        assert len(store.get_snapshot(tenants[number], SLOT_ID).posture.compliance) == len(
            postures[number].compliance
        )
