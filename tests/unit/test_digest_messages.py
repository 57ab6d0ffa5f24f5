"""The digest document and what chats receive: worst tenants first, stable event ids, hashes
that change with the content, and tenant names that cannot forge markup."""

from __future__ import annotations

import json

from auditor.core.digest import (
    PoisonSummary,
    RunDigest,
    TenantDigest,
    digest_document,
    digest_from_document,
    digest_hash,
)
from auditor.core.notify_messages import digest_events, slack_message, teams_card

SUMMARY = {
    "posture": {"regressed": 3, "improved": 1, "changed": 0, "added": 0, "removed": 0},
    "compliance": [{"standard": "NIST", "comparableDelta": -5.0}],
    "planDowngrades": [],
    "secureScoreDrops": [],
}
CALM = {**SUMMARY, "posture": {**SUMMARY["posture"], "regressed": 0}, "compliance": []}


def tenant(n: int, status: str, summary: dict[str, object] | None, name: str = "") -> TenantDigest:
    tid = f"00000000-0000-4000-8000-00000000000{n}"
    return TenantDigest(tid, name or f"T{n}", status, (), "20240502T020000Z",
                        "20240501T020000Z", summary)  # fmt: skip


def digest(*tenants: TenantDigest) -> RunDigest:
    return RunDigest("20240502T020000Z", "2024-05-02T02:10:00+00:00", "last-job", False,
                     tenants, poison=PoisonSummary(1, ("x",)))  # fmt: skip


def test_tenants_come_worst_first_and_the_figures_add_up() -> None:
    doc = digest_document(digest(tenant(1, "complete", CALM), tenant(2, "complete", SUMMARY),
                                 tenant(3, "failed", None)))  # fmt: skip
    assert [t["tenantId"][-1] for t in doc["tenants"]] == ["3", "2", "1"]
    assert doc["counts"]["regressed"] == 1 and doc["counts"]["failed"] == 1
    assert doc["outcome"] == "partial" and doc["counts"]["poison"] == 1


def test_the_document_round_trips_and_its_hash_follows_the_content() -> None:
    doc = digest_document(digest(tenant(1, "complete", SUMMARY)))
    assert digest_document(digest_from_document(doc)) == doc
    edited = json.loads(json.dumps(doc))
    edited["tenants"][0]["status"] = "failed"
    assert digest_hash(edited) != digest_hash(doc)


def test_event_ids_are_stable_per_run_and_regressed_tenants_get_their_own_event() -> None:
    doc = digest_document(digest(tenant(1, "complete", CALM), tenant(2, "complete", SUMMARY)))
    events = digest_events(doc)
    assert [e.type for e in events] == ["auditor.run.digest", "auditor.tenant.regressed"]
    assert events[0].id == "run-20240502T020000Z-digest" == digest_events(doc)[0].id
    assert events[1].data["tenantId"].endswith("2")


def test_a_hostile_tenant_name_cannot_forge_links_or_markup_in_chats() -> None:
    hostile = "Evil](https://phish.example) <https://phish.example|click> *bold*\x1b[31m"
    doc = digest_document(digest(tenant(1, "complete", SUMMARY, name=hostile)))
    teams = json.dumps(teams_card(doc, "https://auditor.example"))
    assert "](https://phish" not in teams and "\x1b" not in teams and "\\u001b" not in teams
    slack = json.dumps(slack_message(doc, "https://auditor.example"))
    assert "<https://phish" not in slack and "&lt;https://phish.example|click&gt;" in slack
    assert "diff?from=20240501T020000Z" in teams and "diff?from=20240501T020000Z" in slack
