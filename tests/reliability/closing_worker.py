"""Child process of the killed-closer trial: work one snapshot job (the run's last), commit it,
and hang where the run would close (the parent SIGKILLs it there).

    python -m tests.reliability.closing_worker '<job text>'

Reads the auditor's settings from the environment. Prints "closing" (flushed) once the slot is
committed and the closer has seen that the run is done.
"""

from __future__ import annotations

import os
import sys
import threading

from auditor.adapters.queues import SnapshotQueue
from auditor.adapters.tables import SnapshotStore
from auditor.adapters.tables.runs import RunStore
from auditor.services.runclose import make_closer
from auditor.services.snapshot import SnapshotService
from auditor.settings import load_settings
from tools.posture_factory import FakeSource, make_posture, tenant_id_for

TENANTS = (tenant_id_for(51), tenant_id_for(52))


def hang(step: str) -> None:
    if step == "digest":
        sys.stdout.write("closing\n")
        sys.stdout.flush()
        threading.Event().wait()


def main() -> int:
    settings = load_settings(dict(os.environ))
    store = SnapshotStore.from_settings(settings)
    runs = RunStore.from_settings(settings)
    queue = SnapshotQueue.from_settings(settings)
    closer = make_closer(settings, store, runs, queue)
    closer.step_hook = hang
    source = FakeSource([make_posture(t) for t in TENANTS])
    SnapshotService(store, runs, source, queue, closer=closer).process_job(sys.argv[1], 1, 5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
