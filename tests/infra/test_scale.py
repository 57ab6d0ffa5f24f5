"""host.json's queue settings and the collector's instance ceiling satisfy their derivation
(docs/scale.md "Deriving host.json and the instance ceiling"): from the identity's Resource
Graph quota, the caps, the collection time bound and figures the benchmarks measured."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from auditor.adapters.queues import HostQueueOptions, run_deadline
from auditor.settings import CollectLimits, load_arg_quota, load_settings
from tests.infra.test_bicep import MAIN, _parse, param_default

REPO = Path(__file__).resolve().parents[2]

# Measured (docs/scale.md, with the command that measured each):
# Tenants in hand, fleet-wide, that keep the quota busy: one worker spends 10.3 s a `large`
# tenant, 5.3 s of it the tenant's queries at the quota (bench fleet); 2 fill it, 4 for margin.
IN_FLIGHT_AT_FLOOR = 4
PEAK_MB_PER_TENANT = 420  # a worker's peak with one `large` tenant in hand (bench fleet)
COMMIT_SECONDS = 120  # commit of the largest tenant the caps allow, with margin (bench persist)
QUERIES_PER_SUBSCRIPTION = 1.4  # `large`: 1,401 queries for 1,000 subscriptions (bench collect)
# Design scale: Resource Graph's tenant-scope limit.
DESIGN_SUBSCRIPTIONS = 10_000
ROWS_PER_PAGE = 1000
MEMORY_SHARE = 0.8  # of an instance's memory the messages in hand may use


def in_hand_per_instance() -> int:
    """What the host works at once on one instance: batchSize, plus newBatchThreshold more
    fetched while the batch runs (what `worker` works at once by default)."""
    return HostQueueOptions.from_host_json().in_hand


def rate() -> float:
    spec = load_arg_quota({})
    assert spec is not None
    limit, window = spec
    return limit / window


def test_the_fleet_keeps_the_shared_quota_busy(main: dict[str, Any]) -> None:
    instances = param_default(main, "collectorMaximumInstanceCount")
    assert instances * in_hand_per_instance() >= IN_FLIGHT_AT_FLOOR


def test_the_largest_tenant_the_caps_allow_reads_its_pages_within_its_time_bound(
    main: dict[str, Any],
) -> None:
    # With every message of the fleet in hand, the slot lease gives each tenant an equal share.
    in_flight = param_default(main, "collectorMaximumInstanceCount") * in_hand_per_instance()
    pages = math.ceil(CollectLimits.defaults().max_rows_per_tenant / ROWS_PER_PAGE)
    seconds = pages * in_flight / rate()
    assert seconds <= load_settings({}).collect_timeout_seconds


def test_an_instances_messages_in_hand_fit_its_memory(main: dict[str, Any]) -> None:
    memory = param_default(main, "instanceMemoryMB")
    assert in_hand_per_instance() * PEAK_MB_PER_TENANT <= memory * MEMORY_SHARE


def test_a_function_outlives_its_collection_and_commit() -> None:
    host = HostQueueOptions.from_host_json()
    assert host.hold_seconds >= load_settings({}).collect_timeout_seconds + COMMIT_SECONDS


def test_a_retry_waits_out_a_quota_window_and_the_run_deadline_holds_a_day_at_design_scale() -> (
    None
):
    spec = load_arg_quota({})
    assert spec is not None
    host = HostQueueOptions.from_host_json()
    assert host.retry_delay_seconds >= spec[1]
    floor = DESIGN_SUBSCRIPTIONS * QUERIES_PER_SUBSCRIPTION / rate()
    assert run_deadline().total_seconds() >= floor * 1.15


@pytest.fixture(scope="module")
def main() -> dict[str, Any]:
    return _parse(MAIN)
