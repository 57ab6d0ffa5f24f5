"""A tenant's snapshot history as readers ask for it: resolve references, load, diff.

Wraps any SnapshotReader with an in-process cache. Committed snapshots are immutable, so a
snapshot is cached under (tenant, snapshot id, attempt, content hash) and a diff under both
ends' keys, with no expiry; the cache is bounded by the number of compliance records it holds,
and evicts the least recently used.

Verification: the product's reader is the anchored SnapshotStore, which checks every index
row, latest row and content it returns against the anchor its attempt wrote (anchors cached by
tenant, snapshot and attempt) and raises ``SnapshotTampered`` otherwise; every lookup here goes
through it (only content is cached), so an edit made after a snapshot was cached is still
caught on the next request.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from auditor.core.diff import ComplianceIndex, Diff, diff_snapshots
from auditor.core.projection import acyclic_build
from auditor.core.runs import Delegation
from auditor.core.snapshot import (
    Snapshot,
    SnapshotIndexEntry,
    SnapshotNotFound,
    SnapshotReader,
    UnverifiedLatest,
    slot_of,
)
from auditor.services.bounded_cache import BoundedCache, CacheStats

# Measured: about 1.1 KB per cached compliance record (record, history, diff index), so
# 400,000 records ≈ 450 MB: four 100,000-record snapshots, within a 2 GB Flex instance.
DEFAULT_MAX_CACHED_RECORDS = 400_000
DEFAULT_MAX_CACHED_CHANGES = 400_000

SnapshotKey = tuple[str, str, str, str]
# An end of a diff asked for by instant whose snapshot is older than this says so (the same
# bound the evidence pack's Data quality sheet uses for a stale end snapshot).
STALE_AFTER = timedelta(hours=48)
END_OF_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)  # tenant id, snapshot id, content hash


@dataclass(frozen=True, slots=True)
class SnapshotRef:
    """How a caller names a snapshot: by its id, or by an instant (latest at or before it)."""

    snapshot_id: str | None = None
    instant: datetime | None = None

    def __post_init__(self) -> None:
        if (self.snapshot_id is None) == (self.instant is None):
            raise ValueError("a snapshot reference is either an id or an instant")

    @property
    def moment(self) -> datetime:
        """The instant this reference stands for (a snapshot id stands for its slot)."""
        if self.snapshot_id is not None:
            return slot_of(self.snapshot_id)
        assert self.instant is not None
        return self.instant


@dataclass(frozen=True, slots=True)
class CachedSnapshot:
    snapshot: Snapshot
    compliance: ComplianceIndex


def _key(entry: SnapshotIndexEntry) -> SnapshotKey:
    return (entry.tenant_id, entry.snapshot_id, entry.attempt, entry.content_hash)


def read_full(reader: SnapshotReader, entry: SnapshotIndexEntry) -> CachedSnapshot:
    """`entry`'s whole snapshot and its compliance index, as `reader` returns it."""
    snapshot = reader.get_snapshot(entry.tenant_id, entry.snapshot_id)
    if snapshot.index.content_hash != entry.content_hash:
        # The index row and the content disagree: never cache under the wrong hash.
        raise SnapshotNotFound(f"snapshot {entry.snapshot_id} changed while being read")
    return CachedSnapshot(snapshot, ComplianceIndex(snapshot.posture.compliance))


def read_view(reader: SnapshotReader, entry: SnapshotIndexEntry) -> CachedSnapshot | None:
    """What a diff reads of `entry` when the reader stores diff projections (docs/schema.md):
    the snapshot without the sections the projection stands for, indexed from the projection.
    None when the reader has none or the snapshot predates the projection."""
    read = getattr(reader, "get_diff_view", None)
    view = read(entry.tenant_id, entry.snapshot_id) if read is not None else None
    if view is None:
        return None
    if view.snapshot.index.content_hash != entry.content_hash:
        raise SnapshotNotFound(f"snapshot {entry.snapshot_id} changed while being read")
    return CachedSnapshot(view.snapshot, ComplianceIndex.from_projection(view.projection))


def diff_input(reader: SnapshotReader, entry: SnapshotIndexEntry) -> CachedSnapshot:
    """What a diff reads of `entry`, uncached: its diff view, else the whole snapshot."""
    found = read_view(reader, entry)
    return found if found is not None else read_full(reader, entry)


class SnapshotHistory:
    """Read side used by the API (and anyone who diffs): the reader plus immutable caching."""

    def __init__(
        self,
        reader: SnapshotReader,
        *,
        max_cached_records: int = DEFAULT_MAX_CACHED_RECORDS,
        max_cached_changes: int = DEFAULT_MAX_CACHED_CHANGES,
    ) -> None:
        self.reader = reader
        self._snapshots: BoundedCache[SnapshotKey, CachedSnapshot] = BoundedCache(
            max_cached_records, lambda c: len(c.snapshot.posture.compliance) + 1
        )
        self._diffs: BoundedCache[tuple[SnapshotKey, SnapshotKey], Diff] = BoundedCache(
            max_cached_changes, lambda d: len(d.changes) + 1
        )
        # Diff views (projections): a diff's input only, never served as a snapshot.
        self._views: BoundedCache[SnapshotKey, CachedSnapshot] = BoundedCache(
            max_cached_records, lambda c: len(c.compliance) + 1
        )

    # -- index ---------------------------------------------------------------------------------

    def list_tenants(self) -> list[SnapshotIndexEntry]:
        return self.reader.list_tenants()

    def list_latest(self) -> tuple[list[SnapshotIndexEntry], list[UnverifiedLatest]]:
        """(verified latest entries, latest rows failing verification) when the reader tells
        them apart (the anchored store does); else the reader's list and no failure."""
        lister = getattr(self.reader, "list_latest", None)
        if lister is None:
            return self.reader.list_tenants(), []
        found: tuple[list[SnapshotIndexEntry], list[UnverifiedLatest]] = lister()
        return found

    def list_snapshots(
        self, tenant_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[SnapshotIndexEntry]:
        return self.reader.list_snapshots(tenant_id, since=since, until=until)

    def latest(self, tenant_id: str) -> SnapshotIndexEntry:
        """The tenant's newest committed snapshot; SnapshotNotFound when it has none."""
        return self.reader.find_at(tenant_id, END_OF_TIME)

    def has_snapshots(self, tenant_id: str) -> bool:
        """Whether the tenant has any committed snapshot (i.e. the store knows the tenant)."""
        try:
            self.latest(tenant_id)
        except SnapshotNotFound:
            return False
        return True

    def resolve(self, tenant_id: str, ref: SnapshotRef | None) -> SnapshotIndexEntry:
        """The snapshot a reference names (None: the latest); SnapshotNotFound when none does."""
        if ref is None:
            return self.latest(tenant_id)
        if ref.snapshot_id is not None:
            return self.reader.get_index(tenant_id, ref.snapshot_id)
        assert ref.instant is not None
        return self.reader.find_at(tenant_id, ref.instant)

    def delegation(self) -> Delegation | None:
        """Who the latest full run found delegated (None when the reader cannot tell)."""
        source = getattr(self.reader, "delegation", None)
        return source() if callable(source) else None

    def staleness(
        self, ends: list[tuple[str, SnapshotRef | None, SnapshotIndexEntry]]
    ) -> list[str]:
        """Warnings for ends asked for by instant whose snapshot is older than asked by more
        than STALE_AFTER (e.g. a tenant that left the delegation): served, never silently."""
        out = []
        delegation: Delegation | None = None
        for name, ref, entry in ends:
            if ref is None or ref.instant is None:
                continue
            behind = ref.instant - entry.scheduled_at
            if behind <= STALE_AFTER:
                continue
            if delegation is None:
                delegation = self.delegation()
            text = (
                f"{name}: the latest snapshot at or before {ref.instant:%Y-%m-%dT%H:%M:%SZ} is "
                f"{entry.snapshot_id}, {behind.days} days {behind.seconds // 3600} hours older "
                "than asked"
            )
            if delegation is not None and not delegation.delegated(entry.tenant_id):
                left = delegation.left_at.get(entry.tenant_id)
                text += "; the tenant is no longer delegated" + (f" (since {left})" if left else "")
            out.append(text)
        return out

    def previous(self, entry: SnapshotIndexEntry) -> SnapshotIndexEntry:
        """The committed snapshot just before `entry`; SnapshotNotFound when it is the first."""
        return self.reader.find_at(entry.tenant_id, entry.scheduled_at - timedelta(seconds=1))

    # -- content -------------------------------------------------------------------------------

    def _cached(self, entry: SnapshotIndexEntry) -> CachedSnapshot:
        return self._snapshots.get_or_load(_key(entry), lambda: read_full(self.reader, entry))

    def _for_diff(self, entry: SnapshotIndexEntry) -> CachedSnapshot:
        """What a diff reads of a snapshot: the full snapshot when cached, else its diff view
        (its projection, docs/schema.md) when the reader has one, else the full snapshot."""
        key = _key(entry)
        cached = self._snapshots.get(key)
        if cached is not None:
            return cached
        found = self._views.get(key)
        if found is None:
            found = read_view(self.reader, entry)
            if found is None:
                return self._cached(entry)  # predates the projection: read in full
            self._views.put(key, found)
        return found

    def snapshot(self, entry: SnapshotIndexEntry) -> Snapshot:
        """A committed snapshot's content (cached)."""
        return self._cached(entry).snapshot

    def diff(self, before: SnapshotIndexEntry, after: SnapshotIndexEntry) -> Diff:
        """The diff from `before` to `after` (cached: both ends are immutable)."""

        def compute() -> Diff:
            # The two ends are read at once: their storage round trips, inflating and hashing
            # overlap (each about half of a cold diff). Their indexes and the diff are large
            # containers of strings and tuples: the cyclic collector is paused for all of it,
            # not for each part (each pause ended by a collection walking the whole heap).
            with acyclic_build(), ThreadPoolExecutor(max_workers=2) as pool:
                later = pool.submit(self._for_diff, after)
                old = self._for_diff(before)
                new = later.result()
                return diff_snapshots(
                    old.snapshot,
                    new.snapshot,
                    before_index=old.compliance,
                    after_index=new.compliance,
                )

        return self._diffs.get_or_load((_key(before), _key(after)), compute)

    def cache_stats(self) -> dict[str, CacheStats]:
        return {"snapshots": self._snapshots.stats(), "diffs": self._diffs.stats()}
