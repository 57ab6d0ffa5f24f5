"""The collector with the real SDK clients (azure-identity, azure-mgmt-resourcegraph,
azure-mgmt-security) over HTTPS against the simulator, compared with the estate's ground truth.

The module runs its own simulator (tests/integration/conftest.py): these tests change its day,
quota and faults.
"""

from __future__ import annotations

import json
import math
import os
import pty
import subprocess
import sys
import time

import pytest

from auditor.adapters.credentials import build_credential
from auditor.adapters.resource_graph import GraphQueryError, QueryStats, ResourceGraph
from auditor.core.hardening import JIT_KEY
from auditor.core.model import CollectionStatus, HardeningStatus, State
from auditor.services.collect import TransientCollectionError
from auditor.settings import load_settings
from tests.integration.helpers import (
    clean_tenant,
    expected_status,
    make_collector,
    run_cli,
    truth_tenants,
)
from tools.azure_sim.launcher import Simulator
from tools.devservices import REPO, Azurite


def test_discovers_every_delegated_tenant_and_its_subscriptions(fresh: Simulator) -> None:
    truth = truth_tenants(fresh, 0)
    with make_collector() as collector:
        tenants = collector.discover()

    assert {t.tenant_id for t in tenants} == set(truth)
    for tenant in tenants:
        assert tenant.display_name == truth[tenant.tenant_id]["displayName"]
        expected = {s["subscriptionId"] for s in truth[tenant.tenant_id]["subscriptions"]}
        assert {s.subscription_id for s in tenant.subscriptions} == expected


def test_collects_every_compliance_row_across_skip_token_pages(fresh: Simulator) -> None:
    truth = truth_tenants(fresh, 0)
    with make_collector() as collector:
        postures = [collector.collect(t) for t in collector.discover()]

    for posture in postures:
        expected = truth[posture.tenant.tenant_id]
        c = posture.completeness
        assert c.status is expected_status(expected)
        assert len(posture.compliance) == expected["complianceAssessments"]
        assert sum(c.malformed.values()) == len(expected["malformedRows"])
        counts = expected["counts"]
        assert (
            len(posture.controls)
            == counts[
                "microsoft.security/regulatorycompliancestandards/regulatorycompliancecontrols"
            ]
        )
        assert len(posture.plans) == counts["microsoft.security/pricings"]
        assert len(posture.assignments) == counts["microsoft.security/standardassignments"]
        # More than one page was needed and every page was followed.
        assert c.pages >= math.ceil(len(posture.compliance) / 1000) + 1
        assert c.throttles == 0


def test_malformed_rows_make_the_tenant_incomplete_with_the_count_as_reason(
    fresh: Simulator,
) -> None:
    truth = truth_tenants(fresh, 0)
    bad = {t for t, v in truth.items() if v["malformedRows"]}
    with make_collector() as collector:
        postures = {t.tenant_id: collector.collect(t) for t in collector.discover()}

    assert bad, "the estate promises malformed rows in one tenant"
    for tenant_id, posture in postures.items():
        c = posture.completeness
        if tenant_id in bad:
            assert c.malformed == {"compliance": len(truth[tenant_id]["malformedRows"])}
            assert sum("malformed compliance row" in w for w in c.warnings) == 3
            assert c.status is CollectionStatus.INCOMPLETE
            assert c.reasons == (
                "3 malformed rows or pages dropped (compliance 3); see the warnings",
            )
        else:
            assert (c.malformed, c.status) == ({}, CollectionStatus.COMPLETE)


def test_hardening_reports_retired_features_and_real_jit_coverage(fresh: Simulator) -> None:
    from tools.azure_sim.estate import Estate

    estate = Estate("tiny", 3)
    retired = set(fresh.estate(0)["retiredAssessmentKeys"])
    with make_collector() as collector:
        tenant = collector.discover()[0]
        posture = collector.collect(tenant)

    for row in posture.hardening:
        if row.recommendation in retired:
            assert row.status is HardeningStatus.RETIRED
            assert (row.healthy, row.unhealthy) == (0, 0)
        if row.recommendation == JIT_KEY:
            vms = {
                vm["id"].lower()
                for policy in estate.jit_policies(row.subscription_id, 0)
                for vm in policy["properties"]["virtualMachines"]
            }
            assert row.jit_covered_vms == len(vms)
            assert row.severity  # metadata from the REST endpoint
    assert any(r.status is HardeningStatus.ASSESSED for r in posture.hardening)


def test_a_429_is_retried_after_retry_after_and_counted(fresh: Simulator) -> None:
    fresh.set_quota(2, 1.0)
    credential = build_credential()
    endpoint = load_settings().arm_endpoint
    query = "resourcecontainers | where type == 'microsoft.resources/subscriptions'"
    other_instance = ResourceGraph(credential, endpoint)
    for _ in range(2):  # another instance of the same identity spends the window's quota
        list(other_instance.query(query))
    graph = ResourceGraph(credential, endpoint)
    stats = QueryStats()
    rows = [row for page in graph.query(query, stats=stats) for row in page]

    assert stats.throttles == 1
    assert stats.waited_seconds > 0
    assert len(rows) == len(fresh.estate(0)["tenants"][0]["subscriptions"]) + len(
        fresh.estate(0)["tenants"][1]["subscriptions"]
    )


def test_pacing_on_quota_headers_avoids_429s(fresh: Simulator) -> None:
    fresh.set_quota(3, 1.0)
    truth = truth_tenants(fresh, 0)
    with make_collector() as collector:
        postures = [collector.collect(t) for t in collector.discover()]
    for posture in postures:
        assert posture.completeness.status is expected_status(truth[posture.tenant.tenant_id])
    assert sum(p.completeness.throttles for p in postures) == 0


def test_5xx_then_success_completes_with_retries_counted(fresh: Simulator) -> None:
    with make_collector(backoff_base=0.05) as collector:
        tenant = clean_tenant(collector, fresh)
        fresh.set_faults({"http_5xx": 2})
        posture = collector.collect(tenant)
    assert posture.completeness.status is CollectionStatus.COMPLETE
    assert posture.completeness.retries >= 2


def test_a_dropped_connection_is_retried(fresh: Simulator) -> None:
    with make_collector(backoff_base=0.05) as collector:
        tenant = clean_tenant(collector, fresh)
        fresh.set_faults({"drop": 1})
        posture = collector.collect(tenant)
    assert posture.completeness.status is CollectionStatus.COMPLETE
    assert posture.completeness.retries >= 1


def test_a_tenant_answering_403_is_failed_with_reason_and_others_complete(fresh: Simulator) -> None:
    truth = truth_tenants(fresh, 0)
    with make_collector() as collector:
        tenants = collector.discover()
        denied, other = tenants[0], tenants[1]
        fresh.set_faults({"forbidden_tenants": [denied.tenant_id]})
        denied_posture = collector.collect(denied)
        other_posture = collector.collect(other)

    assert denied_posture.completeness.status is CollectionStatus.FAILED
    assert denied_posture.compliance == ()
    reasons = " ".join(denied_posture.completeness.reasons)
    assert "403" in reasons and "AuthorizationFailed" in reasons
    assert set(denied_posture.completeness.missing) == {
        s.subscription_id for s in denied.subscriptions
    }
    assert other_posture.completeness.status is expected_status(truth[other.tenant_id])


def test_persistent_5xx_raises_transient_error_for_the_queue_to_retry(fresh: Simulator) -> None:
    with make_collector(max_attempts=2, backoff_base=0.01) as collector:
        tenant = collector.discover()[0]
        fresh.set_faults({"http_5xx": 50})
        with pytest.raises(TransientCollectionError, match="posture query"):
            collector.collect(tenant)


def test_a_query_outside_the_kql_subset_fails_clearly(fresh: Simulator) -> None:
    graph = ResourceGraph(build_credential(), load_settings().arm_endpoint)
    with pytest.raises(GraphQueryError) as caught:
        list(graph.query("securityresources | extend x = 1"))
    assert caught.value.status == 400
    assert "HTTP 400" in str(caught.value)


def test_drift_between_days_is_seen_as_the_estate_says(fresh: Simulator) -> None:
    drift = fresh.estate(1)["drift"]["sinceDay0"]
    fresh.set_day(1)
    with make_collector() as collector:
        tenants = {t.tenant_id: t for t in collector.discover()}
        subs = {s.subscription_id for t in tenants.values() for s in t.subscriptions}
        for added in drift["subscriptionsAdded"]:
            assert added["subscriptionId"] in subs
        for removed in drift["subscriptionsRemoved"]:
            assert removed["subscriptionId"] not in subs
        for downgrade in drift["plansDowngraded"]:
            posture = collector.collect(tenants[downgrade["tenantId"]])
            plan = next(
                p
                for p in posture.plans
                if p.subscription_id == downgrade["subscriptionId"] and p.plan == downgrade["plan"]
            )
            assert plan.tier == "Free"
        change = drift["complianceStateChanges"][0]
        posture = collector.collect(tenants[change["tenantId"]])
    states = {
        r.state
        for r in posture.compliance
        if r.subscription_id == change["subscriptionId"] and r.assessment == change["assessmentKey"]
    }
    assert states == {State(change["to"])}


def test_cli_collect_json_reports_each_tenant(fresh: Simulator) -> None:
    result = run_cli("collect", "--all", "--json")
    assert result.returncode == 1, result.stderr  # the tenant with malformed rows
    report = json.loads(result.stdout)
    truth = truth_tenants(fresh, 0)
    assert {t["tenantId"] for t in report["tenants"]} == set(truth)
    for tenant in report["tenants"]:
        assert tenant["status"] == expected_status(truth[tenant["tenantId"]]).value
        assert tenant["records"]["compliance"] == truth[tenant["tenantId"]]["complianceAssessments"]


def test_cli_collect_one_tenant_not_delegated_fails_clearly(fresh: Simulator) -> None:
    result = run_cli("collect", "--tenant", "00000000-0000-0000-0000-00000000abcd")
    assert result.returncode == 1
    assert "not delegated" in result.stderr


def test_cli_bad_setting_fails_at_start_naming_it(fresh: Simulator) -> None:
    result = run_cli("collect", "--all", AUDITOR_ARM_ENDPOINT="http://insecure.example")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [lines[0]] and "AUDITOR_ARM_ENDPOINT" in lines[0]


def test_token_scope_follows_the_configured_endpoint(fresh: Simulator) -> None:
    # The simulator refuses tokens for any audience but its own URL: a collector that asked
    # for the public cloud's scope would fail here.
    with make_collector() as collector:
        assert collector.discover()
    assert load_settings().arm_scope == fresh.base_url + "/.default"


def test_the_time_bound_stops_a_slow_collection(fresh: Simulator) -> None:
    from auditor.adapters.resource_graph import DeadlineExceeded

    graph = ResourceGraph(build_credential(), load_settings().arm_endpoint)
    fresh.set_faults({"slow_ms": 400})
    query = (
        "securityresources | where type == 'microsoft.security/regulatorycompliancestandards/"
        "regulatorycompliancecontrols/regulatorycomplianceassessments' | project id"
    )
    deadline = time.monotonic() + 1.0
    stats = QueryStats()
    with pytest.raises(DeadlineExceeded):
        for _ in graph.query(query, stats=stats, deadline=deadline):
            pass
    # Stopped early: the estate needs more pages than that. How many came first depends on how
    # busy the machine is (under load the token and the first slow page can take the second).
    assert stats.pages < 6


def on_a_terminal(*argv: str, env: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
    """(exit code, stdout through a pipe, what the terminal on stderr showed)."""
    main, child = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "auditor", *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=child,
        cwd=REPO,
        env=env or dict(os.environ),
    ) as proc:
        os.close(child)
        stdout, _ = proc.communicate(timeout=180)
        seen = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            seen += chunk
    os.close(main)
    return proc.returncode, stdout, seen


def test_snapshot_shows_progress_on_a_terminal_like_collect(
    fresh: Simulator, azurite: Azurite, table_prefix: str
) -> None:
    # Issue 11: `snapshot` was silent on a terminal until every tenant was done.
    env = {**os.environ, "AUDITOR_STORAGE": azurite.connection_string,
           "AUDITOR_TABLE_PREFIX": table_prefix}  # fmt: skip
    code, stdout, seen = on_a_terminal("snapshot", "--all", env=env)
    assert code in (0, 1)
    assert b"snapshotting tenant 1/2" in seen and b"snapshotting tenant 2/2" in seen
    assert seen.rstrip().endswith(b"\x1b[K")  # the progress line is erased at the end
    assert b"snapshotting" not in stdout and stdout.splitlines()[-1].startswith(b"slot ")
    _, _, quiet = on_a_terminal("snapshot", "--all", "--json", env=env)
    assert b"snapshotting" not in quiet  # JSON for machines: no progress, even on a terminal


def test_collect_shows_progress_only_on_a_terminal(fresh: Simulator) -> None:
    code, stdout, seen = on_a_terminal("collect", "--all")
    assert code == 1  # one tenant incomplete (malformed rows); all were collected
    assert b"collecting tenant 1/2" in seen
    assert b"collecting tenant" not in stdout  # piped output stays clean
