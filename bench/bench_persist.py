"""Persist throughput into Azurite: packed snapshots vs one entity per compliance record.

Baseline, measured in the same run on the same Azurite: the naive layout, one entity per
compliance record (its fields as properties, keys escaped), upserted in transactions of 100.
Measured: SnapshotStore.commit_snapshot of a 50,000-record tenant, both a first snapshot and the
daily steady state (which also reads the previous snapshot's history and computes transitions),
in compliance records per second. Target: the slower of the two at least 20x the baseline.

    python -m bench.bench_persist
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.data.tables import UpdateMode

from auditor.adapters.storage import table_service_client
from auditor.adapters.tables import SnapshotStore, keys
from auditor.core.model import ComplianceRecord
from auditor.settings import load_settings, require_storage
from tools.devservices import start_azurite
from tools.posture_factory import make_posture, tenant_id_for

TARGET_RATIO = 20.0
NAIVE_RECORDS = 5_000
ROUNDS = 3
SLOT = datetime(2024, 5, 1, 2, tzinfo=UTC)


def naive_entity(partition_key: str, record: ComplianceRecord) -> dict[str, Any]:
    return {
        "PartitionKey": partition_key,
        "RowKey": keys.join(*record.key),
        "subscription_id": record.subscription_id,
        "standard": record.standard,
        "control": record.control,
        "assessment": record.assessment,
        "state": record.state.value,
        "passed_resources": record.passed_resources,
        "failed_resources": record.failed_resources,
        "skipped_resources": record.skipped_resources,
        "description": record.description,
        "assessment_type": record.assessment_type,
        "details_link": record.details_link,
        "first_seen": SLOT,
        "last_changed": SLOT,
    }


def naive_records_per_second(
    connection_string: str, table_name: str, records: list[ComplianceRecord]
) -> float:
    settings = load_settings({"AUDITOR_STORAGE": connection_string})
    with table_service_client(require_storage(settings)) as service:
        table = service.create_table_if_not_exists(table_name)
        entities = [naive_entity("tenant~20240501T020000Z", r) for r in records]
        started = time.perf_counter()
        for start in range(0, len(entities), 100):
            batch = entities[start : start + 100]
            table.submit_transaction([("upsert", e, {"mode": UpdateMode.REPLACE}) for e in batch])
        return len(entities) / (time.perf_counter() - started)


def main() -> int:
    posture = make_posture(
        tenant_id_for(1), subscriptions=10, standards=4, controls=50, assessments=25
    )
    n = len(posture.compliance)
    sample = list(posture.compliance)[:NAIVE_RECORDS]
    print(f"tenant of {n:,} compliance records ({len(posture.controls):,} controls)")
    naive_rates: list[float] = []
    first_rates: list[float] = []
    steady_rates: list[float] = []
    read_seconds: list[float] = []
    with start_azurite() as azurite:
        connection = azurite.connection_string
        naive_records_per_second(connection, "benchWarmup", sample[:1000])  # warm Azurite's JIT
        for number in range(ROUNDS):  # interleaved, so both layouts see the same conditions
            naive_rates.append(naive_records_per_second(connection, f"benchNaive{number}", sample))
            env = {"AUDITOR_STORAGE": connection, "AUDITOR_TABLE_PREFIX": f"bench{number}"}
            with SnapshotStore.from_settings(load_settings(env)) as store:
                store.create_tables()
                started = time.perf_counter()
                store.commit_snapshot(posture, SLOT, "bench")
                first_rates.append(n / (time.perf_counter() - started))
                started = time.perf_counter()
                store.commit_snapshot(posture, SLOT + timedelta(days=1), "bench")
                steady_rates.append(n / (time.perf_counter() - started))
                started = time.perf_counter()
                snapshot = store.get_snapshot(posture.tenant.tenant_id, "20240502T020000Z")
                read_seconds.append(time.perf_counter() - started)
                assert len(snapshot.posture.compliance) == n
    naive = statistics.median(naive_rates)
    first, steady = statistics.median(first_rates), statistics.median(steady_rates)
    ratio = min(first, steady) / naive
    rows = [
        ("naive, one entity per record (batches of 100)", naive),
        ("packed, first snapshot", first),
        ("packed, daily snapshot (reads its history)", steady),
    ]
    for label, rate in rows:
        print(f"{label:<48}{rate:>10,.0f} records/s  ({rate / naive:.1f}x)")
    print(f"read back the whole {n:,}-record snapshot: {statistics.median(read_seconds):.2f} s")
    verdict = "MET" if ratio >= TARGET_RATIO else "MISSED"
    print(f"ratio (slower packed / naive): {ratio:.1f}x, target >= {TARGET_RATIO:.0f}x: {verdict}")
    print(f"(medians of {ROUNDS} interleaved rounds; naive on {len(sample):,} records)")
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
