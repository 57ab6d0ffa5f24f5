"""Incremental `verify`: start from the tenant's latest write-once checkpoint instead of the
first snapshot, after checking that the checkpoint still holds.

What is trusted, and why. A checkpoint records that a verifier read every covered snapshot's
content back, hashed it and compared it and its index row with the anchor of the attempt that
committed it. Before a later run trusts that, it checks, without reading any content:

- the checkpoint is intact (its body hashes to what it and its blob metadata say) and the
  checkpoints before it are all there, numbered 1..N with no gap (a deleted one leaves a gap),
  and the one before it hashes to what it names;
- the store's index rows from the oldest to the checkpoint's head digest to the checkpoint's
  chain digest (a row rewritten, removed or inserted behind the checkpoint changes it), and the
  head row has the hash, attempt and index digest the checkpoint names;
- every one of those rows agrees with its write-once anchor as listed (content hash, predecessor
  hash, index digest: the anchors' blob metadata, one listing for the whole history), and the
  head's anchor body holds the checkpoint's content hash and digests.

Any doubt makes the tenant's run a full one, said so; a checkpoint that is broken, or that
disagrees with the chain or the anchors, is also a finding (it was written once and cannot have
changed by itself). What stays trusted is that the covered snapshots' content entities are what
the checkpoint's verifier read: every reader checks them against their anchor on each read, and
`verify --full` reads them all again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime

from azure.core.exceptions import HttpResponseError

from auditor.adapters.blobs import EvidenceExists, EvidenceStore, StoredBlob
from auditor.core.checkpoint import (
    Checkpoint,
    CheckpointUnreadable,
    chain_digest,
    checkpoint_folder,
    parse_checkpoint,
    sequence_of,
)
from auditor.core.evidence import (
    ANCHOR_PREFIX,
    META_ATTEMPT,
    META_CONTENT_HASH,
    META_INDEX_DIGEST,
    META_PREVIOUS_HASH,
    Anchor,
    iso,
)
from auditor.core.snapshot import SnapshotIndexEntry

log = logging.getLogger(__name__)

FULL = "full"
INCREMENTAL = "incremental"


@dataclass(frozen=True, slots=True)
class Start:
    """Where a tenant's check starts: the first `trusted` snapshots are covered by
    `checkpoint`; `note` says which mode and why; `problem` is a finding about the checkpoint."""

    trusted: int = 0
    checkpoint: Checkpoint | None = None
    note: str = ""
    problem: str | None = None
    subject: str = ""
    # Slot -> attempt -> listed anchor metadata (incremental runs read anchors this way).
    anchors: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return INCREMENTAL if self.trusted else FULL


def full(note: str, problem: str | None = None, subject: str = "") -> Start:
    return Start(note=f"full: {note}", problem=problem, subject=subject)


def as_full(start: Start) -> Start:
    """The same checkpoint state, but every snapshot read (`verify --full`)."""
    if not start.trusted:
        return start
    assert start.checkpoint is not None
    return replace(
        start, trusted=0, note=f"full (--full; checkpoint {start.checkpoint.sequence} is intact)"
    )


def list_checkpoints(evidence: EvidenceStore, tenant_id: str) -> list[tuple[int, StoredBlob]]:
    """The tenant's checkpoint blobs, by number (other names under the folder included as 0,
    so they are seen)."""
    blobs = evidence.list_blobs(checkpoint_folder(tenant_id))
    return sorted(((sequence_of(b.name) or 0, b) for b in blobs), key=lambda p: p[0])


def read_checkpoint(evidence: EvidenceStore, blob: StoredBlob) -> Checkpoint:
    data = evidence.get_bytes(blob.name)
    if data is None:
        raise CheckpointUnreadable("it disappeared while being read")
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise CheckpointUnreadable(f"not JSON: {exc}") from exc
    return parse_checkpoint(document, blob.metadata)


def listed_anchors(evidence: EvidenceStore, tenant_id: str) -> dict[str, dict[str, dict[str, str]]]:
    """Slot -> attempt ("" for a legacy anchor) -> the anchor blob's metadata, from one listing
    (no anchor is downloaded)."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    prefix = f"{ANCHOR_PREFIX}{tenant_id}/"
    for blob in evidence.list_blobs(prefix):
        parts = blob.name[len(prefix) :].removesuffix(".json").split("/")
        slot, attempt = (parts[0], parts[1]) if len(parts) == 2 else (parts[0], "")
        out.setdefault(slot, {})[attempt] = blob.metadata
    return out


def slot_anchors(evidence: EvidenceStore, tenant_id: str, snapshot_id: str) -> dict[str, Anchor]:
    """Attempt ("" for a legacy anchor) -> anchor, of one slot only."""
    out: dict[str, Anchor] = {}
    for blob in evidence.list_blobs(f"{ANCHOR_PREFIX}{tenant_id}/{snapshot_id}"):
        data = evidence.get_bytes(blob.name)
        if data is not None:
            anchor = Anchor.from_json(json.loads(data))
            if anchor.snapshot_id == snapshot_id:
                out[anchor.attempt] = anchor
    return out


def _listed_mismatch(entry: SnapshotIndexEntry, listed: dict[str, str] | None) -> str | None:
    if listed is None:
        return "has no anchor of its attempt"
    if (
        listed.get(META_ATTEMPT) != entry.attempt
        or listed.get(META_CONTENT_HASH) != entry.content_hash
        # An empty value (the first snapshot's predecessor) is not kept as metadata.
        or (listed.get(META_PREVIOUS_HASH) or "") != (entry.previous_hash or "")
        or listed.get(META_INDEX_DIGEST) != entry.row_digest
    ):
        return "disagrees with its anchor"
    return None


def trusted_start(
    evidence: EvidenceStore, tenant_id: str, entries: list[SnapshotIndexEntry]
) -> Start:
    """How much of the tenant's chain (`entries`, oldest first) an intact checkpoint covers."""
    stored = list_checkpoints(evidence, tenant_id)
    if not stored:
        return full("no checkpoint yet")
    numbers = [n for n, _ in stored]
    latest_number, latest_blob = stored[-1]
    subject = f"checkpoint {latest_blob.name.rsplit('/', 1)[-1].removesuffix('.json')}"
    if numbers != list(range(1, len(numbers) + 1)):
        missing = sorted(set(range(1, max(numbers) + 1)) - set(numbers))
        odd = [b.name for n, b in stored if n == 0]
        parts = [f"checkpoints {missing} are missing (deleted?)"] if missing else []
        parts += [f"not a checkpoint name: {odd}"] if odd else []
        what = "; ".join(parts)
        return full(what, what, subject)
    try:
        checkpoint = read_checkpoint(evidence, latest_blob)
        if checkpoint.tenant_id != tenant_id or checkpoint.sequence != latest_number:
            raise CheckpointUnreadable(
                f"names tenant {checkpoint.tenant_id} number {checkpoint.sequence}"
            )
        previous_sha = None
        if latest_number > 1:
            previous_sha = read_checkpoint(evidence, stored[-2][1]).sha256
        if checkpoint.previous_sha256 != previous_sha:
            raise CheckpointUnreadable(
                f"names previous checkpoint {checkpoint.previous_sha256}, the one stored before "
                f"it hashes to {previous_sha}"
            )
    except CheckpointUnreadable as exc:
        broken = f"broken, so nothing is trusted from it: {exc}"
        return full(f"{subject} is {broken}", broken, subject)
    retaken = _retaken_head(checkpoint, entries)
    if retaken:
        # A failed head retaken since (only the latest slot can be): not tampering, but the
        # rows the checkpoint covered changed, so everything is read again.
        return Start(0, checkpoint, f"full: {subject}'s head {retaken}", subject=subject)
    problem = _covered_problem(evidence, checkpoint, entries)
    if problem:
        return full(f"{subject} {problem}", problem, subject)
    anchors = listed_anchors(evidence, tenant_id)
    covered = entries[: checkpoint.snapshots]
    for entry in covered:
        mismatch = _listed_mismatch(entry, anchors.get(entry.snapshot_id, {}).get(entry.attempt))
        if mismatch:
            # The rows are what the checkpoint verified, yet one disagrees with its anchor:
            # the checkpoint vouches for a rewritten row.
            problem = f"covers snapshot {entry.snapshot_id}, which {mismatch}"
            return full(f"{subject} {problem}", problem, subject)
    note = (
        f"incremental from {subject} (head {checkpoint.snapshot_id}, verified "
        f"{iso(checkpoint.verified_at)} by {checkpoint.verifier}): {len(covered)} snapshots "
        f"trusted, {len(entries) - len(covered)} read"
    )
    return Start(len(covered), checkpoint, note, anchors=anchors)


def _retaken_head(checkpoint: Checkpoint, entries: list[SnapshotIndexEntry]) -> str | None:
    head = entries[-1] if entries else None
    if head is None or head.snapshot_id != checkpoint.snapshot_id:
        return None
    if head.attempt != checkpoint.attempt and head.supersedes == checkpoint.attempt:
        return f"{head.snapshot_id} (failed) was retaken by attempt {head.attempt}"
    return None


def _covered_problem(
    evidence: EvidenceStore, checkpoint: Checkpoint, entries: list[SnapshotIndexEntry]
) -> str | None:
    """How the store's chain or the head's anchor disagrees with what the checkpoint verified."""
    position = next(
        (i for i, e in enumerate(entries) if e.snapshot_id == checkpoint.snapshot_id), None
    )
    if position is None:
        return f"names head {checkpoint.snapshot_id}, which the store no longer has"
    head = entries[position]
    if (head.attempt, head.content_hash) != (checkpoint.attempt, checkpoint.content_hash):
        return (
            f"names head {checkpoint.snapshot_id} attempt {checkpoint.attempt} with hash "
            f"{checkpoint.content_hash}; the chain has attempt {head.attempt} with hash "
            f"{head.content_hash}"
        )
    covered = entries[: position + 1]
    if len(covered) != checkpoint.snapshots or chain_digest(covered) != checkpoint.chain_digest:
        return (
            f"covered {checkpoint.snapshots} snapshots up to {checkpoint.snapshot_id}; the store's "
            f"{len(covered)} differ from them (a snapshot rewritten, removed or inserted behind "
            "the checkpoint)"
        )
    anchor = evidence.read_anchor(checkpoint.tenant_id, head.snapshot_id, head.attempt)
    if anchor is None or (anchor.content_hash, anchor.index_digest, anchor.content_digest) != (
        checkpoint.content_hash,
        checkpoint.index_digest,
        checkpoint.content_digest,
    ):
        return f"disagrees with the anchor of its head {head.snapshot_id}"
    return None


class CheckpointNotWritten(RuntimeError):
    """The verifier may read the evidence container but not write to it: the verification
    stands, the next run starts where the last written checkpoint left off."""


def record_checkpoint(
    evidence: EvidenceStore,
    entries: list[SnapshotIndexEntry],
    head_content_digest: str,
    start: Start,
    now: datetime,
) -> Checkpoint | None:
    """Write the next checkpoint of a tenant whose chain just verified (None when there was
    nothing new since the last one, or another verifier wrote that number first)."""
    if not entries or start.trusted == len(entries) or start.problem:
        return None
    previous = start.checkpoint  # None only when the tenant has none (else start.problem)
    checkpoint = Checkpoint.of(
        entries,
        head_content_digest,
        sequence=previous.sequence + 1 if previous else 1,
        previous_sha256=previous.sha256 if previous else None,
        mode=start.mode,
        verified_at=now,
    )
    try:
        evidence.put_bytes(checkpoint.blob_name, checkpoint.to_bytes(), checkpoint.metadata())
    except EvidenceExists:
        log.info("checkpoint %s was written by another verifier", checkpoint.blob_name)
        return None
    except HttpResponseError as exc:
        if exc.status_code != 403:
            raise
        raise CheckpointNotWritten(
            "checkpoint not written: this identity may not write to the evidence container "
            "(HTTP 403); the next verify starts from the last one written"
        ) from None
    return checkpoint
