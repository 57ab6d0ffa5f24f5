from auditor.core import hardening
from auditor.core.model import HardeningStatus, RecommendationMetadata

SUB = "11111111-1111-1111-1111-111111111111"
EP = "83f577bd-a1b6-b7e1-0891-12ca19d1e6df"
AAC = "35f45c95-27cf-4e52-891f-8390d1de5828"


def by_key(rows: list) -> dict:  # type: ignore[type-arg]
    return {row.recommendation: row for row in rows}


def test_counts_healthy_unhealthy_not_applicable_per_subscription() -> None:
    recs = [
        (SUB, EP, "Healthy"),
        (SUB, EP, "Healthy"),
        (SUB, EP, "Unhealthy"),
        (SUB, EP, "NotApplicable"),
    ]
    row = by_key(hardening.rollup([SUB], recs, {}))[EP]
    assert (row.status, row.healthy, row.unhealthy, row.not_applicable) == (
        HardeningStatus.ASSESSED,
        2,
        1,
        1,
    )


def test_retired_features_are_retired_whatever_defender_still_returns() -> None:
    recs = [(SUB, AAC, "Healthy"), (SUB, AAC, "Unhealthy")]
    row = by_key(hardening.rollup([SUB], recs, {}))[AAC]
    assert row.status is HardeningStatus.RETIRED
    assert (row.healthy, row.unhealthy, row.not_applicable) == (0, 0, 0)


def test_recommendation_without_rows_is_missing_not_passed() -> None:
    row = by_key(hardening.rollup([SUB], [], {}))[EP]
    assert row.status is HardeningStatus.MISSING
    assert row.healthy == 0


def test_every_catalogue_entry_is_reported_for_every_subscription() -> None:
    other = "22222222-2222-2222-2222-222222222222"
    rows = hardening.rollup([SUB, other], [], {})
    assert len(rows) == 2 * len(hardening.CATALOGUE)


def test_metadata_supplies_name_severity_and_remediation() -> None:
    meta = {EP: RecommendationMetadata(EP, "Install EP", "High", "Do this", ("Compute",))}
    row = by_key(hardening.rollup([SUB], [(SUB, EP, "Unhealthy")], meta))[EP]
    assert (row.display_name, row.severity, row.remediation) == ("Install EP", "High", "Do this")


def test_jit_coverage_is_unknown_when_policies_were_not_read() -> None:
    jit = hardening.JIT_KEY
    known = by_key(hardening.rollup([SUB], [], {}, {SUB: 3}))[jit]
    unknown = by_key(hardening.rollup([SUB], [], {}, {}))[jit]
    assert known.jit_covered_vms == 3
    assert unknown.jit_covered_vms is None


def test_rows_of_keys_outside_the_catalogue_are_ignored() -> None:
    rows = hardening.rollup([SUB], [(SUB, "not-a-hardening-key", "Unhealthy")], {})
    assert {r.recommendation for r in rows} == set(hardening.HARDENING_KEYS)
