"""Building the API from settings, for its two hosts.

- ``azure_app()``: the app ``function_app.py`` serves through its two HTTP functions
  (auditor/api/http_functions.py: /api only through the keyed one). The caller is
  whoever App Service Authentication names (the header is ignored unless the platform says
  authentication is on: WEBSITE_AUTH_ENABLED); without ``AUDITOR_ACCESS_POLICY`` nobody may see
  any tenant (deny by default). Settings are checked when the module loads (a bad policy, or
  no AUDITOR_WEB_SECRET in Azure, stops the app at start); the storage client is made on the
  first request, so that loading function_app.py opens no connection.
- ``local_app()``: the app ``python -m auditor serve`` runs: every request comes from one fixed
  principal; without ``AUDITOR_ACCESS_POLICY`` that principal may see every tenant, with it the
  policy applies exactly as in Azure. Only loopback Host headers are answered, and links are
  built from the bound address.

Both hosts call ``settle_heap()`` once the app is built.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import os
import threading
from collections.abc import Callable, Mapping
from datetime import datetime

from fastapi import FastAPI

from auditor.adapters.tables.store import SnapshotStore
from auditor.api.app import LOCAL_PRINCIPAL, create_app
from auditor.api.http_functions import API_FUNCTION
from auditor.core.access import AccessPolicy, PolicyError, parse_policy
from auditor.core.projection import DiffView
from auditor.core.runs import Delegation
from auditor.core.snapshot import (
    Snapshot,
    SnapshotIndexEntry,
    SnapshotReader,
    UnverifiedLatest,
)
from auditor.services.operations import operations_from_settings
from auditor.services.report import api_report_service
from auditor.settings import Settings, SettingsError, load_settings
from auditor.web.operations import StoreOperations


def access_policy(settings: Settings, *, default: AccessPolicy) -> AccessPolicy:
    if settings.access_policy_json is None:
        return default
    try:
        return parse_policy(settings.access_policy_json)
    except PolicyError as exc:
        raise SettingsError("AUDITOR_ACCESS_POLICY", str(exc)) from None


class LazyReader:
    """A SnapshotReader that makes the real one on first use (once, thread-safe)."""

    def __init__(self, make: Callable[[], SnapshotReader]) -> None:
        self._make = make
        self._reader: SnapshotReader | None = None
        self._lock = threading.Lock()

    @property
    def reader(self) -> SnapshotReader:
        if self._reader is None:
            with self._lock:
                if self._reader is None:
                    self._reader = self._make()
        return self._reader

    def list_tenants(self) -> list[SnapshotIndexEntry]:
        return self.reader.list_tenants()

    def list_latest(self) -> tuple[list[SnapshotIndexEntry], list[UnverifiedLatest]]:
        lister = getattr(self.reader, "list_latest", None)
        if lister is None:
            return self.reader.list_tenants(), []
        found: tuple[list[SnapshotIndexEntry], list[UnverifiedLatest]] = lister()
        return found

    def list_snapshots(
        self, tenant_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[SnapshotIndexEntry]:
        return self.reader.list_snapshots(tenant_id, since=since, until=until)

    def get_index(self, tenant_id: str, snapshot_id: str) -> SnapshotIndexEntry:
        return self.reader.get_index(tenant_id, snapshot_id)

    def find_at(self, tenant_id: str, instant: datetime) -> SnapshotIndexEntry:
        return self.reader.find_at(tenant_id, instant)

    def get_snapshot(self, tenant_id: str, snapshot_id: str) -> Snapshot:
        return self.reader.get_snapshot(tenant_id, snapshot_id)

    def get_diff_view(self, tenant_id: str, snapshot_id: str) -> DiffView | None:
        """The snapshot's diff view (docs/schema.md, Diff projection); None when the reader has
        none or the snapshot predates the projection (a diff then reads it in full)."""
        source = getattr(self.reader, "get_diff_view", None)
        return source(tenant_id, snapshot_id) if callable(source) else None

    def delegation(self) -> Delegation | None:
        """Who the latest full run found delegated (the store reads the runs table)."""
        source = getattr(self.reader, "delegation", None)
        return source() if callable(source) else None


def azure_app(settings: Settings | None = None) -> FastAPI:
    """The API as Azure Functions hosts it (see the module docstring)."""
    settings = settings or load_settings()
    # Users of other tenants sign in only in Azure (docs/dashboard.md, tenant:self); `serve`'s
    # local principal belongs to no tenant and keeps the local policy.
    policy = dataclasses.replace(
        access_policy(settings, default=AccessPolicy.deny_all()),
        managing_tenant=settings.managing_tenant,
    )
    checked = settings
    reader = LazyReader(lambda: SnapshotStore.from_settings(checked))
    return create_app(
        reader,
        policy,
        extra={
            "reports": api_report_service(checked, reader),
            "operations": StoreOperations(checked),
            "runs": functools.cache(lambda: operations_from_settings(checked)),
        },
        trust_principal_header=app_service_authentication_enabled(),
        public_base_url=public_base_url(),
        snapshot_schedule=checked.snapshot_schedule,
        keyed_function=API_FUNCTION,
        web_secret=shared_web_secret(checked),
    )


def settle_heap() -> None:
    """Collect once, then move what is left (modules, the app, its settings: objects that live
    as long as the process) out of the cyclic collector's reach. Otherwise the process's first
    full collection walks that whole heap (70 to 120 ms for the API's, measured) during some
    request: typically a new instance's first cold diff. Called by a process that serves, once,
    after building its app; garbage of later requests is collected as before."""
    gc.collect()
    gc.freeze()


def shared_web_secret(settings: Settings, env: Mapping[str, str] | None = None) -> str | None:
    """AUDITOR_WEB_SECRET; in Azure (the platform sets WEBSITE_HOSTNAME) it must be set: the
    app scales out, and a form signed by one instance must verify on every other."""
    env = os.environ if env is None else env
    if settings.web_secret is None and env.get("WEBSITE_HOSTNAME", "").strip():
        raise SettingsError(
            "AUDITOR_WEB_SECRET",
            "is not set: every instance of the API app must sign the dashboard's forms with "
            "the same key (infra/main.bicep sets it from Key Vault)",
        )
    return settings.web_secret


def public_base_url(env: Mapping[str, str] | None = None) -> str | None:
    """The app's own address in Azure (the platform sets WEBSITE_HOSTNAME), for the OpenAPI
    document's `servers`; None elsewhere."""
    env = os.environ if env is None else env
    host = env.get("WEBSITE_HOSTNAME", "").strip()
    return f"https://{host}" if host else None


def app_service_authentication_enabled(env: Mapping[str, str] | None = None) -> bool:
    """True when App Service Authentication runs in front of the app.

    The platform sets WEBSITE_AUTH_ENABLED then; only then does it strip a client-sent
    X-MS-CLIENT-PRINCIPAL and set its own, so only then may the header be believed.
    """
    env = os.environ if env is None else env
    return env.get("WEBSITE_AUTH_ENABLED", "").strip().lower() == "true"


def local_app(
    settings: Settings | None = None,
    principal: str = LOCAL_PRINCIPAL,
    base_url: str = "http://127.0.0.1:7071",
) -> tuple[FastAPI, SnapshotStore]:
    """The API as ``serve`` runs it on `base_url` (the bound address: links are built from
    it, and only loopback Host headers are answered), and its store (the caller closes it)."""
    settings = settings or load_settings()
    policy = access_policy(settings, default=AccessPolicy.allow_all())
    store = SnapshotStore.from_settings(settings)
    reports = api_report_service(settings, store)
    app = create_app(
        store,
        policy,
        local_principal=principal,
        extra={
            "reports": reports,
            "operations": StoreOperations(settings),
            "runs": functools.cache(lambda: operations_from_settings(settings)),
        },
        local_base_url=base_url,
        snapshot_schedule=settings.snapshot_schedule,
        web_secret=settings.web_secret,
    )
    return app, store
