"""The bearer token only ever goes to Resource Manager: ArmOnlyPolicy and URL checks.

The policy is exercised in a real azure-core pipeline against a real loopback listener that
counts connections: the same request without the policy reaches it, with the policy nothing
does.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.pipeline.policies import BearerTokenCredentialPolicy, RetryPolicy
from azure.core.rest import HttpRequest
from azure.mgmt.core import ARMPipelineClient

from auditor.adapters.arm_guard import (
    ArmOnlyPolicy,
    UntrustedEndpointError,
    ensure_guarded,
    is_arm_url,
    require_arm_url,
)
from auditor.adapters.resource_graph import ResourceGraph
from auditor.adapters.security_rest import SecurityRest
from auditor.adapters.tenants_rest import TenantDirectory
from tests.listener import CountingListener

ARM = "https://management.azure.com"


class StaticCredential:
    """A credential that hands out a fixed token (no identity service in a unit test)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("secret-token", int(time.time()) + 3600)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://management.azure.com/providers/x?api-version=1", True),
        ("https://MANAGEMENT.azure.com:443/subscriptions", True),
        ("https://management.azure.com:8443/providers/x", False),
        ("http://management.azure.com/providers/x", False),
        ("https://management.azure.com.evil.example/providers/x", False),
        ("https://management.azure.com@evil.example/providers/x", False),
        ("https://evil.example/?https://management.azure.com", False),
        ("/providers/x", False),
        ("https://[::1/providers", False),
        ("", False),
    ],
)
def test_only_the_endpoints_scheme_host_and_port_count_as_resource_manager(
    url: str, allowed: bool
) -> None:
    assert is_arm_url(url, ARM) is allowed


def test_a_foreign_next_link_is_refused_with_its_origin_named() -> None:
    with pytest.raises(UntrustedEndpointError, match=r"points to https://evil.example:444"):
        require_arm_url(
            "https://evil.example:444/x?$skipToken=1", ARM, "tenant directory: nextLink"
        )
    assert require_arm_url(ARM + "/tenants?x=1", ARM, "nextLink") == ARM + "/tenants?x=1"


def pipeline(endpoint: str, *, guarded: bool) -> ARMPipelineClient[HttpRequest, Any]:
    policies: list[Any] = [RetryPolicy(retry_total=0)]
    if guarded:
        policies.append(ArmOnlyPolicy(endpoint))
    policies.append(BearerTokenCredentialPolicy(StaticCredential(), endpoint + "/.default"))
    return ARMPipelineClient(base_url=endpoint, policies=policies)


def test_without_the_policy_the_token_would_go_to_the_other_host() -> None:
    # The control: the listener does count what reaches it.
    with CountingListener() as listener:
        client = pipeline(ARM, guarded=False)
        with pytest.raises(Exception):  # noqa: B017 - the listener never answers HTTP
            client.send_request(HttpRequest("GET", listener.url + "/x"), connection_timeout=2)
        client.close()
        assert listener.wait_for_connections(1) == 1


def test_the_policy_refuses_any_request_to_another_origin_and_sends_nothing() -> None:
    with CountingListener() as listener:
        client = pipeline(ARM, guarded=True)
        for url in (listener.url + "/x", "https://management.azure.com:1/x"):
            with pytest.raises(UntrustedEndpointError, match="only Resource Manager"):
                client.send_request(HttpRequest("GET", url))
        client.close()
        assert listener.connections == 0


class CountingGuard(ArmOnlyPolicy):
    def __init__(self, arm_endpoint: str) -> None:
        super().__init__(arm_endpoint)
        self.calls = 0

    def on_request(self, request: Any) -> None:
        self.calls += 1
        super().on_request(request)


def test_the_refusal_is_never_retried_by_the_sdk() -> None:
    guard = CountingGuard(ARM)
    with CountingListener() as listener:
        client = ARMPipelineClient(
            base_url=ARM,
            policies=[
                RetryPolicy(retry_total=5, retry_backoff_factor=0),
                guard,
                BearerTokenCredentialPolicy(StaticCredential(), ARM + "/.default"),
            ],
        )
        with pytest.raises(UntrustedEndpointError):
            client.send_request(HttpRequest("GET", listener.url + "/x"))
        client.close()
        assert guard.calls == 1  # not an AzureError: the retry policy lets it through
        assert listener.connections == 0


def test_every_client_the_collector_builds_has_the_guard_before_the_token() -> None:
    credential = StaticCredential()
    graph = ResourceGraph(credential, ARM)  # type: ignore[arg-type]
    rest = SecurityRest(credential, ARM)  # type: ignore[arg-type]
    directory = TenantDirectory(credential, ARM)  # type: ignore[arg-type]
    try:
        for client in (graph._client._client, rest._client._client, directory._client):
            ensure_guarded(client)  # raises when missing or after the token policy
    finally:
        graph.close()
        rest.close()
        directory.close()


def test_a_pipeline_without_the_guard_is_refused_at_construction() -> None:
    with pytest.raises(RuntimeError, match="no ArmOnlyPolicy before its bearer-token policy"):
        ensure_guarded(pipeline(ARM, guarded=False))
    ensure_guarded(pipeline(ARM, guarded=True))
