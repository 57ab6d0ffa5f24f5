"""API fixtures: one store on the session's Azurite holding the scenario (read-only for every
test), and clients of the app in local mode and in hosted (Azure) mode."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable, Iterator

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from auditor.adapters.blobs import EvidenceStore
from auditor.adapters.tables.store import SnapshotStore
from auditor.api import create_app
from auditor.core.access import AccessPolicy, Principal, encode_client_principal
from auditor.services.history import SnapshotHistory
from tests.api.scenario import Scenario, build
from tools.devservices import Azurite

with warnings.catch_warnings():
    # Starlette suggests httpx2 for its test client; httpx is what this project pins.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture(scope="session")
def api_store(azurite: Azurite) -> Iterator[SnapshotStore]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    # Anchored in the default evidence container, which the hosted and served apps verify with.
    ledger = EvidenceStore(
        BlobServiceClient.from_connection_string(azurite.connection_string),
        "evidence",
        identity_based=False,
    )
    store = SnapshotStore(service, "api" + uuid.uuid4().hex[:10], ledger=ledger)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(scope="session")
def scenario(api_store: SnapshotStore) -> Scenario:
    return build(api_store)


@pytest.fixture(scope="session")
def history(api_store: SnapshotStore, scenario: Scenario) -> SnapshotHistory:
    """One cache for the session, as one app instance would have."""
    return SnapshotHistory(api_store)


@pytest.fixture(scope="session")
def local_client(history: SnapshotHistory) -> TestClient:
    app = create_app(history, AccessPolicy.allow_all(), local_principal="local-dev")
    return TestClient(app, raise_server_exceptions=False)


HostedClient = Callable[[AccessPolicy], TestClient]


@pytest.fixture(scope="session")
def hosted(history: SnapshotHistory) -> HostedClient:
    """A client of the app as Azure hosts it, under `policy`; pass the caller per request with
    ``principal_header(...)``."""

    def make(policy: AccessPolicy) -> TestClient:
        return TestClient(create_app(history, policy), raise_server_exceptions=False)

    return make


def principal_header(principal: Principal) -> dict[str, str]:
    return {"X-MS-CLIENT-PRINCIPAL": encode_client_principal(principal)}
