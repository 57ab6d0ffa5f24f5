"""Verify checkpoints (pure): what a passing `verify` of one tenant saw, so that the next daily
check reads only what is new.

A checkpoint names the last snapshot it verified (id, attempt, content hash, index and content
digests), a digest of every index row it covered (the chain digest), and the checkpoint before
it. It is stored write-once in the evidence container beside the anchors, numbered 1, 2, 3, ...
(`checkpoints/{tenantId}/{sequence}.json`): the number is the name, so two verifiers racing for
the same number cannot both write it, and a deleted checkpoint leaves a gap in the numbers.

The document carries the SHA-256 of its own canonical body (as a manifest does), so an edited
body is seen; what a checkpoint claims is then checked against the anchors and the store before
anything behind it is trusted (auditor/services/verify_checkpoint.py).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from auditor import __version__
from auditor.core.evidence import canonical_json, iso, parse_iso, sha256_hex
from auditor.core.snapshot import SnapshotIndexEntry, is_tenant_id

CHECKPOINT_SCHEMA = "auditor.verify-checkpoint/1"
CHECKPOINT_PREFIX = "checkpoints/"
VERIFIER_VERSION = f"auditor-verify/{__version__}"
META_CHECKPOINT_SHA256 = "checkpointsha256"
META_TENANT_ID = "tenantid"
META_SNAPSHOT_ID = "snapshotid"
# Zero-padded so that name order is number order.
_NAME = re.compile(r"^checkpoints/([0-9a-f-]{36})/(\d{9})\.json$")


def checkpoint_folder(tenant_id: str) -> str:
    if not is_tenant_id(tenant_id):
        raise ValueError(f"not a tenant id: {tenant_id!r}")
    return f"{CHECKPOINT_PREFIX}{tenant_id}/"


def checkpoint_blob_name(tenant_id: str, sequence: int) -> str:
    if sequence < 1:
        raise ValueError(f"checkpoint numbers start at 1, got {sequence}")
    return f"{checkpoint_folder(tenant_id)}{sequence:09d}.json"


def sequence_of(blob_name: str) -> int | None:
    """The number of a checkpoint blob (None for any other name)."""
    match = _NAME.match(blob_name)
    return int(match.group(2)) if match else None


def chain_digest(entries: Iterable[SnapshotIndexEntry]) -> str:
    """SHA-256 over every covered index row in chain order: id, attempt, content hash and the
    digest of all its stored properties. A row rewritten, removed or inserted changes it."""
    digest = hashlib.sha256()
    for entry in entries:
        line = f"{entry.snapshot_id}\n{entry.attempt}\n{entry.content_hash}\n{entry.row_digest}\n"
        digest.update(line.encode())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A passing verification of a tenant's chain up to and including `snapshot_id`."""

    tenant_id: str
    sequence: int
    snapshot_id: str  # the chain head it verified
    attempt: str
    content_hash: str
    index_digest: str
    content_digest: str
    snapshots: int  # how many committed snapshots it covers (oldest to the head)
    chain_digest: str
    previous_sha256: str | None  # the checkpoint numbered sequence - 1 (None for the first)
    mode: str  # "full" or "incremental": how the verifier that wrote it checked
    verified_at: datetime
    verifier: str = VERIFIER_VERSION
    schema: str = CHECKPOINT_SCHEMA

    @classmethod
    def of(
        cls,
        covered: list[SnapshotIndexEntry],
        content_digest: str,
        *,
        sequence: int,
        previous_sha256: str | None,
        mode: str,
        verified_at: datetime,
    ) -> Checkpoint:
        head = covered[-1]
        return cls(
            tenant_id=head.tenant_id,
            sequence=sequence,
            snapshot_id=head.snapshot_id,
            attempt=head.attempt,
            content_hash=head.content_hash,
            index_digest=head.row_digest,
            content_digest=content_digest,
            snapshots=len(covered),
            chain_digest=chain_digest(covered),
            previous_sha256=previous_sha256,
            mode=mode,
            verified_at=verified_at,
        )

    @property
    def blob_name(self) -> str:
        return checkpoint_blob_name(self.tenant_id, self.sequence)

    def body(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "tenantId": self.tenant_id,
            "sequence": self.sequence,
            "head": {
                "snapshotId": self.snapshot_id,
                "attempt": self.attempt,
                "contentHash": self.content_hash,
                "indexDigest": self.index_digest,
                "contentDigest": self.content_digest,
            },
            "snapshots": self.snapshots,
            "chainDigest": self.chain_digest,
            "previousCheckpointSha256": self.previous_sha256,
            "mode": self.mode,
            "verifiedAt": iso(self.verified_at),
            "verifier": self.verifier,
        }

    @property
    def sha256(self) -> str:
        return sha256_hex(canonical_json(self.body()))

    def to_bytes(self) -> bytes:
        return canonical_json({"checkpoint": self.body(), "checkpointSha256": self.sha256})

    def metadata(self) -> dict[str, str]:
        return {
            META_TENANT_ID: self.tenant_id,
            META_SNAPSHOT_ID: self.snapshot_id,
            META_CHECKPOINT_SHA256: self.sha256,
        }


class CheckpointUnreadable(ValueError):
    """A stored checkpoint that is not one, or whose body does not hash to what it says."""


def parse_checkpoint(document: Any, metadata: Mapping[str, str]) -> Checkpoint:
    """A stored checkpoint document, checked against its own hash and its blob's metadata."""
    try:
        body = document["checkpoint"]
        recorded = str(document["checkpointSha256"])
        if body["schema"] != CHECKPOINT_SCHEMA:
            raise CheckpointUnreadable(f"schema {body['schema']!r} is not {CHECKPOINT_SCHEMA}")
        head = body["head"]
        checkpoint = Checkpoint(
            tenant_id=str(body["tenantId"]),
            sequence=int(body["sequence"]),
            snapshot_id=str(head["snapshotId"]),
            attempt=str(head["attempt"]),
            content_hash=str(head["contentHash"]),
            index_digest=str(head["indexDigest"]),
            content_digest=str(head["contentDigest"]),
            snapshots=int(body["snapshots"]),
            chain_digest=str(body["chainDigest"]),
            previous_sha256=body["previousCheckpointSha256"],
            mode=str(body["mode"]),
            verified_at=parse_iso(str(body["verifiedAt"])),
            verifier=str(body["verifier"]),
        )
    except CheckpointUnreadable:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointUnreadable(f"{type(exc).__name__}: {exc}") from exc
    # Recomputed from the parsed fields: a field edited, added or removed changes it.
    if checkpoint.body() != body or checkpoint.sha256 != recorded:
        raise CheckpointUnreadable(
            f"its body hashes to {sha256_hex(canonical_json(body))}, the document says {recorded}"
        )
    if metadata.get(META_CHECKPOINT_SHA256) != recorded:
        raise CheckpointUnreadable(
            f"blob metadata checkpoint hash {metadata.get(META_CHECKPOINT_SHA256)} ≠ the document's"
        )
    return checkpoint
