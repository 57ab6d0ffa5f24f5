"""An in-memory SnapshotReader with the protocol's exact semantics, for tests of the access
rules that need many apps quickly. Contract tests use the real store against Azurite."""

from __future__ import annotations

from datetime import datetime

from auditor.core.snapshot import Snapshot, SnapshotIndexEntry, SnapshotNotFound


class MemoryReader:
    def __init__(self, snapshots: list[Snapshot] | None = None) -> None:
        self.snapshots: dict[tuple[str, str], Snapshot] = {}
        self.reads = 0
        for snapshot in snapshots or ():
            self.add(snapshot)

    def add(self, snapshot: Snapshot) -> None:
        self.snapshots[(snapshot.index.tenant_id, snapshot.index.snapshot_id)] = snapshot

    def _entries(self, tenant_id: str) -> list[SnapshotIndexEntry]:
        self.reads += 1
        found = [s.index for (t, _), s in self.snapshots.items() if t == tenant_id]
        return sorted(found, key=lambda e: e.snapshot_id, reverse=True)

    def list_tenants(self) -> list[SnapshotIndexEntry]:
        tenants = sorted({t for t, _ in self.snapshots})
        return [self._entries(t)[0] for t in tenants]

    def list_snapshots(
        self, tenant_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[SnapshotIndexEntry]:
        return [
            e
            for e in self._entries(tenant_id)
            if (since is None or e.scheduled_at >= since)
            and (until is None or e.scheduled_at <= until)
        ]

    def get_index(self, tenant_id: str, snapshot_id: str) -> SnapshotIndexEntry:
        return self.get_snapshot(tenant_id, snapshot_id).index

    def find_at(self, tenant_id: str, instant: datetime) -> SnapshotIndexEntry:
        found = self.list_snapshots(tenant_id, until=instant)
        if not found:
            raise SnapshotNotFound(tenant_id)
        return found[0]

    def get_snapshot(self, tenant_id: str, snapshot_id: str) -> Snapshot:
        self.reads += 1
        try:
            return self.snapshots[(tenant_id, snapshot_id)]
        except KeyError:
            raise SnapshotNotFound(f"{tenant_id}/{snapshot_id}") from None
