"""Two real `snapshot --all` processes for the same slot at once, with the real collector over
HTTPS against the simulator: every tenant ends with the snapshot one of them collected, never
a failure that one wrote over the other (issue 10: FAILED "SlotBusy: … taken over" in 2 of 10
trials, permanently)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from auditor.adapters.blobs import EvidenceStore
from auditor.adapters.tables import SnapshotStore
from auditor.core.model import CollectionStatus
from auditor.core.schedule import latest_occurrence
from auditor.core.snapshot import snapshot_id_for
from auditor.services.verify import verify
from auditor.settings import load_settings
from tools.devservices import REPO, Azurite

TRIALS = 2


@pytest.mark.slow
def test_two_inline_runs_of_one_slot_at_once_never_record_a_healthy_tenant_as_failed(
    sim_env: dict[str, str], azurite: Azurite
) -> None:
    slot = latest_occurrence("0 0 2 * * *", datetime.now(UTC)) - timedelta(days=1)
    at = slot.strftime("%Y-%m-%dT%H:%M:%SZ")
    for trial in range(TRIALS):
        suffix = uuid.uuid4().hex[:10]
        env = {
            **sim_env,
            "AUDITOR_STORAGE": azurite.connection_string,
            "AUDITOR_TABLE_PREFIX": f"conc{suffix}",
            "AUDITOR_EVIDENCE_CONTAINER": f"ev-{suffix}",
            "AUDITOR_SNAPSHOT_SCHEDULE": "0 0 2 * * *",
        }
        command = [sys.executable, "-m", "auditor", "snapshot", "--all", "--at", at]
        runs = [
            subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=600)[0] for run in runs]
        for output in outputs:
            # Each tenant is COMPLETE/INCOMPLETE, DUPLICATE or CONTENDED (the other process's
            # attempt stands): never FAILED over the other's claim.
            outcomes = [line.split()[1] for line in output.splitlines() if line[:1].isalnum()]
            assert "FAILED" not in outcomes and "taken over" not in output, (trial, output)
        settings = load_settings(env)
        with SnapshotStore.from_settings(settings) as store:
            tenants = store.list_tenants()  # verified against their anchors
            assert tenants, outputs
            for entry in tenants:
                assert entry.snapshot_id == snapshot_id_for(slot)
                assert entry.status is not CollectionStatus.FAILED, (trial, entry.reasons)
        with (
            SnapshotStore.from_settings(settings, anchored=False) as raw,
            EvidenceStore.from_settings(settings) as evidence,
        ):
            result = verify(raw, evidence)
            assert result.ok, [str(f) for f in result.findings]
