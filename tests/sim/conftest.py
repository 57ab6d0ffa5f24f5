"""Fixtures of the simulator's own tests (tests/sim).

Each integration module starts its own simulator once (module scope) through the launcher, in a
temporary directory, and stops it by pid at the end. Unit tests use ``Estate`` directly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tools.azure_sim.estate import Estate
from tools.azure_sim.launcher import CONFLICTING_ENV, Simulator, start_simulator

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
SPECS = FIXTURES / "azure-rest-api-specs" / "specification"
SECURITY = SPECS / "security" / "resource-manager" / "Microsoft.Security"


def fixture_json(relative: str) -> Any:
    """A fixture example under shared/fixtures/azure-rest-api-specs/specification."""
    path = SPECS / relative
    if not path.exists():
        pytest.skip(f"fixture {path} not available")
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def tiny() -> Estate:
    return Estate("tiny", 1)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """A simulator for this module: tiny estate, seed 1, quota off (tests turn it on)."""
    s = start_simulator(tmp_path_factory.mktemp("azure_sim"), size="tiny", seed=1, quota=None)
    try:
        yield s
    finally:
        s.stop()
        assert s.process.returncode is not None


@pytest.fixture(scope="module")
def sim_env(sim: Simulator) -> Iterator[dict[str, str]]:
    """The process environment DefaultAzureCredential needs (App Service managed identity)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in CONFLICTING_ENV:
            mp.delenv(name, raising=False)
        for name, value in sim.env().items():
            mp.setenv(name, value)
        yield sim.env()
