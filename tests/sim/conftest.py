"""Fixtures of the simulator's own tests (tests/sim).

Each integration module starts its own simulator once (module scope) through the launcher, in a
temporary directory, and stops it by pid at the end. Unit tests use ``Estate`` directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures import following
from tools.azure_sim.estate import Estate
from tools.azure_sim.launcher import CONFLICTING_ENV, Simulator, start_simulator


def fixture_json(relative: str) -> Any:
    """The project's own fixture (tests/fixtures) that follows Microsoft's example at
    `relative` (a path under azure-rest-api-specs/specification), in an example file's layout.
    tests/unit/test_fixture_contract.py checks it keeps that example's fields and types."""
    return following(relative)


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
