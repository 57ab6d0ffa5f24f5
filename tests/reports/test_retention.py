"""The one manual step left (locking the evidence retention) is checked where the platform
says so: `verify` prints what the blob service reports, and never claims more (issue 9 §6)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from auditor.adapters.blobs import EvidenceStore
from auditor.adapters.retention import RetentionStatus, retention_status
from auditor.adapters.tables import SnapshotStore
from auditor.settings import Settings
from tests.reports.conftest import commit_days

REPO = Path(__file__).resolve().parents[2]
TENANT = "7e0a0000-0000-0000-0000-0000000000b1"


def test_azurite_has_no_immutability_policy_and_verify_says_so(
    store: SnapshotStore, evidence: EvidenceStore, settings: Settings
) -> None:
    commit_days(store, evidence, TENANT, days=1)
    status = retention_status(evidence)
    assert (status.has_policy, status.locked) == (False, False)
    env = {
        "PATH": "/usr/bin:/bin",
        "AUDITOR_STORAGE": settings.storage.connection_string if settings.storage else "",
        "AUDITOR_TABLE_PREFIX": settings.table_prefix,
        "AUDITOR_EVIDENCE_CONTAINER": settings.evidence_container,
    }
    command = [sys.executable, "-m", "auditor", "verify", "--tenant", TENANT]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    line = f"retention: {settings.evidence_container} has NO immutability policy"
    assert line in done.stdout
    as_json = subprocess.run(
        [*command, "--json"], env=env, cwd=REPO, capture_output=True, text=True, check=False
    )
    retention = json.loads(as_json.stdout)["retention"]
    assert retention["hasImmutabilityPolicy"] is False and retention["locked"] is False


def test_the_line_claims_a_lock_only_when_the_platform_reports_one() -> None:
    unlocked = RetentionStatus("evidence", True, True, "Unlocked")
    assert unlocked.locked is None
    assert "lock state NOT confirmed" in unlocked.line()
    assert "az storage container immutability-policy show" in unlocked.line()
    assert RetentionStatus("evidence", True, True, None).locked is None
    locked = RetentionStatus("evidence", True, True, "Locked")
    assert locked.locked is True and "Locked" in locked.line()
    unreadable = RetentionStatus("evidence", None, None, None, "HttpResponseError")
    assert unreadable.locked is None and "could not be read" in unreadable.line()
