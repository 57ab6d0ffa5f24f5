"""AUDITOR_ROLE: one package, two apps. Indexed in a fresh interpreter per role, as the worker
indexes function_app.py: the collector has the timers and queues and no HTTP function, the API
has only the HTTP function (issue 9 §6: the internet-facing app never holds the identity
customers delegate to)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TRIGGERS = {"plan_snapshot_run", "snapshot_tenant", "queue_monthly_packs", "build_evidence_pack"}
HTTP = {"api", "pages"}

INDEX = """
import json
from tests.functions.worker import check_function, indexed_functions
functions = indexed_functions()
for function in functions:
    check_function(function)
print(json.dumps(sorted(f.get_function_name() for f in functions)))
"""


def index(role: str | None, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITOR_")}
    if role is not None:
        env["AUDITOR_ROLE"] = role
    env.update(settings)
    return subprocess.run(
        [sys.executable, "-c", INDEX],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("collector", TRIGGERS),
        ("api", HTTP),
        ("all", TRIGGERS | HTTP),
        (None, TRIGGERS | HTTP),  # the local default
        ("API", HTTP),
    ],
)
def test_the_role_chooses_which_functions_are_registered(
    role: str | None, expected: set[str]
) -> None:
    done = index(role)
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout.strip().splitlines()[-1])) == expected


def test_a_bad_role_stops_the_app_at_load_naming_the_setting() -> None:
    done = index("everything")
    assert done.returncode != 0
    assert "setting AUDITOR_ROLE: must be one of collector, api, all, got 'everything'" in (
        done.stderr
    )


def test_a_managing_tenant_that_is_no_tenant_id_stops_the_api_at_load_naming_the_setting() -> None:
    done = index("api", AUDITOR_MANAGING_TENANT_ID="contoso.onmicrosoft.com")
    assert done.returncode != 0
    assert (
        "setting AUDITOR_MANAGING_TENANT_ID: must be a tenant id (GUID), "
        "got 'contoso.onmicrosoft.com'"
    ) in done.stderr


def test_every_trigger_of_the_blueprint_is_a_collector_function() -> None:
    # A trigger declared on `collector` is registered in the collector role and only there.
    source = (REPO / "function_app.py").read_text(encoding="utf-8")
    assert "@app." not in source, "declare triggers on the collector blueprint, not on app"


FROZEN = """
import gc, json
from tests.functions.worker import indexed_functions
indexed_functions()
print(json.dumps(gc.get_freeze_count()))
"""


@pytest.mark.parametrize(("role", "frozen"), [("api", True), ("all", True), ("collector", False)])
def test_loading_the_api_moves_its_start_up_heap_out_of_the_cyclic_collector(
    role: str, frozen: bool
) -> None:
    # Otherwise a new instance's first full collection walks the whole import-time heap during
    # a request (70 to 120 ms, typically in its first cold diff: docs/scale.md, Cold reads).
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITOR_")}
    done = subprocess.run(
        [sys.executable, "-c", FROZEN],
        cwd=REPO,
        env={**env, "AUDITOR_ROLE": role},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (json.loads(done.stdout.strip().splitlines()[-1]) > 10_000) is frozen
