"""Evidence-pack records in the evidence container, read and written as typed values.

A pack's life leaves up to three kinds of record: the request (``requests/{tenant}/{id}.json``),
a failure (``failures/{tenant}/{id}.json``), and, once built, the manifest beside the workbook
and the OSCAL document (``{tenant}/{yyyy}/{mm}/{id}.json``). This repository turns them into a
``PackStatus`` (queued, succeeded or failed), so the service and the API never read a
manifest's JSON themselves. The stored files' names are derived from the tenant, the report id
and the manifest's own name, never read from the manifest (which could name any blob): a
manifest that names another blob makes the pack failed, as does one that cannot be read.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from auditor.adapters.blobs import JSON_TYPE, EvidenceExists, EvidenceStore, document_bytes
from auditor.core.evidence import (
    FAILURE_PREFIX,
    REQUEST_PREFIX,
    PackManifest,
    StoredFile,
    failure_blob_name,
    manifest_redirect,
    oscal_of_manifest,
    parse_iso,
    report_id_of,
    request_blob_name,
    workbook_of_manifest,
)

log = logging.getLogger(__name__)

QUEUED, SUCCEEDED, FAILED = "queued", "succeeded", "failed"


def _instant(value: Any) -> datetime | None:
    """A recorded instant (ISO-8601, or a period end given as a snapshot id); None if unset."""
    return parse_iso(str(value)) if value else None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class PackRequest:
    """Who asked for a pack, when, and for which period (its ends as asked)."""

    requested_at: datetime | None
    requested_by: str | None
    period_from: datetime | None
    period_to: datetime | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PackRequest:
        return cls(
            requested_at=_instant(data.get("requestedAt")),
            requested_by=_text(data.get("requestedBy")),
            period_from=_instant(data.get("from")),
            period_to=_instant(data.get("to")),
        )


@dataclass(frozen=True, slots=True)
class PackFailure:
    """Why a pack will not be built (or was refused), and the report id built instead."""

    reason: str
    failed_at: datetime | None
    superseded_by: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PackFailure:
        return cls(
            reason=str(data.get("reason", "")),
            failed_at=_instant(data.get("failedAt")),
            superseded_by=_text(data.get("supersededBy")),
        )


@dataclass(frozen=True, slots=True)
class StoredPack:
    """A stored pack: its manifest, the pack hash recorded with it, and its stored files."""

    manifest_blob: str
    manifest: PackManifest
    pack_sha256: str
    workbook: StoredFile
    oscal: StoredFile | None  # None in packs made before OSCAL


@dataclass(frozen=True, slots=True)
class PackStatus:
    """Where a requested pack stands: queued, succeeded (with its stored pack) or failed."""

    tenant_id: str
    report_id: str
    status: str
    request: PackRequest | None = None
    stored: StoredPack | None = None
    failure: PackFailure | None = None

    @property
    def manifest_blob(self) -> str | None:
        return self.stored.manifest_blob if self.stored else None

    @property
    def workbook_blob(self) -> str | None:
        return self.stored.workbook.blob if self.stored else None

    @property
    def oscal_blob(self) -> str | None:
        return self.stored.oscal.blob if self.stored and self.stored.oscal else None


def _stored_file(named: Any, blob: str) -> StoredFile:
    """A manifest's entry for a file, under the name derived for it."""
    return StoredFile(blob, str(named["sha256"]), int(named["bytes"]))


def stored_pack(
    tenant_id: str, report_id: str, manifest_blob: str, document: Any
) -> StoredPack | str:
    """The stored pack a manifest document describes, or why it is refused."""
    try:
        workbook_blob = workbook_of_manifest(tenant_id, report_id, manifest_blob)
        problem = manifest_redirect(
            tenant_id, report_id, manifest_blob, (document.get("workbook") or {}).get("blob")
        )
        if problem:
            return problem
        oscal = document.get("oscal")
        oscal_blob = oscal_of_manifest(tenant_id, report_id, manifest_blob)
        if oscal is not None and oscal.get("blob") != oscal_blob:
            named = oscal.get("blob")
            return f"manifest names OSCAL document {named!r}, not its own {oscal_blob!r}: refused"
        return StoredPack(
            manifest_blob=manifest_blob,
            manifest=PackManifest.from_json(document["pack"]),
            pack_sha256=str(document["packSha256"]),
            workbook=_stored_file(document["workbook"], workbook_blob),
            oscal=None if oscal is None else _stored_file(oscal, oscal_blob),
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        return f"manifest {manifest_blob} is unreadable: {type(exc).__name__}: {exc}"


class PackRepository:
    """A deployment's pack records in its evidence container."""

    def __init__(self, evidence: EvidenceStore) -> None:
        self.evidence = evidence

    # -- write once --------------------------------------------------------------------------

    def put_request(self, tenant_id: str, report_id: str, document: Mapping[str, Any]) -> None:
        self.evidence.put_bytes(
            request_blob_name(tenant_id, report_id), document_bytes(dict(document)), {}
        )

    def put_failure(self, tenant_id: str, report_id: str, document: Mapping[str, Any]) -> None:
        """Record a failure once; a second record is kept out (the first one stands)."""
        try:
            self.evidence.put_bytes(
                failure_blob_name(tenant_id, report_id),
                document_bytes(dict(document)),
                {},
                JSON_TYPE,
            )
        except EvidenceExists:
            log.info("failure of %s already recorded", report_id)

    # -- read --------------------------------------------------------------------------------

    def manifests(self, tenant_id: str) -> dict[str, str]:
        """Manifest blob names of a tenant's stored packs, by report id."""
        out = {}
        for blob in self.evidence.list_blobs(f"{tenant_id}/"):
            report_id = report_id_of(blob.name)
            if report_id and blob.name.endswith(".json"):
                out[report_id] = blob.name
        return out

    def status(self, tenant_id: str, report_id: str, *, now: datetime) -> PackStatus | None:
        """A pack's status; None when no such pack was ever requested or stored. `now` dates
        the refusal of a manifest that carries no generation time."""
        manifest = self.manifests(tenant_id).get(report_id)
        request = self._request(request_blob_name(tenant_id, report_id))
        if manifest is not None:
            return self.stored(tenant_id, report_id, manifest, request, now=now)
        failure = self.evidence.get_json(failure_blob_name(tenant_id, report_id))
        if failure is not None:
            return self._failed(tenant_id, report_id, failure, request)
        if request is not None:
            return PackStatus(tenant_id, report_id, QUEUED, request=request)
        return None

    def stored(
        self,
        tenant_id: str,
        report_id: str,
        manifest_blob: str,
        request: PackRequest | None,
        *,
        now: datetime,
    ) -> PackStatus:
        """A stored pack's status; failed when its manifest is refused."""
        document = self.evidence.get_json(manifest_blob)
        pack = stored_pack(tenant_id, report_id, manifest_blob, document)
        if isinstance(pack, StoredPack):
            return PackStatus(tenant_id, report_id, SUCCEEDED, request=request, stored=pack)
        log.error("pack %s of tenant %s: %s", report_id, tenant_id, pack)
        generated = _generated_at(document)
        return PackStatus(
            tenant_id,
            report_id,
            FAILED,
            request=request,
            failure=PackFailure(pack, generated or now),
        )

    def list(self, tenant_id: str, *, now: datetime) -> list[PackStatus]:
        """Every pack of a tenant: stored, failed and still queued, newest report id first."""
        stored = self.manifests(tenant_id)
        out = [
            self.stored(tenant_id, report_id, name, None, now=now)
            for report_id, name in stored.items()
        ]
        failed = {
            b.name.rsplit("/", 1)[-1].removesuffix(".json"): b.name
            for b in self.evidence.list_blobs(f"{FAILURE_PREFIX}{tenant_id}/")
        }
        for report_id, name in failed.items():
            if report_id not in stored:
                document = self.evidence.get_json(name) or {}
                out.append(self._failed(tenant_id, report_id, document, None))
        for blob in self.evidence.list_blobs(f"{REQUEST_PREFIX}{tenant_id}/"):
            report_id = blob.name.rsplit("/", 1)[-1].removesuffix(".json")
            if report_id not in stored and report_id not in failed:
                request = self._request(blob.name)
                out.append(PackStatus(tenant_id, report_id, QUEUED, request=request))
        return sorted(out, key=lambda s: s.report_id, reverse=True)

    def _request(self, name: str) -> PackRequest | None:
        document = self.evidence.get_json(name)
        return None if document is None else PackRequest.from_json(document)

    @staticmethod
    def _failed(
        tenant_id: str, report_id: str, failure: Mapping[str, Any], request: PackRequest | None
    ) -> PackStatus:
        """A recorded failure; it repeats the job, so it stands in for a missing request."""
        return PackStatus(
            tenant_id,
            report_id,
            FAILED,
            request=request or PackRequest.from_json(failure),
            failure=PackFailure.from_json(failure),
        )


def _generated_at(document: Any) -> datetime | None:
    try:
        return _instant(((document or {}).get("pack") or {}).get("generatedAt"))
    except (AttributeError, ValueError):
        return None
