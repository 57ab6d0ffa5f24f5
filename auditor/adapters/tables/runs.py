"""RunStore: the manifest of each scheduled run in ``{prefix}Runs``.

PartitionKey is the slot (snapshot id); RowKey ``manifest`` holds the run (planned at, tenant ids,
whether every job was sent) and ``tenant~{id}`` each expected tenant with its subscriptions, which
the queue worker reads so that a message only has to name the tenant and the slot.
"""

from __future__ import annotations

import contextlib
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableServiceClient, UpdateMode

from auditor.adapters.storage import table_service_client
from auditor.adapters.tables.packing import plan_batches
from auditor.adapters.tables.rows import (
    RUN_MANIFEST_ROW,
    manifest_entities,
    manifest_head,
    run_tenant,
    run_tenant_row_key,
)
from auditor.adapters.tables.store import TableNames
from auditor.core.canonical import parse_time
from auditor.core.model import Tenant
from auditor.core.runs import RunManifest
from auditor.settings import Settings, require_storage


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
        self._table.upsert_entity(head, mode=UpdateMode.REPLACE)

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
        if head is None:
            return None
        _, tenant_ids, enqueued, planned_at, version = manifest_head(head)
        tenants = {t.tenant_id: t for t in (run_tenant(r) for r in rows if r is not head)}
        return RunManifest(
            snapshot_id=snapshot_id,
            planned_at=parse_time(planned_at),
            tenants=tuple(tenants[t] for t in tenant_ids if t in tenants),
            collector_version=version,
            enqueued=enqueued,
        )

    def get_tenant(self, snapshot_id: str, tenant_id: str) -> Tenant | None:
        """A tenant as the run planned it (None when the run did not plan it)."""
        try:
            row = self._table.get_entity(snapshot_id, run_tenant_row_key(tenant_id))
        except ResourceNotFoundError:
            return None
        return run_tenant(row)
