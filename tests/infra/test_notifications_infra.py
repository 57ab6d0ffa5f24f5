"""Infra of issue 14: the Event Grid topic (CloudEvents, Entra ID only), its sender role for the
collector alone, the alert rules on the digest's log records and their action group, and the
sink settings kept out of the API app."""

from __future__ import annotations

from typing import Any

import pytest

from auditor.settings import COLLECTOR_ONLY
from tests.infra.test_bicep import (
    MAIN,
    _parse,
    _principal,
    _role_name,
    app_settings,
    param_default,
    render,
    resource,
    resources_of_type,
)


@pytest.fixture(scope="module")
def main() -> dict[str, Any]:
    return _parse(MAIN)


def test_the_topic_takes_cloudevents_with_entra_id_only(main: dict[str, Any]) -> None:
    (topic,) = resources_of_type(main, "Microsoft.EventGrid/topics").values()
    assert topic["properties"]["inputSchema"] == "CloudEventSchemaV1_0"
    assert topic["properties"]["disableLocalAuth"] is True
    collector = app_settings(main, "collectorApp")
    assert render(collector["AUDITOR_NOTIFY_EVENTGRID_ENDPOINT"]) == (
        "eventGridTopic.properties.endpoint"
    )


def test_only_the_collector_may_send_to_the_topic(main: dict[str, Any]) -> None:
    on_topic = [
        ra
        for ra in resources_of_type(main, "Microsoft.Authorization/roleAssignments").values()
        if ra.get("scope") == "eventGridTopic"
    ]
    assert [(_principal(ra), _role_name(main, ra)) for ra in on_topic] == [
        ("identity", "EventGrid Data Sender")
    ]


def test_sink_settings_and_secrets_never_reach_the_api_app(main: dict[str, Any]) -> None:
    assert not COLLECTOR_ONLY & set(app_settings(main, "functionApp"))
    assert set(app_settings(main, "collectorApp")) >= COLLECTOR_ONLY
    collector = app_settings(main, "collectorApp")
    # Secrets are Key Vault references resolved by the collector's identity, never parameters.
    for name, secret in (
        ("AUDITOR_NOTIFY_WEBHOOK_SECRET", "notify-webhook-secret"),
        ("AUDITOR_NOTIFY_CHAT_URL", "notify-chat-url"),
    ):
        assert f"SecretName={secret})" in str(render(collector[name])), name
    site = resource(main, "collectorApp")
    assert render(site["properties"]["keyVaultReferenceIdentity"]) == "identity.id"
    vault = resource(main, "notifyVault")["properties"]
    assert vault["enableRbacAuthorization"] is True and vault["enablePurgeProtection"] is True


RULES = {
    "failedTenantsAlert": "toint(digest.failed) + toint(digest.pending) > 0",
    "staleTenantsAlert": "toint(digest.stale) > 0",
    "poisonMessagesAlert": "toint(digest.poison) > 0",
}


@pytest.mark.parametrize("symbol", list(RULES))
def test_alert_rules_query_the_digest_in_app_insights_and_notify_the_action_group(
    main: dict[str, Any], symbol: str
) -> None:
    rule = resource(main, symbol)
    props = rule["properties"]
    assert [render(s) for s in props["scopes"]] == ["appInsights.id"]
    (criterion,) = props["criteria"]["allOf"]
    query = str(criterion["query"])
    assert "${digestTraces}" in query and RULES[symbol] in query
    assert (criterion["operator"], criterion["threshold"]) == ("GreaterThan", 0)
    traces = main["variables"]["digestTraces"]["value"]
    # The prefix the collector logs (auditor/services/notify.py): "run.digest " then the JSON.
    assert 'startswith "run.digest {"' in traces and "substring(message, 11)" in traces
    assert [render(a) for a in props["actions"]["actionGroups"]] == ["alertActionGroup.id"]


def test_the_action_group_mails_the_address_given_at_deployment(main: dict[str, Any]) -> None:
    group = resource(main, "alertActionGroup")
    receivers = render(group["properties"]["emailReceivers"])
    assert "alertEmail" in str(receivers)
    assert param_default(main, "alertEmail") == ""


def test_the_monitor_record_prefix_matches_the_rules() -> None:
    import json
    import logging

    from auditor.services.notify import MonitorSink

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("auditor.digest")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        from auditor.core.notify_messages import Event

        document = {"slot": "s", "outcome": "partial", "counts": {"failed": 1}, "tenants": []}
        MonitorSink().send([Event("i", "t", "/", "s", "2024-01-01T00:00:00Z", document)])
    finally:
        logger.removeHandler(handler)
    message = records[0].getMessage()
    assert message.startswith("run.digest {")
    assert json.loads(message[11:])["failed"] == 1
