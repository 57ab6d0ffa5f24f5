"""Two attempts at one slot, forced through every interleaving of their commit steps (claim,
content, anchor, commit) against real Azurite: a losing attempt never leaves the winner's
snapshot anything but what the winner wrote, and a failing attempt never turns a healthy one
into a failure.

Issue 10: two `snapshot --all` at once committed healthy tenants as FAILED "SlotBusy: … taken
over" in 2 of 10 trials (the loser's commit_failed took over the winner's claim), and the
failure was then permanent.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.runs import RunStore
from auditor.core.model import CollectionStatus
from auditor.services.snapshot import SnapshotService, TenantOutcome
from auditor.settings import Settings
from tools.posture_factory import FakeSource, make_posture, tenant_id_for

SLOT = datetime(2024, 5, 1, 2, tzinfo=UTC)
TENANT = tenant_id_for(5)
STEPS = ("claim", "content", "anchor", "commit")


class Sequencer:
    """Lets each attempt run its next step only when `order` says it is that step's turn. An
    attempt that stops early (it found the slot taken) gives up its remaining turns."""

    def __init__(self, order: list[str]) -> None:
        self.order = list(order)
        self.position = 0
        self.holder: str | None = None
        self.lock = threading.Condition()

    def step(self, who: str) -> Callable[[str], None]:
        def hook(name: str) -> None:
            with self.lock:
                self._release(who)
                wanted = f"{who}.{name}"
                if wanted not in self.order[self.position :]:
                    return  # a step the order does not schedule (e.g. a retried claim)
                while self.order[self.position] != wanted:
                    if not self.lock.wait(timeout=30):
                        raise AssertionError(f"{wanted} never got its turn in {self.order}")
                self.holder = who

        return hook

    def finish(self, who: str) -> None:
        with self.lock:
            self._release(who)
            self.order = self.order[: self.position] + [
                s for s in self.order[self.position :] if not s.startswith(f"{who}.")
            ]
            self.lock.notify_all()

    def _release(self, who: str) -> None:
        if self.holder == who:
            self.holder = None
            self.position += 1
            self.lock.notify_all()


def interleavings(a: str, b: str) -> Iterator[list[str]]:
    """Every merge of a's and b's steps that keeps each one's own order."""
    for places in itertools.combinations(range(2 * len(STEPS)), len(STEPS)):
        a_steps, b_steps = iter(STEPS), iter(STEPS)
        yield [
            f"{a}.{next(a_steps)}" if i in places else f"{b}.{next(b_steps)}"
            for i in range(2 * len(STEPS))
        ]


ORDERS = list(interleavings("w", "l"))


def run_pair(
    settings: Settings, order: list[str], loser_fails: bool
) -> tuple[TenantOutcome, TenantOutcome, SnapshotStore]:
    posture = make_posture(TENANT, subscriptions=2)
    sequencer = Sequencer(order)
    runs = RunStore.from_settings(settings)
    outcomes: dict[str, TenantOutcome] = {}
    errors: list[BaseException] = []

    def attempt(who: str, source: FakeSource) -> None:
        store = SnapshotStore.from_settings(settings, step_hook=sequencer.step(who))
        try:
            outcomes[who] = SnapshotService(store, runs, source).snapshot_tenant(
                posture.tenant, SLOT
            )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            sequencer.finish(who)
            store.close()

    healthy = FakeSource([posture])
    failing = FakeSource([posture], failures={TENANT: [ConnectionError("ARG down")]})
    threads = [
        threading.Thread(target=attempt, args=("w", healthy)),
        threading.Thread(target=attempt, args=("l", failing if loser_fails else healthy)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    runs.close()
    assert not errors, errors
    return outcomes["w"], outcomes["l"], SnapshotStore.from_settings(settings)


@pytest.mark.parametrize("order", ORDERS, ids=[" ".join(o) for o in ORDERS])
def test_a_failing_attempt_never_turns_a_healthy_one_into_a_failure(
    settings: Settings, order: list[str]
) -> None:
    healthy, failing, store = run_pair(settings, order, loser_fails=True)
    with store:
        entry = store.get_index(TENANT, "20240501T020000Z")  # verified against its anchor
        assert entry.status is CollectionStatus.COMPLETE, (healthy, failing)
        assert healthy.outcome in ("complete", "duplicate", "contended"), healthy
        assert failing.outcome in ("failed", "contended", "duplicate"), failing
        if failing.outcome == "failed":  # it committed first: the healthy attempt retook it
            assert failing.entry is not None and entry.supersedes == failing.entry.attempt
        assert store.list_tenants() == [entry]
        snapshot = store.get_snapshot(TENANT, entry.snapshot_id)
        assert len(snapshot.posture.compliance) == len(make_posture(TENANT).compliance)


@pytest.mark.parametrize("order", ORDERS[::5], ids=[" ".join(o) for o in ORDERS[::5]])
def test_two_healthy_attempts_commit_one_snapshot_and_neither_records_a_failure(
    settings: Settings, order: list[str]
) -> None:
    first, second, store = run_pair(settings, order, loser_fails=False)
    with store:
        entry = store.get_index(TENANT, "20240501T020000Z")
        assert entry.status is CollectionStatus.COMPLETE and not entry.supersedes
        assert sorted(o.outcome for o in (first, second)) in (
            ["complete", "contended"],
            ["complete", "duplicate"],
        ), (first, second)
        winner = first if first.outcome == "complete" else second
        assert winner.entry == entry and store.list_tenants() == [entry]
