"""Table Storage adapter: the snapshot store, its key spelling and its entity packing."""

from auditor.adapters.tables.store import (
    CorruptSnapshot,
    SlotBusy,
    SnapshotStore,
    SnapshotSuperseded,
    TableNames,
)

__all__ = ["CorruptSnapshot", "SlotBusy", "SnapshotStore", "SnapshotSuperseded", "TableNames"]
