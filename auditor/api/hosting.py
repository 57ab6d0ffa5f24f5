"""Building the API from settings, for its two hosts.

- ``azure_app()``: the app ``function_app.py`` hands to ``func.AsgiFunctionApp``. The caller is
  whoever App Service Authentication names; without ``AUDITOR_ACCESS_POLICY`` nobody may see
  any tenant (deny by default).
- ``local_app()``: the app ``python -m auditor serve`` runs: every request comes from one fixed
  principal; without ``AUDITOR_ACCESS_POLICY`` that principal may see every tenant, with it the
  policy applies exactly as in Azure.

A bad setting (the policy included) raises SettingsError naming it, at start.
"""

from __future__ import annotations

from fastapi import FastAPI

from auditor.adapters.tables.store import SnapshotStore
from auditor.api.app import LOCAL_PRINCIPAL, create_app
from auditor.core.access import AccessPolicy, PolicyError, parse_policy
from auditor.settings import Settings, SettingsError, load_settings


def access_policy(settings: Settings, *, default: AccessPolicy) -> AccessPolicy:
    if settings.access_policy_json is None:
        return default
    try:
        return parse_policy(settings.access_policy_json)
    except PolicyError as exc:
        raise SettingsError("AUDITOR_ACCESS_POLICY", str(exc)) from None


def azure_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    policy = access_policy(settings, default=AccessPolicy.deny_all())
    return create_app(SnapshotStore.from_settings(settings), policy)


def local_app(
    settings: Settings | None = None, principal: str = LOCAL_PRINCIPAL
) -> tuple[FastAPI, SnapshotStore]:
    settings = settings or load_settings()
    policy = access_policy(settings, default=AccessPolicy.allow_all())
    store = SnapshotStore.from_settings(settings)
    return create_app(store, policy, local_principal=principal), store
