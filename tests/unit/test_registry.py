"""The section registry: one declaration per section, from which everything else derives.

The golden hashes were computed on the code before the registry existed (main at 3434b0c): a
snapshot's canonical content, and so every stored hash, is unchanged by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from auditor.core import canonical, normalize, registry
from auditor.core.canonical import SnapshotHeader
from auditor.core.model import CollectionStatus, Completeness, TenantPosture
from auditor.core.registry import Batch, Derivation, RowKind, Section
from auditor.core.snapshot import CarriedAssessment
from auditor.core.transitions import KnownPrior, next_history
from auditor.services import collect
from tools.posture_factory import make_posture, missing_subscription, tenant_id_for

TENANT = tenant_id_for(1)
SLOT = datetime(2024, 5, 1, 2, tzinfo=UTC)
NEXT = datetime(2024, 5, 2, 2, tzinfo=UTC)
HEADER = SnapshotHeader(TENANT, "20240501T020000Z", CollectionStatus.COMPLETE, "v1", None, None)
NEXT_HEADER = SnapshotHeader(
    TENANT, "20240502T020000Z", CollectionStatus.INCOMPLETE, "v1", "20240501T020000Z", "ab" * 32
)


def first_and_incomplete_second() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    posture = make_posture(TENANT)
    transitions, carried = next_history({}, posture, SLOT)
    first = canonical.canonical_sections(posture, transitions, carried)
    previous = {
        r.key: KnownPrior(CarriedAssessment(r, transitions[r.key], SLOT))
        for r in posture.compliance
    }
    second_posture = missing_subscription(posture, posture.tenant.subscriptions[1].subscription_id)
    transitions, carried = next_history(previous, second_posture, NEXT)
    assert len(carried) == 24
    return first, canonical.canonical_sections(second_posture, transitions, carried)


def test_canonical_hashes_of_every_format_1_section_are_unchanged_by_the_registry() -> None:
    first, second = first_and_incomplete_second()
    assert canonical.content_hash(HEADER, first) == (
        "c2016e7345b8fc21c9cf35fcdfa680e83c368ae351c8733b113182325b5733a4"
    )
    assert canonical.content_hash(NEXT_HEADER, second) == (
        "f932e8f576fcf6d18163b6a0b50568475b1327eb10a06b8b03cbfc1412675142"
    )


def test_the_section_order_is_the_format_1_order_then_later_sections() -> None:
    assert canonical.SECTIONS[:11] == (
        "tenant",
        "completeness",
        "compliance",
        "carried",
        "standards",
        "controls",
        "plans",
        "secure_scores",
        "secure_score_controls",
        "hardening",
        "assignments",
    )
    assert canonical.SECTIONS[11:] == ("alert_counts", "alerts", "recommendations")
    assert set(canonical.SECTIONS[:11]) == canonical.ALWAYS_HASHED


def test_the_collector_reads_every_registered_type_in_one_query_per_group() -> None:
    posture_query = collect.TENANT_QUERIES["posture"]
    for section in registry.REGISTRY:
        for kind in section.kinds:
            assert f"'{kind.graph_type}'" in collect.TENANT_QUERIES[kind.query]
    # One query reads every type: hardening and recommendations are views over one kind.
    assert posture_query.count("'microsoft.security/assessments'") == 1
    assert list(collect.TENANT_QUERIES) == ["posture"]


# --- adding a section in a test: one entry, one pure normalizer, nothing else touched --------

T_WIDGET = "microsoft.security/widgets"


@dataclass(frozen=True, slots=True)
class Widget:
    subscription_id: str
    name: str
    colour: str = ""


def widget(row: normalize.Row) -> Widget:
    props = normalize._props(row)
    colour = props.get("colour")
    if type(colour) is not str:
        raise normalize.Malformed("colour is not a string")
    return Widget(normalize.subscription_of(row), str(row.get("name")), colour)


WIDGETS: Section[Widget] = Section(
    "widgets",
    Widget,
    (RowKind("widgets", T_WIDGET, widget),),
    identity=lambda w: (w.subscription_id, w.name),
)
WITH_WIDGETS = (*registry.REGISTRY, WIDGETS)
SUB = "00000000-0000-0000-0000-000000000001"


def widget_rows() -> list[dict[str, Any]]:
    def row(name: str, colour: Any, sub: str = SUB) -> dict[str, Any]:
        return {
            "id": f"/subscriptions/{sub}/providers/Microsoft.Security/widgets/{name}",
            "name": name,
            "type": "Microsoft.Security/widgets",
            "subscriptionId": sub,
            "properties": {"colour": colour},
        }

    return [row("a", "blue"), row("b", 7), row("c", "red", sub="other")]


def collected_posture(rows: list[dict[str, Any]]) -> TenantPosture:
    batch = Batch(WITH_WIDGETS)
    batch.extend(rows)
    assert batch.malformed == {"widgets": 1}
    base = make_posture(TENANT)
    derived = batch.derive(Derivation(frozenset({SUB})))
    only_widgets = {"widgets": derived["widgets"]}
    return registry.posture_of(base, only_widgets, WITH_WIDGETS)


def test_an_added_section_is_read_counted_hashed_and_decoded_with_no_other_change() -> None:
    assert f"'{T_WIDGET}'" in registry.queries(WITH_WIDGETS)["posture"]
    posture = collected_posture(widget_rows())
    assert registry.records_of(posture, WIDGETS) == (Widget(SUB, "a", "blue"),)
    counts = registry.counts_of(posture, 0, WITH_WIDGETS)
    assert counts["widgets"] == 1
    transitions, carried = next_history({}, posture, SLOT)
    lines = canonical.canonical_sections(posture, transitions, carried, WITH_WIDGETS)
    assert lines["widgets"] == ['{"colour":"blue","name":"a","subscription_id":"' + SUB + '"}']
    with_section = canonical.content_hash(HEADER, lines, WITH_WIDGETS)
    assert with_section != canonical.content_hash(HEADER, {**lines, "widgets": []}, WITH_WIDGETS)
    decoded = canonical.decode_sections(lines, sections_registry=WITH_WIDGETS).posture
    assert registry.records_of(decoded, WIDGETS) == (Widget(SUB, "a", "blue"),)


def test_a_section_not_collected_is_absent_not_empty_and_leaves_the_hash_as_it_was() -> None:
    posture = make_posture(TENANT)
    assert registry.records_of(posture, WIDGETS) is None
    assert "widgets" not in registry.counts_of(posture, 0, WITH_WIDGETS)
    transitions, carried = next_history({}, posture, SLOT)
    lines = canonical.canonical_sections(posture, transitions, carried, WITH_WIDGETS)
    assert "widgets" not in lines
    assert canonical.content_hash(HEADER, lines, WITH_WIDGETS) == (
        "c2016e7345b8fc21c9cf35fcdfa680e83c368ae351c8733b113182325b5733a4"
    )
    decoded = canonical.decode_sections(lines, sections_registry=WITH_WIDGETS).posture
    assert registry.records_of(decoded, WIDGETS) is None


def test_an_empty_posture_has_every_format_1_section_empty_and_later_ones_not_collected() -> None:
    posture = registry.empty_posture(
        make_posture(TENANT).tenant, Completeness((SUB,), ()), WITH_WIDGETS
    )
    assert posture.compliance == () and posture.assignments == ()
    assert registry.records_of(posture, WIDGETS) is None
