"""What the sinks send for a closed run's digest. Pure.

- ``digest_events``: the CloudEvents: one ``auditor.run.digest`` per run (its ``data`` is the
  digest document: ``slot``, ``tenants[]`` each with ``tenantId``, ``name``, ``status`` and
  ``summary`` in the diff API's shape, and the rest of the digest) and one
  ``auditor.tenant.regressed`` per tenant that got worse. Ids are stable (derived from the slot
  and tenant), so a re-send or a retry carries the same id and receivers de-duplicate on it.
- ``teams_card`` / ``slack_message``: a short message, worst tenants first, linking to the
  dashboard and each tenant's diff. Tenant names are customer text: control characters go, and
  the characters each chat's markup gives meaning to are escaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from auditor.core.text import plain_text

EVENT_SOURCE = "/auditor/runs"
RUN_DIGEST_TYPE = "auditor.run.digest"
TENANT_REGRESSED_TYPE = "auditor.tenant.regressed"
SHOWN_TENANTS = 5  # tenants a chat message lists (worst first)


@dataclass(frozen=True, slots=True)
class Event:
    """One CloudEvent to send: its attributes and JSON data."""

    id: str
    type: str
    source: str
    subject: str
    time: str
    data: Mapping[str, Any]


def run_event_id(slot: str) -> str:
    return f"run-{slot}-digest"


def digest_events(document: Mapping[str, Any]) -> list[Event]:
    """The run digest event, then one `tenant.regressed` event per tenant that regressed."""
    slot = str(document["slot"])
    closed_at = str(document["closedAt"])
    events = [Event(run_event_id(slot), RUN_DIGEST_TYPE, EVENT_SOURCE, slot, closed_at, document)]
    for tenant in document["tenants"]:
        if not tenant.get("regressed"):
            continue
        events.append(
            Event(
                f"run-{slot}-tenant-{tenant['tenantId']}-regressed",
                TENANT_REGRESSED_TYPE,
                EVENT_SOURCE,
                f"{slot}/tenants/{tenant['tenantId']}",
                closed_at,
                {"slot": slot, **tenant},
            )
        )
    return events


def _line(tenant: Mapping[str, Any]) -> str:
    """One tenant's figures in words (no customer text)."""
    summary = tenant.get("summary")
    parts = [str(tenant["status"])]
    if tenant.get("stale"):
        parts.append("stale")
    if summary:
        posture = summary["posture"]
        parts.append(f"{posture['regressed']} regressed, {posture['improved']} improved")
        if summary["planDowngrades"]:
            parts.append(f"{len(summary['planDowngrades'])} plan downgrades")
        if summary["secureScoreDrops"]:
            parts.append(f"{len(summary['secureScoreDrops'])} secure score drops")
    if tenant.get("newHighAlerts"):
        parts.append(f"{tenant['newHighAlerts']} new High alerts")
    return ", ".join(parts)


def _headline(document: Mapping[str, Any]) -> str:
    counts = document["counts"]
    return (
        f"Run {document['slot']}: {document['outcome']}. {counts['tenants']} tenants, "
        f"{counts['failed']} failed, {counts['stale']} stale, {counts['regressed']} regressed, "
        f"{counts['poison']} poison messages."
    )


def diff_link(base: str, tenant: Mapping[str, Any]) -> str | None:
    if not tenant.get("previousSnapshotId"):
        return None
    query = urlencode({"from": tenant["previousSnapshotId"], "to": tenant["snapshotId"]})
    return f"{base}/api/tenants/{quote(str(tenant['tenantId']), safe='')}/diff?{query}"


def _markdown_safe(text: str, special: str) -> str:
    text = plain_text(text)[:120]
    return "".join(f"\\{c}" if c in special else c for c in text)


def _slack_safe(text: str) -> str:
    # Slack's mrkdwn: &, < and > are its only escapes; the rest is neutralised by spacing.
    text = plain_text(text)[:120].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "".join(f"\u200b{c}" if c in "*_~`" else c for c in text)


def teams_card(document: Mapping[str, Any], dashboard_url: str | None = None) -> dict[str, Any]:
    """A Teams Workflows webhook message holding one Adaptive Card."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": _headline(document), "wrap": True, "weight": "Bolder"}
    ]
    for tenant in document["tenants"][:SHOWN_TENANTS]:
        name = _markdown_safe(str(tenant["name"]) or str(tenant["tenantId"]), "\\*_~`[]()#<>")
        text = f"{name}: {_line(tenant)}"
        link = diff_link(dashboard_url, tenant) if dashboard_url else None
        if link:
            text += f" [diff]({link})"
        body.append({"type": "TextBlock", "text": text, "wrap": True})
    actions = (
        [{"type": "Action.OpenUrl", "title": "Dashboard", "url": dashboard_url}]
        if dashboard_url
        else []
    )
    card = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": body,
        "actions": actions,
    }
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def slack_message(document: Mapping[str, Any], dashboard_url: str | None = None) -> dict[str, Any]:
    """A Slack incoming-webhook message in Block Kit."""
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_headline(document)}*"}}
    ]
    for tenant in document["tenants"][:SHOWN_TENANTS]:
        name = _slack_safe(str(tenant["name"]) or str(tenant["tenantId"]))
        text = f"{name}: {_line(tenant)}"
        link = diff_link(dashboard_url, tenant) if dashboard_url else None
        if link:
            text += f" <{link}|diff>"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    if dashboard_url:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"<{dashboard_url}|Dashboard>"}],
            }
        )
    return {"text": _headline(document), "blocks": blocks}
