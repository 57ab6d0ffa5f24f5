"""SnapshotStore: immutable per-tenant snapshots in Azure Table Storage.

Tables (``{prefix}`` is ``AUDITOR_TABLE_PREFIX``; docs/schema.md has every property):

- ``{prefix}Snapshots`` — the index: PartitionKey tenant, RowKey newest first; one row per slot.
- ``{prefix}SnapshotContent`` — content: one partition per write attempt, a few entities per
  section, each a slice of the section's compressed canonical lines (``packing``).
- ``{prefix}Tenants`` — each tenant's latest committed index row, so listing tenants is one query.

Commit protocol (a reader never sees a partial snapshot; a slot is written at most once, except
that a *failed* slot may be retaken once by an attempt that has content):

1. If the slot's index row is committed, return it (idempotent rerun, duplicate message) —
   unless it is failed and this attempt has content: then it is a retake (no claim: readers keep
   seeing the failed snapshot until step 5 replaces it under its ETag).
2. Claim the slot: create (or replace under its ETag) the index row as *pending* with a fresh
   attempt id. Readers ignore pending rows. An attempt with content takes over any pending
   claim (a crashed or slower attempt); a failure record takes over only a claim of its own
   store or one older than ``CLAIM_LEASE``, so that a failing run never erases a healthy one.
3. Write the content into the attempt's own partition, in entity-group transactions.
4. Anchor: write ``anchors/{tenant}/{snapshot}/{attempt}.json`` to the write-once evidence
   container, from the hash and the exact committed row this attempt computed (its digest
   covers every property) and the digest of the content entities it wrote.
5. Replace the pending row with the committed row, conditional on the claim's ETag. Only one
   attempt can win; a loser deletes its content and defers to the winner (its anchor stays: an
   anchor of an attempt that never committed).
6. Advance the tenant's latest row (monotonic, ETag-conditional), then delete the content of
   attempts the winner took over (a retaken failed attempt's content is kept: it is evidence).

A crash anywhere before 5 leaves only a pending row, an orphan partition and perhaps an anchor,
all invisible; the next attempt takes over. A crash between 5 and 6 leaves the latest row one
snapshot behind until the slot is next touched (step 1 repairs it).

With an anchor ledger (the evidence container; ``from_settings`` wires it), every read checks the
rows and content it returns against their attempt's anchor (anchors are cached: immutable) and
raises ``SnapshotTampered`` for any that disagrees or has none; ``list_tenants`` leaves such a
tenant out (and logs it) rather than name it to callers who may not see it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

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
    SECTION_PROPERTY,
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
    digest_of,
    entities_digest,
    index_entry,
    index_keys,
    is_committed,
    key_problem,
    keyed_digest,
    latest_entity,
    pending_entity,
    property_digests,
    row_digest,
)
from auditor.core import projection as diff_projection
from auditor.core import registry
from auditor.core.canonical import (
    ALWAYS_HASHED,
    SECTIONS,
    CanonicalFormatError,
    content_hash,
    decode_compliance,
    decode_compliance_fields,
    decode_compliance_prior,
    decode_record,
    decode_sections,
    format_time,
    header_of_entry,
    parse_time,
)
from auditor.core.evidence import Anchor, anchor_mismatch
from auditor.core.model import (
    CollectionStatus,
    Completeness,
    ComplianceRecord,
    State,
    Tenant,
    TenantPosture,
)
from auditor.core.prepared import Predecessor, PreparedSnapshot, prepare_snapshot
from auditor.core.projection import DiffView
from auditor.core.runs import Delegation
from auditor.core.snapshot import (
    CarriedAssessment,
    Snapshot,
    SnapshotIndexEntry,
    SnapshotNotFound,
    SnapshotTampered,
    Transition,
    UnverifiedLatest,
    snapshot_id_for,
)
from auditor.core.transitions import History, KnownPrior, Prior
from auditor.settings import Settings, require_storage

log = logging.getLogger(__name__)

Key = tuple[str, str, str, str]


class SnapshotSuperseded(RuntimeError):
    """A later slot is already committed for this tenant: history is append-only."""


class SlotBusy(RuntimeError):
    """Another attempt claimed the slot while this one wrote; retry later (it may commit)."""


class CorruptSnapshot(RuntimeError):
    """A committed snapshot's content does not match its index row (damaged or tampered)."""

    snapshot_id = ""  # set by the read that found it


class StorageReset(RuntimeError):
    """A table the store had created is gone (storage lost its data, e.g. an in-memory
    emulator restarted): nothing is written over the void."""


class AnchorLedger(Protocol):
    """Where attempts anchor what they commit: the write-once evidence container."""

    def write_anchor(self, anchor: Anchor) -> object: ...

    def read_anchor(self, tenant_id: str, snapshot_id: str, attempt: str) -> Anchor | None: ...

    def close(self) -> None: ...


# A failure record takes over another attempt's pending claim only once the claim is this old
# (the claim is taken after collection: it only has to last while content is written).
CLAIM_LEASE = timedelta(minutes=15)
_ANCHOR_CACHE_SIZE = 100_000
_OWN_ATTEMPTS = 10_000
_PREFETCH_FROM = 8  # uncached anchors of a listing read concurrently from this many on
_PREFETCH_WORKERS = 8
_FETCH_ONE_BY_ONE = 16  # changed latest rows read by key; more are read in one query
_LatestRow = tuple[str, "SnapshotIndexEntry | UnverifiedLatest"]


def _etag(row: Mapping[str, Any]) -> str:
    metadata = getattr(row, "metadata", None) or {}
    return str(metadata.get("etag") or "")


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


# What index_entry raises on a row whose properties are missing or malformed.
_MALFORMED = (KeyError, ValueError, TypeError, AttributeError)


def _readable_entry(row: Mapping[str, Any]) -> SnapshotIndexEntry | str:
    """The row's index entry, or why it cannot be read (never its content: it may be hostile)."""
    try:
        return index_entry(row)
    except _MALFORMED as exc:
        return f"the row cannot be read ({type(exc).__name__} in its properties)"


def failed_posture(tenant: Tenant, reason: str) -> TenantPosture:
    """The content of a snapshot whose collection failed: no records, the reason as an error."""
    return registry.empty_posture(
        tenant,
        Completeness(
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
        ledger: AnchorLedger | None = None,
        step_hook: Callable[[str], None] | None = None,
        write_projection: bool = True,
    ) -> None:
        self.tables = TableNames(table_prefix)
        # False only to write snapshots as the product did before the diff projection (tests
        # and the benchmark of the old path).
        self._write_projection = write_projection
        self.ledger = ledger
        # Called before each step of a commit ("claim", "content", "anchor", "commit"): tests
        # force interleavings of concurrent attempts with it.
        self._step = step_hook or (lambda _step: None)
        self._anchors: dict[tuple[str, str, str], Anchor] = {}
        # Attempts this store started (bounded: a long-lived worker makes thousands a day).
        self._own_attempts: dict[str, None] = {}
        self._write_retries = write_retries
        self._sleep = sleep
        self._service = service
        self._index = service.get_table_client(self.tables.index)
        self._content = service.get_table_client(self.tables.content)
        self._latest = service.get_table_client(self.tables.latest)
        self._clock = clock
        self._tables_ready = False
        # The latest rows as last read and verified, by RowKey, with their ETags.
        self._latest_rows: dict[str, _LatestRow] = {}
        self._latest_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        credential: TokenCredential | None = None,
        *,
        write_retries: int = WRITE_RETRIES,
        anchored: bool = True,
        step_hook: Callable[[str], None] | None = None,
        write_projection: bool = True,
        **options: Any,
    ) -> SnapshotStore:
        """A store on AUDITOR_STORAGE; `options` go to the SDK clients (retries, hooks).

        `anchored` (the default) wires the evidence container as the anchor ledger: commits
        anchor, reads verify. `verify` reads without it, to report rather than refuse."""
        service = table_service_client(require_storage(settings), credential, **options)
        ledger = None
        if anchored:
            from auditor.adapters.blobs import EvidenceStore

            ledger = EvidenceStore.from_settings(settings, credential, **options)
        return cls(
            service,
            settings.table_prefix,
            write_retries=write_retries,
            ledger=ledger,
            step_hook=step_hook,
            write_projection=write_projection,
        )

    def close(self) -> None:
        self._service.close()
        if self.ledger is not None:
            self.ledger.close()

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
        """The latest committed snapshot of every tenant that has one, ordered by tenant id.

        A tenant whose latest row fails verification is left out and logged (its own routes
        answer the failure; a list must not name it to callers who may not see it)."""
        return self.list_latest()[0]

    def list_latest(self) -> tuple[list[SnapshotIndexEntry], list[UnverifiedLatest]]:
        """(every tenant's verified latest entry, the latest rows that fail verification).

        A failing row is named by the tenant its keys say (never by its properties, which may
        be forged), so a caller filters it by grant before showing that it failed.

        One light query lists the rows' keys and ETags; only rows new or changed since this
        store last read them are read in full and verified again (the service changes a row's
        ETag on every write, so an unchanged ETag is an unchanged, already verified row)."""
        listed = _query(
            self._latest, "PartitionKey eq @pk", {"pk": LATEST_PARTITION}, select=["RowKey"]
        )
        with self._latest_lock:
            known = dict(self._latest_rows)
        current: dict[str, _LatestRow] = {}
        changed: list[str] = []
        for row in listed:
            key, etag = str(row["RowKey"]), _etag(row)
            cached = known.get(key)
            if cached is not None and etag and cached[0] == etag:
                current[key] = cached
            else:
                changed.append(key)
        for row, read in self._latest_rows_of(changed):
            current[str(row["RowKey"])] = (_etag(row), self._verified_latest(row, read))
        with self._latest_lock:
            self._latest_rows = current
        out = [e for _, e in current.values() if isinstance(e, SnapshotIndexEntry)]
        failing = [e for _, e in current.values() if isinstance(e, UnverifiedLatest)]
        return sorted(out, key=lambda e: e.tenant_id), sorted(failing)

    def _latest_rows_of(
        self, row_keys: list[str]
    ) -> list[tuple[Mapping[str, Any], SnapshotIndexEntry | str]]:
        """The latest rows of `row_keys` in full (one by one when few, else in one query),
        each with its entry or why it cannot be read (parsed once, here)."""
        if not row_keys:
            return []
        if len(row_keys) > _FETCH_ONE_BY_ONE:
            wanted = set(row_keys)
            rows = _query(self._latest, "PartitionKey eq @pk", {"pk": LATEST_PARTITION})
            found = [row for row in rows if row["RowKey"] in wanted]
        else:
            found = []
            for key in row_keys:
                with contextlib.suppress(ResourceNotFoundError):  # gone since listed
                    found.append(self._latest.get_entity(LATEST_PARTITION, key))
        read = [(row, _readable_entry(row)) for row in found]
        self._prefetch_anchors([e for _, e in read if isinstance(e, SnapshotIndexEntry)])
        return read

    def _verified_latest(
        self, row: Mapping[str, Any], entry: SnapshotIndexEntry | str
    ) -> SnapshotIndexEntry | UnverifiedLatest:
        if isinstance(entry, str):  # one malformed row must not hide every other tenant
            log.error("latest row %s cannot be read: %s", row.get("RowKey"), entry)
            return UnverifiedLatest(keys.unescape(str(row["RowKey"])), entry)
        problem = self.problem_of(row, entry)
        if not problem:
            return entry
        log.error(
            "tenant %s: latest snapshot %s failed verification: %s",
            entry.tenant_id, entry.snapshot_id, problem,
        )  # fmt: skip
        return UnverifiedLatest(keys.unescape(str(row["RowKey"])), problem)

    def list_snapshots(
        self,
        tenant_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[SnapshotIndexEntry]:
        """A tenant's committed snapshots, newest first, optionally bounded by scheduled time.
        SnapshotTampered when one of them fails verification."""
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
        rows = list(_query(self._index, query, params))
        self._prefetch_anchors([index_entry(row) for row in rows])
        entries = [self._checked(row) for row in rows]
        return [
            e
            for e in entries
            if (since is None or e.scheduled_at >= since)
            and (until is None or e.scheduled_at <= until)
        ]

    def get_index(self, tenant_id: str, snapshot_id: str) -> SnapshotIndexEntry:
        """One committed snapshot's index entry; SnapshotNotFound when absent."""
        return self._checked(self._committed_row(tenant_id, snapshot_id))

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
            return self._checked(row)
        raise SnapshotNotFound(f"tenant {tenant_id} has no snapshot at or before {instant}")

    def get_snapshot(self, tenant_id: str, snapshot_id: str, *, verify: bool = True) -> Snapshot:
        """A committed snapshot's full content; SnapshotNotFound when absent.

        With `verify` (the default) the content is hashed again and CorruptSnapshot raised
        unless it matches the index row's content hash; with an anchor ledger the row and the
        stored entities are also checked against the attempt's anchor (SnapshotTampered)."""
        return self._full(tenant_id, snapshot_id, verify=verify)[0]

    def get_snapshot_and_projection(
        self, tenant_id: str, snapshot_id: str
    ) -> tuple[Snapshot, list[str] | None, str | None]:
        """get_snapshot and get_projection from one read of the snapshot's entities (what
        verify compares): the verified snapshot, its stored projection lines (None when it
        predates the projection or they cannot be read) and why they cannot be read (their
        entities differ from what the attempt wrote, or do not decode), else None."""
        snapshot, row, every = self._full(tenant_id, snapshot_id, verify=True)
        layout = content_layout(row)
        if not _has_projection(row, layout):
            return snapshot, None, None
        try:
            self._check_diff_view(row, snapshot.index, [e for e in every if _in_diff_view(e)])
            with _corruption_reported(tenant_id, snapshot_id):
                lines = _section_lines(layout, every, [diff_projection.SECTION])
        except (SnapshotTampered, CorruptSnapshot) as exc:
            return snapshot, None, f"{type(exc).__name__}: {exc}"
        return snapshot, lines[diff_projection.SECTION], None

    def _full(
        self, tenant_id: str, snapshot_id: str, *, verify: bool
    ) -> tuple[Snapshot, Mapping[str, Any], list[Mapping[str, Any]]]:
        """(the snapshot, its committed row, every entity of its content partition)."""
        row = self._committed_row(tenant_id, snapshot_id)
        entry = self._checked(row) if verify else index_entry(row)
        layout = content_layout(row)
        with _corruption_reported(tenant_id, snapshot_id):
            lines, digest, every = self._read_sections(layout, SECTIONS)
            if verify:
                actual = content_hash(_header(entry), lines)
                if actual != entry.content_hash:
                    raise CorruptSnapshot(
                        f"snapshot {tenant_id}/{snapshot_id}: content hashes to {actual}, "
                        f"index says {entry.content_hash}"
                    )
                anchor = self._anchor_of(entry)
                if anchor is not None and anchor.content_digest != digest:
                    raise SnapshotTampered(
                        tenant_id,
                        snapshot_id,
                        "stored content entities differ from what the attempt wrote",
                    )
            content = decode_sections(lines, layout.operations)
        snapshot = Snapshot(
            index=entry,
            posture=content.posture,
            transitions=content.transitions,
            carried=content.carried,
            content_digest=digest,
        )
        return snapshot, row, every

    def delegation(self) -> Delegation | None:
        """Who the latest full run found delegated (from the runs table; None before any)."""
        from auditor.adapters.tables.runs import RunStore

        return RunStore(self._service, self.tables.prefix).delegation()

    # -----------------------------------------------------------------------------------------
    # Verification against the anchors

    def problem_of(self, row: Mapping[str, Any], entry: SnapshotIndexEntry) -> str | None:
        """Why a committed row (index or latest) fails verification; None when it agrees with
        its attempt's anchor, or when this store has no ledger."""
        if self.ledger is None:
            return None
        problem = key_problem(row)
        if problem:
            return problem
        anchor = self._anchor_of(entry)
        if anchor is None:
            return (
                f"no anchor for attempt {entry.attempt or '(none)'} in the evidence container: "
                "not written by the product"
            )
        return anchor_mismatch(anchor, entry)

    def _checked(self, row: Mapping[str, Any]) -> SnapshotIndexEntry:
        entry = index_entry(row)
        problem = self.problem_of(row, entry)
        if problem:
            raise SnapshotTampered(entry.tenant_id, entry.snapshot_id, problem)
        return entry

    def _prefetch_anchors(self, entries: list[SnapshotIndexEntry]) -> None:
        """Read the uncached anchors of a long listing (a year's trend) a few at a time, so a
        cold read costs a handful of round trips rather than one per snapshot."""
        if self.ledger is None:
            return
        todo = [e for e in entries if (e.tenant_id, e.snapshot_id, e.attempt) not in self._anchors]
        if len(todo) < _PREFETCH_FROM:
            return
        with ThreadPoolExecutor(max_workers=_PREFETCH_WORKERS) as pool:
            list(pool.map(self._anchor_of, todo))

    def _anchor_of(self, entry: SnapshotIndexEntry) -> Anchor | None:
        """The attempt's anchor (else the legacy one), cached: anchors are write-once."""
        if self.ledger is None:
            return None
        key = (entry.tenant_id, entry.snapshot_id, entry.attempt)
        anchor = self._anchors.get(key)
        if anchor is None:
            try:
                anchor = self.ledger.read_anchor(*key)
            except ValueError:  # a tenant or slot no anchor can be named by: never anchored
                return None
            if anchor is None:
                return None
            if len(self._anchors) >= _ANCHOR_CACHE_SIZE:
                self._anchors.clear()
            self._anchors[key] = anchor
        return anchor

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
    ) -> tuple[dict[str, list[str]], str, list[Mapping[str, Any]]]:
        """The lines of `sections`, the digest of every entity of the partition, and those
        entities (read once: verify takes the projection from them too)."""
        every = list(_query(self._content, "PartitionKey eq @pk", {"pk": layout.partition_key}))
        return _section_lines(layout, every, sections), entities_digest(every), every

    # -----------------------------------------------------------------------------------------
    # The diff view (auditor/core/projection.py)

    def get_diff_view(self, tenant_id: str, snapshot_id: str) -> DiffView | None:
        """A committed snapshot as a diff reads it: its projection and every section but those
        the projection stands for, checked against the digest of them that its committed (and
        anchored) row holds. None when the snapshot predates the projection (a diff then reads
        it in full); SnapshotTampered when the entities differ from the digest."""
        row = self._committed_row(tenant_id, snapshot_id)
        entry = self._checked(row)
        layout, lines = self._diff_view_lines(row, entry)
        if layout is None:
            return None
        with _corruption_reported(tenant_id, snapshot_id):
            projection = diff_projection.decode_projection(lines.pop(diff_projection.SECTION))
            content = decode_sections(lines, layout.operations)
        return DiffView(Snapshot(index=entry, posture=content.posture), projection)

    def get_projection(self, tenant_id: str, snapshot_id: str) -> list[str] | None:
        """A committed snapshot's stored projection lines (checked as get_diff_view checks
        them); None when it predates the projection. What verify compares with the content."""
        row = self._committed_row(tenant_id, snapshot_id)
        layout, lines = self._diff_view_lines(row, self._checked(row))
        return None if layout is None else lines[diff_projection.SECTION]

    def _diff_view_lines(
        self, row: Mapping[str, Any], entry: SnapshotIndexEntry
    ) -> tuple[ContentLayout | None, dict[str, list[str]]]:
        layout = content_layout(row)
        if not _has_projection(row, layout):
            return None, {}
        query, parameters = _diff_view_query(layout.partition_key)
        rows = [r for r in _query(self._content, query, parameters) if _in_diff_view(r)]
        self._check_diff_view(row, entry, rows)
        wanted = [n for n in layout.sections if n not in diff_projection.STANDS_FOR]
        with _corruption_reported(entry.tenant_id, entry.snapshot_id):
            lines = _section_lines(layout, rows, [*wanted, *(ALWAYS_HASHED - set(STANDS_FOR))])
        return layout, lines

    @staticmethod
    def _check_diff_view(
        row: Mapping[str, Any], entry: SnapshotIndexEntry, rows: list[Mapping[str, Any]]
    ) -> None:
        """SnapshotTampered unless `rows` (the diff view's entities) are what the committed
        row's diff view digest covers."""
        if entities_digest(rows) != row.get(DIFF_VIEW_DIGEST):
            raise SnapshotTampered(
                entry.tenant_id,
                entry.snapshot_id,
                "stored diff projection entities differ from what the attempt wrote",
            )

    # -----------------------------------------------------------------------------------------
    # Write side

    def commit_snapshot(
        self,
        posture: TenantPosture,
        scheduled_at: datetime,
        collector_version: str,
        *,
        backfill: bool = False,
    ) -> SnapshotIndexEntry:
        """Store a tenant's posture as its snapshot for the slot `scheduled_at`, and commit it.

        Idempotent: when the slot is already committed, returns its entry and writes nothing
        (unless it is failed and this posture has content: then this attempt retakes it).
        SnapshotSuperseded when a later slot is already committed for the tenant; SlotBusy when
        another attempt took the slot over meanwhile (it may commit: retry later).
        """
        return self._commit(
            posture, scheduled_at, collector_version, posture.completeness.status, backfill
        )

    def commit_failed(
        self,
        tenant: Tenant,
        scheduled_at: datetime,
        reason: str,
        collector_version: str = "",
        *,
        backfill: bool = False,
    ) -> SnapshotIndexEntry:
        """Commit the slot as failed with `reason` (no records; a link in the hash chain).

        Never over a committed slot, and never over another live attempt's claim (SlotBusy):
        a failure is recorded only where nobody is writing a snapshot."""
        return self._commit(
            failed_posture(tenant, reason),
            scheduled_at,
            collector_version,
            CollectionStatus.FAILED,
            backfill,
        )

    def _commit(
        self,
        posture: TenantPosture,
        scheduled_at: datetime,
        collector_version: str,
        status: CollectionStatus,
        backfill: bool,
    ) -> SnapshotIndexEntry:
        self.create_tables()
        tenant_id = posture.tenant.tenant_id
        snapshot_id = snapshot_id_for(scheduled_at)
        current = self._get_index_row(tenant_id, snapshot_id)
        retaken: Mapping[str, Any] | None = None
        if current is not None and is_committed(current):
            if status is CollectionStatus.FAILED or current.get("status") != "failed":
                self._advance_latest(current)
                return self._checked(current)
            retaken = current  # a failed slot, retaken by an attempt that has content
        prepared = self._prepare(posture, snapshot_id, collector_version, status, backfill, retaken)
        attempt = uuid.uuid4().hex
        self._remember(attempt)
        self._step("claim")
        if retaken is None:
            claim = self._claim(
                tenant_id, snapshot_id, attempt, current, status is CollectionStatus.FAILED
            )
            if not isinstance(claim, _Claim):
                # Another attempt committed the slot meanwhile: it stands, unless it is a
                # failure record and this attempt has content, which retakes it.
                failed = CollectionStatus.FAILED
                if claim.status is failed and status is not failed:
                    return self._commit(posture, scheduled_at, collector_version, status, backfill)
                return claim
        else:
            etag = str(retaken.metadata["etag"])  # type: ignore[attr-defined]
            claim = _Claim(etag, [], format_time(self._clock()))
        return self._publish(prepared, attempt, claim)

    def _prepare(
        self,
        posture: TenantPosture,
        snapshot_id: str,
        collector_version: str,
        status: CollectionStatus,
        backfill: bool,
        retaken: Mapping[str, Any] | None,
    ) -> PreparedSnapshot:
        """The prepared snapshot (auditor/core/prepared.py), built on the verified history of
        its predecessor: the store's part is reading and verifying what it builds on."""
        predecessor, base = self._predecessors(posture.tenant.tenant_id, snapshot_id)
        history, history_break = self._inherited(predecessor, base, status)
        return prepare_snapshot(
            posture,
            snapshot_id,
            collector_version=collector_version,
            status=status,
            predecessor=Predecessor(
                index_entry(predecessor) if predecessor is not None else None,
                history,
                history_break,
                verified=self._predecessor_verified(predecessor, status, history_break),
                # The store's own history: observed records are StoredPrior, carried KnownPrior.
                carried_keys=frozenset(k for k, p in history.items() if isinstance(p, KnownPrior)),
            ),
            backfill=backfill,
            supersedes=str(retaken["attempt"]) if retaken is not None else "",
        )

    def _predecessor_verified(
        self, predecessor: Mapping[str, Any] | None, status: CollectionStatus, history_break: str
    ) -> bool:
        """Whether the predecessor row agrees with its anchor, so that the new summary may
        carry its figures (``_inherited`` verified it unless the new snapshot is a failure)."""
        if predecessor is None or history_break:
            return False
        if status is not CollectionStatus.FAILED:
            return True
        return self.problem_of(predecessor, index_entry(predecessor)) is None

    def _publish(
        self, prepared: PreparedSnapshot, attempt: str, claim: _Claim
    ) -> SnapshotIndexEntry:
        """Persist a prepared snapshot: content, anchor, commit (under the claim's ETag),
        latest row: steps 3 to 6."""
        entry, sections, operations = prepared.entry, prepared.sections, prepared.operations
        tenant_id, snapshot_id = entry.tenant_id, entry.snapshot_id
        partition_key = content_partition_key(tenant_id, snapshot_id, attempt)
        entities: list[Entity] = []
        layout_sections: dict[str, tuple[int, int]] = {}
        for section in (name for name in SECTIONS if name in sections):  # collected ones
            packed = section_entities(partition_key, section, sections[section])
            layout_sections[section] = (len(packed), len(sections[section]))
            entities.extend(packed)
        if self._write_projection:
            entities.extend(_projection_entities(partition_key, prepared, layout_sections))
        self._step("content")
        self._write(self._content, entities)

        entry = replace(entry, finished_at=self._clock(), attempt=attempt)
        layout = ContentLayout(partition_key, layout_sections, operations)
        row = committed_entity(entry, attempt, layout, claim.started_at)
        # Each entity digested once, for both the diff view's digest and the anchor's.
        digests = [(str(e["RowKey"]), row_digest(e), _in_diff_view(e)) for e in entities]
        if diff_projection.SECTION in layout_sections:
            row[DIFF_VIEW_DIGEST] = keyed_digest((k, d) for k, d, seen in digests if seen)
        properties = property_digests(row)
        entry = replace(entry, row_digest=digest_of(properties), row_properties=properties)
        self._step("anchor")
        if self.ledger is not None:
            # Before the row is visible: what becomes visible is anchored by its own attempt.
            self.ledger.write_anchor(
                Anchor.of(entry, entry.row_digest, keyed_digest((k, d) for k, d, _ in digests))
            )
        self._step("commit")
        try:
            self._index.update_entity(
                row,
                mode=UpdateMode.REPLACE,
                etag=claim.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            winner = self._get_index_row(tenant_id, snapshot_id)
            if winner is not None and winner.get("attempt") == attempt and is_committed(winner):
                # Our commit landed; its response was lost and the SDK's retry saw a new ETag.
                row = dict(winner)
            else:
                self._delete_partition(partition_key)
                if winner is not None and is_committed(winner):
                    return self._checked(winner)
                holder = winner.get("attempt") if winner is not None else None
                raise SlotBusy(
                    f"slot {snapshot_id} of tenant {tenant_id}: attempt {holder} claimed it "
                    f"while attempt {attempt} wrote; that attempt's outcome stands"
                ) from exc
        self._advance_latest(row)
        for old in claim.abandoned:
            self._delete_partition(content_partition_key(tenant_id, snapshot_id, old))
        return entry

    def _predecessors(
        self, tenant_id: str, snapshot_id: str
    ) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
        """(the previous committed row, the previous one with content: not failed).

        A later committed snapshot makes this slot superseded, unless it fails verification
        (a forgery must not block the real run; it is reported where it is read)."""
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
                problem = self.problem_of(row, entry)
                if problem:
                    log.error(
                        "tenant %s: later snapshot %s failed verification (%s); ignored",
                        tenant_id, entry.snapshot_id, problem,
                    )  # fmt: skip
                    continue
                raise SnapshotSuperseded(_superseded_by(tenant_id, snapshot_id, entry))
            if entry.snapshot_id == snapshot_id:
                continue
            if predecessor is None:
                predecessor = row
            if entry.status is not CollectionStatus.FAILED:
                return predecessor, row
        return predecessor, None

    def _inherited(
        self,
        predecessor: Mapping[str, Any] | None,
        base: Mapping[str, Any] | None,
        status: CollectionStatus,
    ) -> tuple[History, str]:
        """The history a new snapshot builds on, after verifying what it comes from; or none,
        with the reason, when the predecessor or the history's source fails verification."""
        if status is CollectionStatus.FAILED:
            return {}, ""  # a failed snapshot holds no records and carries nothing
        if predecessor is not None and predecessor is not base:
            entry = index_entry(predecessor)
            problem = self.problem_of(predecessor, entry)
            if problem:
                return {}, f"predecessor {entry.snapshot_id} failed verification: {problem}"
        if base is None:
            return {}, ""
        return self._read_history(base)

    def _read_history(self, base: Mapping[str, Any]) -> tuple[History, str]:
        entry = index_entry(base)
        problem = self.problem_of(base, entry)
        if problem is None:
            layout = content_layout(base)
            try:
                lines, digest, _ = self._read_sections(layout, SECTIONS)
                actual = content_hash(_header(entry), lines)
            except (CorruptSnapshot, PackingError) as exc:
                problem = str(exc)
            else:
                anchor = self._anchor_of(entry)
                if actual != entry.content_hash:
                    problem = f"content hashes to {actual}, the index says {entry.content_hash}"
                elif anchor is not None and anchor.content_digest != digest:
                    problem = "stored content entities differ from what the attempt wrote"
        if problem:
            return {}, f"history source {entry.snapshot_id} failed verification: {problem}"
        history: dict[Key, Prior] = {}
        with _corruption_reported(entry.tenant_id, entry.snapshot_id):
            for line in lines["compliance"]:
                prior = StoredPrior.from_line(line, entry.scheduled_at)
                history[prior.key] = prior
            for line in lines["carried"]:
                item = decode_record(CarriedAssessment, line)
                history[item.record.key] = KnownPrior(item)
        return history, ""

    def _claim(
        self,
        tenant_id: str,
        snapshot_id: str,
        attempt: str,
        current: Mapping[str, Any] | None,
        failure: bool,
    ) -> _Claim | SnapshotIndexEntry:
        """Mark the slot pending for `attempt` (or find it committed by someone else)."""
        started_at = format_time(self._clock())
        for _ in range(5):
            if current is not None and is_committed(current):
                return self._checked(current)
            abandoned: list[str] = []
            if current is not None:
                if failure and not self._may_take_over(current):
                    raise SlotBusy(
                        f"slot {snapshot_id} of tenant {tenant_id} is being written by attempt "
                        f"{current.get('attempt')} (claimed {current.get('started_at')}): a "
                        "failure is not recorded over it"
                    )
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
            except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError) as exc:
                if current is None and isinstance(exc, ResourceNotFoundError):
                    # Not recreated behind the operator's back: the history it held is gone.
                    raise StorageReset(
                        f"table {self.tables.index} does not exist although this store created "
                        "it: the storage lost its data (restarted without persistence?); "
                        "nothing was written"
                    ) from exc
                current = self._get_index_row(tenant_id, snapshot_id)
                if current is not None and current.get("attempt") == attempt:
                    # Our own write landed, but its response was lost and the SDK retried.
                    etag = current.metadata["etag"]  # type: ignore[attr-defined]
                    return _Claim(str(etag), abandoned, started_at)
        raise SlotBusy(
            f"slot {snapshot_id} of tenant {tenant_id}: five claims in a row were overtaken by "
            "other attempts"
        )

    def _remember(self, attempt: str) -> None:
        if len(self._own_attempts) >= _OWN_ATTEMPTS:
            del self._own_attempts[next(iter(self._own_attempts))]
        self._own_attempts[attempt] = None

    def wrote(self, entry: SnapshotIndexEntry) -> bool:
        """Whether this store's own attempt committed `entry` (else another attempt did)."""
        return entry.attempt in self._own_attempts

    def _may_take_over(self, pending: Mapping[str, Any]) -> bool:
        """A failure record replaces a pending claim only when it is this store's own attempt
        (which raised) or older than the lease (its writer died)."""
        if pending.get("attempt") in self._own_attempts:
            return True
        try:
            claimed = parse_time(str(pending.get("started_at", "")))
        except CanonicalFormatError:
            return True
        return self._clock() - claimed > CLAIM_LEASE

    def _advance_latest(self, committed: Mapping[str, Any]) -> None:
        """Point the tenant's latest row at `committed` unless it already names a later slot
        (or this slot's attempt, or one that this attempt did not retake)."""
        row = latest_entity(committed)
        for _ in range(5):
            try:
                current = self._latest.get_entity(LATEST_PARTITION, row["RowKey"])
            except ResourceNotFoundError:
                current = None
            if current is not None and (
                current["snapshot_id"] > row["snapshot_id"]
                or (
                    current["snapshot_id"] == row["snapshot_id"]
                    and row.get("supersedes") != current.get("attempt")
                )
            ):
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

    def slot_row(self, tenant_id: str, snapshot_id: str) -> Mapping[str, Any] | None:
        """The raw index row of a slot, pending or committed (the sweep and verify use it)."""
        try:
            return self._get_index_row(tenant_id, snapshot_id)
        except keys.KeyFormatError:
            return None

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


DIFF_VIEW_DIGEST = "diff_view_digest"  # index row: digest of the entities a diff view reads
STANDS_FOR = frozenset(diff_projection.STANDS_FOR)


def _has_projection(row: Mapping[str, Any], layout: ContentLayout) -> bool:
    """Whether the committed row's snapshot stores a diff projection (and its digest)."""
    return isinstance(row.get(DIFF_VIEW_DIGEST), str) and diff_projection.SECTION in layout.sections


def _in_diff_view(entity: Mapping[str, Any]) -> bool:
    return entity.get(SECTION_PROPERTY) not in STANDS_FOR


def _diff_view_query(partition_key: str) -> tuple[str, dict[str, Any]]:
    """Every entity of the partition but those of the sections the projection stands for."""
    query = "PartitionKey eq @pk"
    parameters: dict[str, Any] = {"pk": partition_key}
    for number, section in enumerate(sorted(STANDS_FOR)):
        low, high = section_prefix(section)
        # Spaces around the parameters: the SDK reads a name up to the next space.
        query += f" and ( RowKey lt @low{number} or RowKey ge @high{number} )"
        parameters[f"low{number}"], parameters[f"high{number}"] = low, high
    return query, parameters


def _projection_entities(
    partition_key: str, prepared: PreparedSnapshot, layout_sections: dict[str, tuple[int, int]]
) -> list[Entity]:
    packed = section_entities(partition_key, diff_projection.SECTION, prepared.projection)
    layout_sections[diff_projection.SECTION] = (len(packed), len(prepared.projection))
    return packed


def _section_lines(
    layout: ContentLayout, rows: Iterable[Mapping[str, Any]], sections: Iterable[str]
) -> dict[str, list[str]]:
    """The lines of `sections` from a partition's entities, checked against the layout."""
    wanted = set(sections)
    rows_by_section: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        section = row.get(SECTION_PROPERTY, "")
        if section in wanted:
            rows_by_section[section].append(row)
    out: dict[str, list[str]] = {}
    for section in wanted:
        if section not in layout.sections and section not in ALWAYS_HASHED:
            continue  # a section the snapshot did not collect (or predates)
        rows_of = rows_by_section.get(section, [])
        expected = layout.sections.get(section, (0, 0))
        try:
            lines = list(iter_section_lines(rows_of))
        except PackingError as exc:
            raise CorruptSnapshot(
                f"section {section} of {layout.partition_key}: {len(rows_of)} entities, index "
                f"says {expected[0]}: {exc}"
            ) from exc
        if (len(rows_of), len(lines)) != expected:
            raise CorruptSnapshot(
                f"section {section} of {layout.partition_key}: {len(rows_of)} entities and "
                f"{len(lines)} lines, index says {expected[0]} and {expected[1]}"
            )
        out[section] = lines
    return out


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
    except CorruptSnapshot as exc:
        exc.snapshot_id = snapshot_id
        raise
    except (PackingError, CanonicalFormatError) as exc:
        corrupt = CorruptSnapshot(f"snapshot {tenant_id}/{snapshot_id}: {exc}")
        corrupt.snapshot_id = snapshot_id
        raise corrupt from exc


_header = header_of_entry


def _superseded_by(tenant_id: str, snapshot_id: str, later: SnapshotIndexEntry) -> str:
    text = (
        f"tenant {tenant_id} already has snapshot {later.snapshot_id}, later than "
        f"{snapshot_id}: snapshots are taken in order"
    )
    if later.finished_at < later.scheduled_at:
        text += (
            f" ({later.snapshot_id} was collected at {format_time(later.finished_at)}, before "
            "its slot: a future snapshot; docs/schema.md says how to recover)"
        )
    return text


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
