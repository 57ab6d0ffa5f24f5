"""Web fixtures: the API tests' scenario store (tests/api/conftest.py) served with the
dashboard, in local mode and as Azure hosts it."""

from __future__ import annotations

from tests.api.conftest import api_store, history, hosted, local_client, scenario  # noqa: F401
