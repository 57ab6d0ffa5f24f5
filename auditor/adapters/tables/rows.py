"""Index rows, latest-snapshot rows and run-manifest rows: records <-> entities. Pure.

Property names are the record's field names. Lists and maps are JSON (compressed into binary
parts when long, see ``packing.put_json``); times are ISO-8601 UTC strings, exact to the second
and readable in Storage Explorer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from azure.data.tables import EntityProperty

from auditor.adapters.tables import keys
from auditor.adapters.tables.packing import Entity, get_json, get_text, put_json, put_text
from auditor.core.canonical import decode_record, encode_record, format_time, parse_time
from auditor.core.index_summary import IndexSummary, SummaryFormatError
from auditor.core.model import CollectionStatus, Tenant
from auditor.core.runs import RunManifest
from auditor.core.snapshot import SnapshotIndexEntry

LATEST_PARTITION = "latest"
RUN_MANIFEST_ROW = "manifest"
RUN_TENANT_PREFIX = "tenant"


@dataclass(frozen=True, slots=True)
class ContentLayout:
    """Where a committed snapshot's content is and what it must hold (checked on read)."""

    partition_key: str
    sections: dict[str, tuple[int, int]]  # section -> (entities, lines)
    operations: dict[str, float]  # operational counters of the collection (not hashed)


def content_partition_key(tenant_id: str, snapshot_id: str, attempt: str) -> str:
    """Each write attempt has its own partition: a crashed or concurrent one never mixes in."""
    return keys.join(tenant_id, snapshot_id, attempt)


def index_keys(tenant_id: str, snapshot_id: str) -> tuple[str, str]:
    return keys.escape(tenant_id), keys.index_row_key(snapshot_id)


def pending_entity(
    tenant_id: str, snapshot_id: str, attempt: str, abandoned: list[str], started_at: str
) -> Entity:
    """The index row while an attempt writes content: invisible to readers (committed false)."""
    partition_key, row_key = index_keys(tenant_id, snapshot_id)
    entity: Entity = {
        "PartitionKey": partition_key,
        "RowKey": row_key,
        "tenant_id": tenant_id,
        "snapshot_id": snapshot_id,
        "committed": False,
        "attempt": attempt,
        "started_at": started_at,
    }
    put_json(entity, "abandoned", abandoned)
    return entity


def committed_entity(
    entry: SnapshotIndexEntry, attempt: str, layout: ContentLayout, started_at: str
) -> Entity:
    partition_key, row_key = index_keys(entry.tenant_id, entry.snapshot_id)
    entity: Entity = {
        "PartitionKey": partition_key,
        "RowKey": row_key,
        "committed": True,
        "attempt": attempt,
        "started_at": started_at,
        "content_partition": layout.partition_key,
        **index_properties(entry),
    }
    if entry.backfill:
        entity["backfill"] = True
    if entry.supersedes:
        entity["supersedes"] = entry.supersedes
    if entry.history_break:
        put_text(entity, "history_break", entry.history_break)
    put_json(entity, "sections", {k: list(v) for k, v in layout.sections.items()})
    put_json(entity, "operations", layout.operations)
    return entity


def index_properties(entry: SnapshotIndexEntry) -> Entity:
    entity: Entity = {
        "tenant_id": entry.tenant_id,
        "tenant_name": entry.tenant_name,
        "snapshot_id": entry.snapshot_id,
        "scheduled_at": format_time(entry.scheduled_at),
        "finished_at": format_time(entry.finished_at),
        "status": entry.status.value,
        "collector_version": entry.collector_version,
        "content_hash": entry.content_hash,
        "previous_snapshot_id": entry.previous_snapshot_id or "",
        "previous_hash": entry.previous_hash or "",
        "subscriptions_expected": len(entry.expected_subscriptions),
        "subscriptions_collected": len(entry.collected_subscriptions),
    }
    put_json(entity, "reasons", list(entry.reasons))
    put_json(entity, "expected_subscriptions", list(entry.expected_subscriptions))
    put_json(entity, "collected_subscriptions", list(entry.collected_subscriptions))
    put_json(entity, "counts", entry.counts)
    put_json(entity, "compliance_by_standard", entry.compliance_by_standard)
    if entry.summary is not None:
        put_json(entity, "summary", entry.summary.to_json())
    return entity


def stored_summary(entity: Mapping[str, Any]) -> IndexSummary | None:
    """The row's summary (None for a row that predates summaries, or a format this code does
    not read: readers then derive the figures from the snapshot, as before)."""
    value = get_json(entity, "summary")
    if value is None:
        return None
    try:
        return IndexSummary.from_json(value)
    except SummaryFormatError:
        return None


def is_committed(entity: Mapping[str, Any]) -> bool:
    return entity.get("committed") is True


def index_entry(entity: Mapping[str, Any]) -> SnapshotIndexEntry:
    """The index entry a committed row (or latest row) holds."""
    digests = property_digests(entity)
    return SnapshotIndexEntry(
        tenant_id=entity["tenant_id"],
        tenant_name=entity.get("tenant_name", ""),
        snapshot_id=entity["snapshot_id"],
        scheduled_at=parse_time(entity["scheduled_at"]),
        finished_at=parse_time(entity["finished_at"]),
        status=CollectionStatus(entity["status"]),
        reasons=tuple(get_json(entity, "reasons", [])),
        expected_subscriptions=tuple(get_json(entity, "expected_subscriptions", [])),
        collected_subscriptions=tuple(get_json(entity, "collected_subscriptions", [])),
        counts={k: int(v) for k, v in get_json(entity, "counts", {}).items()},
        compliance_by_standard=dict(get_json(entity, "compliance_by_standard", {})),
        collector_version=entity.get("collector_version", ""),
        content_hash=entity["content_hash"],
        previous_snapshot_id=entity.get("previous_snapshot_id") or None,
        previous_hash=entity.get("previous_hash") or None,
        attempt=str(entity.get("attempt", "")),
        backfill=entity.get("backfill") is True,
        supersedes=str(entity.get("supersedes", "")),
        history_break=get_text(entity, "history_break") or "",
        summary=stored_summary(entity),
        row_digest=digest_of(digests),
        row_properties=digests,
    )


# Properties the service adds or that name where a row lives rather than what it says: the
# index row and the tenant's latest row (its copy) differ only in these.
_NOT_DIGESTED = frozenset({"PartitionKey", "RowKey", "Timestamp"})


def _value_bytes(value: Any) -> tuple[str, bytes]:
    if isinstance(value, EntityProperty):
        value = value.value
    if isinstance(value, bool):
        return "b", b"1" if value else b"0"
    if isinstance(value, int):
        return "i", str(value).encode()
    if isinstance(value, float):
        return "f", repr(value).encode()
    if isinstance(value, bytes):
        return "x", value
    if isinstance(value, bytearray):
        return "x", bytes(value)
    if isinstance(value, str):
        return "s", value.encode("utf-8", "surrogatepass")
    return "o", str(value).encode("utf-8", "surrogatepass")


def property_digests(entity: Mapping[str, Any]) -> dict[str, str]:
    """SHA-256 of each stored property (its type and value; keys and Timestamp excepted)."""
    out = {}
    for name in sorted(k for k in entity if k not in _NOT_DIGESTED and not k.startswith("odata")):
        kind, data = _value_bytes(entity[name])
        digest = hashlib.sha256(kind.encode() + b":")
        digest.update(data)
        out[name] = digest.hexdigest()
    return out


def digest_of(properties: Mapping[str, str]) -> str:
    """One digest over every property's digest (names included), so that an edit of any
    property, or an added or removed one, changes it."""
    digest = hashlib.sha256()
    for name in sorted(properties):
        digest.update(f"{name}={properties[name]}\n".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def row_digest(entity: Mapping[str, Any]) -> str:
    """SHA-256 of every property of a stored row (see property_digests)."""
    return digest_of(property_digests(entity))


def entities_digest(entities: Iterable[Mapping[str, Any]]) -> str:
    """SHA-256 over a content partition's entities, in RowKey order: each key and its digest."""
    return keyed_digest((str(e["RowKey"]), row_digest(e)) for e in entities)


def keyed_digest(digests: Iterable[tuple[str, str]]) -> str:
    """entities_digest from (RowKey, row_digest) pairs already computed (a commit digests
    its entities once for both the diff view's digest and the anchor's)."""
    digest = hashlib.sha256()
    for key, entity_digest in sorted(digests, key=lambda d: d[0]):
        digest.update(f"{key}\n{entity_digest}\n".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def key_problem(entity: Mapping[str, Any]) -> str | None:
    """Whether a row sits under the keys its own properties name (a row copied under another
    tenant or slot would otherwise show someone else's verified data)."""
    try:
        if entity.get("PartitionKey") == LATEST_PARTITION:
            expected = (LATEST_PARTITION, keys.escape(entity["tenant_id"]))
        else:
            expected = index_keys(entity["tenant_id"], entity["snapshot_id"])
    except (KeyError, keys.KeyFormatError) as exc:
        return f"row names no valid tenant and slot ({exc})"
    if (entity.get("PartitionKey"), entity.get("RowKey")) != expected:
        return "row is stored under another tenant's or slot's keys"
    return None


def content_layout(entity: Mapping[str, Any]) -> ContentLayout:
    sections = get_json(entity, "sections", {})
    return ContentLayout(
        partition_key=entity["content_partition"],
        sections={k: (int(v[0]), int(v[1])) for k, v in sections.items()},
        operations={k: float(v) for k, v in get_json(entity, "operations", {}).items()},
    )


def latest_entity(committed: Mapping[str, Any]) -> Entity:
    """The tenant's latest-snapshot row: a copy of its newest committed index row."""
    entity = {k: v for k, v in committed.items() if k not in ("PartitionKey", "RowKey")}
    entity.pop("abandoned", None)
    entity.update(PartitionKey=LATEST_PARTITION, RowKey=keys.escape(committed["tenant_id"]))
    return entity


# ---------------------------------------------------------------------------------------------
# Run manifests: partition = slot; one manifest row and one row per expected tenant.


def run_tenant_row_key(tenant_id: str) -> str:
    return keys.join(RUN_TENANT_PREFIX, tenant_id)


def manifest_entities(manifest: RunManifest) -> tuple[list[Entity], Entity]:
    """(tenant rows, manifest row): the manifest row is written last."""
    tenant_rows = []
    for tenant in manifest.tenants:
        row: Entity = {
            "PartitionKey": manifest.snapshot_id,
            "RowKey": run_tenant_row_key(tenant.tenant_id),
            "tenant_id": tenant.tenant_id,
        }
        put_text(row, "tenant", encode_record(tenant))
        tenant_rows.append(row)
    head: Entity = {
        "PartitionKey": manifest.snapshot_id,
        "RowKey": RUN_MANIFEST_ROW,
        "snapshot_id": manifest.snapshot_id,
        "scheduled_at": format_time(manifest.scheduled_at),
        "planned_at": format_time(manifest.planned_at),
        "collector_version": manifest.collector_version,
        "tenant_count": len(manifest.tenants),
        "enqueued": manifest.enqueued,
        "full": manifest.full,
        "status": "planned",
    }
    put_json(head, "tenant_ids", list(manifest.tenant_ids))
    put_json(head, "left", list(manifest.left))
    return tenant_rows, head


def run_tenant(entity: Mapping[str, Any]) -> Tenant:
    text = get_text(entity, "tenant")
    if text is None:
        raise ValueError(f"run row {entity.get('RowKey')!r} holds no tenant")
    return decode_record(Tenant, text)


def manifest_head(entity: Mapping[str, Any]) -> tuple[str, list[str], bool, str, str]:
    """(snapshot id, tenant ids, enqueued, planned at, collector version) of a manifest row."""
    return (
        entity["snapshot_id"],
        list(get_json(entity, "tenant_ids", [])),
        bool(entity.get("enqueued")),
        entity["planned_at"],
        entity.get("collector_version", ""),
    )


def manifest_left(entity: Mapping[str, Any]) -> tuple[bool, tuple[str, ...]]:
    """(full run, tenants that left the delegation) of a manifest row."""
    return entity.get("full") is True, tuple(get_json(entity, "left", []))
