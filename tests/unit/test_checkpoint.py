"""The verify checkpoint document (pure): it reads back as written, and any field edited, added
or removed, or a label that disagrees, makes it unreadable rather than trusted."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from auditor.core.checkpoint import (
    Checkpoint,
    CheckpointUnreadable,
    chain_digest,
    checkpoint_blob_name,
    parse_checkpoint,
    sequence_of,
)
from tools.posture_factory import index_entry, make_posture

TENANT = "7e0a0000-0000-0000-0000-0000000000c9"


def _checkpoint() -> Checkpoint:
    posture = make_posture(TENANT)
    first = replace(index_entry(posture, "20250101T020000Z"), attempt="a" * 32, row_digest="1")
    second = replace(
        index_entry(posture, "20250102T020000Z", previous=first), attempt="b" * 32, row_digest="2"
    )
    return Checkpoint.of(
        [first, second],
        "c" * 64,
        sequence=2,
        previous_sha256="d" * 64,
        mode="incremental",
        verified_at=datetime(2025, 1, 3, 5, tzinfo=UTC),
    )


def _stored(checkpoint: Checkpoint) -> tuple[dict[str, Any], dict[str, str]]:
    return json.loads(checkpoint.to_bytes()), checkpoint.metadata()


def test_a_checkpoint_reads_back_as_written_under_its_number() -> None:
    checkpoint = _checkpoint()
    assert parse_checkpoint(*_stored(checkpoint)) == checkpoint
    assert checkpoint.blob_name == checkpoint_blob_name(TENANT, 2)
    assert checkpoint.blob_name == f"checkpoints/{TENANT}/000000002.json"
    assert sequence_of(checkpoint.blob_name) == 2 and sequence_of(f"checkpoints/{TENANT}/x") is None
    assert (checkpoint.snapshots, checkpoint.snapshot_id) == (2, "20250102T020000Z")


def test_the_chain_digest_changes_with_any_covered_row() -> None:
    posture = make_posture(TENANT)
    row = replace(index_entry(posture, "20250101T020000Z"), attempt="a" * 32, row_digest="1")
    assert chain_digest([row]) != chain_digest([replace(row, row_digest="2")])
    assert chain_digest([row]) != chain_digest([row, row])


@pytest.mark.parametrize(
    "edit",
    [
        lambda d, m: d["checkpoint"].update(snapshots=1),
        lambda d, m: d["checkpoint"]["head"].update(contentHash="e" * 64),
        lambda d, m: d["checkpoint"].update(note="trust me"),
        lambda d, m: d["checkpoint"].pop("previousCheckpointSha256"),
        lambda d, m: m.update(checkpointsha256="0" * 64),
        lambda d, m: d["checkpoint"].update(schema="auditor.verify-checkpoint/9"),
    ],
    ids=["field", "head hash", "added field", "removed field", "metadata", "schema"],
)
def test_an_edited_checkpoint_is_unreadable(edit: Any) -> None:
    document, metadata = _stored(_checkpoint())
    edit(document, metadata)
    with pytest.raises(CheckpointUnreadable):
        parse_checkpoint(document, metadata)
