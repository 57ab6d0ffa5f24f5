"""The Microsoft.Security REST operations Resource Graph does not index, via azure-mgmt-security.

- Assessment metadata (display name, severity, remediation) is tenant-level: read once per run
  and cached, never per subscription.
- Just-in-time network access policies are per subscription: they say which VMs are actually
  covered, which the JIT recommendation alone does not.
Both page by ARM's ``nextLink``; the SDK's pager follows it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import requests
from azure.core.credentials import TokenCredential
from azure.core.pipeline.transport import RequestsTransport
from azure.mgmt.security import SecurityCenter

from auditor.core.model import RecommendationMetadata

# The SDK needs a subscription id even for tenant-level operations; this one is never called.
_NO_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


@dataclass
class RestStats:
    calls: int = 0  # pages fetched


class SecurityRest:
    def __init__(self, credential: TokenCredential, arm_endpoint: str) -> None:
        self._credential = credential
        self._endpoint = arm_endpoint.rstrip("/")
        self._lock = threading.Lock()
        self._metadata: dict[str, RecommendationMetadata] | None = None
        self.metadata_calls = 0
        # One HTTP session for every per-subscription client: connections are reused instead
        # of a TLS handshake per subscription.
        self._session = requests.Session()

    def close(self) -> None:
        self._session.close()

    def _client(self, subscription_id: str) -> SecurityCenter:
        return SecurityCenter(
            self._credential,
            subscription_id,
            base_url=self._endpoint,
            credential_scopes=[self._endpoint + "/.default"],
            transport=RequestsTransport(session=self._session, session_owner=False),
            retry_total=4,
            retry_backoff_factor=0.5,
            connection_timeout=20,
            read_timeout=60,
        )

    def assessment_metadata(self) -> dict[str, RecommendationMetadata]:
        """Every recommendation's metadata by key, fetched once and cached for the process."""
        with self._lock:
            if self._metadata is None:
                client = self._client(_NO_SUBSCRIPTION)
                out: dict[str, RecommendationMetadata] = {}
                try:
                    for page in client.assessments_metadata.list().by_page():
                        self.metadata_calls += 1
                        for item in page:
                            meta = _metadata(item)
                            if meta is not None:
                                out[meta.key] = meta
                finally:
                    client.close()  # type: ignore[no-untyped-call]
                self._metadata = out
            return self._metadata

    def jit_covered_vms(self, subscription_id: str, stats: RestStats | None = None) -> int:
        """Number of distinct VMs a JIT policy covers in the subscription."""
        client = self._client(subscription_id)
        vms: set[str] = set()
        try:
            for page in client.jit_network_access_policies.list().by_page():
                if stats is not None:
                    stats.calls += 1
                for policy in page:
                    for vm in policy.virtual_machines or ():
                        if vm.id:
                            vms.add(vm.id.lower())
        finally:
            client.close()  # type: ignore[no-untyped-call]
        return len(vms)


def _metadata(item: Any) -> RecommendationMetadata | None:
    key = str(getattr(item, "name", "") or "").lower()
    if not key:
        return None
    categories: Iterable[Any] = getattr(item, "categories", None) or ()
    return RecommendationMetadata(
        key=key,
        display_name=str(getattr(item, "display_name", "") or ""),
        severity=str(getattr(item, "severity", "") or ""),
        remediation=str(getattr(item, "remediation_description", "") or ""),
        categories=tuple(str(c) for c in categories),
        description=str(getattr(item, "description", "") or ""),
    )
