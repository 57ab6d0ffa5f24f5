"""The evidence container: write-once blobs for packs, manifests, snapshot anchors and requests.

In Azure the container has a version-level immutability (WORM) policy (infra/main.bicep), so a
stored version can be neither changed nor deleted until its retention ends, and any attempt is
logged. This adapter adds the application's own rule on top: it never overwrites a name. Every
upload is conditional on the name being free (``If-None-Match: *``); a second writer of the same
name gets EvidenceExists.

Uploads stream from a file in blocks (never one bytes object of the whole workbook); downloads
stream in chunks. Read links are short-lived user-delegation SAS URLs, which need an Entra ID
identity (the identity-based connection): with a connection string (Azurite, local runs) the
API streams the blob itself instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    ContentSettings,
    UserDelegationKey,
    generate_blob_sas,
)

from auditor.adapters.storage import RETRY_OPTIONS
from auditor.core.evidence import (
    ANCHOR_PREFIX,
    ATTEMPT,
    Anchor,
    anchor_blob_name,
    canonical_json,
    legacy_anchor_blob_name,
)
from auditor.settings import STORAGE_CONNECTION, Settings, SettingsError, require_storage

log = logging.getLogger(__name__)

# Blobs up to this size go in one request; larger ones in blocks of BLOCK_BYTES read one at a
# time from the file, so memory holds at most a few blocks whatever the workbook's size.
SINGLE_PUT_BYTES = 4 * 1024 * 1024
BLOCK_BYTES = 4 * 1024 * 1024
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
JSON_TYPE = "application/json"
# A read link lives this long (the issue asks for short-lived links).
READ_LINK_LIFETIME = timedelta(minutes=15)


class EvidenceExists(RuntimeError):
    """A blob of that name is already stored: evidence is never overwritten."""


class AnchorConflict(RuntimeError):
    """A snapshot is already anchored with different hashes than the ones being anchored."""


@dataclass(frozen=True, slots=True)
class StoredBlob:
    name: str
    size: int
    metadata: dict[str, str]
    created_at: datetime | None


def blob_service_client(
    settings: Settings, credential: TokenCredential | None = None, **options: Any
) -> BlobServiceClient:
    """A blob client on AUDITOR_STORAGE: connection string, or blob service URI + identity."""
    storage = require_storage(settings)
    kwargs = {
        **RETRY_OPTIONS,
        "max_single_put_size": SINGLE_PUT_BYTES,
        "max_block_size": BLOCK_BYTES,
        **options,
    }
    if storage.connection_string:
        return BlobServiceClient.from_connection_string(storage.connection_string, **kwargs)
    if not storage.blob_uri:
        raise SettingsError(f"{STORAGE_CONNECTION}__blobServiceUri", "is not set")
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    return BlobServiceClient(storage.blob_uri, credential=credential, **kwargs)


class EvidenceStore:
    """Write-once evidence blobs in one container."""

    def __init__(self, service: BlobServiceClient, container: str, *, identity_based: bool):
        self._service = service
        self.container_name = container
        self.container: ContainerClient = service.get_container_client(container)
        # With an Entra identity (Azure) read links are user-delegation SAS URLs.
        self.identity_based = identity_based

    @classmethod
    def from_settings(
        cls, settings: Settings, credential: TokenCredential | None = None, **options: Any
    ) -> EvidenceStore:
        storage = require_storage(settings)
        return cls(
            blob_service_client(settings, credential, **options),
            settings.evidence_container,
            identity_based=storage.connection_string is None,
        )

    def close(self) -> None:
        self._service.close()

    def __enter__(self) -> EvidenceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create_container(self) -> None:
        """Create the container when missing (local runs; in Azure the template creates it)."""
        with contextlib.suppress(ResourceExistsError):
            self.container.create_container()

    # -- write once ------------------------------------------------------------------------

    def put_file(
        self, name: str, path: Path, metadata: Mapping[str, str], content_type: str = XLSX_TYPE
    ) -> None:
        """Upload a file under a new name, streamed in blocks; EvidenceExists if taken."""
        size = path.stat().st_size
        with path.open("rb") as stream:
            self._put(name, stream, size, metadata, content_type)

    def put_bytes(
        self, name: str, data: bytes, metadata: Mapping[str, str], content_type: str = JSON_TYPE
    ) -> None:
        """Upload a small document (manifest, anchor, request) under a new name."""
        self._put(name, data, len(data), metadata, content_type)

    def _put(
        self, name: str, data: Any, size: int, metadata: Mapping[str, str], content_type: str
    ) -> None:
        try:
            self._upload(name, data, size, metadata, content_type)
        except ResourceNotFoundError:
            if self.identity_based:
                raise  # in Azure the template creates the container with its WORM policy
            self.create_container()  # a fresh local storage (Azurite)
            if hasattr(data, "seek"):
                data.seek(0)
            self._upload(name, data, size, metadata, content_type)

    def _upload(
        self, name: str, data: Any, size: int, metadata: Mapping[str, str], content_type: str
    ) -> None:
        try:
            self.container.upload_blob(
                name,
                data,
                length=size,
                overwrite=False,
                if_none_match="*",  # the service refuses the write if the name exists
                metadata=dict(metadata),
                content_settings=ContentSettings(content_type=content_type),
                max_concurrency=2,
            )
        except ResourceExistsError as exc:
            raise EvidenceExists(f"{self.container_name}/{name} exists: never overwritten") from exc

    # -- read ------------------------------------------------------------------------------

    def get_bytes(self, name: str) -> bytes | None:
        """A small blob's content (None when absent)."""
        try:
            return self.container.download_blob(name).readall()
        except ResourceNotFoundError:
            return None

    def get_json(self, name: str) -> Any:
        data = self.get_bytes(name)
        return None if data is None else json.loads(data)

    def properties(self, name: str) -> StoredBlob | None:
        try:
            props = self.container.get_blob_client(name).get_blob_properties()
        except ResourceNotFoundError:
            return None
        return StoredBlob(name, props.size, dict(props.metadata or {}), props.creation_time)

    def iter_chunks(self, name: str) -> Iterator[bytes]:
        """A blob's content in chunks, as it downloads (ResourceNotFoundError when absent)."""
        downloader = self.container.download_blob(name, max_concurrency=1)
        yield from downloader.chunks()

    def sha256(self, name: str) -> tuple[str, int]:
        """SHA-256 (hex) and size of a blob, hashed as it streams."""
        digest = hashlib.sha256()
        size = 0
        for chunk in self.iter_chunks(name):
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size

    def list_blobs(self, prefix: str) -> list[StoredBlob]:
        """Blobs whose names start with `prefix`, with their metadata, in name order (none when
        the container does not exist yet)."""
        try:
            return [
                StoredBlob(b.name, b.size, dict(b.metadata or {}), b.creation_time)
                for b in self.container.list_blobs(name_starts_with=prefix, include=["metadata"])
            ]
        except ResourceNotFoundError:
            return []

    def read_link(self, name: str, now: datetime | None = None) -> str:
        """A read-only URL of the blob valid for READ_LINK_LIFETIME (user-delegation SAS)."""
        if not self.identity_based:
            raise RuntimeError("read links need an Entra identity; stream the blob instead")
        start = (now or datetime.now(UTC)) - timedelta(minutes=5)  # clock skew
        expiry = start + timedelta(minutes=5) + READ_LINK_LIFETIME
        key = self._service.get_user_delegation_key(start, expiry)
        return read_link_url(self.container.url, self.container_name, name, key, start, expiry)

    # -- anchors ---------------------------------------------------------------------------

    def write_anchor(self, anchor: Anchor) -> bool:
        """Write one attempt's anchor, once; True when written now, False when the same bytes
        were already there (a retried write). AnchorConflict when other bytes are stored."""
        try:
            self.put_bytes(anchor.blob_name, anchor.to_bytes(), anchor.metadata())
            return True
        except EvidenceExists:
            if self.get_bytes(anchor.blob_name) == anchor.to_bytes():
                return False
            raise AnchorConflict(
                f"snapshot {anchor.tenant_id}/{anchor.snapshot_id} attempt {anchor.attempt} is "
                "anchored with other values"
            ) from None

    def read_anchor(self, tenant_id: str, snapshot_id: str, attempt: str) -> Anchor | None:
        """The anchor of one attempt; else the snapshot's legacy anchor; else None."""
        names = [legacy_anchor_blob_name(tenant_id, snapshot_id)]
        if ATTEMPT.match(attempt):
            names.insert(0, anchor_blob_name(tenant_id, snapshot_id, attempt))
        for name in names:
            try:
                document = self.get_json(name)
            except ResourceNotFoundError:  # the container itself is missing
                return None
            if document is not None:
                return Anchor.from_json(document)
        return None

    def list_anchors(self, tenant_id: str) -> list[Anchor]:
        """Every anchor of a tenant (legacy ones included), in blob-name order."""
        out: list[Anchor] = []
        for blob in self.list_blobs(f"{ANCHOR_PREFIX}{tenant_id}/"):
            data = self.get_bytes(blob.name)
            if data is not None:
                out.append(Anchor.from_json(json.loads(data)))
        return out

    def exists(self) -> bool:
        """Whether the container exists (verify before the first run has none)."""
        try:
            self.container.get_container_properties()
        except ResourceNotFoundError:
            return False
        return True


def read_link_url(
    container_url: str,
    container: str,
    name: str,
    key: UserDelegationKey,
    start: datetime,
    expiry: datetime,
) -> str:
    """A user-delegation SAS URL that may only read one blob, from `start` to `expiry`."""
    account = container_url.split("//", 1)[1].split(".", 1)[0]
    token = generate_blob_sas(
        account_name=account,
        container_name=container,
        blob_name=name,
        user_delegation_key=key,
        permission=BlobSasPermissions(read=True),
        start=start,
        expiry=expiry,
        protocol="https",
        content_disposition=f'attachment; filename="{name.rsplit("/", 1)[-1]}"',
    )
    return f"{container_url}/{name}?{token}"


def document_bytes(document: Any) -> bytes:
    """The stored form of a JSON evidence document (canonical, so equal content is equal)."""
    return canonical_json(document)
