"""The collector against a hostile control plane (the simulator's hostile modes), over HTTPS with
the real SDK clients and the real command line.

Whatever Resource Manager (or anything posing as it) answers, the token goes nowhere else, the
collection ends within its bounds, and every tenant says what it could not read: never a crash,
never complete with something missing. A second loopback listener stands for "another host":
it counts every connection that reaches it, and must count none.

Command-line runs carry a timeout, so a collector that would loop forever fails instead.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from auditor.core.model import CollectionStatus
from auditor.services.collect import DiscoveryFailed, TransientCollectionError
from auditor.settings import load_settings
from tests.integration.helpers import make_collector, run_cli, truth_tenants
from tests.listener import CountingListener
from tools.azure_sim.launcher import Simulator
from tools.devservices import REPO

MiB = 1 << 20


@pytest.fixture
def hostile(sim: Simulator) -> Iterator[Simulator]:
    """The simulator at day 0, quota off (these runs page a lot), no faults — also after."""
    sim.set_day(0)
    sim.clear_faults()
    sim.set_quota(None)
    sim.reset_stats()
    yield sim
    sim.clear_faults()
    sim.set_quota(15, 5)


@pytest.fixture
def listener() -> Iterator[CountingListener]:
    with CountingListener() as other_host:
        yield other_host


def collect_json(*, timeout: float = 120, **env: str) -> tuple[int, dict[str, Any], str]:
    """(exit code, the --json report, stderr) of `collect --all --json`."""
    result = run_cli("collect", "--all", "--json", timeout=timeout, **env)
    report = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.returncode, report, result.stderr


def by_tenant(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["tenantId"]: t for t in report["tenants"]}


def all_reasons(tenant: dict[str, Any]) -> str:
    return " | ".join(tenant["reasons"])


# --- the token only ever goes to Resource Manager (issue 9 §1) ------------------------------


def test_foreign_next_links_are_never_followed_and_the_other_host_gets_nothing(
    hostile: Simulator, listener: CountingListener
) -> None:
    hostile.set_faults({"next_link": {"mode": "foreign", "base": listener.url}})
    code, report, stderr = collect_json()

    assert listener.connections == 0, listener.received[:200]
    assert code == 1 and "Traceback" not in stderr
    truth = truth_tenants(hostile, 0)
    origin = f"https://127.0.0.1:{listener.port}"
    for tenant_id, tenant in by_tenant(report).items():
        assert tenant["status"] == "incomplete"
        reasons = all_reasons(tenant)
        for what in ("tenant directory", "assessment metadata", "just-in-time policies"):
            assert f"{what}: nextLink points to {origin}, not to Resource Manager" in reasons
        # Resource Graph pages carry no links: the posture itself was read in full.
        assert tenant["records"]["compliance"] == truth[tenant_id]["complianceAssessments"]
    assert hostile.stats()["hostile_served"]["next_link"] >= 3


def test_a_redirect_to_another_origin_is_refused_by_the_pipeline_before_sending(
    hostile: Simulator, listener: CountingListener
) -> None:
    hostile.set_faults({"redirect": listener.url})
    result = run_cli("collect", "--all")

    assert listener.connections == 0
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: discovery failed: refused to send a request to ")
    assert f"https://127.0.0.1:{listener.port}" in line


def test_a_redirected_posture_query_leaves_the_tenant_incomplete_and_sends_nothing(
    hostile: Simulator, listener: CountingListener
) -> None:
    with make_collector() as collector:
        tenant = collector.discover()[0]
        hostile.set_faults({"redirect": listener.url})
        posture = collector.collect(tenant)

    assert listener.connections == 0
    c = posture.completeness
    assert c.status is not CollectionStatus.COMPLETE
    assert any("refused to send a request to" in reason for reason in c.reasons)


# --- every pager ends: caps and cycles (issue 9 §1, §2) -----------------------------------


def test_an_endless_skip_token_with_real_rows_stops_at_the_page_cap(hostile: Simulator) -> None:
    hostile.set_faults({"skip_token": "endless"})
    code, report, stderr = collect_json(AUDITOR_COLLECT_MAX_PAGES_PER_QUERY="12")

    assert code == 1 and "Traceback" not in stderr
    for tenant in report["tenants"]:
        assert tenant["status"] == "incomplete"
        assert "more than 12 pages in one query (the cap of pages per query)" in all_reasons(tenant)
        assert tenant["pages"] == 12  # the one posture query (every registered type), stopped


def test_an_endless_skip_token_stops_at_the_rows_cap(hostile: Simulator) -> None:
    hostile.set_faults({"skip_token": "endless"})
    code, report, _ = collect_json(AUDITOR_COLLECT_MAX_ROWS_PER_TENANT="5000")

    assert code == 1
    for tenant in report["tenants"]:
        assert "more than 5,000 rows (the cap of rows per tenant)" in all_reasons(tenant)
        assert tenant["pages"] <= 6


def test_a_repeating_skip_token_is_a_cycle_not_an_endless_loop(hostile: Simulator) -> None:
    hostile.set_faults({"skip_token": "repeat"})
    code, report, _ = collect_json()

    assert code == 1
    for tenant in report["tenants"]:
        assert tenant["status"] == "incomplete"
        assert "$skipToken repeats an earlier page; stopped" in all_reasons(tenant)
        assert tenant["pages"] == 2  # two pages of the one query: the second repeats the first


@pytest.mark.parametrize("mode", ["self", "loop"])
def test_a_next_link_that_repeats_is_a_cycle_not_an_endless_loop(
    hostile: Simulator, mode: str
) -> None:
    hostile.set_faults({"next_link": {"mode": mode}})
    started = time.monotonic()
    code, report, _ = collect_json(AUDITOR_COLLECT_TIMEOUT_SECONDS="30", timeout=90)

    assert code == 1
    assert time.monotonic() - started < 60  # far from the 131 s past a 10 s bound
    for tenant in report["tenants"]:
        reasons = all_reasons(tenant)
        assert "assessment metadata: nextLink repeats an earlier page; stopped" in reasons
        assert "just-in-time policies: nextLink repeats an earlier page; stopped" in reasons


# --- bounded bytes and memory (issue 9 §2) --------------------------------------------------

# The child's own peak: VmHWM belongs to its address space, made new by exec. (ru_maxrss would
# carry over the high-water mark of the forking pytest process, which grows with the suite.)
PEAK = (
    "import sys\n"
    "from auditor.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "with open('/proc/self/status', encoding='ascii') as status:\n"
    "    kb = next(int(line.split()[1]) for line in status if line.startswith('VmHWM:'))\n"
    "print(f'peak-mb {kb / 1024:.0f}', file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def collect_with_peak(timeout: float = 180) -> tuple[int, dict[str, Any], float]:
    """`collect --all --json` in a process of its own: (exit code, report, peak RSS in MB)."""
    import os

    result = subprocess.run(
        [sys.executable, "-c", PEAK, "collect", "--all", "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ),
        timeout=timeout,
        check=False,
    )
    peak = float(result.stderr.rsplit("peak-mb ", 1)[1].split()[0])
    return result.returncode, json.loads(result.stdout), peak


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_150_mb_page_stops_at_the_byte_cap_within_the_memory_budget(
    hostile: Simulator, chunked: bool
) -> None:
    hostile.set_faults({"oversized_page": {"bytes": 150 * MiB, "chunked": chunked}})
    code, report, peak_mb = collect_with_peak()

    assert code == 1
    assert peak_mb < 400  # the collector's budget, whatever arrives (main peaked at 771 MB)
    expected = "stopped reading there" if chunked else "exceeds the cap of 8,388,608 bytes"
    for tenant in report["tenants"]:
        assert tenant["status"] == "incomplete"
        assert expected in all_reasons(tenant)


def test_an_oversized_rest_page_leaves_the_tenants_incomplete(hostile: Simulator) -> None:
    hostile.set_faults({"oversized_page": {"bytes": 20 * MiB, "chunked": True, "on": "rest"}})
    code, report, _ = collect_json(AUDITOR_COLLECT_MAX_RESPONSE_BYTES=str(MiB))

    assert code == 1
    for tenant in report["tenants"]:
        assert "assessment metadata: response exceeds the cap of 1,048,576 bytes" in all_reasons(
            tenant
        )


# --- pages that are not the documented shape (issue 9 §2) --------------------------------


@pytest.mark.parametrize(
    ("shape", "reason"),
    [
        ("data_null", "page 'data' is null or missing, not a list of rows"),
        ("data_object", "page 'data' is a dict, not a list of rows"),
        ("data_missing", "page 'data' is null or missing, not a list of rows"),
        ("token_not_string", "page '$skipToken' is not a string"),
        ("deep_nesting", "answer nests deeper than any real payload"),
        ("not_json", "answer is not JSON"),
    ],
)
def test_a_malformed_resource_graph_page_is_counted_never_complete_never_a_crash(
    hostile: Simulator, shape: str, reason: str
) -> None:
    hostile.set_faults({"malformed_page": shape})
    code, report, stderr = collect_json()

    assert code == 1 and "Traceback" not in stderr
    for tenant in report["tenants"]:
        assert tenant["status"] == "incomplete"
        assert reason in all_reasons(tenant)
        assert tenant["malformed"]["pages"] == 1  # the one tenant query, stopped there


def test_rows_that_are_not_objects_are_malformed_rows_and_the_rest_is_kept(
    hostile: Simulator,
) -> None:
    hostile.set_faults({"malformed_page": "rows_not_objects"})
    code, report, _ = collect_json()

    assert code == 1
    truth = truth_tenants(hostile, 0)
    served = hostile.stats()["hostile_served"]["malformed_page"]
    assert sum(t["malformed"]["rows"] for t in report["tenants"]) == 4 * served
    for tenant in report["tenants"]:
        assert tenant["status"] == "incomplete"
        assert tenant["records"]["compliance"] == truth[tenant["tenantId"]]["complianceAssessments"]


@pytest.mark.parametrize(
    ("shape", "reason"),
    [
        ("value_not_list", "page 'value' is an object, not a list"),
        ("items_not_objects", "page 'value' holds items that are not objects"),
        ("next_link_not_string", "page 'nextLink' is a number, not a string"),
        ("rest_deep_nesting", "answer nests deeper than any real payload"),
        ("rest_not_json", "answer is not JSON"),
    ],
)
def test_a_malformed_rest_page_leaves_every_tenant_relying_on_it_incomplete(
    hostile: Simulator, shape: str, reason: str
) -> None:
    hostile.set_faults({"malformed_page": shape})
    code, report, stderr = collect_json()

    assert code == 1 and "Traceback" not in stderr
    for tenant in report["tenants"]:
        reasons = all_reasons(tenant)
        assert f"assessment metadata: {reason}" in reasons
        assert f"just-in-time policies: {reason}" in reasons
        assert f"tenant directory: {reason}" in reasons
        assert tenant["malformed"]["pages"] >= 1  # the tenant's own JIT pages


# --- values the normalizer must not accept (issue 10) ---------------------------------------


def test_an_overflowing_number_is_a_malformed_row_and_the_other_records_stay(
    hostile: Simulator,
) -> None:
    hostile.set_faults({"overflow_numbers": True})
    code, report, stderr = collect_json()

    assert code == 1 and "OverflowError" not in stderr and "Traceback" not in stderr
    truth = truth_tenants(hostile, 0)
    served = hostile.stats()["hostile_served"]["overflow_numbers"]
    planted = sum(len(t["malformedRows"]) for t in truth.values())
    assert sum(t["malformed"]["compliance"] for t in report["tenants"]) == planted + served
    for tenant in report["tenants"]:
        expected = truth[tenant["tenantId"]]
        overflowed = tenant["malformed"]["compliance"] - len(expected["malformedRows"])
        assert overflowed >= 1
        assert tenant["records"]["compliance"] == expected["complianceAssessments"] - overflowed
        assert tenant["status"] == "incomplete"


def test_a_duplicate_id_with_another_state_is_stored_once_and_reported(
    hostile: Simulator,
) -> None:
    _, honest, _ = collect_json()
    hostile.set_faults({"duplicate_ids": "conflicting"})
    code, report, _ = collect_json()

    assert code == 1
    served = hostile.stats()["hostile_served"]["duplicate_ids"]
    before, after = by_tenant(honest), by_tenant(report)
    for tenant_id, tenant in after.items():
        # The first row of each id is kept: the same records and states as without the twins.
        assert tenant["records"] == before[tenant_id]["records"]
        assert tenant["complianceStates"] == before[tenant_id]["complianceStates"]
        assert tenant["status"] == "incomplete"
        assert any("conflicting state" in w for w in tenant["warnings"])
    twins = sum(
        t["malformed"]["compliance"] - before[i]["malformed"].get("compliance", 0)
        for i, t in after.items()
    )
    assert twins == served


# --- deadlines that hold (issue 10) -------------------------------------------------------


def test_slow_rest_answers_end_at_the_deadline_and_the_tenant_is_incomplete(
    hostile: Simulator,
) -> None:
    settings = dataclasses.replace(load_settings(), collect_timeout_seconds=3.0)
    with make_collector(settings) as collector:
        tenant = collector.discover()[0]
        hostile.set_faults({"slow_rest_ms": 1500, "rest_ops": ["jitNetworkAccessPolicies"]})
        started = time.monotonic()
        posture = collector.collect(tenant)
        elapsed = time.monotonic() - started

    c = posture.completeness
    assert c.status is CollectionStatus.INCOMPLETE
    assert any("collection time bound reached" in reason for reason in c.reasons)
    assert elapsed < 3.0 + 2.0  # the bound, plus one page's margin (main took 88.6 s for 10 s)


def test_a_slow_resource_graph_answer_ends_at_the_deadline(hostile: Simulator) -> None:
    settings = dataclasses.replace(load_settings(), collect_timeout_seconds=2.0)
    with make_collector(settings) as collector:
        tenant = collector.discover()[0]
        hostile.set_faults({"slow_ms": 6000})
        started = time.monotonic()
        with pytest.raises(TransientCollectionError, match="time bound"):
            collector.collect(tenant)
        elapsed = time.monotonic() - started

    assert elapsed < 2.0 + 2.0  # not the 6 s the answer takes (nor a 120 s read timeout)


# --- failed discovery (issue 10) ----------------------------------------------------------


def test_discovery_failing_with_5xx_gives_one_line_and_exit_2(hostile: Simulator) -> None:
    hostile.set_faults({"fail_discovery": "5xx"})
    result = run_cli("collect", "--all")

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: discovery failed: HTTP 503 ServiceUnavailable")
    assert result.stdout == ""


def test_discovery_failing_with_dropped_connections_raises_discovery_failed(
    hostile: Simulator,
) -> None:
    hostile.set_faults({"fail_discovery": "drop"})
    with make_collector(backoff_base=0.01) as collector, pytest.raises(DiscoveryFailed) as caught:
        collector.discover()
    message = str(caught.value)
    assert message.startswith("discovery failed: connection failed")
    assert "\n" not in message


# --- hostile text is carried, never interpreted -------------------------------------------


def test_hostile_names_are_collected_as_served_and_our_messages_stay_one_line(
    hostile: Simulator,
) -> None:
    hostile.set_faults({"hostile_names": True, "duplicate_ids": "conflicting"})
    with make_collector() as collector:
        tenants = collector.discover()
        postures = [collector.collect(tenant) for tenant in tenants]

    # Evidence keeps what the tenant says (outputs sanitise it for terminals and files) ...
    assert all("\x1b[31m" in t.display_name for t in tenants)
    assert all("\x1b[31m" in s.display_name for t in tenants for s in t.subscriptions)
    assert all(any("\x1b[31m" in r.description for r in p.compliance) for p in postures)
    # ... and the collector's own reasons and warnings never carry control characters.
    for posture in postures:
        c = posture.completeness
        assert c.warnings
        for text in (*c.reasons, *c.warnings):
            assert text.isprintable(), text


def test_an_unreachable_control_plane_gives_one_line_and_exit_2(hostile: Simulator) -> None:
    with CountingListener() as closed:  # accepts and hangs up: no Resource Manager there
        result = run_cli(
            "collect",
            "--all",
            AUDITOR_ARM_ENDPOINT=closed.url,
            AUDITOR_COLLECT_TIMEOUT_SECONDS="10",
        )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: discovery failed: ")


# --- tenant-level data on the queue path ------------------------------------------------------


def test_a_tenant_planned_without_a_name_is_named_by_the_worker(hostile: Simulator) -> None:
    truth = truth_tenants(hostile, 0)
    with make_collector() as collector:
        tenant = collector.discover()[0]
        unnamed = dataclasses.replace(tenant, display_name=tenant.tenant_id)
        posture = collector.collect(unnamed)
    assert posture.tenant.display_name == truth[tenant.tenant_id]["displayName"]
    assert not any("tenant directory" in r for r in posture.completeness.reasons)


def test_a_tenant_left_unnamed_by_an_unreadable_directory_says_so(
    hostile: Simulator, listener: CountingListener
) -> None:
    hostile.set_faults(
        {"next_link": {"mode": "foreign", "base": listener.url}, "rest_ops": ["tenants"]}
    )
    with make_collector() as collector:
        tenant = collector.discover()[0]
        posture = collector.collect(tenant)

    assert listener.connections == 0
    assert tenant.display_name == tenant.tenant_id
    (reason,) = posture.completeness.errors
    assert reason.startswith("tenant directory: nextLink points to ")
    assert reason.endswith("(the tenant is named by its id)")
