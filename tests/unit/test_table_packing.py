"""Entity packing: any lines round-trip, and no entity or batch breaks a Table Storage limit."""

from __future__ import annotations

import os
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.adapters.tables import packing

# Lines as the canonical encoder writes them: ASCII JSON, no newline. Include incompressible
# ones (random hex) so that sections spill over several properties and entities.
line = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200),
    st.binary(min_size=1, max_size=40_000).map(bytes.hex),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(line, max_size=60))
def test_any_lines_round_trip_through_a_section(lines: list[str]) -> None:
    entities = packing.section_entities("pk", "compliance", lines)
    assert list(packing.iter_section_lines(entities)) == lines


@settings(max_examples=60, deadline=None)
@given(st.lists(line, max_size=60))
def test_section_entities_respect_every_limit(lines: list[str]) -> None:
    entities = packing.section_entities("tenant~20240101T020000Z~abc", "compliance", lines)
    assert entities, "even an empty section has an entity (its stream's header)"
    for number, entity in enumerate(entities):
        packing.check_entity(entity)
        assert entity["RowKey"] == f"compliance~{number:05d}"
        assert len(entity) + 1 <= packing.MAX_PROPERTIES
        assert packing.entity_bytes(entity) <= packing.MAX_ENTITY_BYTES
        for value in entity.values():
            if isinstance(value, bytes):
                assert len(value) <= packing.MAX_PROPERTY_BYTES


def test_an_incompressible_section_spans_several_entities_in_order() -> None:
    lines = [os.urandom(30_000).hex() for _ in range(60)]  # 3.6 MB, about 1.9 MB compressed
    stream = packing.compress_lines(lines)
    per_entity = packing.PART_BYTES * packing.MAX_PARTS
    entities = packing.section_entities("pk", "compliance", lines)
    assert len(entities) == -(-len(stream) // per_entity) >= 3
    assert list(packing.iter_section_lines(entities)) == lines


def test_a_missing_entity_is_detected_not_silently_shortened() -> None:
    lines = [os.urandom(30_000).hex() for _ in range(60)]
    entities = packing.section_entities("pk", "compliance", lines)
    with pytest.raises(packing.PackingError):
        list(packing.iter_section_lines(entities[:-1]))
    with pytest.raises(packing.PackingError):
        list(packing.iter_section_lines(entities[:1] + entities[2:]))


def test_a_damaged_part_is_detected() -> None:
    entity = packing.section_entities("pk", "plans", ["{}"] * 10)[0]
    entity["p00"] = entity["p00"][:-3] + b"xyz"
    with pytest.raises(packing.PackingError):
        list(packing.iter_section_lines([entity]))


def entities_of(sizes: list[int], partitions: int) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for number, size in enumerate(sizes):
        entity: dict[str, object] = {
            "PartitionKey": f"p{number * partitions // max(len(sizes), 1)}",
            "RowKey": f"r{number:05d}",
        }
        for part in range(0, size, packing.PART_BYTES):
            entity[f"p{part // packing.PART_BYTES:02d}"] = b"x" * min(
                packing.PART_BYTES, size - part
            )
        out.append(entity)
    return out


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, packing.PART_BYTES * packing.MAX_PARTS), max_size=250),
    st.integers(1, 3),
)
def test_batches_hold_at_most_100_entities_of_one_partition_under_4_mib(
    sizes: list[int], partitions: int
) -> None:
    entities = entities_of(sizes, partitions)
    batches = packing.plan_batches(entities)
    assert [e for batch in batches for e in batch] == entities
    for batch in batches:
        assert 1 <= len(batch) <= 100
        assert len({e["PartitionKey"] for e in batch}) == 1
        assert sum(packing.request_bytes(e) for e in batch) < 4 * 1024 * 1024


def test_request_estimate_is_above_the_base64_body_the_sdk_sends() -> None:
    import base64
    import json

    entity = entities_of([packing.PART_BYTES * packing.MAX_PARTS], 1)[0]
    body = json.dumps(
        {
            k: (base64.b64encode(v).decode() if isinstance(v, bytes) else v)
            for k, v in entity.items()
        }
    )
    assert packing.request_bytes(entity) > len(body) + 12 * 40  # + one type annotation each


def test_an_oversized_entity_is_refused_before_it_reaches_the_service() -> None:
    with pytest.raises(packing.PackingError):
        packing.check_entity({"PartitionKey": "p", "RowKey": "r", "big": "x" * 40_000})
    too_many = {"PartitionKey": "p", "RowKey": "r", **{f"c{i}": i for i in range(253)}}
    with pytest.raises(packing.PackingError):
        packing.check_entity(too_many)
    huge = {"PartitionKey": "p", "RowKey": "r", **{f"p{i:02d}": b"x" * 65_000 for i in range(17)}}
    with pytest.raises(packing.PackingError):
        packing.check_entity(huge)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), st.lists, max_leaves=20))
def test_json_properties_round_trip(value: object) -> None:
    entity: dict[str, object] = {"PartitionKey": "p", "RowKey": "r"}
    packing.put_json(entity, "value", value)
    assert packing.get_json(entity, "value") == value


def test_long_json_properties_are_compressed_into_parts_under_64_kib() -> None:
    subscriptions = [os.urandom(16).hex() for _ in range(10_000)]
    entity: dict[str, object] = {"PartitionKey": "p", "RowKey": "r"}
    packing.put_json(entity, "expected_subscriptions", subscriptions)
    assert "expected_subscriptions" not in entity
    assert entity["expected_subscriptions_z00"]
    packing.check_entity(entity)
    assert packing.get_json(entity, "expected_subscriptions") == subscriptions


def test_compressed_streams_are_standard_zlib() -> None:
    # An auditor can read a section with any zlib implementation: concatenate p00, p01, ...
    entity = packing.section_entities("pk", "plans", ['{"a":1}', '{"b":2}'])[0]
    assert zlib.decompress(entity["p00"]) == b'{"a":1}\n{"b":2}\n'
