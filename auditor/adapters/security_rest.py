"""The Microsoft.Security REST operations Resource Graph does not index.

- Assessment metadata (display name, severity, remediation) is tenant-level: the collector
  reads it once per process, never per subscription.
- Just-in-time network access policies are per subscription: they say which VMs are actually
  covered, which the JIT recommendation alone does not.

Both are sent through azure-mgmt-security's pipeline (SecurityCenter: credential, token scope,
ARM policies, ``ArmOnlyPolicy`` before the bearer token) and paged by ``nextLink`` with the
bounded pager of auditor/adapters/arm_lists.py, not the SDK's pagers: those follow any
``nextLink`` and buffer whole bodies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import requests
from azure.core.credentials import TokenCredential
from azure.core.pipeline.transport import RequestsTransport
from azure.mgmt.security import SecurityCenter

from auditor.adapters.arm_guard import arm_only_policies, ensure_guarded
from auditor.adapters.arm_lists import ArmLists, ListStats
from auditor.adapters.bounded import MalformedAnswer
from auditor.core.model import RecommendationMetadata
from auditor.core.quoted import quote
from auditor.settings import CollectLimits

# The api-versions azure-mgmt-security 7.0 sends for these operations.
METADATA_PATH = "/providers/Microsoft.Security/assessmentMetadata?api-version=2021-06-01"
JIT_PATH = (
    "/subscriptions/{subscription}/providers/Microsoft.Security/jitNetworkAccessPolicies"
    "?api-version=2020-01-01"
)
# The SDK needs a subscription id even for tenant-level operations; it never reaches a URL.
_NO_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

RestStats = ListStats  # counted per tenant by the collector


class SecurityRest:
    def __init__(
        self,
        credential: TokenCredential,
        arm_endpoint: str,
        limits: CollectLimits | None = None,
        *,
        backoff_base: float = 0.5,
    ) -> None:
        endpoint = arm_endpoint.rstrip("/")
        self.metadata_calls = 0  # pages of assessment metadata read by this process
        # One HTTP session and one client for every subscription: connections are reused
        # instead of a TLS handshake per subscription.
        self._session = requests.Session()
        self._client = SecurityCenter(
            credential,
            _NO_SUBSCRIPTION,
            base_url=endpoint,
            credential_scopes=[endpoint + "/.default"],
            transport=RequestsTransport(session=self._session, session_owner=False),
            retry_total=0,  # ArmLists retries, within the deadline
            **arm_only_policies(endpoint),
        )
        ensure_guarded(self._client._client)
        self._lists = ArmLists(
            self._client._client,
            endpoint,
            limits or CollectLimits.defaults(),
            backoff_base=backoff_base,
        )

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]
        self._session.close()

    def assessment_metadata(
        self, deadline: float | None = None, stats: ListStats | None = None
    ) -> dict[str, RecommendationMetadata]:
        """Every recommendation's metadata by key (tenant-level: the collector reads it once
        per process). Raises ArmCallError or CollectionStopped when it cannot be read to its
        end."""
        counted = stats if stats is not None else ListStats()
        before = counted.pages
        out: dict[str, RecommendationMetadata] = {}
        try:
            for page in self._lists.pages(
                METADATA_PATH, what="assessment metadata", deadline=deadline, stats=counted
            ):
                for item in page:
                    meta = _metadata(item)
                    if meta is not None:
                        out[meta.key] = meta
        finally:
            self.metadata_calls += counted.pages - before
        return out

    def jit_covered_vms(
        self,
        subscription_id: str,
        stats: ListStats | None = None,
        deadline: float | None = None,
    ) -> int:
        """Number of distinct VMs a JIT policy covers in the subscription."""
        if not _GUID.match(subscription_id):
            # Never build a URL from a server-given id that is not a subscription id.
            raise MalformedAnswer(f"subscription id {quote(subscription_id)} is not a GUID")
        vms: set[str] = set()
        for page in self._lists.pages(
            JIT_PATH.format(subscription=subscription_id),
            what="just-in-time policies",
            deadline=deadline,
            stats=stats,
        ):
            for policy in page:
                for vm in _vms(policy):
                    vms.add(vm.lower())
        return len(vms)


def _vms(policy: Mapping[str, Any]) -> list[str]:
    props = policy.get("properties")
    listed = props.get("virtualMachines") if isinstance(props, Mapping) else None
    if listed is None:
        return []
    if not isinstance(listed, list):
        raise MalformedAnswer("just-in-time policy 'virtualMachines' is not a list")
    return [vm["id"] for vm in listed if isinstance(vm, Mapping) and isinstance(vm.get("id"), str)]


def _metadata(item: Mapping[str, Any]) -> RecommendationMetadata | None:
    key = item.get("name")
    if not isinstance(key, str) or not key:
        return None
    props = item.get("properties")
    props = props if isinstance(props, Mapping) else {}
    categories = props.get("categories")
    threats = props.get("threats")

    def text(name: str) -> str:
        value = props.get(name)
        return value if isinstance(value, str) else ""

    def texts(value: Any) -> tuple[str, ...]:
        return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()

    return RecommendationMetadata(
        key=key.lower(),
        display_name=text("displayName"),
        severity=text("severity"),
        remediation=text("remediationDescription"),
        categories=texts(categories),
        description=text("description"),
        threats=texts(threats),
        user_impact=text("userImpact"),
        implementation_effort=text("implementationEffort"),
    )
