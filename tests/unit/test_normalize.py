"""Normalisation of Resource Graph rows, on Microsoft's published example payloads.

The REST examples carry REST types (e.g. ``Microsoft.Security/regulatoryComplianceAssessment``);
Resource Graph returns the same objects with its lower-cased ``type`` and a ``subscriptionId``
column, so the tests dress each example the way Resource Graph does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from auditor.core.model import State
from auditor.core.normalize import (
    T_ASSESSMENT,
    T_CONTROL,
    T_PRICING,
    T_RECOMMENDATION,
    T_SECURE_SCORE,
    T_SECURE_SCORE_CONTROL,
    T_STANDARD,
    T_STANDARD_ASSIGNMENT,
    Batch,
)
from tests.conftest import SPECS

SECURITY = SPECS / "security" / "resource-manager" / "Microsoft.Security"
RC = SECURITY / "Security" / "preview" / "2019-01-01-preview" / "examples" / "RegulatoryCompliance"
STABLE = SECURITY / "Security" / "stable"


def example(path: Path) -> Any:
    return json.loads(path.read_text())["responses"]["200"]["body"]


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


def test_compliance_assessments_keep_standard_control_state_and_counts() -> None:
    items = example(RC / "getRegulatoryComplianceAssessmentList_example.json")["value"]
    batch = Batch()
    batch.extend(as_arg_rows(items, T_ASSESSMENT))

    assert batch.malformed == {}
    first = batch.compliance[0]
    assert first.subscription_id == "20ff7fc3-e762-44dd-bd96-b71116dcdc23"
    assert (first.standard, first.control) == ("PCI-DSS-3.2", "1.1")
    assert first.assessment == "968548cb-02b3-8cd2-11f8-0cf64ab1a347"
    assert first.state is State.FAILED
    assert (first.passed_resources, first.failed_resources, first.skipped_resources) == (7, 4, 0)
    assert first.description == "Troubleshoot missing scan data on your machines"
    assert [r.state for r in batch.compliance] == [State.FAILED, State.SKIPPED, State.PASSED]
    assert [r.control for r in batch.compliance] == ["1.1", "2", "2.1"]


def test_control_and_standard_summaries() -> None:
    controls = example(RC / "getRegulatoryComplianceControlList_example.json")["value"]
    standards = example(
        SPECS.parent
        / "specification/security/resource-manager/Microsoft.Security/Security/RegulatoryCompliance"
        / "examples/2019-01-01-preview/RegulatoryCompliance"
        / "getRegulatoryComplianceStandardList_example.json"
    )["value"]
    batch = Batch()
    batch.extend(as_arg_rows(controls, T_CONTROL))
    batch.extend(as_arg_rows(standards, T_STANDARD))

    assert [(c.control, c.state) for c in batch.controls] == [
        ("1.1", State.FAILED),
        ("2", State.SKIPPED),
        ("2.1", State.UNSUPPORTED),
    ]
    assert batch.controls[0].passed_assessments == 7
    assert {s.standard: s.state for s in batch.standards} == {
        "PCI-DSS-3.2": State.FAILED,
        "ISO-27001": State.SKIPPED,
        "AZURE-CIS": State.UNSUPPORTED,
        "SOC-TSP": State.PASSED,
    }
    pci = next(s for s in batch.standards if s.standard == "PCI-DSS-3.2")
    assert (pci.passed_controls, pci.failed_controls) == (7, 4)


def test_defender_plans_keep_tier_subplan_and_deprecation() -> None:
    items = example(SECURITY / "stable/2024-01-01/examples/Pricings/ListPricings_example.json")[
        "value"
    ]
    batch = Batch()
    batch.extend(as_arg_rows(items, T_PRICING))

    plans = {(p.subscription_id[:8], p.plan): p for p in batch.plans}
    vms = plans[("20ff7fc3", "VirtualMachines")]
    assert (vms.tier, vms.sub_plan, vms.deprecated) == ("Standard", "P2", False)
    k8s = plans[("d34fd44c", "KubernetesService")]
    assert (k8s.tier, k8s.deprecated, k8s.replaced_by) == ("Free", True, ("Containers",))
    assert len(batch.plans) == len(items)


def test_secure_score_and_its_controls() -> None:
    score = example(STABLE / "2020-01-01/examples/secureScores/GetSecureScoresSingle_example.json")
    controls = example(
        SECURITY / "stable/2020-01-01/examples/secureScores/ListSecureScoreControls_example.json"
    )["value"]
    batch = Batch()
    batch.extend(as_arg_rows([score], T_SECURE_SCORE))
    batch.extend(as_arg_rows(controls, T_SECURE_SCORE_CONTROL))

    assert batch.malformed == {}
    (overall,) = batch.secure_scores
    assert overall.maximum == score["properties"]["score"]["max"]
    assert overall.current == score["properties"]["score"]["current"]
    transit = next(c for c in batch.secure_score_controls if c.display_name.startswith("Encrypt"))
    assert (transit.healthy_resources, transit.unhealthy_resources) == (5, 1)
    assert transit.percentage == pytest.approx(0.8325)


def test_standard_assignment_exemption_keeps_expiry_and_assessment() -> None:
    body = example(
        STABLE / "2024-08-01/examples/StandardAssignments/PutExemptionStandardAssignment.json"
    )
    body = dict(
        body, id=body["id"].replace("anatTestE2LA/Microsoft", "anatTestE2LA/providers/Microsoft")
    )
    batch = Batch()
    batch.extend(as_arg_rows([body], T_STANDARD_ASSIGNMENT))

    (assignment,) = batch.assignments
    assert assignment.effect == "Exempt"
    assert assignment.expires_on == "2022-05-01T19:50:47.083633Z"
    assert assignment.assessment_key == "1195afff-c881-495e-9bc5-1486211ae03f"
    assert assignment.exemption_category == "waiver"
    assert assignment.subscription_id == "212f9889-769e-45ae-ab43-6da33674bd26"


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

    (attestation,) = batch.assignments
    assert attestation.compliance_state == "compliant"
    assert attestation.assessment_key == "abc"
    assert attestation.evidence[0].source_url == "https://x/y.pdf"


def test_recommendations_are_reduced_to_subscription_key_status() -> None:
    items = example(
        SECURITY / "stable/2021-06-01/examples/Assessments/ListAssessments_example.json"
    )
    batch = Batch()
    batch.extend(as_arg_rows(items["value"], T_RECOMMENDATION))

    assert batch.recommendations == [
        ("20ff7fc3-e762-44dd-bd96-b71116dcdc23", "21300918-b2e3-0346-785f-c77ff57d243b", "Healthy"),
        (
            "20ff7fc3-e762-44dd-bd96-b71116dcdc23",
            "21300918-b2e3-0346-785f-c77ff57d243b",
            "NotApplicable",
        ),
    ]


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda row: row["properties"].pop("state"), "missing state"),
        (lambda row: row["properties"].__setitem__("state", "Bogus"), "unknown state"),
        (lambda row: row.__setitem__("id", "/not/a/compliance/id"), "id does not parse"),
        (lambda row: row.pop("properties"), "no properties"),
        (lambda row: row["properties"].__setitem__("passedResources", "many"), "not a number"),
    ],
)
def test_malformed_rows_are_counted_and_described_never_raised(mutate: Any, reason: str) -> None:
    items = example(RC / "getRegulatoryComplianceAssessmentList_example.json")["value"]
    rows = as_arg_rows(json.loads(json.dumps(items)), T_ASSESSMENT)
    mutate(rows[0])
    batch = Batch()
    batch.extend(rows)

    assert batch.malformed == {"compliance": 1}
    assert len(batch.compliance) == 2
    assert reason in batch.warnings[0]


def test_unknown_types_are_ignored_not_malformed() -> None:
    batch = Batch()
    batch.add({"id": "/subscriptions/x/providers/Microsoft.Security/alerts/1", "type": "other"})
    assert (batch.ignored, batch.malformed) == (1, {})


def test_state_casing_from_other_api_versions_is_accepted() -> None:
    items = example(RC / "getRegulatoryComplianceAssessmentList_example.json")["value"]
    rows = as_arg_rows(json.loads(json.dumps(items)), T_ASSESSMENT)
    rows[0]["properties"]["state"] = "failed"
    batch = Batch()
    batch.extend(rows)
    assert batch.compliance[0].state is State.FAILED
