"""`runs`, `notify` and `status` on a closed run in Azurite: what an operator reads and does.

Issue 14: an operator reads the digest and re-sends it without the SDK.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from auditor import cli
from auditor.adapters.queues import SnapshotQueue
from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.runs import RunStore
from auditor.settings import load_settings
from tests.daily_runs import run_days
from tests.receiver import Receiver, deployment_env
from tools.devservices import Azurite
from tools.posture_factory import flip_states, make_posture, tenant_id_for

A, B = tenant_id_for(81), tenant_id_for(82)
DAY1 = datetime(2024, 5, 1, 2, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
SLOT2 = "20240502T020000Z"


@pytest.fixture
def env(
    azurite: Azurite, table_prefix: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    values = deployment_env(azurite.connection_string, table_prefix)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(values)
    store, runs = SnapshotStore.from_settings(settings), RunStore.from_settings(settings)
    queue = SnapshotQueue.from_settings(settings)
    day1 = [make_posture(A, subscriptions=1), make_posture(B, subscriptions=1, seed=1)]
    day2 = [flip_states(day1[0], 0.3), day1[1]]
    run_days(settings, store, runs, ((DAY1, day1), (DAY2, day2)), queue=queue)
    store.close()
    runs.close()
    queue.close()
    return values


def test_runs_lists_the_closed_runs_and_shows_a_digest_worst_first(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["runs"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].startswith(f"{SLOT2}  closed 2024-05-02T02:05:00") and "by inline" in listed[0]
    assert cli.main(["runs", "--slot", SLOT2]) == 0
    shown = capsys.readouterr().out
    first_tenant = next(line for line in shown.splitlines() if line.startswith(("7e0a",)))
    assert first_tenant.startswith(A)  # the regressed tenant first
    assert "regressed" in shown and "since 20240501T020000Z" in shown
    assert cli.main(["runs", "--slot", SLOT2, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["digest"]["tenants"][0]["tenantId"] == A
    assert cli.main(["runs", "--slot", "20240503T020000Z"]) == 1
    assert cli.main(["runs", "--slot", "tomorrow"]) == 2


def test_notify_resends_to_a_webhook_configured_later_and_records_it(
    env: dict[str, str], receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("AUDITOR_NOTIFY_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("AUDITOR_NOTIFY_WEBHOOK_SECRET", "operators-secret-123")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", receiver.ca_path)  # the receiver's private CA
    assert cli.main(["notify", "--slot", SLOT2]) == 0
    assert "webhook: delivered (1 attempts)" in capsys.readouterr().out
    [post] = receiver.received
    assert json.loads(post.body)["id"] == f"run-{SLOT2}-digest"
    assert cli.main(["runs", "--slot", SLOT2]) == 0
    assert "notify webhook: delivered after 1 attempts" in capsys.readouterr().out
    assert cli.main(["notify", "--slot", "20240503T020000Z"]) == 1  # no such run: nothing sent
    assert len(receiver.received) == 1


def test_notify_fails_at_once_on_an_untrusted_certificate(
    env: dict[str, str], receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("AUDITOR_NOTIFY_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("AUDITOR_NOTIFY_WEBHOOK_SECRET", "operators-secret-123")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    assert cli.main(["notify", "--slot", SLOT2]) == 1
    out = capsys.readouterr().out
    assert "webhook: failed (1 attempts)" in out and "TLS verification" in out
    assert receiver.received == []


def test_status_says_what_needs_an_operator(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["status", "--json"])
    status = json.loads(capsys.readouterr().out)
    assert status["lastClosedRun"]["slot"] == SLOT2 and status["tenants"]["failed"] == []
    assert status["queues"]["poisonDepth"] == 0 and status["queues"]["depth"] == 0
    assert status["evidence"]["hasImmutabilityPolicy"] is False  # Azurite has none
    assert [d["sink"] for d in status["notifications"]] == ["monitor"]
    assert code == 0
    assert cli.main(["status"]) == 0
    text = capsys.readouterr().out
    assert f"last closed run: {SLOT2} closed" in text and "evidence" in text
