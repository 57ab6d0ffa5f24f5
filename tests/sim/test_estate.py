"""The estate: determinism, sizes, fixture shapes, consistent summaries, malformed rows, drift."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

import pytest

from tools.azure_sim import catalog as cat
from tools.azure_sim.estate import (
    COLUMNS,
    SIZES,
    T_ASSESSMENT,
    T_COMPLIANCE,
    T_CONTROL,
    T_PRICING,
    T_REG_ASSIGNMENT,
    T_REG_DEFINITION,
    T_SECURE_SCORE,
    T_SECURE_SCORE_CONTROL,
    T_STANDARD,
    T_STANDARD_ASSIGNMENT,
    T_SUBSCRIPTION,
    TABLES,
    TYPE_TABLE,
    Estate,
    now_for_day,
)

from .conftest import fixture_json

SEC = "security/resource-manager/Microsoft.Security/Security/"
COMPLIANCE_ID = re.compile(
    r"^/subscriptions/(?P<sid>[0-9a-f-]{36})/providers/Microsoft\.Security/"
    r"regulatoryComplianceStandards/(?P<std>[^/]+)/regulatoryComplianceControls/(?P<ctl>[^/]+)/"
    r"regulatoryComplianceAssessments/(?P<key>[0-9a-f-]{36})$"
)


def rows_of(estate: Estate, type_: str, day: int = 0) -> list[dict[str, Any]]:
    return [r for r in estate.rows(TYPE_TABLE[type_], day) if r["type"] == type_]


def example_values(relative: str) -> list[dict[str, Any]]:
    body = fixture_json(relative)["responses"]["200"]["body"]
    return list(body["value"]) if "value" in body else [body]


def key_union(items: list[dict[str, Any]], path: tuple[str, ...] = ()) -> set[str]:
    keys: set[str] = set()
    for item in items:
        for p in path:
            item = item[p]
        keys |= set(item)
    return keys


# --- determinism and size ---------------------------------------------------------------------


def test_same_seed_same_bytes_different_seed_differs() -> None:
    a, b, c = Estate("tiny", 7), Estate("tiny", 7), Estate("tiny", 8)
    for day in (0, 2):
        for table in TABLES:
            ra = [json.dumps(r) for r in a.rows(table, day)]
            rb = [json.dumps(r) for r in b.rows(table, day)]
            assert ra == rb
    assert a.summary(2) == b.summary(2)
    assert [t["tenantId"] for t in a.tenants(0)] != [t["tenantId"] for t in c.tenants(0)]


# `wide` gives each tenant its own number of subscriptions: tests/sim/test_wide_estate.py.
@pytest.mark.parametrize("size", sorted(set(SIZES) - {"wide"}))
def test_sizes(size: str) -> None:
    e = Estate(size, 3)
    n_t, n_s = SIZES[size]
    tenants = e.tenants(0)
    assert len(tenants) == n_t
    assert all(len(t["subscriptions"]) == n_s for t in tenants)
    per_sub = [e.type_count(s.sid, 0, T_COMPLIANCE) for s in e.subscriptions(0)]
    assert 800 <= sum(per_sub) / len(per_sub) <= 1200
    assert 0.8 * n_t * n_s * 1000 <= sum(per_sub) <= 1.2 * n_t * n_s * 1000


def test_counts_match_materialised_rows(tiny: Estate) -> None:
    for day in (0, 1, 3):
        for sub in tiny.subscriptions(day):
            for t in TYPE_TABLE:
                assert len(tiny.type_rows(sub.sid, day, t)) == tiny.type_count(sub.sid, day, t)


def test_rows_sorted_by_id_with_all_columns(tiny: Estate) -> None:
    for table in TABLES:
        rows = list(tiny.rows(table, 0))
        ids = [r["id"] for r in rows]
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)
        for r in rows[:50]:
            assert list(r) == list(COLUMNS)
            assert r["type"] == r["type"].lower()
            assert r["type"] in TABLES[table]


# --- shapes of the fixture examples -----------------------------------------------------------


def test_compliance_shapes_match_fixtures(tiny: Estate) -> None:
    base = SEC + "preview/2019-01-01-preview/examples/RegulatoryCompliance/"
    want_asm = key_union(
        example_values(base + "getRegulatoryComplianceAssessmentList_example.json"),
        ("properties",),
    )
    want_ctl = key_union(
        example_values(base + "getRegulatoryComplianceControlList_example.json"), ("properties",)
    )
    want_std = key_union(
        example_values(
            "security/resource-manager/Microsoft.Security/preview/2019-01-01-preview/examples/"
            "RegulatoryCompliance/getRegulatoryComplianceStandardList_example.json"
        ),
        ("properties",),
    )
    malformed = {m["id"] for m in tiny.malformed_rows(0)}
    asm = [r for r in rows_of(tiny, T_COMPLIANCE) if r["id"] not in malformed]
    assert asm
    for r in asm:
        assert set(r["properties"]) == want_asm
        assert COMPLIANCE_ID.match(r["id"]), r["id"]
        assert r["properties"]["state"] in ("Passed", "Failed", "Skipped", "Unsupported")
        assert r["name"] == r["id"].rsplit("/", 1)[1]
    for r in rows_of(tiny, T_CONTROL):
        assert set(r["properties"]) == want_ctl
    for r in rows_of(tiny, T_STANDARD):
        assert set(r["properties"]) == want_std
        assert "/providers/Microsoft.Security/regulatoryComplianceStandards/" in r["id"]


def test_security_shapes_match_fixtures(tiny: Estate) -> None:
    stable = SEC + "stable/2020-01-01/examples/secureScores/"
    score = example_values(stable + "GetSecureScoresSingle_example.json")
    for r in rows_of(tiny, T_SECURE_SCORE):
        assert r["name"] == "ascScore"
        assert set(r["properties"]) == set(score[0]["properties"])
        assert set(r["properties"]["score"]) == {"max", "current", "percentage"}
    controls = example_values(
        "security/resource-manager/Microsoft.Security/stable/2020-01-01/examples/secureScores/"
        "ListSecureScoreControls_example.json"
    )
    want = key_union(controls, ("properties",))
    for r in rows_of(tiny, T_SECURE_SCORE_CONTROL):
        assert set(r["properties"]) == want
    pricings = example_values(
        "security/resource-manager/Microsoft.Security/stable/2024-01-01/examples/Pricings/"
        "ListPricings_example.json"
    )
    allowed = key_union(pricings, ("properties",))
    for r in rows_of(tiny, T_PRICING):
        assert set(r["properties"]) <= allowed
        assert r["properties"]["pricingTier"] in ("Free", "Standard")
        assert {"pricingTier", "freeTrialRemainingTime", "enforce"} <= set(r["properties"])
    deprecated = [r for r in rows_of(tiny, T_PRICING) if r["properties"].get("deprecated")]
    assert deprecated and all(r["properties"]["replacedBy"] for r in deprecated)


def test_assessment_shape_and_arg_casing(tiny: Estate) -> None:
    listed = example_values(
        "security/resource-manager/Microsoft.Security/stable/2021-06-01/examples/Assessments/"
        "ListAssessments_example.json"
    )
    expanded = example_values(
        SEC + "stable/2021-06-01/examples/Assessments/GetAssessmentWithExpand_example.json"
    )
    allowed = key_union(listed + expanded, ("properties",)) | {"metadata"}
    status_keys = key_union(expanded, ("properties", "status"))
    rows = rows_of(tiny, T_ASSESSMENT)
    keys = {r["name"] for r in rows}
    for key in (*cat.VM_KEYS, cat.KEY_EP_VMSS, cat.KEY_MFA_OWNER, *cat.RETIRED_KEYS):
        assert key in keys
    assert len(keys) > len(cat.HARDENING)  # other keys too, so filtering by name matters
    for r in rows:
        p = r["properties"]
        assert set(p) <= allowed
        # ARG spells resourceDetails with capitals (the REST examples use lower case)
        assert set(p["resourceDetails"]) == {"Source", "Id"}
        assert r["id"].startswith(p["resourceDetails"]["Id"] + "/providers/Microsoft.Security/")
        assert set(p["status"]) <= status_keys
        assert p["status"]["code"] in ("Healthy", "Unhealthy", "NotApplicable")
        assert set(p["metadata"]) == {"displayName", "severity", "assessmentType"}
        assert p["links"]["azurePortalUri"].endswith(r["name"])
    mfa = [r for r in rows if r["name"] == cat.KEY_MFA_OWNER]
    assert all(
        r["properties"]["resourceDetails"]["Id"] == f"/subscriptions/{r['subscriptionId']}"
        for r in mfa
    )


def test_lighthouse_and_subscription_shapes(tiny: Estate) -> None:
    ms = "managedservices/resource-manager/Microsoft.ManagedServices/ManagedServices/stable/"
    assignments = example_values(ms + "2022-10-01/examples/GetRegistrationAssignments.json")
    definitions = example_values(ms + "2022-10-01/examples/GetRegistrationDefinitions.json")
    a_keys = key_union(assignments, ("properties",))
    d_keys = key_union(definitions, ("properties",))
    inner = key_union(assignments, ("properties", "registrationDefinition", "properties"))
    for r in rows_of(tiny, T_REG_ASSIGNMENT):
        p = r["properties"]
        assert set(p) <= a_keys
        rd = p["registrationDefinition"]["properties"]
        assert set(rd) <= inner
        assert rd["managedByTenantId"] == tiny.managing_tenant_id
        assert rd["manageeTenantId"] == r["tenantId"]
        roles = {(a["principalId"], a["roleDefinitionId"]) for a in rd["authorizations"]}
        assert roles == {
            (tiny.principal_id, cat.READER_ROLE_ID),
            (tiny.principal_id, cat.SECURITY_READER_ROLE_ID),
        }
    for r in rows_of(tiny, T_REG_DEFINITION):
        assert set(r["properties"]) <= d_keys
    subs = example_values(
        "resources/resource-manager/Microsoft.Resources/stable/2022-12-01/"
        "examples/GetSubscriptions.json"
    )
    for r in rows_of(tiny, T_SUBSCRIPTION):
        assert r["id"] == f"/subscriptions/{r['subscriptionId']}"
        assert r["properties"]["state"] == "Enabled"
        assert set(r["properties"]["subscriptionPolicies"]) == set(subs[0]["subscriptionPolicies"])


def test_standard_assignments_model(tiny: Estate) -> None:
    put = fixture_json(
        SEC + "stable/2024-08-01/examples/StandardAssignments/PutExemptionStandardAssignment.json"
    )
    allowed = set(put["responses"]["200"]["body"]["properties"]) | {"attestationData"}
    rows = rows_of(tiny, T_STANDARD_ASSIGNMENT)
    effects = Counter(r["properties"]["effect"] for r in rows)
    assert set(effects) == {"Audit", "Exempt", "Attest"}
    for r in rows:
        p = r["properties"]
        assert set(p) <= allowed
        if p["effect"] == "Exempt":
            assert set(p["exemptionData"]) == {"assignedAssessment", "exemptionCategory"}
            assert datetime.fromisoformat(p["expiresOn"].replace("Z", "+00:00"))
            assert "/providers/Microsoft.Security/standardAssignments/" in r["id"]
        if p["effect"] == "Attest":
            assert set(p["attestationData"]) == {
                "assignedAssessment",
                "complianceState",
                "complianceDate",
                "evidence",
            }
            assert set(p["attestationData"]["evidence"][0]) == {"description", "sourceUrl"}


def test_rest_shapes(tiny: Estate) -> None:
    jit = example_values(
        SEC + "stable/2020-01-01/examples/JitNetworkAccessPolicies/"
        "GetJitNetworkAccessPoliciesSubscription_example.json"
    )[0]
    for sub in tiny.subscriptions(0):
        policies = tiny.jit_policies(sub.sid, 0)
        assert len(policies) >= 3  # more than one page of 2
        for pol in policies:
            assert set(pol) == set(jit)
            assert set(pol["properties"]) == set(jit["properties"])
            vm = pol["properties"]["virtualMachines"][0]
            assert set(vm) == set(jit["properties"]["virtualMachines"][0])
            assert set(vm["ports"][0]) == set(jit["properties"]["virtualMachines"][0]["ports"][0])
    md = example_values(
        SEC + "stable/2021-06-01/examples/AssessmentsMetadata/ListAssessmentsMetadata_example.json"
    )
    allowed = key_union(md, ("properties",))
    meta = tiny.assessment_metadata()
    assert len(meta) > 100
    by_key = {m["name"]: m for m in meta}
    for key in (*cat.VM_KEYS, cat.KEY_EP_VMSS, cat.KEY_MFA_OWNER):
        assert key in by_key
    for m in meta:
        assert set(m) == set(md[0])
        assert set(m["properties"]) <= allowed
    assert by_key[cat.KEY_JIT]["properties"]["displayName"] == (
        "Management ports of virtual machines should be protected with just-in-time network "
        "access control"
    )


# --- consistency -----------------------------------------------------------------------------


def test_summaries_consistent_with_children(tiny: Estate) -> None:
    malformed = {m["id"] for m in tiny.malformed_rows(0)}
    for day in (0, 2):
        children: dict[str, Counter[str]] = defaultdict(Counter)
        for r in rows_of(tiny, T_COMPLIANCE, day):
            if r["id"] in malformed:
                continue
            parent = r["id"].rsplit("/regulatoryComplianceAssessments/", 1)[0]
            children[parent][r["properties"]["state"]] += 1
        control_states: dict[str, Counter[str]] = defaultdict(Counter)
        for r in rows_of(tiny, T_CONTROL, day):
            c = children[r["id"]]
            p = r["properties"]
            assert (p["passedAssessments"], p["failedAssessments"], p["skippedAssessments"]) == (
                c["Passed"],
                c["Failed"],
                c["Skipped"],
            )
            expect = (
                "Failed"
                if c["Failed"]
                else "Passed"
                if c["Passed"]
                else "Skipped"
                if c["Skipped"]
                else "Unsupported"
            )
            assert p["state"] == expect
            control_states[r["id"].rsplit("/regulatoryComplianceControls/", 1)[0]][p["state"]] += 1
        for r in rows_of(tiny, T_STANDARD, day):
            c = control_states[r["id"]]
            p = r["properties"]
            assert (
                p["passedControls"],
                p["failedControls"],
                p["skippedControls"],
                p["unsupportedControls"],
            ) == (c["Passed"], c["Failed"], c["Skipped"], c["Unsupported"])
    for r in rows_of(tiny, T_COMPLIANCE):
        if r["id"] in malformed:
            continue
        p = r["properties"]
        if p["state"] == "Passed":
            assert p["passedResources"] > 0 and p["failedResources"] == 0
        if p["state"] == "Failed":
            assert p["failedResources"] > 0


def test_same_assessment_under_several_controls(tiny: Estate) -> None:
    rows = rows_of(tiny, T_COMPLIANCE)
    per_key: Counter[tuple[str, str]] = Counter((r["subscriptionId"], r["name"]) for r in rows)
    assert max(per_key.values()) > 1
    states: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in rows:
        if "state" in r["properties"] and COMPLIANCE_ID.match(r["id"]):
            states[(r["subscriptionId"], r["name"])].add(r["properties"]["state"])
    assert all(len(s) == 1 for s in states.values())  # one state per key per subscription


def test_not_every_standard_everywhere(tiny: Estate) -> None:
    sets = {frozenset(tiny.standards(s.sid, 0)) for s in tiny.subscriptions(0)}
    assert len(sets) > 1
    assert all(cat.MCSB in s for s in sets)


def test_malformed_rows(tiny: Estate) -> None:
    summary = tiny.summary(0)
    listed = summary["malformedRows"]
    assert len(listed) == 3
    t1 = summary["tenants"][1]
    assert t1["malformedRows"] == listed
    assert summary["tenants"][0]["malformedRows"] == []
    by_id = {r["id"]: r for r in rows_of(tiny, T_COMPLIANCE)}
    rows = [by_id[m["id"]] for m in listed]
    assert all(r["tenantId"] == t1["tenantId"] for r in rows)
    assert "state" not in rows[0]["properties"]
    assert rows[1]["properties"]["state"] == "Bogus"
    assert not COMPLIANCE_ID.match(rows[2]["id"])
    for size in ("small", "large"):
        e = Estate(size, 5)
        assert len(e.malformed_rows(0)) == 3
        assert {m["tenantId"] for m in e.malformed_rows(0)} == {e.tenant_list[1].tenant_id}


def test_jit_assessment_matches_policies(tiny: Estate) -> None:
    for sub in tiny.subscriptions(0):
        covered = {
            vm["id"]
            for pol in tiny.jit_policies(sub.sid, 0)
            for vm in pol["properties"]["virtualMachines"]
        }
        healthy = {
            r["properties"]["resourceDetails"]["Id"]
            for r in tiny.rows("securityresources", 0, [sub.sid])
            if r["type"] == T_ASSESSMENT
            and r["name"] == cat.KEY_JIT
            and r["properties"]["status"]["code"] == "Healthy"
        }
        assert covered and healthy == covered


def test_summary_counts(tiny: Estate) -> None:
    s = tiny.summary(0)
    assert s["managingTenantId"] == tiny.managing_tenant_id
    assert s["principalId"] == tiny.principal_id
    assert s["now"] == "2026-11-01T00:00:00Z"
    assert tiny.summary(3)["now"] == "2026-11-04T00:00:00Z"
    for t in s["tenants"]:
        sids = [x["subscriptionId"] for x in t["subscriptions"]]
        counted = Counter(r["type"] for tb in TABLES for r in tiny.rows(tb, 0, sids))
        assert dict(counted) == t["counts"]
        assert t["complianceAssessments"] == counted[T_COMPLIANCE] - len(t["malformedRows"])


# --- drift -------------------------------------------------------------------------------------


def _states(e: Estate, day: int) -> dict[tuple[str, str], str]:
    out = {}
    for r in rows_of(e, T_COMPLIANCE, day):
        m = COMPLIANCE_ID.match(r["id"])
        if m and "state" in r["properties"]:
            out[(m["sid"], m["key"])] = r["properties"]["state"]
    return out


@pytest.mark.parametrize(("day", "ref"), [(1, 0), (2, 1), (3, 0)])
def test_drift_is_exactly_what_the_summary_says(day: int, ref: int) -> None:
    e = Estate("tiny", 11)
    summary = e.summary(day)
    diff = summary["drift"]["sinceDay0" if ref == 0 else "sincePreviousDay"]
    assert (diff["fromDay"], diff["toDay"]) == (ref, day)
    now_subs = {s.sid for s in e.subscriptions(day)}
    ref_subs = {s.sid for s in e.subscriptions(ref)}
    assert {x["subscriptionId"] for x in diff["subscriptionsAdded"]} == now_subs - ref_subs
    assert {x["subscriptionId"] for x in diff["subscriptionsRemoved"]} == ref_subs - now_subs
    if ref == 0:
        assert len(diff["subscriptionsAdded"]) == 1 and len(diff["subscriptionsRemoved"]) == 1
        added = diff["subscriptionsAdded"][0]
        removed = diff["subscriptionsRemoved"][0]
        assert added["tenantId"] != removed["tenantId"]
        # the removed delegation is gone from every table
        for table in TABLES:
            assert not list(e.rows(table, day, [removed["subscriptionId"]]))
    # compliance states: exactly the listed (subscription, key) pairs changed
    a, b = _states(e, ref), _states(e, day)
    changed = {k for k in a.keys() & b.keys() if a[k] != b[k]}
    listed = {(c["subscriptionId"], c["assessmentKey"]) for c in diff["complianceStateChanges"]}
    assert changed == listed
    assert diff["complianceStateChangeCount"] == len(listed)
    for c in diff["complianceStateChanges"]:
        assert (
            a[(c["subscriptionId"], c["assessmentKey"])],
            b[(c["subscriptionId"], c["assessmentKey"])],
        ) == (c["from"], c["to"])

    # standards
    def stds(d: int) -> set[tuple[str, str]]:
        return {(r["subscriptionId"], r["name"]) for r in rows_of(e, T_STANDARD, d)}

    common = now_subs & ref_subs
    sa = {(x["subscriptionId"], x["standard"]) for x in diff["standardsAssigned"]}
    sr = {(x["subscriptionId"], x["standard"]) for x in diff["standardsRemoved"]}
    assert {x for x in stds(day) - stds(ref) if x[0] in common} == sa
    assert {x for x in stds(ref) - stds(day) if x[0] in common} == sr
    assert sa and sr

    # plans
    def free(d: int) -> set[tuple[str, str]]:
        return {
            (r["subscriptionId"], r["name"])
            for r in rows_of(e, T_PRICING, d)
            if r["properties"]["pricingTier"] == "Free"
        }

    down = {(x["subscriptionId"], x["plan"]) for x in diff["plansDowngraded"]}
    assert len(down) == day - ref
    assert {x for x in free(day) - free(ref) if x[0] in common} == down
    # exemptions: exactly those whose expiresOn passed between the two days' "now"
    lo, hi = now_for_day(ref), now_for_day(day)
    expired = set()
    for r in rows_of(e, T_STANDARD_ASSIGNMENT, day):
        p = r["properties"]
        if p["effect"] == "Exempt":
            t = datetime.fromisoformat(p["expiresOn"].replace("Z", "+00:00"))
            if lo < t <= hi:
                expired.add(r["id"])
    assert expired == {x["id"] for x in diff["exemptionsExpired"]}
    assert len(expired) == day - ref


def test_flip_rate_about_two_percent() -> None:
    e = Estate("small", 2)
    s1 = e.summary(1)["drift"]["sincePreviousDay"]
    keys = sum(len(e._present_keys(e.standards(s.sid, 1))) for s in e.subscriptions(1))
    rate = s1["complianceStateChangeCount"] / keys
    assert 0.005 < rate < 0.04


def test_drift_is_cumulative_and_reproducible() -> None:
    a, b = Estate("tiny", 4), Estate("tiny", 4)
    b.summary(5)  # compute forward first: must not change earlier days
    for day in (0, 1, 2):
        assert a.summary(day) == b.summary(day)
        assert list(a.rows("securityresources", day)) == list(b.rows("securityresources", day))


def test_the_large_estate_has_realistic_volumes_and_its_ground_truth_counts_them() -> None:
    large = Estate("large", 1)
    summary = large.summary(0, details=False)
    subs = [s for t in summary["tenants"] for s in t["subscriptions"]]
    truths = [s["recommendations"] for s in subs]
    assert all(20 <= t["resources"] <= 50 for t in truths)
    catalogue = len(cat.RECOMMENDATIONS)
    assert 180 <= catalogue <= 220
    # A realistic share of the catalogue applies: most, never all.
    share = sum(t["recommendations"] for t in truths) / (len(truths) * catalogue)
    assert 0.4 <= share <= 0.9
    for sub in subs[:3]:
        rows = [
            r
            for r in large.rows("securityresources", 0, [sub["subscriptionId"]])
            if r["type"] == T_ASSESSMENT
        ]
        codes = Counter(r["properties"]["status"]["code"] for r in rows)
        truth = sub["recommendations"]
        assert dict(codes) == {k: v for k, v in truth["assessments"].items() if v}
        assert len({r["name"] for r in rows}) == truth["recommendations"]
        unhealthy = {r["name"] for r in rows if r["properties"]["status"]["code"] == "Unhealthy"}
        assert len(unhealthy) == truth["recommendationsUnhealthy"]
        resources = {r["properties"]["resourceDetails"]["Id"] for r in rows}
        assert len(resources) == truth["resources"] + 1  # and the subscription itself
    assert sum(sum(t["assessments"].values()) for t in truths) == summary["totals"][T_ASSESSMENT]


def _statuses(e: Estate, day: int) -> dict[tuple[str, str], str]:
    """(resource id, key) -> status code of every resource-level assessment served on `day`."""
    return {
        (r["properties"]["resourceDetails"]["Id"], r["name"]): r["properties"]["status"]["code"]
        for r in rows_of(e, T_ASSESSMENT, day)
    }


def test_resource_assessments_drift_day_to_day_and_recommendations_appear() -> None:
    e = Estate("small", 2)
    day0, day1, day40 = _statuses(e, 0), _statuses(e, 1), _statuses(e, 40)
    changed = [k for k in day0.keys() & day1.keys() if day0[k] != day1[k]]
    # Resources become unhealthy and healthy again, a small share a day.
    assert 0.001 < len(changed) / len(day0) < 0.02
    moves = {(day0[k], day1[k]) for k in changed}
    assert moves == {("Healthy", "Unhealthy"), ("Unhealthy", "Healthy")}
    # NotApplicable is the policy's verdict: it never drifts (on subscriptions still delegated).
    both = day0.keys() & day40.keys()
    assert all(day40[k] == "NotApplicable" for k in both if day0[k] == "NotApplicable")
    # Recommendations appear: assessments (and keys per subscription) absent on day 0.
    subs = {rid.split("/")[2] for rid, _ in both}
    later = {k for k in day40.keys() - day0.keys() if k[0].split("/")[2] in subs}
    assert later
    assert {(rid.split("/")[2], key) for rid, key in later} - {
        (rid.split("/")[2], key) for rid, key in day0
    }


def test_resource_assessment_drift_is_reproducible_in_any_order() -> None:
    a, b = Estate("tiny", 4), Estate("tiny", 4)
    later = _statuses(b, 30)  # compute a later day first: must not change earlier days
    assert _statuses(a, 3) == _statuses(b, 3)
    assert _statuses(a, 30) == later
    assert _statuses(Estate("tiny", 5), 30) != later  # another seed, another estate


def test_ground_truth_lists_each_days_unhealthy_resources_as_served() -> None:
    e = Estate("tiny", 4)
    for day in (0, 25):
        summary = e.summary(day)
        assert summary["totals"][T_ASSESSMENT] == len(rows_of(e, T_ASSESSMENT, day))
        for sub in (s for t in summary["tenants"] for s in t["subscriptions"]):
            truth = sub["recommendations"]
            served: dict[str, list[str]] = defaultdict(list)
            for (rid, key), code in _statuses(e, day).items():
                if code == "Unhealthy" and rid.split("/")[2] == sub["subscriptionId"]:
                    served[key].append(rid.lower())
            assert truth["unhealthyResources"] == {k: sorted(v) for k, v in served.items()}
            assert truth["recommendationsUnhealthy"] == len(served)
    assert (
        "unhealthyResources"
        not in (e.summary(25, details=False)["tenants"][0]["subscriptions"][0]["recommendations"])
    )
