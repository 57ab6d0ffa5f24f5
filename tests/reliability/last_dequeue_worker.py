"""Child process of the killed-worker trial: take one snapshot job from the queue and work it
as its last dequeue, with a collector that never returns (the parent SIGKILLs it meanwhile).

    python -m tests.reliability.last_dequeue_worker

Reads AUDITOR_STORAGE, AUDITOR_TABLE_PREFIX, AUDITOR_SNAPSHOT_QUEUE and
AUDITOR_EVIDENCE_CONTAINER from the environment. Prints "collecting <message text>" (flushed)
once the job is past validation and its collection has begun.
"""

from __future__ import annotations

import os
import sys
import threading

from auditor.adapters.queues import SnapshotQueue
from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.runs import RunStore
from auditor.core.model import Tenant, TenantPosture
from auditor.services.snapshot import SnapshotService
from auditor.settings import load_settings
from tools.posture_factory import FakeSource

MAX_DEQUEUES = 5


class Hanging(FakeSource):
    """Collects forever: the worker is killed while it reads the control plane."""

    text = ""

    def collect(self, tenant: Tenant, until: float | None = None) -> TenantPosture:
        sys.stdout.write(f"collecting {self.text}\n")
        sys.stdout.flush()
        threading.Event().wait()
        raise AssertionError("unreachable")  # pragma: no cover


def main() -> int:
    settings = load_settings(dict(os.environ))
    queue = SnapshotQueue.from_settings(settings)
    [job] = queue.receive_jobs(max_messages=1, visibility_timeout=600)
    source = Hanging([])
    source.text = job.text
    service = SnapshotService(
        SnapshotStore.from_settings(settings), RunStore.from_settings(settings), source, queue
    )
    service.process_job(job.text, MAX_DEQUEUES, MAX_DEQUEUES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
