"""`python -m auditor diff`: the API's diff on the command line (same service, document, CSV,
checks and words), and times on every command's options as their help shows them."""

from __future__ import annotations

import argparse
import re
import unicodedata

import pytest

from auditor.adapters.tables.store import SnapshotStore
from auditor.cli import build_parser, main
from tests.api.conftest import TestClient
from tests.api.scenario import DAY1, DAY2, DAY3, TENANT_A, TENANT_X, Scenario
from tools.devservices import Azurite

DIFF = f"/api/tenants/{TENANT_A}/diff"
ALL = {"$top": "5000"}


@pytest.fixture
def cli_env(azurite: Azurite, api_store: SnapshotStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITOR_STORAGE", azurite.connection_string)
    monkeypatch.setenv("AUDITOR_TABLE_PREFIX", api_store.tables.prefix)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["diff", "--tenant", TENANT_A, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_diff_json_is_the_apis_document(
    cli_env: None, capsys: pytest.CaptureFixture[str], local_client: TestClient,
    scenario: Scenario,
) -> None:  # fmt: skip
    import json

    code, out, _ = run(capsys, "--from", DAY1, "--to", DAY2, "--json")
    assert code == 0
    api = local_client.get(DIFF, params={"from": DAY1, "to": DAY2, **ALL}).json()
    assert api["nextLink"] is None and api["value"]
    assert json.loads(out) == api


def test_diff_csv_is_the_apis_csv(
    cli_env: None, capsys: pytest.CaptureFixture[str], local_client: TestClient,
    scenario: Scenario,
) -> None:  # fmt: skip
    params = {"from": DAY1, "to": DAY2, "change": "regressed,improved"}
    code, out, _ = run(capsys, "--from", DAY1, "--to", DAY2, "--change", "regressed",
                       "--change", "improved", "--csv")  # fmt: skip
    assert code == 0
    api = local_client.get(DIFF, params={**params, **ALL, "format": "csv"})
    assert out.encode() == api.content  # RFC 4180: CRLF, byte for byte


def test_filters_and_defaults_select_the_same_changes_as_the_api(
    cli_env: None, capsys: pytest.CaptureFixture[str], local_client: TestClient,
    scenario: Scenario,
) -> None:  # fmt: skip
    import json

    standard = sorted(scenario.a[2].compliance_by_standard)[0]
    subscription = scenario.subscriptions[0]
    code, out, _ = run(capsys, "--standard", standard, "--subscription", subscription.upper(),
                       "--level", "assessment", "--json")  # fmt: skip
    assert code == 0
    api = local_client.get(DIFF, params={"standard": standard, "subscription": subscription,
                                         "level": "assessment", **ALL}).json()  # fmt: skip
    assert json.loads(out) == api
    assert (api["from"]["snapshotId"], api["to"]["snapshotId"]) == (DAY2, DAY3)


@pytest.mark.parametrize(
    ("argv", "params"),
    [
        (["--standard", "PCI"], {"standard": "PCI"}),
        (["--subscription", "f0000000-0000-4000-8000-0000000000ff"],
         {"subscription": "f0000000-0000-4000-8000-0000000000ff"}),
        (["--change", "worse"], {"change": "worse"}),
        (["--level", "galaxy"], {"level": "galaxy"}),
        (["--from", DAY3, "--to", DAY1], {"from": DAY3, "to": DAY1}),
    ],
)  # fmt: skip
def test_a_bad_filter_is_exit_2_with_the_apis_words(
    cli_env: None, capsys: pytest.CaptureFixture[str], local_client: TestClient,
    scenario: Scenario, argv: list[str], params: dict[str, str],
) -> None:  # fmt: skip
    code, out, err = run(capsys, *argv)
    detail = local_client.get(DIFF, params=params).json()["detail"]
    assert (code, out) == (2, "")
    assert err == f"error: --{detail}\n"


def test_missing_snapshots_and_tenants_are_exit_1_in_one_line(
    cli_env: None, capsys: pytest.CaptureFixture[str], local_client: TestClient,
    scenario: Scenario,
) -> None:  # fmt: skip
    code, _, err = run(capsys, "--from", "20261124T020000Z")
    detail = local_client.get(DIFF, params={"from": "20261124T020000Z"}).json()["detail"]
    assert (code, err) == (1, f"error: --{detail}\n")
    code = main(["diff", "--tenant", TENANT_X])
    assert code == 1
    assert capsys.readouterr().err == f"error: tenant {TENANT_X} has no snapshot\n"


def test_a_date_alone_means_midnight_utc_that_day(
    cli_env: None, capsys: pytest.CaptureFixture[str], scenario: Scenario
) -> None:
    import json

    _, by_date, _ = run(capsys, "--to", "2026-11-27", "--json")
    _, by_instant, _ = run(capsys, "--to", "2026-11-27T00:00:00Z", "--json")
    assert json.loads(by_date) == json.loads(by_instant)
    assert json.loads(by_date)["to"]["snapshotId"] == DAY2  # DAY3 is at 02:00 that day
    code, out, err = run(capsys, "--to", "2026-11-27T00:00:00")
    assert (code, out) == (2, "")
    assert (
        err.startswith("error: --to: '2026-11-27T00:00:00' names no zone") and err.count("\n") == 1
    )


def test_plain_text_names_both_ends_the_summary_and_each_change_printably(
    cli_env: None, capsys: pytest.CaptureFixture[str], scenario: Scenario
) -> None:
    code, out, _ = run(capsys, "--from", DAY1, "--to", DAY2)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"tenant {TENANT_A}"
    assert lines[1].startswith(f"from {DAY1}  COMPLETE  sha256 {scenario.a[0].content_hash[:12]}")
    assert lines[2].startswith(f"to {DAY2}  COMPLETE  sha256 {scenario.a[1].content_hash[:12]}")
    assert any(line.startswith("REGRESSED") for line in lines)
    assert not [ch for ch in out if unicodedata.category(ch) == "Cc" and ch != "\n"]


# An example time in an option's help: a snapshot id, an instant, or a date.
EXAMPLE = re.compile(
    r"\b(\d{8}T\d{6}Z|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:Z|[+-]\d{2}:\d{2})|\d{4}-\d{2}-\d{2})\b"
)


def _options() -> list[tuple[str, argparse.Action]]:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [
        (f"{name} {'/'.join(action.option_strings)}", action)
        for name, sub in commands.choices.items()
        for action in sub._actions
    ]


def test_every_time_an_options_help_shows_as_an_example_is_accepted() -> None:
    # Issue 11: `snapshots --since` showed 2024-05-01Z, which it refused.
    checked = 0
    for name, action in _options():
        for example in EXAMPLE.findall(action.help or ""):
            assert callable(action.type), f"{name} shows {example} but parses no time"
            action.type(example)
            checked += 1
        if action.type is not None and action.metavar == "WHEN":
            assert "00:00Z" in (action.help or "") or "as --since" in (action.help or ""), name
    assert checked >= 6


def test_report_takes_a_date_alone_as_midnight_utc_and_an_offset_instant_in_utc() -> None:
    # Issue 11: `report --from 2026-11-27` was refused; its help showed only YYYYMMDDTHHMMSSZ.
    args = build_parser().parse_args(
        [
            "report",
            "--tenant",
            TENANT_A,
            "--from",
            "2026-11-27",
            "--to",
            "2026-11-28T03:00:00+01:00",
        ]
    )
    assert args.start == "2026-11-27T00:00:00Z"
    assert args.end == "2026-11-28T02:00:00Z"
    assert build_parser().parse_args(["report", "--tenant", TENANT_A, "--to", DAY2]).end == DAY2
