"""Session-wide services: Azurite and the Azure control-plane simulator.

Started once per test session on free loopback ports and stopped by pid at the end. Tests
isolate themselves by names (a table prefix, tenant ids), not by restarting services.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.devservices import Azurite, start_azurite

# Microsoft's published examples, beside the repository when present: only the contract test
# (tests/unit/test_fixture_contract.py) reads them; every other test reads tests/fixtures.
FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures"
SPECS = FIXTURES / "azure-rest-api-specs" / "specification"


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    service = start_azurite()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def table_prefix() -> str:
    """A table-name prefix unique to one test, so tests share Azurite without sharing data."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The simulator on the `tiny` estate, quota on (15 queries / 5 s) as in Azure."""
    from tools.azure_sim.launcher import start_simulator

    sim = start_simulator(tmp_path_factory.mktemp("sim"), size="tiny", seed=1, day=0)
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def sim_env(simulator: object, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Process environment for DefaultAzureCredential and the product to reach the simulator."""
    env: dict[str, str] = simulator.env()  # type: ignore[attr-defined]
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "MSI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return dict(os.environ)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[object]:
    """A loopback HTTPS receiver of notifications (tests/receiver.py), stopped after the test."""
    from tests.receiver import Receiver

    with Receiver(tmp_path) as made:
        yield made
