"""The prepared snapshot: the domain half of a commit, computed without storage."""

from __future__ import annotations

from datetime import UTC, datetime

from auditor.core import canonical
from auditor.core.model import CollectionStatus
from auditor.core.prepared import Predecessor, header_of_entry, prepare_snapshot
from auditor.core.snapshot import CarriedAssessment
from auditor.core.transitions import KnownPrior
from tools.posture_factory import make_posture, missing_subscription, tenant_id_for

TENANT = tenant_id_for(1)


def test_a_first_snapshot_has_its_golden_hash_counts_and_no_predecessor() -> None:
    prepared = prepare_snapshot(
        make_posture(TENANT),
        "20240501T020000Z",
        collector_version="v1",
        status=CollectionStatus.COMPLETE,
        predecessor=Predecessor(),
    )
    entry = prepared.entry
    # The same hash as tests/unit/test_registry.py computed from canonical content alone.
    assert entry.content_hash == "c2016e7345b8fc21c9cf35fcdfa680e83c368ae351c8733b113182325b5733a4"
    assert canonical.content_hash(header_of_entry(entry), prepared.sections) == entry.content_hash
    assert (entry.previous_snapshot_id, entry.previous_hash) == (None, None)
    assert entry.counts["compliance"] == 48 and entry.counts["carried"] == 0
    assert prepared.operations["queries"] == 2
    # A posture without alerts (made before they were collected) has no alert sections.
    assert list(prepared.sections) == [
        s for s in canonical.SECTIONS if s in canonical.ALWAYS_HASHED
    ]
    assert "alerts" not in entry.counts


def test_a_snapshot_on_an_unreadable_history_says_why_and_links_its_predecessor() -> None:
    first = prepare_snapshot(
        make_posture(TENANT),
        "20240501T020000Z",
        collector_version="v1",
        status=CollectionStatus.COMPLETE,
        predecessor=Predecessor(),
    )
    posture = make_posture(TENANT)
    second = prepare_snapshot(
        missing_subscription(posture, posture.tenant.subscriptions[1].subscription_id),
        "20240502T020000Z",
        collector_version="v1",
        status=CollectionStatus.INCOMPLETE,
        predecessor=Predecessor(first.entry, {}, "history source 20240501T020000Z is damaged"),
    )
    assert second.entry.previous_hash == first.entry.content_hash
    assert second.entry.history_break == "history source 20240501T020000Z is damaged"
    assert any("history not inherited" in line for line in second.sections["completeness"])
    assert second.entry.counts["carried"] == 0


def test_an_incomplete_snapshot_carries_the_unobserved_history() -> None:
    posture = make_posture(TENANT)
    slot = datetime(2024, 5, 1, 2, tzinfo=UTC)
    first = prepare_snapshot(
        posture,
        "20240501T020000Z",
        collector_version="v1",
        status=CollectionStatus.COMPLETE,
        predecessor=Predecessor(),
    )
    history = {
        r.key: KnownPrior(CarriedAssessment(r, canonical.decode_compliance(line)[1], slot))
        for r, line in zip(
            sorted(posture.compliance, key=lambda r: (*r.key, r.state.value)),
            first.sections["compliance"],
            strict=True,
        )
    }
    second = prepare_snapshot(
        missing_subscription(posture, posture.tenant.subscriptions[1].subscription_id),
        "20240502T020000Z",
        collector_version="v1",
        status=CollectionStatus.INCOMPLETE,
        predecessor=Predecessor(first.entry, history),
    )
    assert second.entry.counts["carried"] == 24 == len(second.sections["carried"])
