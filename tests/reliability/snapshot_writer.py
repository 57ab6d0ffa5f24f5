"""Child process of the SIGKILL trials: commit one tenant's snapshot for one slot.

    python -m tests.reliability.snapshot_writer PREFIX TENANT_ID SLOT_ISO

Reads AUDITOR_STORAGE from the environment. Prints one "." per storage response (flushed), so
the parent can kill it at a chosen point of the commit protocol, and "done <content hash>" at
the end.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

from auditor.adapters.tables import SnapshotStore
from auditor.core.model import TenantPosture
from auditor.settings import load_settings
from tools.posture_factory import make_posture

COLLECTOR_VERSION = "kill-trials/1"


def trial_posture(tenant_id: str) -> TenantPosture:
    """About 2,000 records with incompressible descriptions: content spans several transactions."""
    return make_posture(
        tenant_id,
        subscriptions=4,
        standards=2,
        controls=25,
        assessments=10,
        seed=7,
        description=lambda rng: rng.randbytes(1200).hex(),
    )


def main(argv: list[str]) -> int:
    prefix, tenant_id, slot = argv
    settings = load_settings({**_environ(), "AUDITOR_TABLE_PREFIX": prefix})

    def progress(response: Any) -> None:
        sys.stdout.write(".")
        sys.stdout.flush()

    posture = trial_posture(tenant_id)
    with SnapshotStore.from_settings(settings, raw_response_hook=progress) as store:
        entry = store.commit_snapshot(posture, datetime.fromisoformat(slot), COLLECTOR_VERSION)
    sys.stdout.write(f"\ndone {entry.content_hash}\n")
    return 0


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
