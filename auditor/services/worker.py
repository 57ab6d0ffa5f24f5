"""Working the queues as the Functions host does, outside it: `python -m auditor worker`,
`serve`'s background thread, and a fleet of processes in a benchmark.

For each message: the same service call as function_app.py's queue trigger (the `HANDLERS`
below are those functions), with the host's rules from host.json (HostQueueOptions): the
message stays hidden while in hand; success deletes it; a failure leaves it to reappear after
``visibilityTimeout`` and, on its ``maxDequeueCount``-th dequeue, moves it to ``<queue>-poison``;
a message already dequeued more often than that (its worker died on the last try) is poisoned
without running. Each of `concurrency` threads holds at most one message, so stopping (SIGTERM,
`stop()`) finishes the messages in hand and leaves every other one visible.

It is not a scheduler: it plans nothing and sweeps nothing (the timers do, in function_app.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

from auditor.adapters.queues import HostQueueOptions, ReceivedJob, WorkQueue
from auditor.settings import Settings

log = logging.getLogger(__name__)

Handler = Callable[[str, int], object]  # (message text, dequeue count); raises to retry


def _snapshot_handler(text: str, dequeue_count: int) -> object:
    from auditor.services import snapshot

    return snapshot.on_queue_message(text, dequeue_count)


def _report_handler(text: str, dequeue_count: int) -> object:
    from auditor.services import report

    return report.on_queue_message(text, dequeue_count)


# Queue kind -> (its name in the settings, the trigger's service call).
HANDLERS: dict[str, tuple[Callable[[Settings], str], Handler]] = {
    "snapshots": (lambda s: s.snapshot_queue, _snapshot_handler),
    "reports": (lambda s: s.report_queue, _report_handler),
}
QUEUE_KINDS = tuple(HANDLERS)

IDLE_POLL_SECONDS = (0.1, 2.0)  # first and longest wait between empty polls (forever mode)


@dataclass
class Tally:
    """What a worker did, per outcome (counts of messages)."""

    succeeded: int = 0
    retried: int = 0
    poisoned: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Lane:
    """One queue and the handler its messages go to."""

    kind: str
    queue: WorkQueue
    handler: Handler


class Worker:
    """Works `lanes` with `concurrency` threads until stopped or, with `until_empty`, until
    no lane has a message left (hidden ones awaiting a retry included)."""

    def __init__(
        self,
        lanes: Sequence[Lane],
        options: HostQueueOptions,
        *,
        concurrency: int = 1,
        until_empty: bool = True,
        deadline_seconds: float | None = None,
        on_receive: Callable[[str], None] | None = None,
    ) -> None:
        """`deadline_seconds` stops taking messages that long after `run` starts;
        `on_receive(text)` sees every message taken, also one poisoned without running."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.lanes = list(lanes)
        self.options = options
        self.concurrency = concurrency
        self.until_empty = until_empty
        self.tally = Tally()
        self.deadline_seconds = deadline_seconds
        self.on_receive = on_receive
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._busy = 0

    def stop(self) -> None:
        """Finish the messages in hand, take no other (what SIGTERM does)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> Tally:
        if self.deadline_seconds is not None:
            timer = threading.Timer(self.deadline_seconds, self.stop)
            timer.daemon = True
            timer.start()
        threads = [
            threading.Thread(target=self._loop, name=f"auditor-worker-{n}", daemon=True)
            for n in range(self.concurrency)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self.deadline_seconds is not None:
            timer.cancel()
        return self.tally

    def _loop(self) -> None:
        wait = IDLE_POLL_SECONDS[0]
        while not self._stop.is_set():
            if self._take_one():
                wait = IDLE_POLL_SECONDS[0]
                continue
            if self.until_empty and self._drained():
                return
            # Nothing visible: messages may be hidden awaiting their retry, or none yet.
            self._stop.wait(wait)
            wait = min(wait * 2, IDLE_POLL_SECONDS[1])

    def _drained(self) -> bool:
        with self._lock:
            if self._busy:
                return False
        return all(lane.queue.approximate_count() == 0 for lane in self.lanes)

    def _take_one(self) -> bool:
        """Receive and work one message from the first lane that has one."""
        for lane in self.lanes:
            with self._lock:
                if self._stop.is_set():
                    return False
                self._busy += 1
            try:
                jobs = lane.queue.receive_jobs(1, self.options.hold_seconds)
                if jobs:
                    self._work(lane, jobs[0])
                    return True
            finally:
                with self._lock:
                    self._busy -= 1
        return False

    def _work(self, lane: Lane, job: ReceivedJob) -> None:
        last = self.options.max_dequeue_count
        if self.on_receive is not None:
            self.on_receive(job.text)
        if job.dequeue_count > last:
            # As the host does: a message past its last dequeue is not run again.
            lane.queue.move_to_poison(job)
            self._count("poisoned", f"{lane.kind}: dequeued {job.dequeue_count} times")
            return
        try:
            lane.handler(job.text, job.dequeue_count)
        except Exception as exc:  # the host's rule: retry, or poison on the last dequeue
            reason = f"{lane.kind}: {type(exc).__name__}: {exc}".splitlines()[0]
            log.warning("message failed (attempt %s of %s): %s", job.dequeue_count, last, reason)
            if job.dequeue_count >= last:
                lane.queue.move_to_poison(job)
                self._count("poisoned", reason)
            else:
                lane.queue.release(job, self.options.retry_delay_seconds)
                self._count("retried", reason)
            return
        lane.queue.delete(job)
        self._count("succeeded")

    def _count(self, outcome: str, reason: str | None = None) -> None:
        with self._lock:
            setattr(self.tally, outcome, getattr(self.tally, outcome) + 1)
            if reason is not None:
                self.tally.errors.append(reason)


def open_lanes(
    settings: Settings,
    kinds: Sequence[str],
    stack: ExitStack,
    handlers: Mapping[str, Handler] | None = None,
) -> list[Lane]:
    """The lanes of `kinds` on the configured storage (closed with `stack`); `handlers`
    replaces the triggers' service calls (tests only)."""
    lanes = []
    for kind in kinds:
        name_of, handler = HANDLERS[kind]
        queue = stack.enter_context(WorkQueue.named(settings, name_of(settings)))
        lanes.append(Lane(kind, queue, (handlers or {}).get(kind, handler)))
    return lanes
