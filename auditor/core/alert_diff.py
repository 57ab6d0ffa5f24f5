"""What changed in a tenant's security alerts between two snapshots. Pure.

An alert is *new* when it is open (active or in progress) at the later end and was not open at
the earlier one; *resolved* when it was open at the earlier end and no longer is. Alerts are
matched on the registry's identity key (the alert's resource id). Only subscriptions collected
at both ends are compared.

A capped list cannot prove absence: an alert missing from one end's list while that end's cap
left out open alerts of the same subscription and severity is neither new nor resolved but
*unlisted* (counted, never guessed). A snapshot taken before alerts were collected makes the
alerts not comparable (None), never "no change".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from auditor.core.model import AlertCount, AlertSeverity, SecurityAlert, TenantPosture
from auditor.core.registry import ALERT_COUNTS, ALERTS, records_of

_Bucket = tuple[str, AlertSeverity]


@dataclass(frozen=True, slots=True)
class AlertDiff:
    new: tuple[SecurityAlert, ...]  # by severity, then newest first
    resolved: tuple[SecurityAlert, ...]  # as last seen open
    unlisted: int = 0  # alerts a cap kept from being matched at one end

    @property
    def new_high(self) -> int:
        return sum(1 for alert in self.new if alert.severity is AlertSeverity.HIGH)


def _capped(counts: Iterable[AlertCount]) -> set[_Bucket]:
    return {(c.subscription_id, c.severity) for c in counts if c.left_out}


def diff_alerts(
    before: TenantPosture, after: TenantPosture, comparable: set[str]
) -> AlertDiff | None:
    """The alert changes over `comparable` subscriptions; None when an end has no alerts."""
    old_list, new_list = records_of(before, ALERTS), records_of(after, ALERTS)
    old_counts, new_counts = records_of(before, ALERT_COUNTS), records_of(after, ALERT_COUNTS)
    if old_list is None or new_list is None or old_counts is None or new_counts is None:
        return None
    old = {ALERTS.identity(a): a for a in old_list if a.subscription_id in comparable}
    new = {ALERTS.identity(a): a for a in new_list if a.subscription_id in comparable}
    old_capped, new_capped = _capped(old_counts), _capped(new_counts)
    appeared, gone, unlisted = [], [], 0
    for key in new.keys() - old.keys():
        alert = new[key]
        if (alert.subscription_id, alert.severity) in old_capped:
            unlisted += 1
        else:
            appeared.append(alert)
    for key in old.keys() - new.keys():
        alert = old[key]
        if (alert.subscription_id, alert.severity) in new_capped:
            unlisted += 1
        else:
            gone.append(alert)
    return AlertDiff(tuple(_ordered(appeared)), tuple(_ordered(gone)), unlisted)


def _ordered(alerts: list[SecurityAlert]) -> list[SecurityAlert]:
    return sorted(alerts, key=lambda a: a.order)
