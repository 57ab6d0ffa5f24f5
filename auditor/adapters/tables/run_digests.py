"""RunDigestStore: a run's close, its digest and its notification deliveries in ``{prefix}Runs``.

In the run's partition (the slot), beside the manifest (auditor/adapters/tables/runs.py):

- the manifest row ``manifest`` gains, when the run closes, ``closed_at``, ``closed_by``,
  ``close_attempt``, ``digest_hash`` and ``sinks``: written by one conditional MERGE under the
  row's ETag, so of any number of closers (the last two jobs finishing at once, a duplicate
  message, the timer's sweep) exactly one wins;
- ``digest~{attempt}``: the digest a closer computed, written *before* its close (so a closed run
  always names a stored digest). Only the attempt the manifest row names is the run's digest; a
  loser deletes its own, and one left by a crash is never read;
- ``tenant~{id}`` rows gain ``done_status`` when the tenant's slot is committed (a hint that keeps
  the completion check to one partition query; the snapshot index stays the truth);
- ``delivery~{sink}``: one row per notification sink: state (sending, delivered, retrying,
  failed), attempts, reason, event id, when.

And partition ``status``, row ``queues``: the job queues' depths as the timer last saw them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableServiceClient, UpdateMode

from auditor.adapters.storage import table_service_client
from auditor.adapters.tables import keys
from auditor.adapters.tables.packing import get_json, get_text, put_json, put_text
from auditor.adapters.tables.rows import RUN_MANIFEST_ROW, run_tenant_row_key
from auditor.adapters.tables.runs import REJECTED_PARTITION
from auditor.adapters.tables.store import TableNames
from auditor.core.canonical import format_time
from auditor.core.digest import digest_hash
from auditor.settings import Settings, require_storage

DIGEST_PREFIX = "digest"
DELIVERY_PREFIX = "delivery"
# The collector's last look at the job queues (``status``/``queues``), for the API's status.
STATUS_PARTITION = "status"
QUEUES_ROW = "queues"
# Properties of the manifest row that record the close (kept when the manifest is re-planned).
CLOSE_PROPERTIES = ("closed_at", "closed_by", "close_attempt", "digest_hash", "sinks")


class DigestTampered(RuntimeError):
    """The stored digest does not hash to what the run's close recorded."""


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run's manifest row as read, with its ETag (the close is conditional on it)."""

    slot: str
    etag: str
    planned_at: str
    tenant_ids: tuple[str, ...]
    done: dict[str, str]  # tenant id -> committed status (hint), from the tenant rows
    closed_at: str | None
    closed_by: str | None
    close_attempt: str | None
    digest_hash: str | None
    sinks: tuple[str, ...]
    full: bool = True  # a full run (the timer's); `snapshot --tenant` plans partial ones

    @property
    def closed(self) -> bool:
        return self.close_attempt is not None


@dataclass(frozen=True, slots=True)
class Delivery:
    sink: str
    state: str  # sending | delivered | retrying | failed
    attempts: int
    reason: str
    at: str
    event_id: str

    def as_json(self) -> dict[str, Any]:
        return {
            "sink": self.sink,
            "state": self.state,
            "attempts": self.attempts,
            "reason": self.reason,
            "at": self.at,
            "eventId": self.event_id,
        }


class RunDigestStore:
    def __init__(self, service: TableServiceClient, table_prefix: str) -> None:
        self._service = service
        self._name = TableNames(table_prefix).runs
        self._table = service.get_table_client(self._name)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> RunDigestStore:
        service = table_service_client(require_storage(settings), None, **options)
        return cls(service, settings.table_prefix)

    def close(self) -> None:
        self._service.close()

    # -----------------------------------------------------------------------------------------
    # The run record and its close

    def record(self, slot: str) -> RunRecord | None:
        """The run's manifest row and tenant hints (None when no run was planned for it)."""
        try:
            rows = list(
                self._table.query_entities(
                    "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
                    parameters={"pk": slot, "low": "tenant~", "high": "tenant~\U0010ffff"},
                    select=["RowKey", "tenant_id", "done_status"],
                )
            )
            head = self._table.get_entity(slot, RUN_MANIFEST_ROW)
        except ResourceNotFoundError:
            return None
        if head.get("status") == "failed":
            return None
        done = {
            str(r["tenant_id"]): str(r["done_status"])
            for r in rows
            if r.get("done_status") and r.get("tenant_id")
        }
        return RunRecord(
            slot=slot,
            etag=str(head.metadata["etag"]),
            planned_at=str(head["planned_at"]),
            tenant_ids=tuple(get_json(head, "tenant_ids", [])),
            done=done,
            closed_at=head.get("closed_at"),
            closed_by=head.get("closed_by"),
            close_attempt=head.get("close_attempt"),
            digest_hash=head.get("digest_hash"),
            sinks=tuple(get_json(head, "sinks", [])),
            full=head.get("full") is True,
        )

    def mark_done(self, slot: str, tenant_id: str, status: str) -> None:
        """Note on the run's tenant row that the tenant's slot is committed (idempotent)."""
        with contextlib.suppress(ResourceNotFoundError):
            self._table.update_entity(
                {
                    "PartitionKey": slot,
                    "RowKey": run_tenant_row_key(tenant_id),
                    "done_status": status,
                },
                mode=UpdateMode.MERGE,
            )

    def put_digest(self, slot: str, attempt: str, document: dict[str, Any]) -> str:
        """Store a closer's digest under its attempt (before the close); its hash."""
        row: dict[str, Any] = {
            "PartitionKey": slot,
            "RowKey": keys.join(DIGEST_PREFIX, attempt),
            "attempt": attempt,
        }
        hashed = digest_hash(document)
        row["digest_hash"] = hashed
        put_json(row, "document", document)
        self._table.create_entity(row)
        return hashed

    def delete_digest(self, slot: str, attempt: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self._table.delete_entity(slot, keys.join(DIGEST_PREFIX, attempt))

    def close_run(
        self,
        record: RunRecord,
        *,
        attempt: str,
        closed_at: str,
        closed_by: str,
        hashed: str,
        sinks: tuple[str, ...],
    ) -> bool:
        """Close the run under the ETag it was read with: True for the one closer that wins."""
        if record.closed:
            return False
        row: dict[str, Any] = {
            "PartitionKey": record.slot,
            "RowKey": RUN_MANIFEST_ROW,
            "closed_at": closed_at,
            "closed_by": closed_by,
            "close_attempt": attempt,
            "digest_hash": hashed,
        }
        put_json(row, "sinks", list(sinks))
        try:
            self._table.update_entity(
                row,
                mode=UpdateMode.MERGE,
                etag=record.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            return False
        except HttpResponseError as exc:
            if exc.status_code == 412:
                return False
            raise
        return True

    def digest(self, slot: str) -> tuple[RunRecord, dict[str, Any]] | None:
        """The closed run's digest, checked against the hash its close recorded (None: the run
        is not closed); DigestTampered when it does not match."""
        record = self.record(slot)
        if record is None or not record.closed or record.close_attempt is None:
            return None
        try:
            row = self._table.get_entity(slot, keys.join(DIGEST_PREFIX, record.close_attempt))
        except ResourceNotFoundError:
            raise DigestTampered(f"run {slot}: its digest is missing") from None
        text = get_text(row, "document")
        if text is None:
            raise DigestTampered(f"run {slot}: its digest is empty")
        document: dict[str, Any] = get_json(row, "document")
        if digest_hash(document) != record.digest_hash:
            raise DigestTampered(
                f"run {slot}: the digest hashes to {digest_hash(document)}, its close recorded "
                f"{record.digest_hash}"
            )
        return record, document

    # -----------------------------------------------------------------------------------------
    # Deliveries

    def record_delivery(self, slot: str, delivery: Delivery) -> None:
        row: dict[str, Any] = {
            "PartitionKey": slot,
            "RowKey": keys.join(DELIVERY_PREFIX, delivery.sink),
            "sink": delivery.sink,
            "state": delivery.state,
            "attempts": delivery.attempts,
            "at": delivery.at,
            "event_id": delivery.event_id,
        }
        put_text(row, "reason", delivery.reason[:4000])
        self._table.upsert_entity(row, mode=UpdateMode.REPLACE)

    def deliveries(self, slot: str) -> dict[str, Delivery]:
        try:
            rows = self._table.query_entities(
                "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
                parameters={"pk": slot, "low": "delivery~", "high": "delivery~\U0010ffff"},
            )
            return {
                str(r["sink"]): Delivery(
                    sink=str(r["sink"]),
                    state=str(r["state"]),
                    attempts=int(r.get("attempts", 0)),
                    reason=get_text(r, "reason") or "",
                    at=str(r.get("at", "")),
                    event_id=str(r.get("event_id", "")),
                )
                for r in rows
            }
        except ResourceNotFoundError:
            return {}

    def rejected_since(self, since: datetime | None) -> list[tuple[str, str]]:
        """(rejected at, reason) of jobs refused at or after `since` (all when None), oldest
        first (auditor/adapters/tables/runs.py records them)."""
        query = "PartitionKey eq @pk"
        params: dict[str, Any] = {"pk": REJECTED_PARTITION}
        if since is not None:
            query += " and RowKey ge @low"
            params["low"] = format_time(since)
        try:
            rows = self._table.query_entities(query, parameters=params)
            return [(str(r.get("rejected_at", "")), get_text(r, "reason") or "") for r in rows]
        except ResourceNotFoundError:
            return []

    def put_queue_status(self, figures: dict[str, Any]) -> None:
        """The job queues' figures as the collector last saw them (read by the API's status)."""
        row: dict[str, Any] = {"PartitionKey": STATUS_PARTITION, "RowKey": QUEUES_ROW}
        put_json(row, "figures", figures)
        self._table.upsert_entity(row, mode=UpdateMode.REPLACE)

    def queue_status(self) -> dict[str, Any] | None:
        try:
            row = self._table.get_entity(STATUS_PARTITION, QUEUES_ROW)
        except ResourceNotFoundError:
            return None
        figures: dict[str, Any] = get_json(row, "figures", {})
        return figures

    def create_table(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            self._service.create_table(self._name)
