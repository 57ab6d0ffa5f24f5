"""RunStore: the manifest of each scheduled run in ``{prefix}Runs``.

PartitionKey is the slot (snapshot id); RowKey ``manifest`` holds the run (planned at, tenant ids,
whether every job was sent, whether it was a full run, who left the delegation, or why planning
failed) and ``tenant~{id}`` each expected tenant with its subscriptions, which the queue worker
reads so that a message only has to name the tenant and the slot. Three more partitions:

- ``index``: one row per full run, RowKey newest first (the previous run is one query);
- ``delegation``: ``current`` (the latest full run and its tenants) and one row per tenant that
  left the delegation (the run that first lacked it), read by the API and ``tenants``;
- ``rejected``: queue messages refused before any work, with the reason.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableServiceClient, UpdateMode

from auditor.adapters.storage import table_service_client
from auditor.adapters.tables import keys
from auditor.adapters.tables.packing import get_json, plan_batches, put_json, put_text
from auditor.adapters.tables.rows import (
    RUN_MANIFEST_ROW,
    manifest_entities,
    manifest_head,
    manifest_left,
    run_tenant,
    run_tenant_row_key,
)
from auditor.adapters.tables.store import TableNames
from auditor.core.canonical import format_time, parse_time
from auditor.core.model import Tenant
from auditor.core.runs import Delegation, RunManifest
from auditor.settings import Settings, require_storage

INDEX_PARTITION = "index"
DELEGATION_PARTITION = "delegation"
CURRENT_ROW = "current"
REJECTED_PARTITION = "rejected"


class RunStore:
    def __init__(self, service: TableServiceClient, table_prefix: str) -> None:
        self._service = service
        self._name = TableNames(table_prefix).runs
        self._table = service.get_table_client(self._name)
        self._ready = False

    @classmethod
    def from_settings(
        cls, settings: Settings, credential: TokenCredential | None = None, **options: Any
    ) -> RunStore:
        service = table_service_client(require_storage(settings), credential, **options)
        return cls(service, settings.table_prefix)

    def close(self) -> None:
        self._service.close()

    def create_tables(self) -> None:
        if not self._ready:
            with contextlib.suppress(ResourceExistsError):
                self._service.create_table(self._name)
            self._ready = True

    def upsert_manifest(self, manifest: RunManifest) -> None:
        """Write the tenants' rows, then the manifest row (so a manifest names only stored rows)."""
        self.create_tables()
        tenant_rows, head = manifest_entities(manifest)
        for batch in plan_batches(tenant_rows):
            self._table.submit_transaction(
                [("upsert", e, {"mode": UpdateMode.REPLACE}) for e in batch]
            )
        existing = self._get(manifest.snapshot_id, RUN_MANIFEST_ROW)
        if existing is not None:  # a re-planned run that closed stays closed
            from auditor.adapters.tables.run_digests import CLOSE_PROPERTIES

            head.update({k: existing[k] for k in CLOSE_PROPERTIES if k in existing})
        self._table.upsert_entity(head, mode=UpdateMode.REPLACE)
        if manifest.full:
            self._record_full_run(manifest)

    def _record_full_run(self, manifest: RunManifest) -> None:
        slot = manifest.snapshot_id
        self._table.upsert_entity(
            {"PartitionKey": INDEX_PARTITION, "RowKey": keys.index_row_key(slot), "slot": slot},
            mode=UpdateMode.REPLACE,
        )
        for tenant_id in manifest.left:
            self._table.upsert_entity(
                {"PartitionKey": DELEGATION_PARTITION, "RowKey": tenant_id, "left_at": slot},
                mode=UpdateMode.REPLACE,
            )
        current = self._get(DELEGATION_PARTITION, CURRENT_ROW)
        if current is not None and str(current.get("run", "")) > slot:
            return  # a later run is already the current one
        row: dict[str, Any] = {
            "PartitionKey": DELEGATION_PARTITION,
            "RowKey": CURRENT_ROW,
            "run": slot,
        }
        put_json(row, "tenant_ids", list(manifest.tenant_ids))
        self._table.upsert_entity(row, mode=UpdateMode.REPLACE)

    def _get(self, partition: str, row: str) -> dict[str, Any] | None:
        try:
            return dict(self._table.get_entity(partition, row))
        except ResourceNotFoundError:
            return None

    def previous_full_run(self, snapshot_id: str) -> RunManifest | None:
        """The latest full run planned for a slot before `snapshot_id` (None: none yet)."""
        try:
            rows = self._table.query_entities(
                "PartitionKey eq @pk and RowKey gt @after",
                parameters={"pk": INDEX_PARTITION, "after": keys.after_slot_bound(snapshot_id)},
                results_per_page=1,
            )
            for row in rows:
                return self.get_manifest(str(row["slot"]))
        except ResourceNotFoundError:
            return None
        return None

    def recent_runs(self, limit: int) -> list[str]:
        """The slots of the latest `limit` full runs, newest first."""
        try:
            rows = self._table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": INDEX_PARTITION}, results_per_page=limit
            )
            out = []
            for row in rows:
                out.append(str(row["slot"]))
                if len(out) == limit:
                    break
            return out
        except ResourceNotFoundError:
            return []

    def delegation(self) -> Delegation | None:
        """Who the latest full run found delegated (None before the first full run)."""
        try:
            rows = list(
                self._table.query_entities(
                    "PartitionKey eq @pk", parameters={"pk": DELEGATION_PARTITION}
                )
            )
        except ResourceNotFoundError:
            return None
        current = next((r for r in rows if r["RowKey"] == CURRENT_ROW), None)
        if current is None:
            return None
        delegated = frozenset(get_json(current, "tenant_ids", []))
        left = {
            str(r["RowKey"]): str(r["left_at"])
            for r in rows
            if r["RowKey"] != CURRENT_ROW and r["RowKey"] not in delegated
        }
        return Delegation(str(current["run"]), delegated, left)

    def record_failed_run(self, snapshot_id: str, at: datetime, reason: str) -> None:
        """A run that could not be planned (discovery failed): recorded, never hiding a run
        that was planned before for the same slot."""
        self.create_tables()
        head = self._get(snapshot_id, RUN_MANIFEST_ROW)
        failure: dict[str, Any] = {
            "PartitionKey": snapshot_id,
            "RowKey": f"failure~{format_time(at)}~{uuid.uuid4().hex[:8]}",
            "failed_at": format_time(at),
        }
        put_text(failure, "reason", reason)
        self._table.upsert_entity(failure, mode=UpdateMode.REPLACE)
        if head is None or head.get("status") == "failed":
            row: dict[str, Any] = {
                "PartitionKey": snapshot_id,
                "RowKey": RUN_MANIFEST_ROW,
                "snapshot_id": snapshot_id,
                "planned_at": format_time(at),
                "status": "failed",
                "tenant_count": 0,
            }
            put_text(row, "reason", reason)
            self._table.upsert_entity(row, mode=UpdateMode.REPLACE)

    def run_failure(self, snapshot_id: str) -> str | None:
        """Why planning the run of a slot failed (None when it was planned)."""
        head = self._get(snapshot_id, RUN_MANIFEST_ROW)
        if head is None or head.get("status") != "failed":
            return None
        return str(head.get("reason", ""))

    def record_rejected(self, text: str, reason: str, at: datetime) -> None:
        """A queue message refused before any work, kept with its reason for operators."""
        self.create_tables()
        row: dict[str, Any] = {
            "PartitionKey": REJECTED_PARTITION,
            "RowKey": f"{format_time(at)}~{uuid.uuid4().hex[:8]}",
            "rejected_at": format_time(at),
        }
        put_text(row, "reason", reason)
        put_text(row, "message", text[:8000])
        self._table.upsert_entity(row, mode=UpdateMode.REPLACE)

    def rejected(self) -> list[tuple[str, str]]:
        """(reason, message) of every rejected job, oldest first."""
        try:
            rows = self._table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": REJECTED_PARTITION}
            )
            return [(str(r.get("reason", "")), str(r.get("message", ""))) for r in rows]
        except ResourceNotFoundError:
            return []

    def all_manifests(self) -> list[RunManifest]:
        """Every planned run, oldest first (verify compares them with the store)."""
        try:
            heads = list(
                self._table.query_entities(
                    "RowKey eq @rk", parameters={"rk": RUN_MANIFEST_ROW}, select=["PartitionKey"]
                )
            )
        except ResourceNotFoundError:
            return []
        out = []
        for head in sorted(heads, key=lambda h: str(h["PartitionKey"])):
            manifest = self.get_manifest(str(head["PartitionKey"]))
            if manifest is not None:
                out.append(manifest)
        return out

    def has_run(self, snapshot_id: str) -> bool:
        """Whether a run was planned for the slot (not merely failed to plan)."""
        head = self._get(snapshot_id, RUN_MANIFEST_ROW)
        return head is not None and head.get("status") != "failed"

    def planned_at(self, snapshot_id: str) -> datetime | None:
        """When the slot's run was planned (None when no run was)."""
        head = self._get(snapshot_id, RUN_MANIFEST_ROW)
        if head is None or head.get("status") == "failed":
            return None
        return parse_time(str(head["planned_at"]))

    def mark_enqueued(self, snapshot_id: str) -> None:
        self._table.upsert_entity(
            {"PartitionKey": snapshot_id, "RowKey": RUN_MANIFEST_ROW, "enqueued": True},
            mode=UpdateMode.MERGE,
        )

    def get_manifest(self, snapshot_id: str) -> RunManifest | None:
        """The run planned for a slot, with its tenants (None when no run was planned)."""
        try:
            rows = list(
                self._table.query_entities("PartitionKey eq @pk", parameters={"pk": snapshot_id})
            )
        except ResourceNotFoundError:
            return None
        head = next((r for r in rows if r["RowKey"] == RUN_MANIFEST_ROW), None)
        if head is None or head.get("status") == "failed":
            return None
        _, tenant_ids, enqueued, planned_at, version = manifest_head(head)
        full, left = manifest_left(head)
        tenants = {
            t.tenant_id: t
            for t in (run_tenant(r) for r in rows if str(r["RowKey"]).startswith("tenant~"))
        }
        return RunManifest(
            snapshot_id=snapshot_id,
            planned_at=parse_time(planned_at),
            tenants=tuple(tenants[t] for t in tenant_ids if t in tenants),
            collector_version=version,
            enqueued=enqueued,
            full=full,
            left=left,
        )

    def get_tenant(self, snapshot_id: str, tenant_id: str) -> Tenant | None:
        """A tenant as the run planned it (None when the run did not plan it)."""
        try:
            row = self._table.get_entity(snapshot_id, run_tenant_row_key(tenant_id))
        except ResourceNotFoundError:
            return None
        return run_tenant(row)
