"""SnapshotStore: immutable per-tenant snapshots in Azure Table Storage.

Tables (``{prefix}`` is ``AUDITOR_TABLE_PREFIX``; docs/schema.md has every property):

- ``{prefix}Snapshots`` — the index: PartitionKey tenant, RowKey newest first; one row per slot.
- ``{prefix}SnapshotContent`` — content: one partition per write attempt, a few entities per
  section, each a slice of the section's compressed canonical lines (``packing``).
- ``{prefix}Tenants`` — each tenant's latest committed index row, so listing tenants is one query.

Commit protocol (a reader never sees a partial snapshot; a slot is written at most once):

1. If the slot's index row is committed, return it (idempotent rerun, duplicate message).
2. Claim the slot: create (or, after a crashed attempt, replace under its ETag) the index row as
   *pending* with a fresh attempt id. Readers ignore pending rows.
3. Write the content into the attempt's own partition, in entity-group transactions.
4. Replace the pending row with the committed row, conditional on the claim's ETag. Only one
   attempt can win; a loser deletes its content and defers to the winner.
5. Advance the tenant's latest row (monotonic, ETag-conditional), then delete the content of
   attempts the winner superseded.

A crash anywhere before 4 leaves only a pending row and an orphan partition, both invisible; the
next attempt for the slot takes over and cleans up. A crash between 4 and 5 leaves the latest row
one snapshot behind until the slot is next touched (step 1 repairs it).
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from azure.core import MatchConditions
from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from auditor.adapters.storage import table_service_client
from auditor.adapters.tables import keys
from auditor.adapters.tables.packing import (
    Entity,
    PackingError,
    get_json,
    iter_section_lines,
    plan_batches,
    section_entities,
    section_prefix,
)
from auditor.adapters.tables.rows import (
    LATEST_PARTITION,
    ContentLayout,
    committed_entity,
    content_layout,
    content_partition_key,
    index_entry,
    index_keys,
    is_committed,
    latest_entity,
    pending_entity,
)
from auditor.core.canonical import (
    SECTIONS,
    CanonicalFormatError,
    SnapshotHeader,
    canonical_sections,
    content_hash,
    decode_compliance,
    decode_compliance_fields,
    decode_compliance_prior,
    decode_record,
    decode_sections,
    format_time,
    operations_of,
)
from auditor.core.model import (
    CollectionStatus,
    Completeness,
    ComplianceRecord,
    State,
    Tenant,
    TenantPosture,
)
from auditor.core.snapshot import (
    CarriedAssessment,
    Snapshot,
    SnapshotIndexEntry,
    SnapshotNotFound,
    Transition,
    compliance_by_standard,
    slot_of,
    snapshot_id_for,
)
from auditor.core.transitions import History, KnownPrior, Prior, next_history
from auditor.settings import Settings, require_storage

log = logging.getLogger(__name__)

Key = tuple[str, str, str, str]


class SnapshotSuperseded(RuntimeError):
    """A later slot is already committed for this tenant: history is append-only."""


class SlotBusy(RuntimeError):
    """Another attempt claimed the slot while this one wrote; retry later (it may commit)."""


class CorruptSnapshot(RuntimeError):
    """A committed snapshot's content does not match its index row (damaged or tampered)."""


@dataclass(frozen=True, slots=True)
class TableNames:
    prefix: str

    @property
    def index(self) -> str:
        return f"{self.prefix}Snapshots"

    @property
    def content(self) -> str:
        return f"{self.prefix}SnapshotContent"

    @property
    def latest(self) -> str:
        return f"{self.prefix}Tenants"

    @property
    def runs(self) -> str:
        return f"{self.prefix}Runs"

    def all(self) -> tuple[str, ...]:
        return (self.index, self.content, self.latest, self.runs)


def _utcnow() -> datetime:
    return datetime.now(UTC)


# azure-core retries GET, PUT and DELETE on connection errors but never POST (not idempotent in
# general). Entity-group transactions and inserts are POSTs; ours are safe to repeat (upserts in
# an attempt's own partition; a repeated claim is recognised by its attempt id), so the store
# retries them itself, with the same backoff, for WRITE_RETRY_SECONDS at most: refused
# connections (a restart) are ridden through, while storage that never answers (each attempt
# waits the read timeout) still ends a command within about 45 s (issue 9 §5).
WRITE_RETRIES = 6
WRITE_RETRY_SECONDS = 30.0


def _retrying(call: Callable[[], Any], retries: int, sleep: Callable[[float], None]) -> Any:
    started = time.monotonic()
    for attempt in range(retries + 1):
        try:
            return call()
        except (ServiceRequestError, ServiceResponseError) as exc:
            if attempt == retries or time.monotonic() - started > WRITE_RETRY_SECONDS:
                raise
            # info: whoever gives up reports the outage once (the CLI: one line).
            log.info("storage unreachable (%s), retry %d of %d", exc, attempt + 1, retries)
            sleep(min(8.0, 0.5 * 2**attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def _status_code(exc: BaseException) -> int | None:
    return getattr(exc, "status_code", None)


@dataclass(frozen=True, slots=True)
class _Claim:
    etag: str
    abandoned: list[str]
    started_at: str


def snapshot_counts(posture: TenantPosture, carried: int) -> dict[str, int]:
    """Record counts per section and compliance records per state (the index's `counts`)."""
    counts = {
        "compliance": len(posture.compliance),
        "carried": carried,
        "standards": len(posture.standards),
        "controls": len(posture.controls),
        "plans": len(posture.plans),
        "secure_scores": len(posture.secure_scores),
        "secure_score_controls": len(posture.secure_score_controls),
        "hardening": len(posture.hardening),
        "assignments": len(posture.assignments),
    }
    states = Counter(record.state for record in posture.compliance)
    for state in State:
        counts[f"compliance_{state.value.lower()}"] = states.get(state, 0)
    return counts


def failed_posture(tenant: Tenant, reason: str) -> TenantPosture:
    """The content of a snapshot whose collection failed: no records, the reason as an error."""
    return TenantPosture(
        tenant=tenant,
        compliance=(),
        standards=(),
        controls=(),
        plans=(),
        secure_scores=(),
        secure_score_controls=(),
        hardening=(),
        assignments=(),
        completeness=Completeness(
            expected_subscriptions=tuple(s.subscription_id for s in tenant.subscriptions),
            collected_subscriptions=(),
            errors=(reason,),
        ),
    )


class SnapshotStore:
    """Read and write snapshots. Implements ``auditor.core.snapshot.SnapshotReader``."""

    def __init__(
        self,
        service: TableServiceClient,
        table_prefix: str,
        *,
        clock: Callable[[], datetime] = _utcnow,
        write_retries: int = WRITE_RETRIES,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.tables = TableNames(table_prefix)
        self._write_retries = write_retries
        self._sleep = sleep
        self._service = service
        self._index = service.get_table_client(self.tables.index)
        self._content = service.get_table_client(self.tables.content)
        self._latest = service.get_table_client(self.tables.latest)
        self._clock = clock
        self._tables_ready = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        credential: TokenCredential | None = None,
        *,
        write_retries: int = WRITE_RETRIES,
        **options: Any,
    ) -> SnapshotStore:
        """A store on AUDITOR_STORAGE; `options` go to the SDK client (retries, hooks)."""
        service = table_service_client(require_storage(settings), credential, **options)
        return cls(service, settings.table_prefix, write_retries=write_retries)

    def close(self) -> None:
        self._service.close()

    def __enter__(self) -> SnapshotStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create_tables(self) -> None:
        """Create the store's tables if missing (idempotent; done before the first write)."""
        if self._tables_ready:
            return
        for name in self.tables.all():
            with contextlib.suppress(ResourceExistsError):
                _retrying(
                    partial(self._service.create_table, name), self._write_retries, self._sleep
                )
        self._tables_ready = True

    # -----------------------------------------------------------------------------------------
    # Read side (SnapshotReader)

    def list_tenants(self) -> list[SnapshotIndexEntry]:
        """The latest committed snapshot of every tenant that has one, ordered by tenant id."""
        rows = _query(self._latest, "PartitionKey eq @pk", {"pk": LATEST_PARTITION})
        return sorted((index_entry(row) for row in rows), key=lambda e: e.tenant_id)

    def list_snapshots(
        self,
        tenant_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[SnapshotIndexEntry]:
        """A tenant's committed snapshots, newest first, optionally bounded by scheduled time."""
        query = "PartitionKey eq @pk and committed eq true"
        params: dict[str, Any] = {"pk": keys.escape(tenant_id)}
        if until is not None:
            query += " and RowKey ge @low"
            params["low"] = keys.index_row_key_bound(snapshot_id_for(until))
        if since is not None:
            first = since.replace(microsecond=0)
            if first < since:
                first += timedelta(seconds=1)
            query += " and RowKey lt @high"
            params["high"] = keys.after_slot_bound(snapshot_id_for(first))
        entries = [index_entry(row) for row in _query(self._index, query, params)]
        return [
            e
            for e in entries
            if (since is None or e.scheduled_at >= since)
            and (until is None or e.scheduled_at <= until)
        ]

    def get_index(self, tenant_id: str, snapshot_id: str) -> SnapshotIndexEntry:
        """One committed snapshot's index entry; SnapshotNotFound when absent."""
        return index_entry(self._committed_row(tenant_id, snapshot_id))

    def find_at(self, tenant_id: str, instant: datetime) -> SnapshotIndexEntry:
        """The latest committed snapshot scheduled at or before `instant`; else SnapshotNotFound."""
        rows = _query(
            self._index,
            "PartitionKey eq @pk and committed eq true and RowKey ge @low",
            {
                "pk": keys.escape(tenant_id),
                "low": keys.index_row_key_bound(snapshot_id_for(instant)),
            },
            results_per_page=1,
        )
        for row in rows:
            return index_entry(row)
        raise SnapshotNotFound(f"tenant {tenant_id} has no snapshot at or before {instant}")

    def get_snapshot(self, tenant_id: str, snapshot_id: str, *, verify: bool = True) -> Snapshot:
        """A committed snapshot's full content; SnapshotNotFound when absent.

        With `verify` (the default) the content is hashed again and CorruptSnapshot raised
        unless it matches the index row's content hash.
        """
        row = self._committed_row(tenant_id, snapshot_id)
        entry = index_entry(row)
        layout = content_layout(row)
        with _corruption_reported(tenant_id, snapshot_id):
            lines = self._read_sections(layout, SECTIONS)
            if verify:
                actual = content_hash(_header(entry), lines)
                if actual != entry.content_hash:
                    raise CorruptSnapshot(
                        f"snapshot {tenant_id}/{snapshot_id}: content hashes to {actual}, "
                        f"index says {entry.content_hash}"
                    )
            content = decode_sections(lines, layout.operations)
        return Snapshot(
            index=entry,
            posture=content.posture,
            transitions=content.transitions,
            carried=content.carried,
        )

    def iter_compliance(
        self, tenant_id: str, snapshot_id: str
    ) -> Iterator[tuple[ComplianceRecord, Transition]]:
        """A committed snapshot's compliance records with their history, in key order, streamed
        (memory stays bounded by a few entities whatever the snapshot's size)."""
        row = self._committed_row(tenant_id, snapshot_id)
        layout = content_layout(row)
        with _corruption_reported(tenant_id, snapshot_id):
            for line in self._iter_section(layout, "compliance", results_per_page=4):
                yield decode_compliance(line)

    def _committed_row(self, tenant_id: str, snapshot_id: str) -> Mapping[str, Any]:
        try:
            row = self._get_index_row(tenant_id, snapshot_id)
        except keys.KeyFormatError:
            row = None
        if row is None or not is_committed(row):
            raise SnapshotNotFound(f"tenant {tenant_id} has no snapshot {snapshot_id}")
        return row

    def _get_index_row(self, tenant_id: str, snapshot_id: str) -> Mapping[str, Any] | None:
        partition_key, row_key = index_keys(tenant_id, snapshot_id)
        try:
            return self._index.get_entity(partition_key, row_key)
        except ResourceNotFoundError:
            return None

    def _iter_section(
        self, layout: ContentLayout, section: str, results_per_page: int | None = None
    ) -> Iterator[str]:
        low, high = section_prefix(section)
        entities = _query(
            self._content,
            "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
            {"pk": layout.partition_key, "low": low, "high": high},
            results_per_page=results_per_page,
        )
        expected_entities, expected_lines = layout.sections.get(section, (0, 0))
        seen = [0]

        def counted(rows: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
            for row in rows:
                seen[0] += 1
                yield row

        lines = 0
        try:
            for line in iter_section_lines(counted(entities)):
                lines += 1
                yield line
        except PackingError as exc:
            raise CorruptSnapshot(f"section {section} of {layout.partition_key}: {exc}") from exc
        if (seen[0], lines) != (expected_entities, expected_lines):
            raise CorruptSnapshot(
                f"section {section} of {layout.partition_key}: {seen[0]} entities and {lines} "
                f"lines, index says {expected_entities} and {expected_lines}"
            )

    def _read_sections(
        self, layout: ContentLayout, sections: Iterable[str]
    ) -> dict[str, list[str]]:
        wanted = set(sections)
        rows_by_section: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for row in _query(self._content, "PartitionKey eq @pk", {"pk": layout.partition_key}):
            section = row.get("section", "")
            if section in wanted:
                rows_by_section[section].append(row)
        out: dict[str, list[str]] = {}
        for section in wanted:
            rows = rows_by_section.get(section, [])
            expected = layout.sections.get(section, (0, 0))
            try:
                lines = list(iter_section_lines(rows))
            except PackingError as exc:
                raise CorruptSnapshot(
                    f"section {section} of {layout.partition_key}: {len(rows)} entities, index "
                    f"says {expected[0]}: {exc}"
                ) from exc
            if (len(rows), len(lines)) != expected:
                raise CorruptSnapshot(
                    f"section {section} of {layout.partition_key}: {len(rows)} entities and "
                    f"{len(lines)} lines, index says {expected[0]} and {expected[1]}"
                )
            out[section] = lines
        return out

    # -----------------------------------------------------------------------------------------
    # Write side

    def commit_snapshot(
        self, posture: TenantPosture, scheduled_at: datetime, collector_version: str
    ) -> SnapshotIndexEntry:
        """Store a tenant's posture as its snapshot for the slot `scheduled_at`, and commit it.

        Idempotent: when the slot is already committed, returns its entry and writes nothing.
        SnapshotSuperseded when a later slot is already committed for the tenant.
        """
        return self._commit(posture, scheduled_at, collector_version, posture.completeness.status)

    def commit_failed(
        self, tenant: Tenant, scheduled_at: datetime, reason: str, collector_version: str = ""
    ) -> SnapshotIndexEntry:
        """Commit the slot as failed with `reason` (no records; a link in the hash chain)."""
        return self._commit(
            failed_posture(tenant, reason), scheduled_at, collector_version, CollectionStatus.FAILED
        )

    def _commit(
        self,
        posture: TenantPosture,
        scheduled_at: datetime,
        collector_version: str,
        status: CollectionStatus,
    ) -> SnapshotIndexEntry:
        self.create_tables()
        tenant = posture.tenant
        snapshot_id = snapshot_id_for(scheduled_at)
        slot = slot_of(snapshot_id)
        current = self._get_index_row(tenant.tenant_id, snapshot_id)
        if current is not None and is_committed(current):
            self._advance_latest(current)
            return index_entry(current)

        predecessor, base = self._predecessors(tenant.tenant_id, snapshot_id)
        history = (
            self._read_history(base)
            if base is not None and status is not CollectionStatus.FAILED
            else {}
        )
        transitions, carried = next_history(history, posture, slot)
        sections = canonical_sections(posture, transitions, carried)
        completeness = posture.completeness
        entry = SnapshotIndexEntry(
            tenant_id=tenant.tenant_id,
            tenant_name=tenant.display_name,
            snapshot_id=snapshot_id,
            scheduled_at=slot,
            finished_at=slot,  # set at commit
            status=status,
            reasons=completeness.reasons,
            expected_subscriptions=completeness.expected_subscriptions,
            collected_subscriptions=completeness.collected_subscriptions,
            counts=snapshot_counts(posture, len(carried)),
            compliance_by_standard=compliance_by_standard(posture.controls),
            collector_version=collector_version,
            content_hash="",
            previous_snapshot_id=predecessor.snapshot_id if predecessor else None,
            previous_hash=predecessor.content_hash if predecessor else None,
        )
        entry = replace(entry, content_hash=content_hash(_header(entry), sections))

        attempt = uuid.uuid4().hex
        claim = self._claim(tenant.tenant_id, snapshot_id, attempt, current)
        if not isinstance(claim, _Claim):
            return claim  # another attempt committed the slot meanwhile
        partition_key = content_partition_key(tenant.tenant_id, snapshot_id, attempt)
        entities: list[Entity] = []
        layout_sections: dict[str, tuple[int, int]] = {}
        for section in SECTIONS:
            packed = section_entities(partition_key, section, sections[section])
            layout_sections[section] = (len(packed), len(sections[section]))
            entities.extend(packed)
        self._write(self._content, entities)

        entry = replace(entry, finished_at=self._clock())
        layout = ContentLayout(partition_key, layout_sections, operations_of(completeness))
        row = committed_entity(entry, attempt, layout, claim.started_at)
        try:
            self._index.update_entity(
                row,
                mode=UpdateMode.REPLACE,
                etag=claim.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            winner = self._get_index_row(tenant.tenant_id, snapshot_id)
            if winner is not None and winner.get("attempt") == attempt and is_committed(winner):
                # Our commit landed; its response was lost and the SDK's retry saw a new ETag.
                row = dict(winner)
            else:
                self._delete_partition(partition_key)
                if winner is not None and is_committed(winner):
                    return index_entry(winner)
                raise SlotBusy(
                    f"slot {snapshot_id} of tenant {tenant.tenant_id} taken over"
                ) from exc
        self._advance_latest(row)
        for old in claim.abandoned:
            self._delete_partition(content_partition_key(tenant.tenant_id, snapshot_id, old))
        return entry

    def _predecessors(
        self, tenant_id: str, snapshot_id: str
    ) -> tuple[SnapshotIndexEntry | None, SnapshotIndexEntry | None]:
        """(the previous committed snapshot, the previous one with content: not failed)."""
        predecessor = None
        rows = _query(
            self._index,
            "PartitionKey eq @pk and committed eq true",
            {"pk": keys.escape(tenant_id)},
            results_per_page=10,
        )
        for row in rows:
            entry = index_entry(row)
            if entry.snapshot_id > snapshot_id:
                raise SnapshotSuperseded(
                    f"tenant {tenant_id} already has snapshot {entry.snapshot_id}, later than "
                    f"{snapshot_id}: snapshots are taken in order"
                )
            if entry.snapshot_id == snapshot_id:
                continue
            if predecessor is None:
                predecessor = entry
            if entry.status is not CollectionStatus.FAILED:
                return predecessor, entry
        return predecessor, None

    def _read_history(self, base: SnapshotIndexEntry) -> History:
        layout = content_layout(self._committed_row(base.tenant_id, base.snapshot_id))
        history: dict[Key, Prior] = {}
        for line in self._iter_section(layout, "compliance"):
            prior = StoredPrior.from_line(line, base.scheduled_at)
            history[prior.key] = prior
        for line in self._iter_section(layout, "carried"):
            item = decode_record(CarriedAssessment, line)
            history[item.record.key] = KnownPrior(item)
        return history

    def _claim(
        self, tenant_id: str, snapshot_id: str, attempt: str, current: Mapping[str, Any] | None
    ) -> _Claim | SnapshotIndexEntry:
        """Mark the slot pending for `attempt` (or find it committed by someone else)."""
        started_at = format_time(self._clock())
        for _ in range(5):
            if current is not None and is_committed(current):
                return index_entry(current)
            abandoned: list[str] = []
            if current is not None:
                abandoned = [*get_json(current, "abandoned", []), current["attempt"]]
            row = pending_entity(tenant_id, snapshot_id, attempt, abandoned, started_at)
            try:
                if current is None:
                    metadata = _retrying(
                        partial(self._index.create_entity, row), self._write_retries, self._sleep
                    )
                else:
                    metadata = self._index.update_entity(
                        row,
                        mode=UpdateMode.REPLACE,
                        etag=current.metadata["etag"],  # type: ignore[attr-defined]
                        match_condition=MatchConditions.IfNotModified,
                    )
                return _Claim(str(metadata["etag"]), abandoned, started_at)
            except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
                current = self._get_index_row(tenant_id, snapshot_id)
                if current is not None and current.get("attempt") == attempt:
                    # Our own write landed, but its response was lost and the SDK retried.
                    etag = current.metadata["etag"]  # type: ignore[attr-defined]
                    return _Claim(str(etag), abandoned, started_at)
        raise SlotBusy(f"slot {snapshot_id} of tenant {tenant_id} is contended")

    def _advance_latest(self, committed: Mapping[str, Any]) -> None:
        """Point the tenant's latest row at `committed` unless it already names a later slot."""
        row = latest_entity(committed)
        for _ in range(5):
            try:
                current = self._latest.get_entity(LATEST_PARTITION, row["RowKey"])
            except ResourceNotFoundError:
                current = None
            if current is not None and current["snapshot_id"] >= row["snapshot_id"]:
                return
            try:
                if current is None:
                    _retrying(
                        partial(self._latest.create_entity, row), self._write_retries, self._sleep
                    )
                else:
                    self._latest.update_entity(
                        row,
                        mode=UpdateMode.REPLACE,
                        etag=current.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
                return
            except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
                continue
        log.warning("latest row of tenant %s not advanced (contended)", committed["tenant_id"])

    def _write(self, table: TableClient, entities: list[Entity]) -> None:
        for batch in plan_batches(entities):
            operations = [("upsert", e, {"mode": UpdateMode.REPLACE}) for e in batch]
            _retrying(
                partial(table.submit_transaction, operations), self._write_retries, self._sleep
            )

    def _delete_partition(self, partition_key: str) -> None:
        """Best effort: an orphan partition is invisible to readers, only wasted space."""
        try:
            rows = _query(
                self._content,
                "PartitionKey eq @pk",
                {"pk": partition_key},
                select=["PartitionKey", "RowKey"],
            )
            batch: list[Entity] = []
            for row in rows:
                batch.append({"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"]})
                if len(batch) == 100:
                    self._content.submit_transaction([("delete", e) for e in batch])
                    batch = []
            if batch:
                self._content.submit_transaction([("delete", e) for e in batch])
        except (AzureError, HttpResponseError) as exc:
            log.warning("could not delete orphan content %s: %s", partition_key, exc)


class StoredPrior:
    """A previous snapshot's assessment, its record decoded only if it must be carried."""

    __slots__ = ("_fields", "_last_seen", "key", "state", "transition")

    def __init__(
        self,
        key: Key,
        state: State,
        transition: Transition,
        fields: dict[str, Any],
        last_seen: datetime,
    ) -> None:
        self.key = key
        self.state = state
        self.transition = transition
        self._fields = fields
        self._last_seen = last_seen

    @classmethod
    def from_line(cls, line: str, last_seen: datetime) -> StoredPrior:
        key, state, transition, fields = decode_compliance_prior(line)
        return cls(key, state, transition, fields, last_seen)

    def carry(self) -> CarriedAssessment:
        record = decode_compliance_fields(self._fields)
        return CarriedAssessment(record, self.transition, self._last_seen)


@contextlib.contextmanager
def _corruption_reported(tenant_id: str, snapshot_id: str) -> Iterator[None]:
    """Damaged streams and undecodable lines are the snapshot's corruption, said as such."""
    try:
        yield
    except (PackingError, CanonicalFormatError) as exc:
        raise CorruptSnapshot(f"snapshot {tenant_id}/{snapshot_id}: {exc}") from exc


def _header(entry: SnapshotIndexEntry) -> SnapshotHeader:
    return SnapshotHeader(
        tenant_id=entry.tenant_id,
        snapshot_id=entry.snapshot_id,
        status=entry.status,
        collector_version=entry.collector_version,
        previous_snapshot_id=entry.previous_snapshot_id,
        previous_hash=entry.previous_hash,
    )


def _query(
    table: TableClient,
    query: str,
    parameters: Mapping[str, Any],
    *,
    results_per_page: int | None = None,
    select: list[str] | None = None,
) -> Iterator[Mapping[str, Any]]:
    """Entities matching an OData filter (parameters substituted by the SDK); none when the
    table does not exist yet."""
    try:
        yield from table.query_entities(
            query,
            parameters=dict(parameters),
            results_per_page=results_per_page,
            select=select,
        )
    except ResourceNotFoundError:
        return
