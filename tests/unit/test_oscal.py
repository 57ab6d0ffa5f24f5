"""OSCAL assessment results: trestle reads them back unchanged, the same snapshots give the same
document, and no control is satisfied by anything but observed passes."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from trestle.oscal.assessment_results import AssessmentResults

from auditor.core.model import ComplianceRecord, ControlSummary, StandardAssignment, State
from auditor.core.oscal import (
    NAMESPACE,
    OscalStats,
    nist_control_id,
    write_assessment_results,
)
from auditor.core.snapshot import Snapshot
from tools.posture_factory import make_posture, make_snapshot, tenant_id_for

PERIOD = (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC))
NIST = "NIST-SP-800-53-R5"


def _write(snapshots: list[Snapshot]) -> tuple[bytes, OscalStats]:
    out = io.BytesIO()
    stats = write_assessment_results(
        snapshots, out, generator="auditor-evidence/test", period=PERIOD
    )
    return out.getvalue(), stats


def _record(
    sub: str, standard: str, control: str, assessment: str, state: State
) -> ComplianceRecord:
    return ComplianceRecord(
        subscription_id=sub,
        standard=standard,
        control=control,
        assessment=assessment,
        state=state,
        passed_resources=3 if state is State.PASSED else 0,
        failed_resources=2 if state is State.FAILED else 0,
        skipped_resources=0,
        description=f"Assessment {assessment} of {control}",
        assessment_type="BuiltIn",
        details_link=f"https://portal.azure.com/#view/{assessment}",
    )


def _nist_snapshot(
    records: list[ComplianceRecord], assignments: tuple[StandardAssignment, ...] = ()
) -> Snapshot:
    base = make_posture(tenant_id_for(7), subscriptions=1, standards=1, controls=1, assessments=1)
    posture = dataclasses.replace(
        base,
        compliance=tuple(records),
        controls=tuple(
            ControlSummary(r.subscription_id, r.standard, r.control, "", r.state, 0, 0, 0)
            for r in records
        ),
        assignments=assignments,
    )
    return make_snapshot(posture, "20261031T020000Z")


def _document(data: bytes) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(data)["assessment-results"]
    return document


def _findings_by_control(data: bytes) -> dict[str, dict[str, Any]]:
    result = _document(data)["results"][-1]
    return {
        next(p["value"] for p in f["props"] if p["name"] == "control"): f
        for f in result["findings"]
    }


def test_written_document_reads_back_through_trestle_unchanged(tmp_path: Any) -> None:
    posture = make_posture(tenant_id_for(1), subscriptions=2, standards=2, controls=3)
    first = make_snapshot(posture, "20261001T020000Z")
    last = make_snapshot(posture, "20261031T020000Z", previous=first.index)
    data, stats = _write([first, last])
    path = tmp_path / "assessment-results.json"
    path.write_bytes(data)

    back = AssessmentResults.oscal_read(path)

    assert back is not None
    assert back.oscal_dict() == json.loads(data)
    assert stats.results == 2
    assert stats.observations == 2 * len(posture.compliance)
    assert stats.bytes == len(data)


def test_the_same_snapshots_give_the_same_document_byte_for_byte() -> None:
    snapshot = make_snapshot(make_posture(tenant_id_for(2)), "20261031T020000Z")

    first, stats = _write([snapshot])
    second, again = _write([snapshot])

    assert first == second
    assert stats.sha256 == again.sha256


def test_one_result_per_snapshot_with_its_hash_and_times() -> None:
    posture = make_posture(tenant_id_for(3))
    first = make_snapshot(posture, "20261001T020000Z")
    last = make_snapshot(posture, "20261031T020000Z", previous=first.index)

    results = _document(_write([first, last])[0])["results"]

    assert [r["start"] for r in results] == [
        "2026-10-01T02:00:00+00:00",
        "2026-10-31T02:00:00+00:00",
    ]
    props = {p["name"]: p["value"] for p in results[1]["props"]}
    assert props["content-sha256"] == last.index.content_hash
    assert props["previous-sha256"] == first.index.content_hash
    assert all(p["ns"] == NAMESPACE for p in results[1]["props"])


@pytest.mark.parametrize(
    ("name", "catalog_id"),
    [
        ("AC-2", "ac-2"),
        ("SI-4(1)", "si-4.1"),
        ("IA-2 (12)", "ia-2.12"),
        ("AC.2", "ac-2"),
        ("sc-07", "sc-7"),
        ("1.1", None),
        ("Access control", None),
    ],
)
def test_nist_control_names_map_to_the_oscal_catalog_ids(name: str, catalog_id: str | None) -> None:
    assert nist_control_id(name) == catalog_id


def test_nist_findings_target_the_catalog_control_and_say_satisfied_only_when_all_passed() -> None:
    sub = "00000000-0000-0000-0000-00000000000a"
    records = [
        _record(sub, NIST, "AC-2", "a1", State.PASSED),
        _record(sub, NIST, "AC-2", "a2", State.PASSED),
        _record(sub, NIST, "SI-4(1)", "a3", State.PASSED),
        _record(sub, NIST, "SI-4(1)", "a4", State.FAILED),
        _record(sub, NIST, "AU-11", "a5", State.SKIPPED),
    ]

    findings = _findings_by_control(_write([_nist_snapshot(records)])[0])

    assert findings["AC-2"]["target"] == {
        "type": "objective-id",
        "target-id": "ac-2_obj",
        "status": {"state": "satisfied", "reason": "pass"},
    }
    assert findings["SI-4(1)"]["target"]["target-id"] == "si-4.1_obj"
    assert findings["SI-4(1)"]["target"]["status"] == {"state": "not-satisfied", "reason": "fail"}
    # Nothing assessed (skipped): never a pass.
    assert findings["AU-11"]["target"]["status"] == {"state": "not-satisfied", "reason": "other"}
    assert {"name": "control-id", "ns": NAMESPACE, "value": "si-4.1"} in findings["SI-4(1)"][
        "props"
    ]


def test_other_standards_carry_their_control_names_as_properties() -> None:
    posture = make_posture(tenant_id_for(4), standards=1, controls=1)
    finding = _document(_write([make_snapshot(posture, "20261031T020000Z")])[0])["results"][0][
        "findings"
    ][0]

    props = {p["name"]: p["value"] for p in finding["props"]}
    assert props == {"standard": "PCI-DSS-4", "control": "1.1"}
    assert finding["target"]["target-id"] == "PCI-DSS-4_1.1_obj"


def test_an_exempted_failing_assessment_is_never_satisfied_and_keeps_its_exemption() -> None:
    sub = "00000000-0000-0000-0000-00000000000b"
    exemption = StandardAssignment(
        subscription_id=sub,
        assignment_id=f"/subscriptions/{sub}/providers/Microsoft.Security/standardAssignments/x",
        display_name="Waiver",
        standard_id=NIST,
        effect="Exempt",
        assessment_key="a1",
        expires_on="2027-01-01T00:00:00Z",
        exemption_category="waiver",
    )
    snapshot = _nist_snapshot([_record(sub, NIST, "AC-2", "a1", State.FAILED)], (exemption,))

    data = _write([snapshot])[0]

    assert _findings_by_control(data)["AC-2"]["target"]["status"]["state"] == "not-satisfied"
    observation = _document(data)["results"][0]["observations"][0]
    props = {p["name"]: p["value"] for p in observation["props"]}
    assert props["exemption"] == "waiver"
    assert props["exemption-expires"] == "2027-01-01T00:00:00Z"
    assert props["state"] == "Failed"


def test_observations_are_tests_about_subscriptions_collected_at_the_snapshot() -> None:
    sub = "00000000-0000-0000-0000-00000000000c"
    snapshot = _nist_snapshot([_record(sub, NIST, "AC-2", "a1", State.FAILED)])

    result = _document(_write([snapshot])[0])["results"][0]
    observation = result["observations"][0]

    assert observation["methods"] == ["TEST"]
    assert observation["types"] == ["finding"]
    assert observation["collected"] == "2026-10-31T02:00:00+00:00"
    inventory = {item["uuid"] for item in result["local-definitions"]["inventory-items"]}
    assert observation["subjects"][0]["subject-uuid"] in inventory
    assert observation["links"][0]["href"] == "https://portal.azure.com/#view/a1"
    finding = result["findings"][0]
    assert finding["related-observations"] == [{"observation-uuid": observation["uuid"]}]


def test_hostile_customer_text_still_gives_a_valid_document(tmp_path: Any) -> None:
    sub = "00000000-0000-0000-0000-00000000000d"
    record = dataclasses.replace(
        _record(sub, "=cmd|' /C calc'!A0", "\x1b[31m1.1\x07", "a1", State.FAILED),
        description="\x1b]0;pwned\x07  line\nbreak\ttab  ",
        details_link="javascript:alert(1)",
    )
    path = tmp_path / "ar.json"
    path.write_bytes(_write([_nist_snapshot([record])])[0])

    back = AssessmentResults.oscal_read(path)

    assert back is not None
    observation = back.results[0].observations[0]  # type: ignore[index]
    assert observation.title == "]0;pwned line break tab"
    assert observation.links is None  # only https links are kept


def test_stable_uuids_are_exactly_rfc_uuid5_of_the_joined_parts() -> None:
    # The fast spelling must never change a stored document's UUIDs.
    import uuid

    from auditor.core.oscal import _UUID_NAMESPACE, stable_uuid

    for parts in [("a",), ("observation", "t", "20261031T020000Z", "x/y"), ("é€", ""), ("",)]:
        assert stable_uuid(*parts) == str(uuid.uuid5(_UUID_NAMESPACE, "/".join(parts)))
    for n in range(2000):
        parts = (f"tenant-{n}", f"{n * 7919:x}", "ü" * (n % 5))
        assert stable_uuid(*parts) == str(uuid.uuid5(_UUID_NAMESPACE, "/".join(parts)))


def test_a_period_is_written_one_snapshot_at_a_time_and_as_from_snapshots_in_memory() -> None:
    # A monthly pack reads ~30 snapshots: each is loaded only once the one before is written.
    from auditor.core.oscal import write_period_results

    posture = make_posture(tenant_id_for(3), subscriptions=2, standards=2, controls=2)
    snapshots = [make_snapshot(posture, "20261001T020000Z")]
    for day in ("20261002T020000Z", "20261003T020000Z"):
        snapshots.append(make_snapshot(posture, day, previous=snapshots[-1].index))
    by_id = {s.index.snapshot_id: s for s in snapshots}
    out = io.BytesIO()
    loads: list[tuple[str, int]] = []

    def load(entry: Any) -> Snapshot:
        loads.append((entry.snapshot_id, out.getvalue().count(b'"findings":')))
        return by_id[entry.snapshot_id]

    stats = write_period_results(
        [s.index for s in snapshots], load, out, generator="auditor-evidence/test", period=PERIOD
    )
    assert loads == [(s.index.snapshot_id, n) for n, s in enumerate(snapshots)]
    assert out.getvalue() == _write(snapshots)[0]
    assert stats.results == 3
