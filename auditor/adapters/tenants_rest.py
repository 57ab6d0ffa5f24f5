"""Display names of delegated tenants: ``GET /tenants`` (Azure Resource Manager).

Resource Graph carries tenant ids but not names. The managing tenant's ``/tenants`` list shows
each delegating tenant with ``tenantCategory`` "ProjectedBy" and its display name; it needs no
role assignment. Sent through azure-mgmt-core's ARM pipeline (bearer token for the configured
endpoint, ARM retries), paged by ``nextLink``.
"""

from __future__ import annotations

from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.pipeline.policies import RetryPolicy, UserAgentPolicy
from azure.core.rest import HttpRequest
from azure.mgmt.core import ARMPipelineClient
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy

from auditor import __version__

API_VERSION = "2022-12-01"
MAX_PAGES = 100  # 5,000 tenants at 50 a page: a bound, so a looping nextLink cannot hang a run


class TenantDirectory:
    def __init__(self, credential: TokenCredential, arm_endpoint: str) -> None:
        endpoint = arm_endpoint.rstrip("/")
        self._endpoint = endpoint
        self._client: ARMPipelineClient[HttpRequest, Any] = ARMPipelineClient(
            base_url=endpoint,
            policies=[
                UserAgentPolicy(f"lighthouse-compliance-auditor/{__version__}"),
                RetryPolicy(retry_total=3, retry_backoff_factor=0.5),
                ARMChallengeAuthenticationPolicy(credential, endpoint + "/.default"),
            ],
        )

    def close(self) -> None:
        self._client.close()

    def display_names(self) -> dict[str, str]:
        """Tenant id (lower case) → display name, for every tenant the identity can see."""
        names: dict[str, str] = {}
        url: str | None = f"{self._endpoint}/tenants?api-version={API_VERSION}"
        for _ in range(MAX_PAGES):
            if url is None:
                break
            response = self._client.send_request(HttpRequest("GET", url))
            response.raise_for_status()
            page: dict[str, Any] = response.json()
            for item in page.get("value") or ():
                tenant_id = str(item.get("tenantId") or "").lower()
                name = str(item.get("displayName") or "")
                if tenant_id and name:
                    names[tenant_id] = name
            url = page.get("nextLink") or None
        return names
