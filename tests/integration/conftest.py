"""Each integration module runs its own simulator (module scope): the tests change its day,
quota and faults. The process environment points the product at it while the module runs."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tools.azure_sim.launcher import Simulator, start_simulator

CONFLICTING = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "MSI_ENDPOINT")


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    simulator = start_simulator(tmp_path_factory.mktemp("collector-sim"), size="tiny", seed=3)
    saved = {name: os.environ.get(name) for name in (*simulator.env(), *CONFLICTING)}
    for name in CONFLICTING:
        os.environ.pop(name, None)
    os.environ.update(simulator.env())
    try:
        yield simulator
    finally:
        simulator.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def fresh(sim: Simulator) -> Iterator[Simulator]:
    """The simulator at day 0, default quota, no faults — restored after the test too."""
    sim.set_day(0)
    sim.clear_faults()
    sim.set_quota(15, 5)
    yield sim
    sim.set_day(0)
    sim.clear_faults()
    sim.set_quota(15, 5)
