"""A run closes exactly once and its digest reaches the webhook exactly once: whatever
duplicates, retries or concurrent workers, against real Azurite and a loopback HTTPS receiver.

Issue 14: nothing knew a run was done, so nobody learned what changed.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from auditor.adapters.queues import SnapshotQueue, max_dequeue_count
from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.run_digests import DigestTampered, RunDigestStore
from auditor.adapters.tables.runs import RunStore
from auditor.api.documents import diff_summary
from auditor.core.canonical import format_time
from auditor.core.diff import diff_snapshots
from auditor.core.digest import digest_hash
from auditor.core.runs import SnapshotJob
from auditor.core.snapshot import Snapshot
from auditor.services.runclose import ClosedRun, make_closer
from auditor.services.snapshot import SnapshotService
from auditor.settings import Settings, load_settings
from tests.daily_runs import run_days
from tests.listener import CountingListener
from tests.receiver import Receiver, deployment_env
from tests.storage.test_concurrency import Sequencer
from tools.devservices import Azurite
from tools.posture_factory import FakeSource, flip_states, make_posture, tenant_id_for

SLOT = datetime(2024, 5, 1, 2, tzinfo=UTC)
SLOT_ID = "20240501T020000Z"
DAYS = (SLOT_ID, "20240502T020000Z")
A, B = tenant_id_for(41), tenant_id_for(42)
SECRET = "s3cret-for-the-webhook-tests"


@pytest.fixture
def env(azurite: Azurite, table_prefix: str, receiver: Receiver) -> dict[str, str]:
    return deployment_env(
        azurite.connection_string,
        table_prefix,
        AUDITOR_NOTIFY_WEBHOOK_URL=receiver.url,
        AUDITOR_NOTIFY_WEBHOOK_SECRET=SECRET,
    )


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings(env)


class Services:
    """Services on one deployment's storage, as separate workers would have them."""

    def __init__(self, settings: Settings, receiver: Receiver) -> None:
        self.settings = settings
        self.receiver = receiver
        self.now = SLOT + timedelta(minutes=1)
        self.slept: list[float] = []
        self.made: list[SnapshotService] = []

    def clock(self) -> datetime:
        return self.now

    def service(
        self, source: FakeSource, step_hook: Callable[[str], None] | None = None
    ) -> SnapshotService:
        store = SnapshotStore.from_settings(self.settings, step_hook=step_hook)
        runs = RunStore.from_settings(self.settings)
        queue = SnapshotQueue.from_settings(self.settings)
        closer = make_closer(self.settings, store, runs, queue, verify=self.receiver.ca_path)
        closer.clock = self.clock
        if step_hook is not None:
            closer.step_hook = step_hook
        assert closer.notifier is not None
        closer.notifier.sleep = self.slept.append  # backoff is recorded, not waited for
        closer.notifier.clock = self.clock
        made = SnapshotService(store, runs, source, queue, clock=self.clock, closer=closer)
        self.made.append(made)
        return made

    def close(self) -> None:
        for made in self.made:
            assert made.closer is not None
            made.closer.close()
            made.store.close()
            made.runs.close()
            assert made.queue is not None
            made.queue.close()


@pytest.fixture
def services(settings: Settings, receiver: Receiver) -> Iterator[Services]:
    made = Services(settings, receiver)
    yield made
    made.close()


def source() -> FakeSource:
    return FakeSource([make_posture(A), make_posture(B, seed=1)])


def digest_posts(receiver: Receiver) -> list[dict[str, object]]:
    return [json.loads(r.body) for r in receiver.received]


def test_the_last_job_closes_the_run_once_and_the_webhook_gets_one_signed_cloudevent(
    services: Services, receiver: Receiver, settings: Settings
) -> None:
    service = services.service(source())
    service.plan_run(SLOT, enqueue=True)
    assert service.queue is not None
    for tenant in (A, B):  # every job twice: duplicate messages
        service.queue.send_job(SnapshotJob(tenant, SLOT_ID))
    service.drain(max_dequeue_count())

    digests = RunDigestStore.from_settings(settings)
    found = digests.digest(SLOT_ID)
    assert found is not None
    record, document = found
    assert record.closed_by == "last-job" and record.digest_hash == digest_hash(document)
    assert {t["tenantId"] for t in document["tenants"]} == {A, B}  # type: ignore[index]
    assert [d.state for d in digests.deliveries(SLOT_ID).values()] == ["delivered"] * 2

    [post] = receiver.received  # exactly one digest for the run
    assert post.headers["content-type"] == "application/cloudevents+json"
    expected = "sha256=" + hmac.new(SECRET.encode(), post.body, hashlib.sha256).hexdigest()
    assert post.headers["x-auditor-signature"] == expected
    event = json.loads(post.body)
    assert event["specversion"] == "1.0" and event["type"] == "auditor.run.digest"
    assert event["id"] == f"run-{SLOT_ID}-digest" and event["subject"] == SLOT_ID
    assert event["source"] == "/auditor/runs" and event["time"] == record.closed_at
    assert event["data"] == document
    digests.close()


def test_closing_again_sends_nothing_and_notify_resends_the_same_event_id(
    services: Services, receiver: Receiver
) -> None:
    service = services.service(source())
    service.run_inline(SLOT)
    assert service.closer is not None
    assert service.closer.try_close(SLOT_ID, closed_by="sweep") is None
    service.sweep_run(SLOT_ID)
    assert len(receiver.received) == 1
    found = service.closer.digests.digest(SLOT_ID)
    assert found is not None and service.closer.notifier is not None
    service.closer.notifier.deliver(SLOT_ID, found[1], force=True)
    first, second = digest_posts(receiver)
    assert first["id"] == second["id"] and first["data"] == second["data"]


TWO_CLOSERS = ("read", "digest", "close")


def closer_orders() -> list[list[str]]:
    """Both commits first, then every merge of the two closers' steps."""
    out = []
    for places in itertools.combinations(range(6), 3):
        a, b = iter(TWO_CLOSERS), iter(TWO_CLOSERS)
        merged = [f"a.{next(a)}" if i in places else f"b.{next(b)}" for i in range(6)]
        out.append(["a.commit", "b.commit", *merged])
    return out


ORDERS = closer_orders()


@pytest.mark.parametrize("order", ORDERS[::3], ids=[" ".join(o[2:]) for o in ORDERS[::3]])
def test_two_workers_finishing_at_once_close_the_run_exactly_once(
    services: Services, receiver: Receiver, order: list[str]
) -> None:
    planner = services.service(source())
    planner.plan_run(SLOT, enqueue=False)
    sequencer = Sequencer(order)
    closed: dict[str, ClosedRun | None] = {}
    errors: list[BaseException] = []
    workers = {who: services.service(source(), step_hook=sequencer.step(who)) for who in ("a", "b")}
    for worker in workers.values():  # "read" is the closer's first look at the run record
        assert worker.closer is not None
        closer = worker.closer
        original = closer.try_close

        def try_close(slot: str, *, closed_by: str, _c=closer, _o=original) -> ClosedRun | None:
            _c.step_hook("read")
            result = _o(slot, closed_by=closed_by)
            closed[str(id(_c))] = result
            return result

        closer.try_close = try_close  # type: ignore[method-assign]

    def work(who: str, tenant: str) -> None:
        job = json.dumps(
            {"format": "auditor-snapshot-job/1", "tenant_id": tenant, "snapshot_id": SLOT_ID},
            sort_keys=True,
        )
        try:
            workers[who].process_job(job, 1, 5)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            sequencer.finish(who)

    threads = [threading.Thread(target=work, args=w) for w in (("a", A), ("b", B))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    winners = [c for c in closed.values() if c is not None]
    assert len(winners) == 1, closed
    [post] = receiver.received
    assert json.loads(post.body)["data"] == winners[0].document
    found = planner.closer.digests.digest(SLOT_ID) if planner.closer else None
    assert found is not None and found[0].digest_hash == winners[0].digest_hash


def test_a_run_past_its_deadline_is_closed_by_the_sweep_with_the_silent_tenant_failed(
    services: Services, receiver: Receiver
) -> None:
    service = services.service(source())
    service.plan_run(SLOT, enqueue=True)
    service.run_inline(SLOT, [A])  # B's job is lost without a trace
    assert receiver.received == []  # not done, and within the deadline
    services.now = SLOT + service.deadline + timedelta(hours=1)
    service.sweep_run(SLOT_ID)
    [post] = digest_posts(receiver)
    data = post["data"]
    assert isinstance(data, dict) and data["closedBy"] == "sweep"
    rows = {t["tenantId"]: t for t in data["tenants"]}
    assert rows[B]["status"] == "failed" and "deadline" in rows[B]["reasons"][0]
    assert rows[A]["status"] == "complete"


def test_a_receiver_failing_then_recovering_gets_the_digest_with_backoff_and_the_run_says_so(
    services: Services, receiver: Receiver
) -> None:
    receiver.fail_next(503, 503, 503)
    service = services.service(source())
    service.run_inline(SLOT)
    assert service.closer is not None
    delivery = service.closer.digests.deliveries(SLOT_ID)["webhook"]
    assert (delivery.state, delivery.attempts) == ("retrying", 3)
    assert "HTTP 503" in delivery.reason and services.slept == [2.0, 4.0]
    services.now += timedelta(days=1)
    service.sweep_run(SLOT_ID)  # the next timer tick
    delivery = service.closer.digests.deliveries(SLOT_ID)["webhook"]
    assert (delivery.state, delivery.attempts, delivery.reason) == ("delivered", 4, "")
    ids = {p["id"] for p in digest_posts(receiver)}
    assert len(receiver.received) == 4 and ids == {f"run-{SLOT_ID}-digest"}
    service.sweep_run(SLOT_ID)
    assert len(receiver.received) == 4  # delivered: never sent again by the sweep


def test_a_redirect_to_another_host_is_never_followed_and_the_delivery_fails_with_why(
    services: Services, receiver: Receiver
) -> None:
    with CountingListener() as other:
        receiver.redirect(f"{other.url}/steal")
        service = services.service(source())
        service.run_inline(SLOT)
        assert other.connections == 0
    assert service.closer is not None
    delivery = service.closer.digests.deliveries(SLOT_ID)["webhook"]
    assert delivery.state == "failed" and "another host" in delivery.reason


def test_a_same_host_redirect_is_followed_with_the_signed_body(
    services: Services, receiver: Receiver
) -> None:
    receiver.redirect(f"https://127.0.0.1:{receiver.port}/moved")
    service = services.service(source())
    service.run_inline(SLOT)
    first, second = receiver.received
    assert (first.path, second.path) == ("/hook", "/moved") and first.body == second.body
    assert second.headers["x-auditor-signature"] == first.headers["x-auditor-signature"]


def test_an_edited_digest_is_refused(services: Services, settings: Settings) -> None:
    service = services.service(source())
    service.run_inline(SLOT)
    digests = RunDigestStore.from_settings(settings)
    record = digests.record(SLOT_ID)
    assert record is not None and record.close_attempt
    table = digests._table
    row = table.get_entity(SLOT_ID, f"digest~{record.close_attempt}")
    row["document"] = str(row["document"]).replace('"complete"', '"failed"', 1)
    table.update_entity(row)
    with pytest.raises(DigestTampered, match="hashes to"):
        digests.digest(SLOT_ID)
    digests.close()


def test_a_replanned_run_stays_closed(services: Services, settings: Settings) -> None:
    service = services.service(source())
    service.run_inline(SLOT)
    service.plan_run(SLOT, enqueue=False, tenant_ids=[A])
    digests = RunDigestStore.from_settings(settings)
    record = digests.record(SLOT_ID)
    assert record is not None and record.closed and record.closed_at == format_time(services.now)
    digests.close()


def test_a_partial_run_never_closes_so_the_full_run_of_its_slot_gets_the_digest(
    services: Services, receiver: Receiver
) -> None:
    service = services.service(source())
    service.run_inline(SLOT, [A])  # `snapshot --tenant A`: a partial run of the slot
    assert receiver.received == []
    service.run_inline(SLOT)  # the timer's full run of the same slot
    [post] = digest_posts(receiver)
    data = post["data"]
    assert isinstance(data, dict) and {t["tenantId"] for t in data["tenants"]} == {A, B}


def test_a_closer_lost_between_its_close_and_its_delivery_leaves_the_sending_to_the_sweep(
    services: Services, receiver: Receiver
) -> None:
    service = services.service(source())
    assert service.closer is not None and service.closer.notifier is not None
    notifier, service.closer.notifier = service.closer.notifier, None  # dies after the close
    service.run_inline(SLOT)
    assert receiver.received == [] and service.closer.digests.deliveries(SLOT_ID) == {}
    service.closer.notifier = notifier  # the next timer tick, in a live worker
    service.sweep_run(SLOT_ID)
    [post] = digest_posts(receiver)
    assert post["id"] == f"run-{SLOT_ID}-digest"
    assert service.closer.digests.deliveries(SLOT_ID)["webhook"].state == "delivered"


def test_a_delivery_another_worker_is_sending_is_left_to_it_until_its_lease_ends(
    services: Services, receiver: Receiver
) -> None:
    from auditor.adapters.tables.run_digests import Delivery
    from auditor.services.notify import SENDING_LEASE

    service = services.service(source())
    assert service.closer is not None and service.closer.notifier is not None
    notifier, service.closer.notifier = service.closer.notifier, None
    service.run_inline(SLOT)
    service.closer.notifier = notifier
    at = format_time(services.now)
    service.closer.digests.record_delivery(SLOT_ID, Delivery("webhook", "sending", 0, "", at, ""))
    service.sweep_run(SLOT_ID)
    assert receiver.received == []  # a live worker is sending it
    services.now += SENDING_LEASE
    service.sweep_run(SLOT_ID)
    assert len(receiver.received) == 1  # that worker was lost: the sweep sends it


class WholeReadsCounted(SnapshotStore):
    """The real store, recording which snapshots were read whole."""

    whole: list[str]

    def get_snapshot(self, tenant_id: str, snapshot_id: str, *, verify: bool = True) -> Snapshot:
        self.whole.append(f"{tenant_id}/{snapshot_id}")
        return super().get_snapshot(tenant_id, snapshot_id, verify=verify)


def test_the_digest_compares_each_tenant_through_its_projection_not_its_whole_snapshots(
    settings: Settings,
) -> None:
    # The run's last worker closes it, comparing every tenant at once: reading whole
    # snapshots there made that worker's memory the fleet's peak (issue 15).
    day1 = [make_posture(A), make_posture(B, seed=1)]
    day2 = [flip_states(p, 0.3) for p in day1]
    store = WholeReadsCounted.from_settings(settings)
    store.whole = []
    runs = RunStore.from_settings(settings)
    days = ((SLOT, day1), (SLOT + timedelta(days=1), day2))
    run_days(settings, store, runs, days, closed_after=timedelta(minutes=30))
    found = RunDigestStore.from_settings(settings).digest("20240502T020000Z")
    assert found is not None
    tenants = found[1]["tenants"]
    assert {t["tenantId"] for t in tenants} == {A, B}  # type: ignore[index]
    assert store.whole == []
    with SnapshotStore.from_settings(settings) as plain:  # the truth: whole snapshots
        for tenant in tenants:  # type: ignore[attr-defined]
            before, after = (plain.get_snapshot(tenant["tenantId"], s) for s in DAYS)
            assert tenant["summary"] == diff_summary(diff_snapshots(before, after).summary)
            assert sum(tenant["summary"]["posture"].values()) > 0
    store.close()
    runs.close()
