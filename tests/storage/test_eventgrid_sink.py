"""What azure-eventgrid sends to a custom topic for a closed run: one CloudEvents batch with the
run digest and a `tenant.regressed` event per tenant that got worse, with the app's token,
to a local HTTPS stand-in of the topic's publish endpoint.

Issue 14: the customer's own automation subscribes to the topic.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.runs import RunStore
from auditor.services.runclose import make_closer
from auditor.services.snapshot import SnapshotService
from auditor.settings import Settings, load_settings
from tests.receiver import Receiver, deployment_env
from tools.devservices import Azurite
from tools.posture_factory import FakeSource, flip_states, make_posture, tenant_id_for

A, B = tenant_id_for(71), tenant_id_for(72)
DAY1 = datetime(2024, 5, 1, 2, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
SLOT2 = "20240502T020000Z"


class StaticToken:
    """The managed identity's stand-in: a token for the scope asked (recorded)."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("eventgrid-test-token", int(time.time()) + 3600)


@pytest.fixture
def settings(azurite: Azurite, table_prefix: str, receiver: Receiver) -> Settings:
    endpoint = f"https://127.0.0.1:{receiver.port}/api/events"  # the topic's stand-in
    return load_settings(
        deployment_env(
            azurite.connection_string, table_prefix, AUDITOR_NOTIFY_EVENTGRID_ENDPOINT=endpoint
        )
    )


def test_a_closed_run_publishes_the_digest_and_one_tenant_regressed_event_per_regression(
    settings: Settings, receiver: Receiver
) -> None:
    store = SnapshotStore.from_settings(settings)
    runs = RunStore.from_settings(settings)
    credential = StaticToken()
    day1 = [make_posture(A), make_posture(B, seed=1)]
    day2 = [flip_states(day1[0], 0.3), day1[1]]
    for day, postures in ((DAY1, day1), (DAY2, day2)):
        closer = make_closer(
            settings, store, runs, None, credential=credential, connection_verify=receiver.ca_path
        )
        closer.clock = lambda day=day: day + timedelta(minutes=5)  # type: ignore[misc]
        assert closer.notifier is not None
        closer.notifier.sleep = lambda _s: None
        SnapshotService(store, runs, FakeSource(postures), clock=closer.clock, closer=closer)\
            .run_inline(day)  # fmt: skip
        closer.close()
    store.close()
    runs.close()

    first, second = receiver.received  # one publish per run
    assert second.path == "/api/events?api-version=2018-01-01"
    assert second.headers["authorization"] == "Bearer eventgrid-test-token"
    assert credential.scopes[0] == ("https://eventgrid.azure.net/.default",)
    assert second.headers["content-type"].startswith("application/cloudevents-batch+json")
    events = json.loads(second.body)
    digest, *regressed = events
    assert digest["specversion"] == "1.0" and digest["type"] == "auditor.run.digest"
    assert digest["id"] == f"run-{SLOT2}-digest" and digest["source"] == "/auditor/runs"
    assert digest["data"]["slot"] == SLOT2 and len(digest["data"]["tenants"]) == 2
    [tenant] = regressed
    assert tenant["type"] == "auditor.tenant.regressed"
    assert tenant["id"] == f"run-{SLOT2}-tenant-{A}-regressed"
    assert tenant["subject"] == f"{SLOT2}/tenants/{A}"
    assert tenant["data"]["tenantId"] == A and tenant["data"]["summary"]["posture"]["regressed"]
    assert [e["type"] for e in json.loads(first.body)] == ["auditor.run.digest"]  # day 1
