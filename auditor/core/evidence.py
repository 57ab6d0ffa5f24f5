"""Evidence records: pack manifests, snapshot anchors, report ids and where each blob lives.

Pure: no I/O. The blob adapter stores what this module shapes, and `verify` checks stored
evidence with the same functions, so writer and checker cannot drift apart.

Two hashes tie a pack to its sources:

- the *pack hash* (``packSha256``) is the SHA-256 of the canonical JSON of what the pack is made
  of (tenant, period, every snapshot used with its content hash and predecessor hash, generator
  version, generation time). It is known before the workbook exists, so the workbook's Cover
  prints it;
- the *workbook hash* (``workbook.sha256``) is the SHA-256 of the .xlsx bytes, known only after
  writing; the manifest beside the workbook and the blob's metadata record it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from auditor.core.snapshot import SNAPSHOT_ID, TENANT_ID, SnapshotIndexEntry

PACK_SCHEMA = "auditor.evidence-pack/1"
ANCHOR_SCHEMA = "auditor.snapshot-anchor/2"
LEGACY_ANCHOR_SCHEMA = "auditor.snapshot-anchor/1"
REQUEST_SCHEMA = "auditor.evidence-request/1"
FAILURE_SCHEMA = "auditor.evidence-failure/1"

ANCHOR_PREFIX = "anchors/"
REQUEST_PREFIX = "requests/"
FAILURE_PREFIX = "failures/"

REPORT_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")

# Blob metadata keys (lowercase: Azure stores them so, and they must be C# identifiers).
META_REPORT_ID = "reportid"
META_TENANT_ID = "tenantid"
META_PACK_SHA256 = "packsha256"
META_WORKBOOK_SHA256 = "workbooksha256"
META_OSCAL_SHA256 = "oscalsha256"
META_START_SNAPSHOT = "startsnapshot"
META_END_SNAPSHOT = "endsnapshot"
META_SNAPSHOT_HASHES = "snapshothashes"
META_GENERATOR = "generator"
META_CONTENT_HASH = "contenthash"
META_PREVIOUS_HASH = "previoushash"
META_SNAPSHOT_ID = "snapshotid"
META_ATTEMPT = "attempt"
META_INDEX_DIGEST = "indexdigest"


def canonical_json(value: Any) -> bytes:
    """The one byte form of a JSON value that its hash is taken over: sorted keys, no spaces,
    UTF-8. Equal values always give equal bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def iso(instant: datetime) -> str:
    """UTC, second precision, with a Z: the one spelling of an instant in evidence records."""
    if instant.tzinfo is None:
        raise ValueError("evidence instants must be timezone-aware")
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """Inverse of iso() (also accepts any ISO-8601 instant with an offset)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def new_report_id(generated_at: datetime, token: str) -> str:
    """A report id: the generation instant and 8 random hex digits (`token`).

    A rerun of the same period gets a new id, so a stored pack is never overwritten.
    """
    report_id = f"{generated_at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{token}"
    if not REPORT_ID.match(report_id):
        raise ValueError(f"token must be 8 lowercase hex digits, got {token!r}")
    return report_id


def is_report_id(value: str) -> bool:
    return bool(REPORT_ID.match(value))


# ---------------------------------------------------------------------------------------------
# Blob names
# ---------------------------------------------------------------------------------------------


def pack_folder(tenant_id: str, period_end: datetime) -> str:
    """``{tenantId}/{yyyy}/{mm}``: the month of the period's last snapshot."""
    end = period_end.astimezone(UTC)
    return f"{tenant_id}/{end:%Y}/{end:%m}"


def workbook_blob_name(tenant_id: str, period_end: datetime, report_id: str) -> str:
    return f"{pack_folder(tenant_id, period_end)}/{report_id}.xlsx"


def manifest_blob_name(tenant_id: str, period_end: datetime, report_id: str) -> str:
    return f"{pack_folder(tenant_id, period_end)}/{report_id}.json"


# The OSCAL assessment results beside the workbook. Not a ``{reportId}.json`` name, so nothing
# that looks for manifests ever takes it for one.
OSCAL_SUFFIX = ".oscal.json"


def oscal_blob_name(tenant_id: str, period_end: datetime, report_id: str) -> str:
    return f"{pack_folder(tenant_id, period_end)}/{report_id}{OSCAL_SUFFIX}"


ATTEMPT = re.compile(r"^[0-9a-f]{32}$")


def _checked(tenant_id: str, snapshot_id: str) -> None:
    # Names are built from validated parts only: never a caller's text in a blob name.
    if not TENANT_ID.match(tenant_id) or tenant_id != tenant_id.lower():
        raise ValueError(f"not a tenant id: {tenant_id!r}")
    if not SNAPSHOT_ID.match(snapshot_id):
        raise ValueError(f"not a snapshot id: {snapshot_id!r}")


def anchor_blob_name(tenant_id: str, snapshot_id: str, attempt: str) -> str:
    """``anchors/{tenant}/{snapshot}/{attempt}.json``: one anchor per write attempt."""
    _checked(tenant_id, snapshot_id)
    if not ATTEMPT.match(attempt):
        raise ValueError(f"not an attempt id: {attempt!r}")
    return f"{ANCHOR_PREFIX}{tenant_id}/{snapshot_id}/{attempt}.json"


def legacy_anchor_blob_name(tenant_id: str, snapshot_id: str) -> str:
    """``anchors/{tenant}/{snapshot}.json``: the one anchor per snapshot of 0.1.0."""
    _checked(tenant_id, snapshot_id)
    return f"{ANCHOR_PREFIX}{tenant_id}/{snapshot_id}.json"


def request_blob_name(tenant_id: str, report_id: str) -> str:
    return f"{REQUEST_PREFIX}{tenant_id}/{report_id}.json"


def failure_blob_name(tenant_id: str, report_id: str) -> str:
    return f"{FAILURE_PREFIX}{tenant_id}/{report_id}.json"


_PACK_BLOB = re.compile(
    r"^([0-9a-f-]{36})/(\d{4})/(\d{2})/(\d{8}T\d{6}Z-[0-9a-f]{8})\.(json|xlsx)$"
)


def workbook_of_manifest(tenant_id: str, report_id: str, manifest_blob: str) -> str:
    """The workbook beside a stored manifest: derived from the tenant, the report id and the
    manifest's own name, never read from the manifest (which could name any blob).
    ValueError when the manifest is not where that tenant's report lives."""
    match = _PACK_BLOB.match(manifest_blob)
    if (
        match is None
        or match.group(1) != tenant_id
        or match.group(4) != report_id
        or match.group(5) != "json"
    ):
        raise ValueError(f"{manifest_blob!r} is not the manifest of {tenant_id}/{report_id}")
    return f"{manifest_blob.removesuffix('.json')}.xlsx"


def oscal_of_manifest(tenant_id: str, report_id: str, manifest_blob: str) -> str:
    """The OSCAL document beside a stored manifest, derived like its workbook's name."""
    workbook = workbook_of_manifest(tenant_id, report_id, manifest_blob)
    return f"{workbook.removesuffix('.xlsx')}{OSCAL_SUFFIX}"


def manifest_redirect(tenant_id: str, report_id: str, manifest_blob: str, named: Any) -> str | None:
    """Why a manifest's `workbook.blob` is refused (None when it names its own workbook)."""
    expected = workbook_of_manifest(tenant_id, report_id, manifest_blob)
    if named != expected:
        return f"manifest names workbook {named!r}, not its own {expected!r}: refused"
    return None


def pack_file_of(blob_name: str) -> tuple[str, str] | None:
    """(report id, kind) of a pack blob: kind ``json`` (manifest), ``xlsx`` or ``oscal``."""
    leaf = blob_name.rsplit("/", 1)[-1]
    if leaf.endswith(OSCAL_SUFFIX) and is_report_id(leaf.removesuffix(OSCAL_SUFFIX)):
        return leaf.removesuffix(OSCAL_SUFFIX), "oscal"
    report_id = report_id_of(blob_name)
    return None if report_id is None else (report_id, leaf.rsplit(".", 1)[-1])


def report_id_of(blob_name: str) -> str | None:
    """The report id of a pack's workbook or manifest blob name (None for any other blob)."""
    leaf = blob_name.rsplit("/", 1)[-1]
    stem, _, ext = leaf.rpartition(".")
    if ext not in ("xlsx", "json") or not is_report_id(stem):
        return None
    return stem


# ---------------------------------------------------------------------------------------------
# Pack manifest
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SnapshotRef:
    """A snapshot as evidence names it: id, times, status, and its place in the hash chain."""

    snapshot_id: str
    scheduled_at: datetime
    finished_at: datetime
    status: str
    content_hash: str
    previous_snapshot_id: str | None
    previous_hash: str | None
    # Spelled in the manifest only when set, so that older manifests keep their pack hash.
    attempt: str = ""
    backfill: bool = False
    supersedes: str = ""  # the failed attempt of the same slot this snapshot retook

    @classmethod
    def of(cls, entry: SnapshotIndexEntry) -> SnapshotRef:
        return cls(
            snapshot_id=entry.snapshot_id,
            scheduled_at=entry.scheduled_at,
            finished_at=entry.finished_at,
            status=entry.status.value,
            content_hash=entry.content_hash,
            previous_snapshot_id=entry.previous_snapshot_id,
            previous_hash=entry.previous_hash,
            attempt=entry.attempt,
            backfill=entry.backfill,
            supersedes=entry.supersedes,
        )

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "snapshotId": self.snapshot_id,
            "scheduledAt": iso(self.scheduled_at),
            "finishedAt": iso(self.finished_at),
            "status": self.status,
            "contentHash": self.content_hash,
            "previousSnapshotId": self.previous_snapshot_id,
            "previousHash": self.previous_hash,
        }
        if self.attempt:
            document["attempt"] = self.attempt
        if self.backfill:
            document["backfill"] = True
        if self.supersedes:
            document["supersedes"] = self.supersedes
        return document

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SnapshotRef:
        return cls(
            snapshot_id=str(data["snapshotId"]),
            scheduled_at=parse_iso(str(data["scheduledAt"])),
            finished_at=parse_iso(str(data["finishedAt"])),
            status=str(data["status"]),
            content_hash=str(data["contentHash"]),
            previous_snapshot_id=data.get("previousSnapshotId"),
            previous_hash=data.get("previousHash"),
            attempt=str(data.get("attempt") or ""),
            backfill=data.get("backfill") is True,
            supersedes=str(data.get("supersedes") or ""),
        )


@dataclass(frozen=True, slots=True)
class PackManifest:
    """What a pack is made of, fixed before its workbook is written.

    ``snapshots`` are every committed snapshot from the period's first to its last, oldest
    first; ``start`` and ``end`` name the two the pack compares.
    """

    report_id: str
    tenant_id: str
    tenant_name: str
    period_from: datetime
    period_to: datetime
    start: str
    end: str
    snapshots: tuple[SnapshotRef, ...]
    generator_version: str
    generated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": PACK_SCHEMA,
            "reportId": self.report_id,
            "tenantId": self.tenant_id,
            "tenantName": self.tenant_name,
            "period": {"from": iso(self.period_from), "to": iso(self.period_to)},
            "startSnapshotId": self.start,
            "endSnapshotId": self.end,
            "snapshots": [ref.to_json() for ref in self.snapshots],
            "generatorVersion": self.generator_version,
            "generatedAt": iso(self.generated_at),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PackManifest:
        return cls(
            report_id=str(data["reportId"]),
            tenant_id=str(data["tenantId"]),
            tenant_name=str(data.get("tenantName", "")),
            period_from=parse_iso(str(data["period"]["from"])),
            period_to=parse_iso(str(data["period"]["to"])),
            start=str(data["startSnapshotId"]),
            end=str(data["endSnapshotId"]),
            snapshots=tuple(SnapshotRef.from_json(s) for s in data["snapshots"]),
            generator_version=str(data["generatorVersion"]),
            generated_at=parse_iso(str(data["generatedAt"])),
        )

    @property
    def sha256(self) -> str:
        """The pack hash: SHA-256 of this manifest's canonical JSON."""
        return sha256_hex(canonical_json(self.to_json()))

    @property
    def end_snapshot(self) -> SnapshotRef:
        return next(ref for ref in self.snapshots if ref.snapshot_id == self.end)


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One stored file of a pack as its manifest names it: blob name, SHA-256 and size."""

    blob: str
    sha256: str
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"blob": self.blob, "sha256": self.sha256, "bytes": self.bytes}


def stored_manifest(
    pack: PackManifest,
    workbook_blob: str,
    workbook_sha256: str,
    workbook_bytes: int,
    oscal: StoredFile | None = None,
) -> dict[str, Any]:
    """The JSON document stored beside the workbook (packs before OSCAL have no ``oscal``)."""
    document: dict[str, Any] = {
        "schema": PACK_SCHEMA,
        "pack": pack.to_json(),
        "packSha256": pack.sha256,
        "workbook": {"blob": workbook_blob, "sha256": workbook_sha256, "bytes": workbook_bytes},
    }
    if oscal is not None:
        document["oscal"] = oscal.to_json()
    return document


def snapshot_hashes_text(pack: PackManifest) -> str:
    """Blob-metadata form of the snapshots' hashes: ``id:hash`` pairs joined by commas.

    Only the two compared snapshots (metadata is capped at 8 KiB); the manifest has them all.
    """
    refs = [ref for ref in pack.snapshots if ref.snapshot_id in (pack.start, pack.end)]
    return ",".join(f"{ref.snapshot_id}:{ref.content_hash}" for ref in refs)


def pack_metadata(
    pack: PackManifest, workbook_sha256: str, oscal_sha256: str | None = None
) -> dict[str, str]:
    """Blob metadata of every pack blob: the hashes again, readable without opening anything."""
    oscal = {META_OSCAL_SHA256: oscal_sha256} if oscal_sha256 else {}
    return {
        **oscal,
        META_REPORT_ID: pack.report_id,
        META_TENANT_ID: pack.tenant_id,
        META_PACK_SHA256: pack.sha256,
        META_WORKBOOK_SHA256: workbook_sha256,
        META_START_SNAPSHOT: pack.start,
        META_END_SNAPSHOT: pack.end,
        META_SNAPSHOT_HASHES: snapshot_hashes_text(pack),
        META_GENERATOR: pack.generator_version,
    }


# ---------------------------------------------------------------------------------------------
# Snapshot anchors
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Anchor:
    """One write attempt's committed snapshot, kept in write-once storage before the index row
    that makes it visible is committed.

    ``index_digest`` covers every property of the committed index row (and so of the tenant's
    latest row, its copy); ``content_digest`` every stored content entity. A legacy anchor
    (schema ``auditor.snapshot-anchor/1``, one per snapshot id, no attempt) has neither.
    """

    tenant_id: str
    snapshot_id: str
    scheduled_at: datetime
    content_hash: str
    previous_snapshot_id: str | None
    previous_hash: str | None
    attempt: str = ""
    index_digest: str = ""
    content_digest: str = ""
    supersedes: str = ""
    schema: str = ANCHOR_SCHEMA
    # Property name -> SHA-256 of its stored value: what lets `verify` name the edited ones.
    index_properties: dict[str, str] = field(default_factory=dict)

    @property
    def legacy(self) -> bool:
        return self.schema == LEGACY_ANCHOR_SCHEMA

    @classmethod
    def of(cls, entry: SnapshotIndexEntry, index_digest: str, content_digest: str) -> Anchor:
        return cls(
            tenant_id=entry.tenant_id,
            snapshot_id=entry.snapshot_id,
            scheduled_at=entry.scheduled_at,
            content_hash=entry.content_hash,
            previous_snapshot_id=entry.previous_snapshot_id,
            previous_hash=entry.previous_hash,
            attempt=entry.attempt,
            index_digest=index_digest,
            content_digest=content_digest,
            supersedes=entry.supersedes,
            index_properties=dict(entry.row_properties),
        )

    @property
    def blob_name(self) -> str:
        if self.legacy:
            return legacy_anchor_blob_name(self.tenant_id, self.snapshot_id)
        return anchor_blob_name(self.tenant_id, self.snapshot_id, self.attempt)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "schema": self.schema,
            "tenantId": self.tenant_id,
            "snapshotId": self.snapshot_id,
            "scheduledAt": iso(self.scheduled_at),
            "contentHash": self.content_hash,
            "previousSnapshotId": self.previous_snapshot_id,
            "previousHash": self.previous_hash,
        }
        if not self.legacy:
            document.update(
                attempt=self.attempt,
                indexDigest=self.index_digest,
                contentDigest=self.content_digest,
                supersedes=self.supersedes or None,
                indexProperties=dict(sorted(self.index_properties.items())),
            )
        return document

    def to_bytes(self) -> bytes:
        """Deterministic: anchoring the same snapshot twice gives the same bytes."""
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Anchor:
        schema = str(data.get("schema", LEGACY_ANCHOR_SCHEMA))
        if schema not in (ANCHOR_SCHEMA, LEGACY_ANCHOR_SCHEMA):
            raise ValueError(f"not a snapshot anchor: schema {schema!r}")
        return cls(
            tenant_id=str(data["tenantId"]),
            snapshot_id=str(data["snapshotId"]),
            scheduled_at=parse_iso(str(data["scheduledAt"])),
            content_hash=str(data["contentHash"]),
            previous_snapshot_id=data.get("previousSnapshotId"),
            previous_hash=data.get("previousHash"),
            attempt=str(data.get("attempt") or ""),
            index_digest=str(data.get("indexDigest") or ""),
            content_digest=str(data.get("contentDigest") or ""),
            supersedes=str(data.get("supersedes") or ""),
            schema=schema,
            index_properties={
                str(k): str(v) for k, v in (data.get("indexProperties") or {}).items()
            },
        )

    def metadata(self) -> dict[str, str]:
        return {
            META_TENANT_ID: self.tenant_id,
            META_SNAPSHOT_ID: self.snapshot_id,
            META_ATTEMPT: self.attempt,
            META_CONTENT_HASH: self.content_hash,
            META_PREVIOUS_HASH: self.previous_hash or "",
            META_INDEX_DIGEST: self.index_digest,
        }


def anchor_mismatch(anchor: Anchor, entry: SnapshotIndexEntry) -> str | None:
    """How a committed snapshot's index entry disagrees with its anchor (None when it agrees).

    The index digest covers every property of the row; the named fields say what moved."""
    if anchor.legacy:
        return (
            f"anchored by the legacy scheme ({LEGACY_ANCHOR_SCHEMA}), which does not cover the "
            "index row; not served (docs/evidence.md, Legacy anchors)"
        )
    problems = []
    if anchor.content_hash != entry.content_hash:
        problems.append(f"content hash {entry.content_hash} but anchored {anchor.content_hash}")
    if anchor.previous_hash != entry.previous_hash:
        problems.append(
            f"predecessor hash {entry.previous_hash} but anchored {anchor.previous_hash}"
        )
    if anchor.previous_snapshot_id != entry.previous_snapshot_id:
        problems.append(
            f"predecessor {entry.previous_snapshot_id} but anchored {anchor.previous_snapshot_id}"
        )
    if not problems and anchor.index_digest != entry.row_digest:
        stored, anchored = entry.row_properties, anchor.index_properties
        changed = sorted(k for k in set(stored) | set(anchored) if stored.get(k) != anchored.get(k))
        problems.append(
            "index row properties differ from what the attempt committed: "
            + (", ".join(changed) if changed and anchored else f"digest {entry.row_digest[:16]}…")
        )
    return "; ".join(problems) or None


# ---------------------------------------------------------------------------------------------
# Report jobs (queue messages and request records)
# ---------------------------------------------------------------------------------------------

REPORT_JOB_FORMAT = "auditor-report-job/1"
# A period end: a snapshot id, or an ISO-8601 instant with a zone.
PERIOD_REF = re.compile(
    r"^(\d{8}T\d{6}Z|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}))$"
)


class ReportJobError(ValueError):
    """A queue message is not a report job (it ends in the poison queue)."""


@dataclass(frozen=True, slots=True)
class ReportJob:
    """Build one pack: tenant, report id (chosen at request time, so its status can be asked
    for at once), and the period's ends as given (a snapshot id or an instant; None: default).
    """

    tenant_id: str
    report_id: str
    start: str | None
    end: str | None
    requested_at: datetime
    requested_by: str

    def to_json(self) -> dict[str, Any]:
        return {
            "format": REPORT_JOB_FORMAT,
            "tenantId": self.tenant_id,
            "reportId": self.report_id,
            "from": self.start,
            "to": self.end,
            "requestedAt": iso(self.requested_at),
            "requestedBy": self.requested_by,
        }

    def encode(self) -> str:
        return canonical_json(self.to_json()).decode("utf-8")

    @classmethod
    def decode(cls, text: str | bytes) -> ReportJob:
        try:
            obj = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ReportJobError(f"message is not JSON: {exc}") from None
        if not isinstance(obj, dict) or obj.get("format") != REPORT_JOB_FORMAT:
            raise ReportJobError(f"message is not a {REPORT_JOB_FORMAT} job")
        tenant_id, report_id = obj.get("tenantId"), obj.get("reportId")
        if not isinstance(tenant_id, str) or not TENANT_ID.match(tenant_id):
            raise ReportJobError(f"job has no valid tenantId: {tenant_id!r}")
        if not isinstance(report_id, str) or not is_report_id(report_id):
            raise ReportJobError(f"job has no valid reportId: {report_id!r}")
        ends = []
        for key in ("from", "to"):
            value = obj.get(key)
            if value is not None and (not isinstance(value, str) or not PERIOD_REF.match(value)):
                raise ReportJobError(f"job's {key!r} is not a snapshot id or instant: {value!r}")
            ends.append(value)
        try:
            requested_at = parse_iso(str(obj.get("requestedAt")))
        except ValueError:
            raise ReportJobError("job has no valid requestedAt") from None
        return cls(
            tenant_id=tenant_id.lower(),
            report_id=report_id,
            start=ends[0],
            end=ends[1],
            requested_at=requested_at,
            requested_by=str(obj.get("requestedBy") or ""),
        )


def previous_month(now: datetime) -> tuple[datetime, datetime]:
    """The calendar month before `now` (UTC) as (first instant, last second)."""
    first_of_this = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month_end = first_of_this - timedelta(seconds=1)
    return last_month_end.replace(day=1, hour=0, minute=0, second=0), last_month_end
