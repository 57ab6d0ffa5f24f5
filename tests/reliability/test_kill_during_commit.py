"""SIGKILL the snapshot writer at random points of the commit, over many trials.

Each trial takes the next daily slot of one tenant in a child process and kills it (SIGKILL)
after a random number of storage responses (table and blob: the anchor write counts), so the
kill lands anywhere: before the claim, while content transactions are in flight, just before or
after the anchor is written, just before or after the index row is committed, while the latest
row moves. Reads go through the anchored store, so every snapshot seen is also anchored.
After every kill a reader must see either nothing new or the whole snapshot;
then the next run must complete the slot with exactly the content (and hash) that an
uninterrupted run produces. The chain of all slots is checked at the end.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from auditor.adapters.blobs import EvidenceStore
from auditor.adapters.storage import table_service_client
from auditor.adapters.tables import SnapshotStore
from auditor.core.canonical import snapshot_content_hash
from auditor.services.verify import verify
from auditor.settings import Settings, load_settings, require_storage
from tests.reliability.snapshot_writer import COLLECTOR_VERSION, trial_posture
from tools.devservices import Azurite
from tools.posture_factory import tenant_id_for

REPO = Path(__file__).resolve().parents[2]
TENANT = tenant_id_for(77)
DAY0 = datetime(2024, 1, 1, 2, tzinfo=UTC)
TRIALS = 24
KILLS_REQUIRED = 20


def settings_for(azurite: Azurite, prefix: str) -> Settings:
    return load_settings(
        {
            "AUDITOR_STORAGE": azurite.connection_string,
            "AUDITOR_TABLE_PREFIX": prefix,
            "AUDITOR_EVIDENCE_CONTAINER": f"ev-{prefix.lower()}",
        }
    )


def start_writer(azurite: Azurite, prefix: str, slot: datetime) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "AUDITOR_STORAGE": azurite.connection_string,
        "AUDITOR_EVIDENCE_CONTAINER": f"ev-{prefix.lower()}",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.reliability.snapshot_writer",
            prefix,
            TENANT,
            slot.isoformat(),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def run_to_end(azurite: Azurite, prefix: str, slot: datetime) -> tuple[int, str]:
    """(storage responses, content hash) of an uninterrupted writer."""
    child = start_writer(azurite, prefix, slot)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err.decode()
    dots, _, tail = out.decode().partition("\n")
    return dots.count("."), tail.split()[1]


def kill_after(child: subprocess.Popen[bytes], responses: int) -> bool:
    """SIGKILL the child right after its n-th storage response; False if it finished first."""
    assert child.stdout is not None
    seen = 0
    while seen < responses:
        byte = child.stdout.read(1)
        if not byte:
            child.wait(timeout=60)
            return False
        if byte == b".":
            seen += 1
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    return True


@pytest.mark.slow
def test_sigkill_at_random_points_never_exposes_a_partial_snapshot(
    azurite: Azurite, table_prefix: str
) -> None:
    seed = int(os.environ.get("KILL_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    reference_prefix, trial_prefix = f"{table_prefix}ref", f"{table_prefix}kill"

    # An uninterrupted run of every slot: the hashes every trial must end with.
    reference = SnapshotStore.from_settings(settings_for(azurite, reference_prefix))
    posture = trial_posture(TENANT)
    slots = [DAY0 + timedelta(days=i) for i in range(TRIALS)]
    expected = [reference.commit_snapshot(posture, s, COLLECTOR_VERSION) for s in slots]
    reference.close()
    # Count the responses of a steady-state commit (one that reads its predecessor's history).
    _, first_hash = run_to_end(azurite, f"{table_prefix}count", slots[0])
    responses, second_hash = run_to_end(azurite, f"{table_prefix}count", slots[1])
    assert (first_hash, second_hash) == (expected[0].content_hash, expected[1].content_hash)
    assert responses >= 10, "a commit makes too few requests to kill it meaningfully"

    # Every response of the protocol is a kill point at least once, in random order.
    points = [p for _ in range(-(-TRIALS // responses)) for p in range(1, responses + 1)]
    rng.shuffle(points)
    settings = settings_for(azurite, trial_prefix)
    store = SnapshotStore.from_settings(settings)
    kills: list[int] = []
    seen_after_kill = {"absent": 0, "whole": 0}
    for number, slot in enumerate(slots):
        snapshot_id = expected[number].snapshot_id
        point = points[number]
        killed = kill_after(start_writer(azurite, trial_prefix, slot), point)
        if killed:
            kills.append(point)
        context = f"trial {number} (seed {seed}, killed after response {point})"

        # A reader sees all previous slots, and this one either not at all or whole.
        listed = [e.snapshot_id for e in store.list_snapshots(TENANT)]
        before = [e.snapshot_id for e in reversed(expected[:number])]
        assert listed in (before, [snapshot_id, *before]), context
        if listed and listed[0] == snapshot_id:
            whole = store.get_snapshot(TENANT, snapshot_id)  # verifies the content hash
            assert whole.index.content_hash == expected[number].content_hash, context
            seen_after_kill["whole"] += killed
        else:
            seen_after_kill["absent"] += killed
        latest = store.list_tenants()
        assert [e.snapshot_id for e in latest] in ([], [before[0]] if before else [], [snapshot_id])

        # The next run completes the slot, byte for byte as an uninterrupted run would.
        entry = store.commit_snapshot(posture, slot, COLLECTOR_VERSION)
        assert entry.content_hash == expected[number].content_hash, context
        assert store.list_tenants() == [entry], context

    assert len(kills) >= KILLS_REQUIRED, f"only {len(kills)} trials were killed (seed {seed})"
    # Kills landed both before the commit point (slot invisible) and after it (slot whole).
    assert seen_after_kill["absent"] >= 1 and seen_after_kill["whole"] >= 1, seen_after_kill
    chain = store.list_snapshots(TENANT)
    assert [e.content_hash for e in chain] == [e.content_hash for e in reversed(expected)]
    for newer, older in itertools.pairwise(chain):
        assert newer.previous_hash == older.content_hash
    assert (
        snapshot_content_hash(store.get_snapshot(TENANT, chain[0].snapshot_id))
        == chain[0].content_hash
    )
    # Anchors of killed attempts stay (write-once) and are not findings: each slot's committed
    # attempt has its own anchor.
    with (
        SnapshotStore.from_settings(settings, anchored=False) as raw,
        EvidenceStore.from_settings(settings) as evidence,
    ):
        result = verify(raw, evidence, [TENANT])
        assert result.ok, [str(f) for f in result.findings]
        attempts = {(a.snapshot_id, a.attempt) for a in evidence.list_anchors(TENANT)}
        assert {(e.snapshot_id, e.attempt) for e in chain} <= attempts
    # Every crashed attempt's content was cleaned up by the run that completed its slot.
    service = table_service_client(require_storage(settings))
    with service:
        content = service.get_table_client(store.tables.content)
        partitions = {row["PartitionKey"] for row in content.list_entities(select=["PartitionKey"])}
    assert len(partitions) == TRIALS
    store.close()
