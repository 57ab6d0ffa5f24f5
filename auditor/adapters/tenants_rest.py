"""Display names of delegated tenants: ``GET /tenants`` (Azure Resource Manager).

Resource Graph carries tenant ids but not names. The managing tenant's ``/tenants`` list shows
each delegating tenant with ``tenantCategory`` "ProjectedBy" and its display name; it needs no
role assignment. Sent through azure-mgmt-core's ARM pipeline (bearer token for the configured
endpoint, ``ArmOnlyPolicy`` before it) and paged by ``nextLink`` within the collection's bounds
(auditor/adapters/arm_lists.py).
"""

from __future__ import annotations

from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.pipeline.policies import RetryPolicy, UserAgentPolicy
from azure.core.rest import HttpRequest
from azure.mgmt.core import ARMPipelineClient
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy

from auditor import __version__
from auditor.adapters.arm_guard import ArmOnlyPolicy, ensure_guarded
from auditor.adapters.arm_lists import ArmLists, ListStats
from auditor.settings import CollectLimits

API_VERSION = "2022-12-01"
TENANTS_PATH = f"/tenants?api-version={API_VERSION}"


class TenantDirectory:
    def __init__(
        self,
        credential: TokenCredential,
        arm_endpoint: str,
        limits: CollectLimits | None = None,
        *,
        backoff_base: float = 0.5,
    ) -> None:
        endpoint = arm_endpoint.rstrip("/")
        self._client: ARMPipelineClient[HttpRequest, Any] = ARMPipelineClient(
            base_url=endpoint,
            policies=[
                UserAgentPolicy(f"lighthouse-compliance-auditor/{__version__}"),
                RetryPolicy(retry_total=0),  # ArmLists retries, within the deadline
                ArmOnlyPolicy(endpoint),
                ARMChallengeAuthenticationPolicy(credential, endpoint + "/.default"),
            ],
        )
        ensure_guarded(self._client)
        self._lists = ArmLists(
            self._client, endpoint, limits or CollectLimits.defaults(), backoff_base=backoff_base
        )

    def close(self) -> None:
        self._client.close()

    def display_names(
        self, deadline: float | None = None, stats: ListStats | None = None
    ) -> dict[str, str]:
        """Tenant id (lower case) → display name, for every tenant the identity can see.

        Raises CollectionStopped or ArmCallError when the list cannot be read to its end.
        """
        names: dict[str, str] = {}
        for page in self._lists.pages(
            TENANTS_PATH, what="tenant directory", deadline=deadline, stats=stats
        ):
            for item in page:
                tenant_id = item.get("tenantId")
                name = item.get("displayName")
                if isinstance(tenant_id, str) and isinstance(name, str) and tenant_id and name:
                    names[tenant_id.lower()] = name
        return names
