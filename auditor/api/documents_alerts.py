"""A snapshot's security alerts as the API's JSON document and CSV columns (schema:
schemas.AlertsDocument). One shape: the CSV rows are exactly the document's ``value`` items."""

from __future__ import annotations

from typing import Any

from auditor.api.documents import instant, snapshot_detail
from auditor.core.diff import DiffSummary
from auditor.core.model import AlertCount, CollectionStatus, SecurityAlert
from auditor.core.registry import ALERT_COUNTS, ALERTS, records_of
from auditor.core.snapshot import Snapshot

ALERT_COLUMNS = (
    "subscriptionId",
    "alertId",
    "alertType",
    "displayName",
    "severity",
    "status",
    "startTime",
    "endTime",
    "intent",
    "techniques",
    "compromisedEntity",
    "resourceIds",
    "product",
    "portalLink",
    "incident",
)


def alert_item(alert: SecurityAlert) -> dict[str, Any]:
    return {
        "subscriptionId": alert.subscription_id,
        "alertId": alert.alert_id,
        "alertType": alert.alert_type,
        "displayName": alert.display_name,
        "severity": alert.severity.value,
        "status": alert.status.value,
        "startTime": instant(alert.start_time),
        "endTime": instant(alert.end_time) if alert.end_time else None,
        "intent": alert.intent,
        # Lists as one cell each in CSV: space-separated (ids and technique codes have none).
        "techniques": " ".join(alert.techniques),
        "compromisedEntity": alert.compromised_entity,
        "resourceIds": " ".join(alert.resource_ids),
        "product": alert.product,
        "portalLink": alert.portal_link,
        "incident": alert.incident,
    }


def alert_changes(summary: DiffSummary) -> dict[str, Any]:
    """The diff's security alerts; ``comparable`` false (with the reason) when an end predates
    them, so that "no new alert" is never said of data that was not collected."""
    diff = summary.alerts
    return {
        "comparable": diff is not None,
        "reason": (summary.alerts_not_comparable or None) if diff is None else None,
        "new": [alert_item(a) for a in diff.new] if diff else [],
        "resolved": [alert_item(a) for a in diff.resolved] if diff else [],
        "newHigh": diff.new_high if diff else 0,
        "unlisted": diff.unlisted if diff else 0,
    }


def count_item(count: AlertCount) -> dict[str, Any]:
    return {
        "subscriptionId": count.subscription_id,
        "severity": count.severity.value,
        "status": count.status.value,
        "alerts": count.alerts,
        "listed": count.listed,
        "leftOut": count.left_out,
    }


def alerts_document(snapshot: Snapshot) -> dict[str, Any]:
    """The snapshot's alerts; ``collected`` false (and no rows) when it predates them."""
    alerts = records_of(snapshot.posture, ALERTS)
    counts = records_of(snapshot.posture, ALERT_COUNTS)
    collected = alerts is not None and counts is not None
    return {
        "tenantId": snapshot.index.tenant_id,
        "snapshot": snapshot_detail(snapshot.index),
        "complete": snapshot.index.status is CollectionStatus.COMPLETE,
        "collected": collected,
        "counts": [count_item(c) for c in counts or ()],
        "leftOut": sum(c.left_out for c in counts or ()),
        "value": [alert_item(a) for a in alerts or ()],
    }
