"""Canonical content: one spelling per snapshot, a hash that moves with content and only content."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditor.core import canonical
from auditor.core.canonical import CanonicalFormatError, SnapshotHeader
from auditor.core.model import (
    CollectionStatus,
    Completeness,
    ComplianceRecord,
    ControlSummary,
    DefenderPlan,
    SecureScore,
    StandardSummary,
    State,
    Subscription,
    Tenant,
    TenantPosture,
)
from auditor.core.snapshot import Transition
from auditor.core.transitions import next_history
from tools.posture_factory import make_posture, tenant_id_for

SLOT = datetime(2024, 5, 1, 2, tzinfo=UTC)
TENANT = tenant_id_for(1)


def header(**changes: object) -> SnapshotHeader:
    base = SnapshotHeader(TENANT, "20240501T020000Z", CollectionStatus.COMPLETE, "v1", None, None)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def sections_of(posture: TenantPosture | None = None) -> dict[str, list[str]]:
    posture = posture or make_posture(TENANT)
    transitions, carried = next_history({}, posture, SLOT)
    return canonical.canonical_sections(posture, transitions, carried)


def test_a_compliance_line_is_sorted_compact_ascii_json_without_defaults() -> None:
    record = ComplianceRecord(
        subscription_id="s1",
        standard="PCI-DSS-4",
        control="1.2.1",
        assessment="a1",
        state=State.FAILED,
        passed_resources=2,
        failed_resources=1,
        skipped_resources=0,
        description="Ports — closed",
    )
    transition = Transition(first_seen=SLOT, last_changed=SLOT, first_failed=None)
    assert canonical.encode_compliance(record, transition) == (
        '{"assessment":"a1","control":"1.2.1","description":"Ports \\u2014 closed",'
        '"failed_resources":1,"passed_resources":2,"skipped_resources":0,'
        '"standard":"PCI-DSS-4","state":"Failed","subscription_id":"s1",'
        '"transition":{"first_failed":null,"first_seen":"2024-05-01T02:00:00+00:00",'
        '"last_changed":"2024-05-01T02:00:00+00:00"}}'
    )
    assert canonical.decode_compliance(canonical.encode_compliance(record, transition)) == (
        record,
        transition,
    )


def fixed_posture() -> TenantPosture:
    sub = "00000000-0000-0000-0000-000000000001"
    return TenantPosture(
        tenant=Tenant(TENANT, "Contoso", (Subscription(sub, TENANT, "prod"),)),
        compliance=(
            ComplianceRecord(sub, "PCI-DSS-4", "1.2.1", "a1", State.FAILED, 1, 2, 0, "Ports"),
            ComplianceRecord(sub, "PCI-DSS-4", "1.2.1", "a2", State.PASSED, 3, 0, 0, "TLS"),
        ),
        standards=(StandardSummary(sub, "PCI-DSS-4", State.FAILED, 0, 1, 0, 0),),
        controls=(ControlSummary(sub, "PCI-DSS-4", "1.2.1", "Rules", State.FAILED, 1, 1, 0),),
        plans=(DefenderPlan(sub, "VirtualMachines", "Standard", "P2"),),
        secure_scores=(SecureScore(sub, 31.5, 58, 0.5431, 58),),
        secure_score_controls=(),
        hardening=(),
        assignments=(),
        completeness=Completeness((sub,), (sub,), queries=2),
    )


def test_the_hash_of_a_fixed_snapshot_never_changes() -> None:
    # A golden value: if it moves, stored snapshots stop verifying. Change FORMAT instead.
    assert canonical.content_hash(header(), sections_of(fixed_posture())) == (
        "021caaf02f2fe4670699be983cdef5020120a51462b8773b05408365d09cf426"
    )


def test_record_order_in_the_posture_does_not_change_the_hash() -> None:
    posture = make_posture(TENANT)
    shuffled = list(posture.compliance)
    random.Random(4).shuffle(shuffled)
    plans = list(reversed(posture.plans))
    other = dataclasses.replace(posture, compliance=tuple(shuffled), plans=tuple(plans))
    assert canonical.content_hash(header(), sections_of(other)) == canonical.content_hash(
        header(), sections_of(posture)
    )


def test_operational_counters_are_not_content() -> None:
    posture = make_posture(TENANT)
    slower = dataclasses.replace(
        posture,
        completeness=dataclasses.replace(
            posture.completeness, duration_seconds=99.0, queries=40, throttles=7, retries=3
        ),
    )
    assert canonical.content_hash(header(), sections_of(slower)) == canonical.content_hash(
        header(), sections_of(posture)
    )


@pytest.mark.parametrize(
    "change",
    [
        "state",
        "description",
        "status",
        "previous_hash",
        "collector_version",
        "missing_subscription",
        "plan",
    ],
)
def test_any_change_of_content_or_header_changes_the_hash(change: str) -> None:
    posture = make_posture(TENANT)
    base = canonical.content_hash(header(), sections_of(posture))
    first = posture.compliance[0]
    h = header()
    if change == "state":
        flipped = State.PASSED if first.state is not State.PASSED else State.FAILED
        posture = dataclasses.replace(
            posture,
            compliance=(dataclasses.replace(first, state=flipped), *posture.compliance[1:]),
        )
    elif change == "description":
        posture = dataclasses.replace(
            posture,
            compliance=(dataclasses.replace(first, description="x"), *posture.compliance[1:]),
        )
    elif change == "status":
        h = header(status=CollectionStatus.INCOMPLETE)
    elif change == "previous_hash":
        h = header(previous_snapshot_id="20240430T020000Z", previous_hash="0" * 64)
    elif change == "collector_version":
        h = header(collector_version="v2")
    elif change == "missing_subscription":
        posture = dataclasses.replace(
            posture,
            completeness=dataclasses.replace(posture.completeness, missing={"s": "403"}),
        )
    elif change == "plan":
        posture = dataclasses.replace(posture, plans=posture.plans[1:])
    assert canonical.content_hash(h, sections_of(posture)) != base


def test_sections_decode_back_to_the_same_records() -> None:
    posture = make_posture(TENANT, subscriptions=3)
    transitions, carried = next_history({}, posture, SLOT)
    sections = canonical.canonical_sections(posture, transitions, carried)
    decoded = canonical.decode_sections(sections, canonical.operations_of(posture.completeness))
    assert decoded.transitions == transitions
    assert decoded.posture.completeness == posture.completeness
    assert decoded.posture.tenant == posture.tenant
    for field in ("compliance", "standards", "controls", "plans", "secure_scores", "hardening"):
        assert sorted(map(repr, getattr(decoded.posture, field))) == sorted(
            map(repr, getattr(posture, field))
        ), field
    assert set(decoded.posture.assignments) == set(posture.assignments)


texts = st.text()  # any code point, lone surrogates included


@given(
    st.builds(
        ComplianceRecord,
        subscription_id=texts,
        standard=texts,
        control=texts,
        assessment=texts,
        state=st.sampled_from(State),
        passed_resources=st.integers(0, 2**40),
        failed_resources=st.integers(0, 10),
        skipped_resources=st.integers(0, 10),
        description=texts,
        assessment_type=texts,
        details_link=texts,
    ),
    st.datetimes(timezones=st.just(UTC)),
    st.none() | st.datetimes(timezones=st.just(UTC)),
)
def test_any_compliance_record_round_trips_as_one_ascii_line(
    record: ComplianceRecord, seen: datetime, failed: datetime | None
) -> None:
    transition = Transition(first_seen=seen, last_changed=seen, first_failed=failed)
    line = canonical.encode_compliance(record, transition)
    assert "\n" not in line and line.isascii()
    assert canonical.decode_compliance(line) == (record, transition)


@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(2**53), 2**53))
def test_floats_have_one_spelling_even_when_not_finite(value: float) -> None:
    score = SecureScore("s", value, 58.0, 0.5, 58)  # type: ignore[arg-type]
    line = canonical.encode_record(score)
    assert line == canonical.encode_record(SecureScore("s", float(value), 58.0, 0.5, 58))
    back = canonical.decode_record(SecureScore, line)
    assert repr(back.current) == repr(float(value))


def test_a_field_added_later_with_a_default_leaves_old_lines_unchanged() -> None:
    @dataclass(frozen=True)
    class V1:
        name: str

    @dataclass(frozen=True)
    class V2:
        name: str
        severity: str = ""

    assert canonical.encode_record(V1("x")) == canonical.encode_record(V2("x")) == '{"name":"x"}'
    assert canonical.decode_record(V2, '{"name":"x"}') == V2("x")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"current":1.0,"maximum":2.0,"percentage":0.5,"weight":1}', "missing"),
        (
            '{"subscription_id":"s","current":1.0,"maximum":2.0,"percentage":0.5,"weight":1,'
            '"extra":1}',
            "unknown",
        ),
        ('{"subscription_id":"s","current":"x","maximum":2.0,"percentage":0.5,"weight":1}', "x"),
        ("[1,2]", "object"),
        ("{not json", "JSON"),
    ],
)
def test_lines_that_do_not_hold_their_record_are_rejected(line: str, problem: str) -> None:
    with pytest.raises(CanonicalFormatError, match=problem):
        canonical.decode_record(SecureScore, line)


def test_every_compliance_record_needs_its_transition() -> None:
    posture = make_posture(TENANT)
    with pytest.raises(ValueError, match="no transition"):
        canonical.canonical_sections(posture, {}, {})
