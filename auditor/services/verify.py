"""Check stored evidence end to end: snapshot content hashes, each tenant's chain of predecessor
hashes, the write-once anchors, and every stored pack's hashes.

A chain kept by the operator can be rewritten by the operator (re-hash everything after the
change). The anchors make that visible: each committed snapshot's hash sits in the write-once
evidence container, so rewriting history means changing or deleting immutable blobs, which the
container's policy refuses and Azure logs.

Findings are listed per tenant in chain order (oldest snapshot first), then packs; the first one
is the first broken link.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import AzureError

from auditor.adapters.blobs import EvidenceStore
from auditor.adapters.queues import run_deadline
from auditor.adapters.tables.runs import RunStore
from auditor.core.canonical import snapshot_content_hash
from auditor.core.evidence import (
    ANCHOR_PREFIX,
    FAILURE_PREFIX,
    META_OSCAL_SHA256,
    META_PACK_SHA256,
    META_WORKBOOK_SHA256,
    Anchor,
    PackManifest,
    StoredFile,
    anchor_mismatch,
    iso,
    manifest_redirect,
    oscal_of_manifest,
    pack_file_of,
    report_id_of,
    workbook_of_manifest,
)
from auditor.core.projection import projection_lines
from auditor.core.snapshot import (
    Snapshot,
    SnapshotIndexEntry,
    SnapshotNotFound,
    SnapshotReader,
    is_tenant_id,
)
from auditor.services.verify_checkpoint import (
    FULL,
    INCREMENTAL,
    CheckpointNotWritten,
    Start,
    as_full,
    record_checkpoint,
    slot_anchors,
    trusted_start,
)

log = logging.getLogger(__name__)

# Decides, from a tenant's chain, where its check starts (None: the first snapshot).
StartFrom = Callable[[list[SnapshotIndexEntry]], Start] | None


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken link: whose, which item (a snapshot or a pack), and what is wrong."""

    tenant_id: str
    subject: str
    problem: str

    def __str__(self) -> str:
        return f"tenant {self.tenant_id} {self.subject}: {self.problem}"


@dataclass
class Verification:
    tenants: list[str] = field(default_factory=list)
    snapshots: int = 0
    packs: int = 0
    findings: list[Finding] = field(default_factory=list)
    # Of `snapshots`, those an intact checkpoint covered (not read again).
    trusted: int = 0
    # Per tenant: full or incremental, and why (verify_checkpoint.Start.note).
    scopes: dict[str, str] = field(default_factory=dict)
    # Checkpoints this run wrote (tenant -> number).
    checkpoints: dict[str, int] = field(default_factory=dict)
    # What the run could not do that is not a finding (e.g. a checkpoint it may not write).
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first_broken(self) -> Finding | None:
        return self.findings[0] if self.findings else None


def _snapshot(entry_id: str) -> str:
    return f"snapshot {entry_id}"


def check_content(reader: SnapshotReader, entry: SnapshotIndexEntry) -> tuple[str | None, str]:
    """Read the snapshot back and hash its records again: (the problem or None, the digest of
    its stored content entities)."""
    problem, digest, _ = check_snapshot(reader, entry)
    return problem, digest


def check_snapshot(
    reader: SnapshotReader, entry: SnapshotIndexEntry
) -> tuple[str | None, str, str | None]:
    """check_content, and whether the snapshot's diff projection says what its content says
    (None when it does, predates the projection, or the content itself failed). The anchored
    store gives both from one read of the snapshot's entities."""
    both = getattr(reader, "get_snapshot_and_projection", None)
    stored: list[str] | None = None
    unreadable: str | None = None
    try:
        if both is not None:
            snapshot, stored, unreadable = both(entry.tenant_id, entry.snapshot_id)
        else:
            snapshot = reader.get_snapshot(entry.tenant_id, entry.snapshot_id)
    except SnapshotNotFound as exc:
        return f"content missing ({exc})", "", None
    except AzureError:
        raise  # storage unavailable: not a finding about the evidence
    except Exception as exc:  # any decoding or hash failure of altered content
        return f"content altered or unreadable: {type(exc).__name__}: {exc}", "", None
    actual = snapshot_content_hash(snapshot)
    if actual != entry.content_hash:
        return f"content hashes to {actual}, the index says {entry.content_hash}", "", None
    if both is None:
        return None, snapshot.content_digest, check_projection(reader, snapshot)
    if unreadable is not None:
        return None, snapshot.content_digest, f"diff projection altered or unreadable: {unreadable}"
    return None, snapshot.content_digest, projection_problem(snapshot, stored)


def check_projection(reader: SnapshotReader, snapshot: Snapshot) -> str | None:
    """Does the snapshot's stored diff projection say what its content says? (None when it
    does, or when the snapshot predates the projection.)"""
    read = getattr(reader, "get_projection", None)
    if read is None:
        return None
    index = snapshot.index
    try:
        stored = read(index.tenant_id, index.snapshot_id)
    except AzureError:
        raise
    except Exception as exc:  # altered entities or an undecodable stream
        return f"diff projection altered or unreadable: {type(exc).__name__}: {exc}"
    return projection_problem(snapshot, stored)


def projection_problem(snapshot: Snapshot, stored: list[str] | None) -> str | None:
    """Whether `stored` (the projection lines; None: predates it) says what the content says."""
    if stored is None:
        return None
    posture = snapshot.posture
    if stored != projection_lines(posture.compliance, snapshot.transitions, posture.controls):
        return "the diff projection disagrees with the content it was derived from"
    return None


def check_link(entry: SnapshotIndexEntry, previous: SnapshotIndexEntry | None) -> str | None:
    """Does `entry` name the snapshot before it, and that snapshot's hash? (None when it does)."""
    want_id = previous.snapshot_id if previous else None
    want_hash = previous.content_hash if previous else None
    if entry.previous_snapshot_id != want_id:
        return (
            f"names predecessor {entry.previous_snapshot_id}, but the committed snapshot "
            f"before it is {want_id}"
        )
    if entry.previous_hash != want_hash:
        return (
            f"predecessor hash {entry.previous_hash} differs from {want_id}'s content hash "
            f"{want_hash}"
        )
    return None


def _anchors_by_slot(evidence: EvidenceStore, tenant_id: str) -> dict[str, dict[str, Anchor]]:
    """slot -> attempt ("" for a legacy anchor) -> anchor."""
    out: dict[str, dict[str, Anchor]] = {}
    for anchor in evidence.list_anchors(tenant_id):
        out.setdefault(anchor.snapshot_id, {})[anchor.attempt] = anchor
    return out


def anchor_problems(
    entry: SnapshotIndexEntry, anchors: dict[str, Anchor], digest: str | None
) -> list[str]:
    """How a committed row (and, with `digest`, its stored content) disagrees with the anchor
    of the attempt that committed it."""
    anchor = anchors.get(entry.attempt) or anchors.get("")
    if anchor is None:
        return [f"no anchor of attempt {entry.attempt or '(none)'} in the evidence container"]
    problem = anchor_mismatch(anchor, entry)
    problems = [f"anchor disagrees: {problem}" if not anchor.legacy else problem] if problem else []
    if digest and not anchor.legacy and anchor.content_digest != digest:
        problems.append(
            "stored content entities differ from what the attempt wrote (a property of a "
            "content entity was edited, added or removed)"
        )
    if entry.supersedes and entry.supersedes not in anchors:
        problems.append(f"retakes attempt {entry.supersedes}, which has no anchor")
    return problems


@dataclass(frozen=True, slots=True)
class ChainRead:
    """What verify_chain read of a tenant: its chain (oldest first), where the check started,
    the head's content digest as read ("" when not read) and whether it found anything."""

    entries: list[SnapshotIndexEntry]
    start: Start
    head_digest: str
    ok: bool


def verify_chain(
    reader: SnapshotReader,
    evidence: EvidenceStore,
    tenant_id: str,
    result: Verification,
    start: StartFrom = None,
) -> ChainRead:
    """Check the tenant's chain; with `start`, from what an intact checkpoint covers (the
    function deciding it from the chain), every snapshot otherwise."""
    entries = sorted(reader.list_snapshots(tenant_id), key=lambda e: e.scheduled_at)
    begin = start(entries) if start else Start(note="full")
    before = len(result.findings)
    if begin.trusted:
        # Only the slots after the checkpoint (and anchored slots without a row) are read.
        slots = {e.snapshot_id for e in entries} | set(begin.anchors)
        slots -= {e.snapshot_id for e in entries[: begin.trusted]}
        anchors = {slot: slot_anchors(evidence, tenant_id, slot) for slot in slots}
    else:
        anchors = _anchors_by_slot(evidence, tenant_id)
    previous = entries[begin.trusted - 1] if begin.trusted else None
    result.snapshots += begin.trusted
    result.trusted += begin.trusted
    digest = ""
    for entry in entries[begin.trusted :]:
        result.snapshots += 1
        subject = _snapshot(entry.snapshot_id)
        content_problem, digest, projection_problem = check_snapshot(reader, entry)
        problems = [content_problem, check_link(entry, previous)]
        problems += anchor_problems(entry, anchors.pop(entry.snapshot_id, {}), digest)
        if not any(problems):  # an edited snapshot is the anchor's finding; this is a fault's
            problems.append(projection_problem)
        if entry.finished_at < entry.scheduled_at:
            problems.append(
                f"its slot lies after the time it was collected ({iso(entry.finished_at)}): a "
                "future snapshot (docs/schema.md, Recovering from a future snapshot)"
            )
        for problem in problems:
            if problem:
                result.findings.append(Finding(tenant_id, subject, problem))
        previous = entry
    for snapshot_id in sorted(anchors):
        result.findings.append(
            Finding(
                tenant_id,
                _snapshot(snapshot_id),
                "anchored, but no committed snapshot has this id in the store (deleted?)",
            )
        )
    if begin.problem:
        result.findings.append(Finding(tenant_id, begin.subject, begin.problem))
    result.scopes[tenant_id] = begin.note
    return ChainRead(entries, begin, digest, len(result.findings) == before)


def _start_from(evidence: EvidenceStore, tenant_id: str, mode: str | None) -> StartFrom:
    if mode is None:
        return None
    if mode not in (INCREMENTAL, FULL):
        raise ValueError(f"checkpoints must be {INCREMENTAL!r} or {FULL!r}, got {mode!r}")

    def start(entries: list[SnapshotIndexEntry]) -> Start:
        begin = trusted_start(evidence, tenant_id, entries)
        return begin if mode == INCREMENTAL else as_full(begin)

    return start


def _record_checkpoints(
    evidence: EvidenceStore,
    chains: dict[str, ChainRead],
    latest_broken: set[str],
    result: Verification,
    now: datetime,
) -> None:
    """The next checkpoint of each tenant whose chain and latest row have no finding (what a
    checkpoint covers; a pack's or a run's findings are about those, and are checked anew)."""
    for tenant_id, chain in chains.items():
        if tenant_id in latest_broken or not chain.ok:
            continue
        try:
            written = record_checkpoint(
                evidence, chain.entries, chain.head_digest, chain.start, now
            )
        except CheckpointNotWritten as exc:
            result.notes.append(str(exc))
            return  # the same for every tenant: said once
        if written is not None:
            result.checkpoints[tenant_id] = written.sequence


def verify_latest(
    reader: SnapshotReader, evidence: EvidenceStore, tenants: set[str], result: Verification
) -> None:
    """Each tenant's latest row (the copy `tenants` and the API list) against its anchor."""
    for entry in reader.list_tenants():
        if entry.tenant_id not in tenants:
            continue
        anchors = slot_anchors(evidence, entry.tenant_id, entry.snapshot_id)
        for problem in anchor_problems(entry, anchors, None):
            result.findings.append(
                Finding(entry.tenant_id, f"latest row {entry.snapshot_id}", problem)
            )


def verify_runs(
    reader: SnapshotReader,
    runs: RunStore,
    tenants: set[str],
    result: Verification,
    now: datetime,
    deadline: timedelta,
) -> None:
    """Every tenant a finished run expected must have its slot committed (complete,
    incomplete or failed): a missing one is a lost commit. An inline run is finished when it
    returns; a queued one at its deadline."""
    for manifest in runs.all_manifests():
        if manifest.enqueued and now < manifest.planned_at + deadline:
            continue  # still running
        for tenant_id in manifest.tenant_ids:
            if tenant_id not in tenants:
                continue
            try:
                reader.get_index(tenant_id, manifest.snapshot_id)
            except SnapshotNotFound:
                result.findings.append(
                    Finding(
                        tenant_id,
                        _snapshot(manifest.snapshot_id),
                        f"expected by run {manifest.snapshot_id}'s manifest, but no snapshot "
                        "(complete, incomplete or failed) is committed for it: a lost commit",
                    )
                )


def verify_packs(
    entries: list[SnapshotIndexEntry],
    evidence: EvidenceStore,
    tenant_id: str,
    result: Verification,
) -> None:
    """The tenant's evidence packs against its committed snapshots (`entries`: the chain
    verify_chain read, so the index is listed once per tenant)."""
    blobs = evidence.list_blobs(f"{tenant_id}/")
    by_report: dict[str, dict[str, str]] = {}
    metadata: dict[str, dict[str, str]] = {}
    for blob in blobs:
        pack_file = pack_file_of(blob.name)
        if pack_file is None:
            continue
        by_report.setdefault(pack_file[0], {})[pack_file[1]] = blob.name
        metadata[blob.name] = blob.metadata
    failed = {
        b.name.rsplit("/", 1)[-1].removesuffix(".json")
        for b in evidence.list_blobs(f"{FAILURE_PREFIX}{tenant_id}/")
    }
    known: dict[str, str] = {e.snapshot_id: e.content_hash for e in entries}
    for report_id in sorted(by_report):
        names = by_report[report_id]
        subject = f"pack {report_id}"
        if "json" not in names:
            if report_id not in failed:
                what = " and ".join(
                    {"xlsx": "workbook", "oscal": "OSCAL document"}[k] for k in sorted(names)
                )
                result.findings.append(Finding(tenant_id, subject, f"{what} without a manifest"))
            continue
        result.packs += 1
        for problem in _pack_problems(evidence, names, metadata, known):
            result.findings.append(Finding(tenant_id, subject, problem))


def _pack_problems(
    evidence: EvidenceStore,
    names: dict[str, str],
    metadata: dict[str, dict[str, str]],
    known: dict[str, str],
) -> Iterable[str]:
    manifest_name = names["json"]
    try:
        document = json.loads(evidence.get_bytes(manifest_name) or b"null")
        pack = PackManifest.from_json(document["pack"])
        recorded_pack = str(document["packSha256"])
        workbook = document["workbook"]
        workbook_sha = str(workbook["sha256"])
        workbook_size = int(workbook["bytes"])
        report_id = report_id_of(manifest_name) or ""
        # The workbook is the one beside the manifest, whatever the manifest names.
        workbook_name = workbook_of_manifest(pack.tenant_id, report_id, manifest_name)
    except (ValueError, KeyError, TypeError) as exc:
        yield f"manifest {manifest_name} is unreadable: {type(exc).__name__}: {exc}"
        return
    redirect = manifest_redirect(pack.tenant_id, report_id, manifest_name, workbook.get("blob"))
    if redirect:
        yield redirect
    if pack.sha256 != recorded_pack:
        yield f"manifest content hashes to {pack.sha256}, the manifest says {recorded_pack}"
    oscal_name = oscal_of_manifest(pack.tenant_id, report_id, manifest_name)
    try:
        oscal = _named_oscal(document)
    except (ValueError, KeyError, TypeError) as exc:
        yield f"manifest {manifest_name}'s oscal entry is unreadable: {type(exc).__name__}: {exc}"
        return
    oscal_sha = oscal.sha256 if oscal else None
    pack_blobs = [manifest_name, workbook_name] + ([oscal_name] if oscal else [])
    for name in pack_blobs:
        meta = metadata.get(name)
        if meta is None:
            yield f"{name} is missing"
            continue
        if meta.get(META_PACK_SHA256) != recorded_pack:
            yield f"{name}: metadata pack hash {meta.get(META_PACK_SHA256)} ≠ manifest's"
        if meta.get(META_WORKBOOK_SHA256) != workbook_sha:
            yield f"{name}: metadata workbook hash {meta.get(META_WORKBOOK_SHA256)} ≠ manifest's"
        if meta.get(META_OSCAL_SHA256) != oscal_sha:
            yield f"{name}: metadata OSCAL hash {meta.get(META_OSCAL_SHA256)} ≠ manifest's"
    if workbook_name in metadata:
        yield from _file_problems(evidence, "workbook", workbook_name, workbook_sha, workbook_size)
    if oscal is None:
        if oscal_name in metadata:
            yield f"OSCAL document {oscal_name} is stored, but the manifest names none"
    elif oscal.blob != oscal_name:
        yield f"manifest names OSCAL document {oscal.blob!r}, not its own {oscal_name!r}: refused"
    elif oscal_name in metadata:
        yield from _file_problems(evidence, "OSCAL document", oscal_name, oscal.sha256, oscal.bytes)
    for ref in pack.snapshots:
        stored = known.get(ref.snapshot_id)
        if stored is None:
            yield f"names snapshot {ref.snapshot_id}, which the store no longer has"
        elif stored != ref.content_hash:
            yield (
                f"names snapshot {ref.snapshot_id} with hash {ref.content_hash}, the store says "
                f"{stored}"
            )


def _named_oscal(document: dict[str, Any]) -> StoredFile | None:
    """The OSCAL document a manifest names (None in packs made before OSCAL)."""
    named = document.get("oscal")
    if named is None:
        return None
    return StoredFile(str(named["blob"]), str(named["sha256"]), int(named["bytes"]))


def _file_problems(
    evidence: EvidenceStore, what: str, name: str, sha256: str, size: int
) -> Iterable[str]:
    """A stored file hashed again as it streams, against what its manifest says."""
    actual, actual_size = evidence.sha256(name)
    if actual != sha256 or actual_size != size:
        yield (
            f"{what} {name} hashes to {actual} ({actual_size} bytes), the manifest says "
            f"{sha256} ({size} bytes)"
        )


def anchored_tenants(evidence: EvidenceStore) -> set[str]:
    """Tenants with anchors (also those whose snapshots are all gone from the store)."""
    out = set()
    for blob in evidence.list_blobs(ANCHOR_PREFIX):
        parts = blob.name.split("/")
        if len(parts) in (3, 4) and is_tenant_id(parts[1]):
            out.add(parts[1])
    return out


def verify(
    reader: SnapshotReader,
    evidence: EvidenceStore,
    tenants: Iterable[str] | None = None,
    *,
    reports: bool = False,
    runs: RunStore | None = None,
    now: datetime | None = None,
    deadline: timedelta | None = None,
    checkpoints: str | None = None,
) -> Verification:
    """Verify the given tenants (None: every tenant the store, the anchors or the runs know).

    `reader` must be a store that does not refuse what fails verification (``anchored=False``):
    verify names every problem instead. With `runs`, every finished run's manifest is checked
    against the committed slots. `checkpoints` ``"incremental"`` starts each tenant from its
    latest intact checkpoint, ``"full"`` reads everything but checks the checkpoints too; both
    write the next checkpoint of every tenant that verifies (None: neither, read-only)."""
    if tenants is None:
        wanted = {e.tenant_id for e in reader.list_tenants()} | anchored_tenants(evidence)
        if runs is not None:
            wanted |= {t for m in runs.all_manifests() for t in m.tenant_ids}
    else:
        wanted = {t.lower() for t in tenants}
    result = Verification(tenants=sorted(wanted))
    chains: dict[str, ChainRead] = {}
    for tenant_id in result.tenants:
        chains[tenant_id] = verify_chain(
            reader, evidence, tenant_id, result, _start_from(evidence, tenant_id, checkpoints)
        )
        if reports:
            verify_packs(chains[tenant_id].entries, evidence, tenant_id, result)
    before_latest = len(result.findings)
    verify_latest(reader, evidence, wanted, result)
    if checkpoints is not None:
        latest_broken = {f.tenant_id for f in result.findings[before_latest:]}
        _record_checkpoints(evidence, chains, latest_broken, result, now or datetime.now(UTC))
    if runs is not None:
        verify_runs(
            reader,
            runs,
            wanted,
            result,
            now or datetime.now(UTC),
            deadline if deadline is not None else run_deadline(),
        )
    return result
