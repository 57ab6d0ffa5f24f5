"""The one credential of the process: DefaultAzureCredential, checked to reach its service.

In Azure Functions it resolves to the app's managed identity (IDENTITY_ENDPOINT/IDENTITY_HEADER;
AZURE_CLIENT_ID selects a user-assigned identity). Locally it uses the developer's Azure CLI login,
or the simulator's managed-identity endpoint. For a sovereign cloud, set AZURE_AUTHORITY_HOST for
credentials that sign in (managed identity needs nothing more); the token scope always follows
AUDITOR_ARM_ENDPOINT.

Before the first token for a scope (``https://management.azure.com/.default``), the service the
scope names is asked for its root, without a token (``auditor.adapters.reach.probe``): a
control plane that refuses connections or never answers then fails the first call within
about 30 s with ``Unreachable``, instead of after every retry of every query (issue 9 §5).
"""

from __future__ import annotations

import threading
from typing import Any

from azure.core.credentials import AccessToken, TokenCredential
from azure.identity import DefaultAzureCredential

from auditor.adapters.reach import probe

_DEFAULT_SUFFIX = "/.default"


class ReachableCredential:
    """A TokenCredential that first checks, once per scope, that the scope's service answers."""

    def __init__(self, inner: TokenCredential) -> None:
        self._inner = inner
        self._reached: set[str] = set()
        self._lock = threading.Lock()

    def _check(self, scopes: tuple[str, ...]) -> None:
        for scope in scopes:
            if scope in self._reached or not scope.endswith(_DEFAULT_SUFFIX):
                continue
            with self._lock:
                if scope not in self._reached:
                    probe(scope[: -len(_DEFAULT_SUFFIX)] + "/", "Resource Manager")
                    self._reached.add(scope)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self._check(scopes)
        return self._inner.get_token(*scopes, **kwargs)

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> ReachableCredential:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_credential() -> TokenCredential:
    # Never prompt: the auditor runs unattended.
    return ReachableCredential(DefaultAzureCredential(exclude_interactive_browser_credential=True))
