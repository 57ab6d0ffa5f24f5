"""Every recommendation: resource-level assessments rolled up per (subscription, recommendation)
with the metadata joined and the unhealthy resources listed up to a cap (the rest counted); the
hardening coverage is a view over the same rows."""

from __future__ import annotations

from auditor.core.model import AssessmentResult, HardeningStatus, RecommendationMetadata
from auditor.core.registry import HARDENING, RECOMMENDATIONS, Derivation

SUB, OTHER = "s1", "s2"
JIT = "805651bc-6ecd-4c73-9b55-97a19d0582d4"
META = {
    JIT: RecommendationMetadata(
        JIT,
        "Management ports should be protected with JIT",
        severity="High",
        remediation="Enable JIT.",
        categories=("Networking",),
        threats=("DataExfiltration",),
        user_impact="Low",
        implementation_effort="Low",
    )
}


def rows() -> list[AssessmentResult]:
    out = [AssessmentResult(SUB, JIT, "Unhealthy", f"/subscriptions/s1/vm{i}") for i in range(5)]
    out += [AssessmentResult(SUB, JIT, "Healthy", "/subscriptions/s1/vmh")]
    out += [AssessmentResult(SUB, "other-key", "NotApplicable", "/subscriptions/s1/st")]
    out += [AssessmentResult(OTHER, JIT, "Unhealthy", "/subscriptions/s2/vm")]
    return out


def test_each_recommendation_counts_resources_by_status_with_metadata_joined() -> None:
    context = Derivation(frozenset({SUB, OTHER}), metadata=META)
    jit, other, elsewhere = RECOMMENDATIONS.derive(rows(), context)
    assert (jit.subscription_id, jit.recommendation) == (SUB, JIT)
    assert (jit.healthy, jit.unhealthy, jit.not_applicable) == (1, 5, 0)
    assert (jit.display_name, jit.severity, jit.remediation) == (
        "Management ports should be protected with JIT",
        "High",
        "Enable JIT.",
    )
    assert (jit.threats, jit.user_impact, jit.implementation_effort) == (
        ("DataExfiltration",),
        "Low",
        "Low",
    )
    assert jit.unhealthy_resources == tuple(f"/subscriptions/s1/vm{i}" for i in range(5))
    # A recommendation without metadata is named by its key, never dropped.
    assert (other.display_name, other.not_applicable, other.severity) == ("other-key", 1, "")
    assert elsewhere.subscription_id == OTHER


def test_the_cap_lists_some_unhealthy_resources_and_counts_the_rest() -> None:
    context = Derivation(frozenset({SUB}), metadata=META, caps={"recommendations": 2})
    jit = next(iter(RECOMMENDATIONS.derive(rows(), context)))
    assert jit.unhealthy == 5
    assert len(jit.unhealthy_resources) == 2 and jit.unhealthy_left_out == 3


def test_hardening_coverage_is_a_view_over_the_same_rows() -> None:
    context = Derivation(frozenset({SUB}), metadata=META)
    coverage = {h.recommendation: h for h in HARDENING.derive(rows(), context)}
    jit = coverage[JIT]
    assert (jit.status, jit.healthy, jit.unhealthy) == (HardeningStatus.ASSESSED, 1, 5)
    assert jit.severity == "High"
