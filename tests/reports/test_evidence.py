"""Evidence records (pure): report ids, blob names, pack manifests and snapshot anchors."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from auditor.core.evidence import (
    Anchor,
    PackManifest,
    anchor_blob_name,
    anchor_mismatch,
    canonical_json,
    legacy_anchor_blob_name,
    manifest_blob_name,
    manifest_redirect,
    new_report_id,
    pack_metadata,
    report_id_of,
    sha256_hex,
    stored_manifest,
    workbook_blob_name,
    workbook_of_manifest,
)
from tests.reports.packs import END, REPORT_ID, START, TENANT, pack_inputs
from tools.posture_factory import make_posture


@pytest.fixture
def manifest() -> PackManifest:
    posture = make_posture(TENANT)
    return pack_inputs(posture, posture).manifest


def test_report_ids_carry_the_generation_time_and_a_random_token() -> None:
    at = datetime(2025, 2, 1, 4, 0, 5, tzinfo=UTC)
    assert new_report_id(at, "0a1b2c3d") == "20250201T040005Z-0a1b2c3d"
    with pytest.raises(ValueError):
        new_report_id(at, "XYZ")


def test_blob_names_follow_tenant_year_month_report() -> None:
    end = datetime(2025, 1, 31, 2, tzinfo=UTC)
    assert workbook_blob_name(TENANT, end, REPORT_ID) == f"{TENANT}/2025/01/{REPORT_ID}.xlsx"
    assert manifest_blob_name(TENANT, end, REPORT_ID) == f"{TENANT}/2025/01/{REPORT_ID}.json"
    attempt = "0123456789abcdef" * 2
    assert anchor_blob_name(TENANT, END, attempt) == f"anchors/{TENANT}/{END}/{attempt}.json"
    assert legacy_anchor_blob_name(TENANT, END) == f"anchors/{TENANT}/{END}.json"
    for bad in (("evil/../x", END, attempt), (TENANT, "../x", attempt), (TENANT, END, "../x")):
        with pytest.raises(ValueError):
            anchor_blob_name(*bad)
    assert report_id_of(f"{TENANT}/2025/01/{REPORT_ID}.xlsx") == REPORT_ID
    assert report_id_of(f"anchors/{TENANT}/{END}.json") is None


def test_the_pack_hash_is_the_sha256_of_the_canonical_manifest(manifest: PackManifest) -> None:
    document = manifest.to_json()
    assert manifest.sha256 == sha256_hex(
        json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )
    assert PackManifest.from_json(json.loads(canonical_json(document))) == manifest
    later = dataclasses.replace(manifest, generated_at=datetime(2025, 2, 2, tzinfo=UTC))
    assert later.sha256 != manifest.sha256


def test_stored_manifest_and_metadata_repeat_the_hashes(manifest: PackManifest) -> None:
    stored = stored_manifest(manifest, "t/2025/01/r.xlsx", "ab" * 32, 1234)
    assert stored["packSha256"] == manifest.sha256
    assert stored["workbook"] == {"blob": "t/2025/01/r.xlsx", "sha256": "ab" * 32, "bytes": 1234}
    metadata = pack_metadata(manifest, "ab" * 32)
    assert metadata["packsha256"] == manifest.sha256
    assert metadata["workbooksha256"] == "ab" * 32
    refs = {ref.snapshot_id: ref.content_hash for ref in manifest.snapshots}
    assert metadata["snapshothashes"] == f"{START}:{refs[START]},{END}:{refs[END]}"
    assert all(value.isascii() for value in metadata.values())


def test_anchors_are_deterministic_and_name_every_disagreement() -> None:
    posture = make_posture(TENANT)
    inputs = pack_inputs(posture, posture)
    entry = dataclasses.replace(inputs.end.index, attempt="ab" * 16, row_digest="d" * 64)
    anchor = Anchor.of(entry, "d" * 64, "c" * 64)
    assert anchor.to_bytes() == Anchor.of(entry, "d" * 64, "c" * 64).to_bytes()
    assert Anchor.from_json(json.loads(anchor.to_bytes())) == anchor
    assert anchor_mismatch(anchor, entry) is None
    forged = dataclasses.replace(entry, content_hash="0" * 64)
    assert anchor_mismatch(anchor, forged) == (
        f"content hash {'0' * 64} but anchored {entry.content_hash}"
    )
    edited = dataclasses.replace(entry, row_digest="e" * 64)  # any other property of the row
    assert "index row properties differ" in (anchor_mismatch(anchor, edited) or "")
    legacy = Anchor.from_json({k: v for k, v in anchor.to_json().items() if k != "schema"})
    assert legacy.legacy and "legacy scheme" in (anchor_mismatch(legacy, entry) or "")


def test_a_manifest_names_only_its_own_workbook() -> None:
    manifest = f"{TENANT}/2025/01/{REPORT_ID}.json"
    assert workbook_of_manifest(TENANT, REPORT_ID, manifest) == manifest[:-5] + ".xlsx"
    assert manifest_redirect(TENANT, REPORT_ID, manifest, manifest[:-5] + ".xlsx") is None
    assert "refused" in (manifest_redirect(TENANT, REPORT_ID, manifest, "anchors/x.json") or "")
    with pytest.raises(ValueError):
        workbook_of_manifest(TENANT, REPORT_ID, f"other/2025/01/{REPORT_ID}.json")
