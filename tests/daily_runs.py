"""Daily runs for tests: each day's postures snapshotted inline, then its run closed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from auditor.adapters.queues import SnapshotQueue
from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.runs import RunStore
from auditor.core.model import TenantPosture
from auditor.services.runclose import make_closer
from auditor.services.snapshot import SnapshotService
from auditor.settings import Settings
from tools.posture_factory import FakeSource


def run_days(
    settings: Settings,
    store: SnapshotStore,
    runs: RunStore,
    days: Iterable[tuple[datetime, Sequence[TenantPosture]]],
    *,
    queue: SnapshotQueue | None = None,
    closed_after: timedelta = timedelta(minutes=5),
    **closer_options: Any,
) -> None:
    """Snapshot each day's postures at its slot and close that run, the clock `closed_after`
    the slot."""
    for slot, postures in days:
        closer = make_closer(settings, store, runs, queue, **closer_options)
        closer.clock = lambda slot=slot: slot + closed_after  # type: ignore[misc]
        service = SnapshotService(
            store, runs, FakeSource(list(postures)), queue, clock=closer.clock, closer=closer
        )
        service.run_inline(slot)
        closer.close()
