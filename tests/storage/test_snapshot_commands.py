"""`snapshot`, `tenants` and `snapshots` on the command line, storage on Azurite."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from dataclasses import replace

import pytest

from auditor.cli import main
from auditor.services import snapshot as snapshot_service
from tools.devservices import Azurite
from tools.posture_factory import FakeSource, make_posture, tenant_id_for

A, B, C = tenant_id_for(1), tenant_id_for(2), tenant_id_for(3)
YESTERDAY, TODAY = "2024-05-01T02:00:00Z", "2024-05-02T02:00:00Z"


@pytest.fixture
def source(
    azurite: Azurite, table_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeSource]:
    fake = FakeSource([make_posture(t) for t in (A, B, C)])
    monkeypatch.setenv("AUDITOR_STORAGE", azurite.connection_string)
    monkeypatch.setenv("AUDITOR_TABLE_PREFIX", table_prefix)
    monkeypatch.setenv("AUDITOR_SNAPSHOT_QUEUE", f"q{table_prefix}")
    monkeypatch.setattr(snapshot_service, "make_source", lambda settings: fake)
    yield fake


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_two_days_of_snapshots_are_listed_and_chained(
    source: FakeSource, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "snapshot", "--all", "--at", YESTERDAY)
    assert code == 0
    assert out.splitlines()[-1] == "slot 20240501T020000Z: 3/3 tenants complete"
    code, out, _ = run(capsys, "snapshot", "--all", "--at", TODAY, "--json")
    assert code == 0
    today = json.loads(out)
    assert today["slot"] == "20240502T020000Z"
    assert [t["outcome"] for t in today["tenants"]] == ["complete"] * 3

    code, out, _ = run(capsys, "tenants", "--json")
    latest = json.loads(out)["tenants"]
    assert [(t["tenantId"], t["snapshotId"]) for t in latest] == [
        (tenant, "20240502T020000Z") for tenant in (A, B, C)
    ]

    code, out, _ = run(capsys, "snapshots", "--tenant", A, "--json")
    snapshots = json.loads(out)["snapshots"]
    assert [s["snapshotId"] for s in snapshots] == ["20240502T020000Z", "20240501T020000Z"]
    assert snapshots[0]["previousHash"] == snapshots[1]["contentHash"]
    assert snapshots[1]["previousHash"] is None

    code, out, _ = run(capsys, "snapshots", "--tenant", A, "--since", "2024-05-02T00:00:00Z")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].endswith(": 1 snapshots") and lines[1].startswith("20240502T020000Z  COMPLETE")

    code, out, _ = run(capsys, "tenants")
    assert out.splitlines()[-1] == "3 tenants"
    assert f"{A}  Contoso {A[:8]}  latest 20240502T020000Z  COMPLETE" in out


def test_rerunning_a_slot_is_reported_as_a_duplicate(
    source: FakeSource, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "snapshot", "--tenant", A, "--at", YESTERDAY)
    code, out, _ = run(capsys, "snapshot", "--tenant", A, "--at", YESTERDAY)
    assert code == 0
    assert out.startswith(f"{A}  DUPLICATE   20240501T020000Z  complete")
    assert source.collected == [A]


def test_via_queue_takes_the_same_snapshots_through_the_queue(
    source: FakeSource, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "snapshot", "--all", "--at", YESTERDAY, "--via-queue", "--json")
    assert code == 0
    outcomes = json.loads(out)["tenants"]
    assert sorted((t["tenantId"], t["outcome"]) for t in outcomes) == [
        (A, "complete"),
        (B, "complete"),
        (C, "complete"),
    ]
    # Again: the jobs are queued again and find their slot committed.
    code, out, _ = run(capsys, "snapshot", "--all", "--at", YESTERDAY, "--via-queue", "--json")
    assert code == 0
    assert {t["outcome"] for t in json.loads(out)["tenants"]} == {"duplicate"}
    assert sorted(source.collected) == [A, B, C]


def test_a_failing_tenant_is_recorded_and_the_command_fails(
    source: FakeSource, capsys: pytest.CaptureFixture[str]
) -> None:
    source.failures[B] = [PermissionError("403 AuthorizationFailed")]
    code, out, _ = run(capsys, "snapshot", "--all", "--at", YESTERDAY)
    assert code == 1
    assert f"{B}  FAILED" in out and "PermissionError: 403 AuthorizationFailed" in out
    assert out.splitlines()[-1] == "slot 20240501T020000Z: 2/3 tenants complete"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["snapshot", "--tenant", "contoso"], "--tenant must be a tenant id"),
        (
            ["snapshot", "--all", "--at", "2024-05-01T02:00:00"],
            "--at: '2024-05-01T02:00:00' names no zone",
        ),
        (
            ["snapshot", "--all", "--at", "yesterday"],
            "--at: 'yesterday': must be an instant with a zone like",
        ),
        (["snapshots", "--tenant", "x"], "--tenant must be a tenant id"),
        (
            ["snapshot", "--tenant", A, "--at", "2099-06-01T02:00:00Z"],
            "--at: 2099-06-01T02:00:00Z is later than the current scheduled slot",
        ),
        (
            ["snapshot", "--all", "--at", "2024-05-01T03:00:00Z"],
            "not a slot of the schedule '0 0 2 * * *'; the nearest are 2024-05-01T02:00:00Z "
            "and 2024-05-02T02:00:00Z",
        ),
        (["snapshots", "--tenant", A, "--until", "soon"], "--until: 'soon': must be an instant"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    source: FakeSource, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_an_undelegated_tenant_is_a_failure(
    source: FakeSource, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tenant_id_for(9)
    code, out, err = run(capsys, "snapshot", "--tenant", other, "--at", YESTERDAY)
    assert code == 1 and out == ""
    assert err == f"error: tenant {other} is not delegated to this identity\n"


def test_listing_an_empty_store(source: FakeSource, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "tenants") == (
        0,
        "no tenant has a snapshot yet (see `snapshot --all`)\n",
        "",
    )
    code, out, _ = run(capsys, "snapshots", "--tenant", A, "--json")
    assert (code, json.loads(out)) == (0, {"snapshots": []})


def test_missing_storage_settings_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUDITOR_STORAGE", raising=False)
    for suffix in ("tableServiceUri", "queueServiceUri", "blobServiceUri"):
        monkeypatch.delenv(f"AUDITOR_STORAGE__{suffix}", raising=False)
    code, _, err = run(capsys, "tenants")
    assert code == 2 and err.startswith("error: setting AUDITOR_STORAGE: is not set")


HOSTILE = "Contoso\x1b]0;owned\x07\x1b[2J\x9b31m\u202eevil\rOK: verified 0 snapshots\nx"


def test_tenant_text_reaches_the_terminal_without_control_characters(
    azurite: Azurite, table_prefix: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # Issue 9 §5: `auditor tenants` printed a tenant's raw escape sequences.
    posture = make_posture(A)
    posture = replace(
        posture,
        tenant=replace(posture.tenant, display_name=HOSTILE),
        controls=tuple(replace(c, standard=HOSTILE) for c in posture.controls),
    )
    monkeypatch.setenv("AUDITOR_STORAGE", azurite.connection_string)
    monkeypatch.setenv("AUDITOR_TABLE_PREFIX", table_prefix)
    monkeypatch.setenv("AUDITOR_SNAPSHOT_QUEUE", f"q{table_prefix}")
    monkeypatch.setattr(snapshot_service, "make_source", lambda settings: FakeSource([posture]))
    code, out, _ = run(capsys, "snapshot", "--all", "--at", YESTERDAY)
    assert code == 0
    for argv in (("tenants",), ("snapshots", "--tenant", A)):
        code, out, _ = run(capsys, *argv)
        assert code == 0
        printable = {"\n"}
        assert not [ch for ch in out if unicodedata.category(ch) == "Cc" and ch not in printable]
        assert "\u202e" not in out
        assert "Contoso]0;owned[2J31mevil OK: verified 0 snapshots x" in out
        # The forged line never stands on its own.
        assert not any(line.startswith("OK:") for line in out.splitlines())
    code, out, _ = run(capsys, "tenants", "--json")
    assert json.loads(out)["tenants"][0]["tenantName"] == HOSTILE  # JSON escapes, keeps it


def test_a_future_slot_commits_nothing_and_blocks_nothing(
    source: FakeSource, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 9 §4: a future snapshot used to be committed, and every later slot SUPERSEDED."""
    code, _, _ = run(capsys, "snapshot", "--tenant", A, "--at", "2027-06-01T02:00:00Z")
    assert code == 2 and source.collected == []
    code, out, _ = run(capsys, "snapshot", "--tenant", A, "--at", TODAY)
    assert code == 0 and out.startswith(f"{A}  COMPLETE")


def test_a_failed_discovery_is_one_line_exit_2_and_recorded(
    source: FakeSource, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable() -> list[object]:
        raise ConnectionError("Resource Graph unreachable after 8 tries")

    monkeypatch.setattr(source, "discover", unreachable)
    code, out, err = run(capsys, "snapshot", "--all", "--at", YESTERDAY)
    assert code == 2 and out == ""
    assert err == (
        "error: run 20240501T020000Z failed: discovery failed: ConnectionError: Resource Graph "
        "unreachable after 8 tries (recorded in the runs table)\n"
    )


def test_a_tenant_that_left_the_delegation_is_said_by_snapshot_and_tenants(
    source: FakeSource, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "snapshot", "--all", "--at", YESTERDAY)
    del source.postures[C]
    code, out, _ = run(capsys, "snapshot", "--all", "--at", TODAY)
    assert code == 1
    assert f"{C}  LEFT-DELEGATION  20240502T020000Z" in out
    assert out.splitlines()[-1] == (
        "slot 20240502T020000Z: 2/2 tenants complete; 1 left the delegation"
    )
    code, out, _ = run(capsys, "tenants")
    assert "NO LONGER DELEGATED (since run 20240502T020000Z): its latest snapshot is" in out
    code, out, _ = run(capsys, "tenants", "--json")
    by_id = {t["tenantId"]: t for t in json.loads(out)["tenants"]}
    assert by_id[C]["delegated"] is False and by_id[C]["snapshotId"] == "20240501T020000Z"
    assert by_id[A]["delegated"] is True


def _times(node: object) -> list[str]:
    """Every value of a field named like a time (…At, …Since) in a JSON document."""
    if isinstance(node, dict):
        own = [v for k, v in node.items() if k.endswith(("At", "Since")) and isinstance(v, str)]
        return own + [t for v in node.values() for t in _times(v)]
    if isinstance(node, list):
        return [t for v in node for t in _times(v)]
    return []


def test_the_command_lines_json_is_the_apis_document_with_z_times(
    source: FakeSource, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 11/12: the CLI wrote complianceByStandard where the API writes compliance, and
    # times as +00:00. The API's strict response models (extra fields forbidden) read them now.
    from auditor.api.schemas import SnapshotDetail, SnapshotSummary, TenantItem

    _, out, _ = run(capsys, "snapshot", "--all", "--at", YESTERDAY, "--json")
    taken = json.loads(out)["tenants"]
    for outcome in taken:
        SnapshotDetail.model_validate(outcome["snapshot"])
    _, tenants, _ = run(capsys, "tenants", "--json")
    _, snapshots, _ = run(capsys, "snapshots", "--tenant", A, "--json")
    for item in json.loads(tenants)["tenants"]:
        TenantItem.model_validate(item)
        assert "compliance" in item and "complianceByStandard" not in item
    for item in json.loads(snapshots)["snapshots"]:
        SnapshotSummary.model_validate(item)
    times = _times([taken, json.loads(tenants), json.loads(snapshots)])
    assert len(times) >= 9
    assert all(t.endswith("Z") and "+" not in t for t in times), times
