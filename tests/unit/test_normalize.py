"""Normalisation of Resource Graph rows, on the project's own example payloads (tests/fixtures,
in the shapes of Microsoft's published examples).

The REST examples carry REST types (e.g. ``Microsoft.Security/regulatoryComplianceAssessment``);
Resource Graph returns the same objects with its lower-cased ``type`` and a ``subscriptionId``
column, so the tests dress each example the way Resource Graph does.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from auditor.core.model import AssessmentResult, State
from auditor.core.normalize import (
    T_ASSESSMENT,
    T_CONTROL,
    T_PRICING,
    T_RECOMMENDATION,
    T_SECURE_SCORE,
    T_SECURE_SCORE_CONTROL,
    T_STANDARD,
    T_STANDARD_ASSIGNMENT,
)
from auditor.core.registry import Batch
from tests.fixtures import body, values

SUB = "6f0c2d1e-3b4a-4c5d-8e9f-0a1b2c3d4e5f"
OTHER_SUB = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"


def as_arg_rows(items: list[dict[str, Any]], arg_type: str) -> list[dict[str, Any]]:
    rows = []
    for item in items:
        row = dict(item)
        row["type"] = arg_type
        parts = item["id"].split("/")
        if len(parts) > 2 and parts[1].lower() == "subscriptions":
            row["subscriptionId"] = parts[2]
        rows.append(row)
    return rows


def compliance_rows() -> list[dict[str, Any]]:
    return as_arg_rows(values("regulatory_compliance_assessments"), T_ASSESSMENT)


def test_compliance_assessments_keep_standard_control_state_and_counts() -> None:
    batch = Batch()
    batch.extend(compliance_rows())

    assert batch.malformed == {}
    first = batch["compliance"][0]
    assert first.subscription_id == SUB
    assert (first.standard, first.control) == ("Azure-CIS-1.4.0", "1.1")
    assert first.assessment == "5e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b"
    assert first.state is State.FAILED
    assert (first.passed_resources, first.failed_resources, first.skipped_resources) == (5, 2, 0)
    assert first.description == (
        "Require multi-factor authentication for accounts with owner permissions"
    )
    assert [r.state for r in batch["compliance"]] == [State.FAILED, State.SKIPPED, State.PASSED]
    assert [r.control for r in batch["compliance"]] == ["1.1", "3.7", "4.2.1"]


def test_control_and_standard_summaries() -> None:
    batch = Batch()
    batch.extend(as_arg_rows(values("regulatory_compliance_controls"), T_CONTROL))
    batch.extend(as_arg_rows(values("regulatory_compliance_standards"), T_STANDARD))

    assert [(c.control, c.state) for c in batch["controls"]] == [
        ("1.1", State.FAILED),
        ("3.7", State.SKIPPED),
        ("4.2.1", State.UNSUPPORTED),
    ]
    assert batch["controls"][0].passed_assessments == 5
    assert {s.standard: s.state for s in batch["standards"]} == {
        "Azure-CIS-1.4.0": State.FAILED,
        "NIST-SP-800-53-R5": State.SKIPPED,
        "SOC-2": State.UNSUPPORTED,
        "ISO-27001-2013": State.PASSED,
    }
    cis = next(s for s in batch["standards"] if s.standard == "Azure-CIS-1.4.0")
    assert (cis.passed_controls, cis.failed_controls, cis.unsupported_controls) == (9, 3, 2)


def test_defender_plans_keep_tier_subplan_and_deprecation() -> None:
    items = values("pricings")
    batch = Batch()
    batch.extend(as_arg_rows(items, T_PRICING))

    plans = {(p.subscription_id[:8], p.plan): p for p in batch["plans"]}
    vms = plans[("6f0c2d1e", "VirtualMachines")]
    assert (vms.tier, vms.sub_plan, vms.deprecated) == ("Standard", "P1", False)
    registry = plans[("9a8b7c6d", "ContainerRegistry")]
    assert (registry.tier, registry.deprecated, registry.replaced_by) == (
        "Free",
        True,
        ("Containers",),
    )
    assert len(batch["plans"]) == len(items)


def test_secure_score_and_its_controls() -> None:
    score = body("secure_score")
    batch = Batch()
    batch.extend(as_arg_rows([score], T_SECURE_SCORE))
    batch.extend(as_arg_rows(values("secure_score_controls"), T_SECURE_SCORE_CONTROL))

    assert batch.malformed == {}
    (overall,) = batch["secure_scores"]
    assert (overall.maximum, overall.current, overall.percentage) == (58.0, 41.25, 0.7112)
    transit = next(
        c for c in batch["secure_score_controls"] if c.display_name.startswith("Encrypt")
    )
    assert (transit.healthy_resources, transit.unhealthy_resources) == (6, 2)
    assert transit.percentage == pytest.approx(0.75)


def test_standard_assignment_exemption_keeps_expiry_and_assessment() -> None:
    batch = Batch()
    batch.extend(as_arg_rows([body("standard_assignment_exemption")], T_STANDARD_ASSIGNMENT))

    (assignment,) = batch["assignments"]
    assert assignment.effect == "Exempt"
    assert assignment.expires_on == "2026-12-31T23:59:59.000000Z"
    assert assignment.assessment_key == "83f577bd-a1b6-b7e1-0891-12ca19d1e6df"
    assert assignment.exemption_category == "mitigated"
    assert assignment.subscription_id == OTHER_SUB


def test_attestation_keeps_evidence_links() -> None:
    row = {
        "id": "/subscriptions/11111111-1111-1111-1111-111111111111/providers/Microsoft.Security/"
        "standardAssignments/a1",
        "name": "a1",
        "type": T_STANDARD_ASSIGNMENT,
        "properties": {
            "displayName": "Manual attestation",
            "effect": "Attest",
            "assignedStandard": {"id": "/providers/Microsoft.Security/securityStandards/s1"},
            "attestationData": {
                "assignedAssessment": {"assessmentKey": "ABC"},
                "complianceState": "compliant",
                "complianceDate": "2026-10-01T00:00:00Z",
                "evidence": [{"description": "Policy PDF", "sourceUrl": "https://x/y.pdf"}],
            },
        },
    }
    batch = Batch()
    batch.add(row)

    (attestation,) = batch["assignments"]
    assert attestation.compliance_state == "compliant"
    assert attestation.assessment_key == "abc"
    assert attestation.evidence[0].source_url == "https://x/y.pdf"


def test_resource_assessments_keep_subscription_key_status_resource_and_cause() -> None:
    batch = Batch()
    batch.extend(as_arg_rows(values("assessments"), T_RECOMMENDATION))

    vm = f"/subscriptions/{OTHER_SUB}/resourcegroups/rg-web/providers/microsoft.compute/"
    vm += "virtualmachines"
    key = "805651bc-6ecd-4c73-9b55-97a19d0582d0"
    assert batch["recommendations"] == [
        AssessmentResult(OTHER_SUB, key, "Unhealthy", f"{vm}/vm-web-01"),
        AssessmentResult(
            OTHER_SUB,
            key,
            "NotApplicable",
            f"{vm}/vm-web-02",
            cause="Exempt",
            description="The resource is exempted from this recommendation",
        ),
    ]


def malformed_first(mutate: Any) -> Batch:
    rows = json.loads(json.dumps(compliance_rows()))
    mutate(rows[0])
    batch = Batch()
    batch.extend(rows)
    return batch


def set_property(name: str, value: Any) -> Any:
    return lambda row: row["properties"].__setitem__(name, value)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda row: row["properties"].pop("state"), "missing state"),
        (set_property("state", "Bogus"), "unknown state"),
        (lambda row: row.__setitem__("id", "/not/a/compliance/id"), "id does not parse"),
        (lambda row: row.pop("properties"), "no properties"),
        (set_property("passedResources", "many"), "not a non-negative integer"),
        (set_property("description", 42), "description is not a string"),
    ],
)
def test_malformed_rows_are_counted_and_described_never_raised(mutate: Any, reason: str) -> None:
    batch = malformed_first(mutate)

    assert batch.malformed == {"compliance": 1}
    assert len(batch["compliance"]) == 2
    assert reason in batch.warnings[0]


# --- values the normalizer must not accept (issue 10) --------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        float("inf"),  # what json.loads makes of the literal 1e309
        1.7,  # was truncated to 1
        7.0,  # a fraction type where the API documents an integer
        "3",  # was coerced to 3
        -1,
        True,  # a JSON boolean is not a count
        2**53,  # beyond any real count (and beyond what JSON readers keep exactly)
        [],
    ],
    ids=["1e309", "1.7", "7.0", "string-3", "negative", "true", "2^53", "list"],
)
def test_a_count_that_is_not_a_non_negative_integer_is_a_malformed_row(value: Any) -> None:
    batch = malformed_first(set_property("passedResources", value))

    assert batch.malformed == {"compliance": 1}
    assert [r.assessment for r in batch["compliance"]] == [
        "0b9c8d7e-6f5a-4b4c-9d3e-2f1a0b9c8d7e",
        "7a6b5c4d-3e2f-4a1b-8c0d-9e8f7a6b5c4d",
    ]
    assert "passedResources" in batch.warnings[0]


def test_a_page_with_a_1e309_count_keeps_every_other_record() -> None:
    text = json.dumps(compliance_rows()).replace('"passedResources": 5', '"passedResources": 1e309')
    batch = Batch()
    batch.extend(json.loads(text))

    assert len(batch["compliance"]) == 2
    assert batch.malformed == {"compliance": 1}


@pytest.mark.parametrize("value", ["passed", "PASSED", "failed", " Passed", 1, None])
def test_a_state_not_spelled_as_documented_is_a_malformed_row(value: Any) -> None:
    batch = malformed_first(set_property("state", value))

    assert batch.malformed == {"compliance": 1}
    assert {r.state for r in batch["compliance"]} == {State.SKIPPED, State.PASSED}


@pytest.mark.parametrize(
    "score",
    [
        {"max": 58, "current": float("inf"), "percentage": 0.7},
        {"max": 58, "current": float("nan"), "percentage": 0.7},
        {"max": 58, "current": "41.25", "percentage": 0.7},
        {"max": -1, "current": 0, "percentage": 0},
        {"max": 58, "current": True, "percentage": 0.7},
    ],
    ids=["infinite", "nan", "string", "negative", "boolean"],
)
def test_a_secure_score_that_is_not_a_finite_non_negative_number_is_malformed(
    score: dict[str, Any],
) -> None:
    row = body("secure_score")
    row["properties"]["score"] = score
    batch = Batch()
    batch.extend(as_arg_rows([row], T_SECURE_SCORE))

    assert batch["secure_scores"] == []
    assert batch.malformed == {"secure_scores": 1}


def test_plan_flags_take_their_documented_types() -> None:
    rows = as_arg_rows(values("pricings"), T_PRICING)
    rows[0]["properties"]["deprecated"] = "true"  # was read as True
    rows[1]["properties"]["replacedBy"] = [7]
    batch = Batch()
    batch.extend(rows)

    assert batch.malformed == {"plans": 2}
    assert len(batch["plans"]) == len(rows) - 2


def test_rows_that_are_not_objects_are_malformed_rows_not_a_crash() -> None:
    batch = Batch()
    batch.extend([None, "row", 7, ["id"], *compliance_rows()])

    assert batch.malformed == {"rows": 4}
    assert len(batch["compliance"]) == 3
    assert all("not a JSON object" in w for w in batch.warnings)


def test_a_duplicate_id_with_another_state_keeps_the_first_and_is_malformed() -> None:
    rows = compliance_rows()
    conflicting = json.loads(json.dumps(rows[0]))
    conflicting["properties"]["state"] = "Passed"
    conflicting["id"] = conflicting["id"].upper().replace("/SUBSCRIPTIONS/", "/subscriptions/")
    batch = Batch()
    batch.extend([*rows, conflicting])

    assert [r.state for r in batch["compliance"]] == [State.FAILED, State.SKIPPED, State.PASSED]
    assert len(batch["compliance"]) == 3  # stored once, never twice
    assert batch.malformed == {"compliance": 1}
    (warning,) = batch.warnings
    assert "conflicting state: Failed kept (the first row), Passed dropped" in warning


def test_an_identical_duplicate_is_dropped_and_counted_too() -> None:
    rows = compliance_rows()
    batch = Batch()
    batch.extend([*rows, json.loads(json.dumps(rows[1]))])

    assert len(batch["compliance"]) == 3
    assert batch.malformed == {"compliance": 1}
    assert "identical to the row kept" in batch.warnings[0]


def test_a_malformed_first_row_does_not_shadow_a_good_one_with_its_id() -> None:
    rows = compliance_rows()
    broken = json.loads(json.dumps(rows[0]))
    broken["properties"]["state"] = "Bogus"
    batch = Batch()
    batch.extend([broken, *rows])

    assert len(batch["compliance"]) == 3
    assert batch.malformed == {"compliance": 1}


def test_warnings_quote_hostile_ids_on_one_bounded_line() -> None:
    row = compliance_rows()[0]
    row["id"] = "/x\x1b[31m\nfake line" + "y" * 5000
    batch = Batch()
    batch.add(row)

    (warning,) = batch.warnings
    assert "\n" not in warning and "\x1b" not in warning
    assert len(warning) < 700


def test_unknown_types_are_ignored_not_malformed() -> None:
    batch = Batch()
    batch.add({"id": "/subscriptions/x/providers/Microsoft.Security/alerts/1", "type": "other"})
    assert (batch.ignored, batch.malformed) == (1, {})
