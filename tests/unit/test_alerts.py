"""Security alerts: normalised from the project's own fixture (tests/fixtures/alerts.json, in
the shape of Microsoft's GetAlertsSubscription example), counted per subscription, severity and
status, the open ones listed up to a cap with the count of the rest."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from auditor.core import registry
from auditor.core.model import AlertCount, AlertSeverity, AlertStatus
from auditor.core.normalize import T_ALERT
from auditor.core.registry import ALERT_COUNTS, ALERTS, Batch, Derivation
from tests.fixtures import values

SUB = "6f0c2d1e-3b4a-4c5d-8e9f-0a1b2c3d4e5f"
OTHER = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
NOW = datetime(2026, 12, 1, 2, tzinfo=UTC)
BOTH = frozenset({SUB, OTHER})


def alert_rows() -> list[dict[str, Any]]:
    """The fixture as Resource Graph returns it: lower-cased type, a subscriptionId column."""
    rows = []
    for item in values("alerts"):
        row = dict(item)
        row["type"] = T_ALERT
        row["subscriptionId"] = item["id"].split("/")[2]
        rows.append(row)
    return rows


def derived(rows: list[dict[str, Any]], **context: Any) -> tuple[Batch, dict[str, Any]]:
    batch = Batch()
    batch.extend(rows)
    context.setdefault("collected", BOTH)
    context.setdefault("now", NOW)
    return batch, batch.derive(Derivation(**context))


def test_an_alert_keeps_type_name_severity_status_intent_techniques_times_and_links() -> None:
    batch, _ = derived(alert_rows())
    assert batch.malformed == {}
    first = batch["alerts"][0]
    assert first.subscription_id == SUB
    assert first.alert_id.endswith(
        "/alerts/2517538088322968242_0b5a6c1e-7d4f-4e8a-9b2c-3d1e0f4a5b6c"
    )
    assert first.alert_id == first.alert_id.lower()
    assert (first.alert_type, first.display_name) == (
        "VM_CredentialDumping",
        "Credential dumping tool detected",
    )
    assert (first.severity, first.status) == (AlertSeverity.HIGH, AlertStatus.ACTIVE)
    assert (first.intent, first.techniques) == ("CredentialAccess", ("T1003",))
    assert first.start_time == datetime(2026, 11, 28, 7, tzinfo=UTC)
    assert first.end_time == datetime(2026, 11, 28, 7, 5, tzinfo=UTC)
    assert first.compromised_entity == "web-01"
    # Only the Azure resource identifier names a resource (the Log Analytics one a workspace).
    assert first.resource_ids == (
        f"/subscriptions/{SUB}/resourcegroups/rg-web/providers/microsoft.compute/virtualmachines/web-01",
    )
    assert first.product == "Microsoft Defender for Cloud"
    assert first.portal_link.startswith("https://portal.azure.com/#blade/Microsoft_Azure_Security")
    assert first.incident is True


def test_open_alerts_are_listed_and_every_alert_in_the_look_back_is_counted() -> None:
    _, sections = derived(alert_rows())
    assert [a.status for a in sections["alerts"]] == [AlertStatus.ACTIVE, AlertStatus.IN_PROGRESS]
    # The resolved alert of OTHER ended in January 2025: beyond the 30-day look-back.
    assert sections["alert_counts"] == (
        AlertCount(SUB, AlertSeverity.HIGH, AlertStatus.ACTIVE, 1, 1),
        AlertCount(SUB, AlertSeverity.INFORMATIONAL, AlertStatus.DISMISSED, 1, 0),
        AlertCount(SUB, AlertSeverity.LOW, AlertStatus.RESOLVED, 1, 0),
        AlertCount(SUB, AlertSeverity.MEDIUM, AlertStatus.IN_PROGRESS, 1, 1),
    )
    _, longer = derived(alert_rows(), lookback_days=800)
    assert (
        AlertCount(OTHER, AlertSeverity.HIGH, AlertStatus.RESOLVED, 1, 0) in longer["alert_counts"]
    )


def test_the_cap_keeps_the_most_severe_open_alerts_and_counts_what_it_left_out() -> None:
    rows = alert_rows()
    extra = []
    for n in range(5):
        row = copy.deepcopy(rows[1])  # a Medium, in-progress alert
        row["id"] = row["id"] + f"-{n}"
        extra.append(row)
    _, sections = derived(rows + extra, caps={"alerts": 2})
    listed = sections["alerts"]
    assert [a.severity for a in listed] == [AlertSeverity.HIGH, AlertSeverity.MEDIUM]
    medium = next(c for c in sections["alert_counts"] if c.status is AlertStatus.IN_PROGRESS)
    assert (medium.alerts, medium.listed, medium.left_out) == (6, 1, 5)
    posture_counts = registry.ALERT_COUNTS.counts
    assert posture_counts is not None
    assert posture_counts(sections["alert_counts"]) == {"alerts_open": 7, "alerts_left_out": 5}


def test_alerts_of_subscriptions_not_collected_are_neither_listed_nor_counted() -> None:
    _, sections = derived(alert_rows(), collected=frozenset({OTHER}), lookback_days=800)
    assert sections["alerts"] == ()
    assert [c.subscription_id for c in sections["alert_counts"]] == [OTHER]


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda p: p.update(severity="Critical"), "unknown severity"),
        (lambda p: p.update(status="active"), "unknown status"),
        (lambda p: p.pop("alertType"), "missing alertType"),
        (lambda p: p.update(startTimeUtc="yesterday"), "startTimeUtc is not an ISO-8601 time"),
        (lambda p: p.update(techniques="T1003"), "techniques is not a list of strings"),
        (lambda p: p.update(isIncident="true"), "isIncident is not a boolean"),
        (lambda p: p.update(alertUri="javascript:alert(1)"), "alertUri is not an https:// link"),
        (
            lambda p: p.update(resourceIdentifiers=[{"type": "AzureResource"}]),
            "missing azureResourceId",
        ),
    ],
)
def test_a_malformed_alert_is_counted_and_described_never_listed(mutate: Any, problem: str) -> None:
    rows = alert_rows()
    mutate(rows[0]["properties"])
    batch, sections = derived(rows)
    assert batch.malformed == {"alerts": 1}
    assert problem in batch.warnings[0]
    assert all(
        not a.alert_id.endswith("0b5a6c1e-7d4f-4e8a-9b2c-3d1e0f4a5b6c") for a in sections["alerts"]
    )


def test_a_repeated_alert_id_is_malformed_not_counted_twice() -> None:
    rows = alert_rows()
    batch, sections = derived([*rows, rows[0]])
    assert batch.malformed == {"alerts": 1}
    assert sum(c.alerts for c in sections["alert_counts"]) == 4


def test_alert_sections_are_registered_after_format_1() -> None:
    assert not ALERTS.legacy and not ALERT_COUNTS.legacy
    assert f"'{T_ALERT}'" in registry.queries()["posture"]
    assert registry.queries()["posture"].count(T_ALERT) == 1
