"""Evidence packs: request, build, store and look up one tenant's pack for a period.

A pack compares two committed snapshots of a tenant, the period's first and last, and shows
every snapshot in between in its trend. The reader is the anchored store: every snapshot the
pack uses is checked against the anchor its own attempt wrote, and one that fails (or has none)
makes the pack fail for good (nothing here ever anchors anything). Building reads the two
snapshots, diffs them, writes the workbook to a file (streaming), then the OSCAL assessment
results of every snapshot of the period (read one at a time), hashes both, and stores them
write-once beside the manifest that records the hashes. Nothing here formats cells or talks
HTTP, and pack records are read through the typed repository (adapters/pack_repository.py).

Report ids are chosen when a pack is requested, so the caller can ask for its status at once;
the request record (``requests/...``) is written first, then the queue message. A retry of the
same job finds the manifest and stops; one interrupted between the workbook (or the OSCAL
document) and its manifest cannot reuse the file's name (write-once), so it records the
failure, pointing to a new report id, and builds again under that id.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from auditor import __version__
from auditor.adapters import pack_repository
from auditor.adapters.blobs import JSON_TYPE, EvidenceExists, EvidenceStore, document_bytes
from auditor.adapters.pack_repository import PackRepository, PackStatus
from auditor.adapters.tables.store import CorruptSnapshot
from auditor.core.diff import diff_snapshots
from auditor.core.evidence import (
    FAILURE_SCHEMA,
    PERIOD_REF,
    REQUEST_SCHEMA,
    PackManifest,
    ReportJob,
    SnapshotRef,
    StoredFile,
    iso,
    manifest_blob_name,
    new_report_id,
    oscal_blob_name,
    pack_metadata,
    parse_iso,
    previous_month,
    stored_manifest,
    workbook_blob_name,
)
from auditor.core.oscal import OscalStats, write_period_results
from auditor.core.portal import PUBLIC_PORTAL
from auditor.core.snapshot import (
    SNAPSHOT_ID,
    Snapshot,
    SnapshotIndexEntry,
    SnapshotNotFound,
    SnapshotReader,
    SnapshotTampered,
    slot_of,
)
from auditor.core.workbook import (
    DEFAULT_OPTIONS,
    PackInputs,
    PackOptions,
    pack_layout,
    page_labels,
)
from auditor.core.workbook_writer import WorkbookStats, write_workbook
from auditor.settings import Settings, load_settings

log = logging.getLogger(__name__)

GENERATOR_VERSION = f"auditor-evidence/{__version__}"
# A pack's states (the repository's), for the service's callers.
QUEUED, SUCCEEDED, FAILED = (
    pack_repository.QUEUED,
    pack_repository.SUCCEEDED,
    pack_repository.FAILED,
)
# Default period when only its end is given: the 30 days before it.
DEFAULT_PERIOD = timedelta(days=30)


class ReportError(RuntimeError):
    """A pack cannot be built for lasting reasons (no snapshot in the period, a bad period, a
    snapshot that fails verification against its anchor). Retrying will not help."""


Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def _token() -> str:
    return secrets.token_hex(4)


# ---------------------------------------------------------------------------------------------
# Period
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """The two compared snapshots and every committed snapshot from one to the other."""

    period_from: datetime
    period_to: datetime
    start: SnapshotIndexEntry
    end: SnapshotIndexEntry
    entries: tuple[SnapshotIndexEntry, ...]  # oldest first, both ends included


def check_ref(name: str, value: str | None) -> str | None:
    """A period end as given (snapshot id or ISO-8601 instant with a zone); ValueError if not."""
    if value is None:
        return None
    text = value.strip()
    if not PERIOD_REF.match(text):
        raise ValueError(
            f"{name} must be a snapshot id (YYYYMMDDTHHMMSSZ) or an instant with a zone "
            f"(e.g. 2025-01-31T23:59:59Z), got {value!r}"
        )
    if SNAPSHOT_ID.match(text):
        slot_of(text)  # a valid calendar moment
    else:
        parse_iso(text)
    return text


def _instant(ref: str) -> datetime:
    return slot_of(ref) if SNAPSHOT_ID.match(ref) else parse_iso(ref)


def _end_entry(reader: SnapshotReader, tenant_id: str, ref: str | None) -> SnapshotIndexEntry:
    if ref is None:
        latest = reader.list_snapshots(tenant_id)
        if not latest:
            raise ReportError(f"tenant {tenant_id} has no committed snapshot")
        return latest[0]
    try:
        if SNAPSHOT_ID.match(ref):
            return reader.get_index(tenant_id, ref)
        return reader.find_at(tenant_id, _instant(ref))
    except SnapshotNotFound as exc:
        raise ReportError(f"no snapshot for the period's end ({ref}): {exc}") from None


def _start_entry(
    reader: SnapshotReader, tenant_id: str, ref: str | None, at: datetime, end: SnapshotIndexEntry
) -> SnapshotIndexEntry:
    if ref is not None and SNAPSHOT_ID.match(ref):
        try:
            return reader.get_index(tenant_id, ref)
        except SnapshotNotFound as exc:
            raise ReportError(f"no snapshot for the period's start ({ref}): {exc}") from None
    try:
        # The posture at the period's start: the last snapshot at or before it.
        return reader.find_at(tenant_id, at)
    except SnapshotNotFound:
        pass
    # The tenant's history starts inside the period: its oldest snapshot there.
    inside = reader.list_snapshots(tenant_id, since=at, until=end.scheduled_at)
    if not inside:
        raise ReportError(f"tenant {tenant_id} has no snapshot between {iso(at)} and the end")
    return inside[-1]


def resolve_period(
    reader: SnapshotReader, tenant_id: str, start: str | None, end: str | None
) -> Period:
    """Which snapshots a pack for [start, end] compares (defaults: end = latest snapshot,
    start = DEFAULT_PERIOD before the end)."""
    end_entry = _end_entry(reader, tenant_id, end)
    period_to = _instant(end) if end is not None else end_entry.scheduled_at
    period_from = _instant(start) if start is not None else period_to - DEFAULT_PERIOD
    if period_from > period_to:
        raise ReportError(
            f"the period starts ({iso(period_from)}) after it ends ({iso(period_to)})"
        )
    start_entry = _start_entry(reader, tenant_id, start, period_from, end_entry)
    if start_entry.scheduled_at > end_entry.scheduled_at:
        raise ReportError(
            f"the start snapshot {start_entry.snapshot_id} is later than the end snapshot "
            f"{end_entry.snapshot_id}"
        )
    between = reader.list_snapshots(
        tenant_id, since=start_entry.scheduled_at, until=end_entry.scheduled_at
    )
    entries = {e.snapshot_id: e for e in between}
    entries[start_entry.snapshot_id] = start_entry
    entries[end_entry.snapshot_id] = end_entry
    return Period(
        period_from=period_from,
        period_to=period_to,
        start=start_entry,
        end=end_entry,
        entries=tuple(sorted(entries.values(), key=lambda e: e.scheduled_at)),
    )


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuiltPack:
    """A pack's two files, written: the workbook and the OSCAL assessment results."""

    manifest: PackManifest
    path: Path
    sha256: str
    size: int
    stats: WorkbookStats
    oscal_path: Path
    oscal: OscalStats

    @property
    def workbook_blob(self) -> str:
        m = self.manifest
        return workbook_blob_name(m.tenant_id, m.end_snapshot.scheduled_at, m.report_id)

    @property
    def manifest_blob(self) -> str:
        m = self.manifest
        return manifest_blob_name(m.tenant_id, m.end_snapshot.scheduled_at, m.report_id)

    @property
    def oscal_blob(self) -> str:
        m = self.manifest
        return oscal_blob_name(m.tenant_id, m.end_snapshot.scheduled_at, m.report_id)

    def stored_manifest(self) -> dict[str, Any]:
        oscal = StoredFile(self.oscal_blob, self.oscal.sha256, self.oscal.bytes)
        return stored_manifest(self.manifest, self.workbook_blob, self.sha256, self.size, oscal)


def file_sha256(path: Path) -> tuple[str, int]:
    import hashlib

    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def build_pack(
    reader: SnapshotReader,
    tenant_id: str,
    report_id: str,
    period: Period,
    out: Path,
    oscal_out: Path,
    *,
    generated_at: datetime,
    options: PackOptions = DEFAULT_OPTIONS,
) -> BuiltPack:
    """Read the period's two snapshots and write the pack's workbook to `out`; then its OSCAL
    assessment results to `oscal_out`, reading every snapshot of the period one at a time."""
    start = reader.get_snapshot(tenant_id, period.start.snapshot_id)
    end = (
        start
        if period.end.snapshot_id == period.start.snapshot_id
        else reader.get_snapshot(tenant_id, period.end.snapshot_id)
    )
    manifest = PackManifest(
        report_id=report_id,
        tenant_id=tenant_id,
        tenant_name=end.index.tenant_name,
        period_from=period.period_from,
        period_to=period.period_to,
        start=start.index.snapshot_id,
        end=end.index.snapshot_id,
        snapshots=tuple(SnapshotRef.of(e) for e in period.entries),
        generator_version=GENERATOR_VERSION,
        generated_at=generated_at,
    )
    inputs = PackInputs(
        manifest=manifest,
        start=start,
        end=end,
        period=period.entries,
        diff=diff_snapshots(start, end),
        options=options,
    )
    stats = write_workbook(
        pack_layout(inputs),
        out,
        title=f"Evidence pack {report_id}",
        creator=GENERATOR_VERSION,
        labels=page_labels(inputs),
    )
    sha, size = file_sha256(out)
    oscal = write_oscal(reader, period, (start, end), oscal_out)
    return BuiltPack(manifest, out, sha, size, stats, oscal_out, oscal)


def write_oscal(
    reader: SnapshotReader, period: Period, read: tuple[Snapshot, ...], out: Path
) -> OscalStats:
    """The OSCAL assessment results of every snapshot of the period (one result each), read
    through the anchored reader; the snapshots already read are not read again."""
    known = {s.index.snapshot_id: s for s in read}

    def load(entry: SnapshotIndexEntry) -> Snapshot:
        return known.get(entry.snapshot_id) or reader.get_snapshot(
            entry.tenant_id, entry.snapshot_id
        )

    with out.open("wb") as stream:
        return write_period_results(
            period.entries,
            load,
            stream,
            generator=GENERATOR_VERSION,
            period=(period.period_from, period.period_to),
        )


def upload_pack(evidence: EvidenceStore, pack: BuiltPack) -> None:
    """Store the workbook and the OSCAL document, then the manifest (a manifest marks a
    complete pack). Each is write-once: a name already taken raises EvidenceExists."""
    metadata = pack_metadata(pack.manifest, pack.sha256, pack.oscal.sha256)
    evidence.put_file(pack.workbook_blob, pack.path, metadata)
    evidence.put_file(pack.oscal_blob, pack.oscal_path, metadata, JSON_TYPE)
    evidence.put_bytes(pack.manifest_blob, document_bytes(pack.stored_manifest()), metadata)


# ---------------------------------------------------------------------------------------------
# Service
# ---------------------------------------------------------------------------------------------


class ReportService:
    """Packs of one deployment: the snapshot reader, the evidence container, the report queue."""

    def __init__(
        self,
        reader: SnapshotReader,
        evidence: EvidenceStore,
        send: Callable[[str], Any] | None = None,
        *,
        clock: Clock = _now,
        token: Callable[[], str] = _token,
        options: PackOptions = DEFAULT_OPTIONS,
    ) -> None:
        self.reader = reader
        self.options = options
        self.evidence = evidence
        self.packs = PackRepository(evidence)
        self._send = send
        self._clock = clock
        self._token = token

    # -- requests ----------------------------------------------------------------------------

    def new_job(
        self, tenant_id: str, start: str | None, end: str | None, requested_by: str
    ) -> ReportJob:
        now = self._clock()
        return ReportJob(
            tenant_id=tenant_id.lower(),
            report_id=new_report_id(now, self._token()),
            start=check_ref("from", start),
            end=check_ref("to", end),
            requested_at=now,
            requested_by=requested_by,
        )

    def request(
        self, tenant_id: str, start: str | None, end: str | None, requested_by: str
    ) -> ReportJob:
        """Record a pack request and queue it; the returned job names its report id."""
        if self._send is None:
            raise RuntimeError("this service has no report queue")
        job = self.new_job(tenant_id, start, end, requested_by)
        self.packs.put_request(
            job.tenant_id, job.report_id, {"schema": REQUEST_SCHEMA, **job.to_json()}
        )
        self._send(job.encode())
        return job

    def request_monthly(self, requested_by: str = "timer") -> list[ReportJob]:
        """Queue last month's pack for every tenant with a snapshot in that month (a tenant whose
        latest snapshot is older, e.g. one no longer delegated, gets none)."""
        period_from, period_to = previous_month(self._clock())
        jobs = []
        for latest in self.reader.list_tenants():
            if latest.scheduled_at < period_from:
                log.info(
                    "no pack for tenant %s: no snapshot since %s",
                    latest.tenant_id,
                    iso(period_from),
                )
                continue
            jobs.append(
                self.request(latest.tenant_id, iso(period_from), iso(period_to), requested_by)
            )
        return jobs

    # -- building ----------------------------------------------------------------------------

    def run(
        self,
        job: ReportJob,
        *,
        out: Path | None = None,
        oscal_out: Path | None = None,
        upload: bool = True,
    ) -> BuiltPack | None:
        """Build (and store) the pack a job asks for; `out` and `oscal_out` keep its workbook
        and OSCAL document (default: temporary files). None when the job was already done
        (a retried or duplicate message): a stored pack or a recorded failure stands."""
        if upload:
            done = self.status(job.tenant_id, job.report_id)
            if done is not None and done.status != QUEUED:
                log.info("pack %s already %s", job.report_id, done.status)
                return None
        try:
            period = resolve_period(self.reader, job.tenant_id, job.start, job.end)
            with _pack_paths(out, oscal_out, job.report_id) as paths:
                pack = build_pack(
                    self.reader,
                    job.tenant_id,
                    job.report_id,
                    period,
                    *paths,
                    generated_at=self._clock(),
                    options=self.options,
                )
                if upload:
                    pack = self._store(job, pack, period, paths)
                return pack
        except (SnapshotTampered, CorruptSnapshot) as exc:
            raise ReportError(str(exc)) from None

    def _store(
        self, job: ReportJob, pack: BuiltPack, period: Period, paths: tuple[Path, Path]
    ) -> BuiltPack:
        """Upload the pack; returns the pack stored (rebuilt under a new id if need be)."""
        try:
            upload_pack(self.evidence, pack)
            return pack
        except EvidenceExists:
            if self.evidence.properties(pack.manifest_blob) is not None:
                raise
            # An earlier attempt stored the workbook but not its manifest: its name is spent.
            retry = ReportJob(
                job.tenant_id,
                new_report_id(self._clock(), self._token()),
                job.start,
                job.end,
                job.requested_at,
                job.requested_by,
            )
            self.record_failure(job, "upload interrupted; rebuilt", superseded_by=retry.report_id)
            rebuilt = build_pack(
                self.reader,
                retry.tenant_id,
                retry.report_id,
                period,
                *paths,
                generated_at=self._clock(),
                options=self.options,
            )
            upload_pack(self.evidence, rebuilt)
            return rebuilt

    def record_failure(
        self, job: ReportJob, reason: str, *, superseded_by: str | None = None
    ) -> None:
        """Record that a job will not produce its pack (write-once; a second record is kept
        out, the first one stands)."""
        document: dict[str, Any] = {
            "schema": FAILURE_SCHEMA,
            **job.to_json(),
            "failedAt": iso(self._clock()),
            "reason": reason,
        }
        if superseded_by:
            document["supersededBy"] = superseded_by
        self.packs.put_failure(job.tenant_id, job.report_id, document)

    # -- lookups -----------------------------------------------------------------------------

    def status(self, tenant_id: str, report_id: str) -> PackStatus | None:
        """A pack's status; None when no such pack was ever requested or stored."""
        return self.packs.status(tenant_id, report_id, now=self._clock())

    def list_packs(self, tenant_id: str) -> list[PackStatus]:
        """Every pack of a tenant: stored, failed and still queued, newest report id first."""
        return self.packs.list(tenant_id, now=self._clock())


@contextmanager
def _pack_paths(
    out: Path | None, oscal_out: Path | None, report_id: str
) -> Iterator[tuple[Path, Path]]:
    """Where the workbook and the OSCAL document are written: the paths given, else temporary
    files removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="auditor-pack-") as folder:
        paths = (
            out or Path(folder) / f"{report_id}.xlsx",
            oscal_out or Path(folder) / f"{report_id}.oscal.json",
        )
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
        yield paths


# ---------------------------------------------------------------------------------------------
# Wiring (function_app.py, the API and the command line)


def pack_options(settings: Settings) -> PackOptions:
    """What packs follow from the settings: the snapshot schedule (slots of a period) and the
    portal of the cloud AUDITOR_ARM_ENDPOINT names (links)."""
    from auditor.core.portal import portal_for

    try:
        portal = portal_for(settings.arm_endpoint)
    except ValueError:
        # A private or test endpoint (the simulator): links go to the public portal.
        portal = PUBLIC_PORTAL
    return PackOptions(snapshot_schedule=settings.snapshot_schedule, portal=portal)


@contextmanager
def open_report_service(
    settings: Settings, *, with_queue: bool = True, reader: SnapshotReader | None = None
) -> Iterator[ReportService]:
    """A report service on the configured storage, closed afterwards."""
    from auditor.adapters.report_queue import ReportQueue
    from auditor.adapters.tables.store import SnapshotStore

    store = SnapshotStore.from_settings(settings) if reader is None else None
    snapshots: SnapshotReader | None = store or reader
    assert snapshots is not None
    evidence = EvidenceStore.from_settings(settings)
    queue = ReportQueue.from_settings(settings) if with_queue else None
    try:
        if not evidence.identity_based:
            evidence.create_container()  # local runs; in Azure the template creates it
        yield ReportService(
            snapshots,
            evidence,
            queue.send if queue is not None else None,
            options=pack_options(settings),
        )
    finally:
        if queue is not None:
            queue.close()
        evidence.close()
        if store is not None:
            store.close()


def process_job(
    service: ReportService, text: str, dequeue_count: int, max_dequeues: int
) -> BuiltPack | None:
    """Queue path: build and store one pack. A lasting failure is recorded and not retried; a
    transient one raises (to be retried) and is recorded on the last dequeue."""
    job = ReportJob.decode(text)  # a malformed message raises: it ends in the poison queue
    try:
        return service.run(job)
    except ReportError as exc:
        log.warning("pack %s for tenant %s failed: %s", job.report_id, job.tenant_id, exc)
        service.record_failure(job, str(exc))
        return None
    except Exception as exc:
        if dequeue_count >= max_dequeues:
            service.record_failure(
                job, f"{type(exc).__name__}: {exc} (attempt {dequeue_count} of {max_dequeues})"
            )
        raise


def on_timer() -> list[ReportJob]:
    """Timer trigger: queue last month's pack of every tenant."""
    with open_report_service(load_settings()) as service:
        return service.request_monthly()


def on_queue_message(text: str, dequeue_count: int) -> BuiltPack | None:
    """Queue trigger: build one pack; raises for the host to retry or poison."""
    from auditor.adapters.queues import max_dequeue_count

    with open_report_service(load_settings(), with_queue=False) as service:
        return process_job(service, text, dequeue_count, max_dequeue_count())


class LazyReportService:
    """The API's report service, made on first use (so loading the app opens no connection).
    Lives as long as the process."""

    def __init__(self, make: Callable[[], ReportService]) -> None:
        self._make = make
        self._service: ReportService | None = None
        self._lock = threading.Lock()

    @property
    def service(self) -> ReportService:
        if self._service is None:
            with self._lock:
                if self._service is None:
                    self._service = self._make()
        return self._service


def api_report_service(settings: Settings, reader: SnapshotReader) -> LazyReportService:
    """Report service of the HTTP API: the API's snapshot reader, evidence and report queue."""

    def make() -> ReportService:
        from auditor.adapters.report_queue import ReportQueue

        evidence = EvidenceStore.from_settings(settings)
        if not evidence.identity_based:
            evidence.create_container()
        return ReportService(
            reader,
            evidence,
            ReportQueue.from_settings(settings).send,
            options=pack_options(settings),
        )

    return LazyReportService(make)
