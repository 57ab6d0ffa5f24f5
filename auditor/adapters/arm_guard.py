"""The collector's requests, and above all its bearer token, go to Resource Manager only.

The managed identity's token reads every delegated subscription: a token handed to any other
host is a breach. Two defences, so that no future call can forget one:

- ``ArmOnlyPolicy`` sits in every SDK pipeline the collector builds, after the retry and
  redirect policies and before the bearer-token policy, so it sees every attempt, redirects
  included: a request to an origin other than AUDITOR_ARM_ENDPOINT's (scheme, host and port)
  raises ``UntrustedEndpointError`` and nothing is sent;
- pagers check every server-given URL (``nextLink``) with ``require_arm_url`` before following
  it, so the reason names the link rather than the request.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import BearerTokenCredentialPolicy, SansIOHTTPPolicy

from auditor.adapters.bounded import CollectionStopped, origin_text

_DEFAULT_PORTS = {"https": 443, "http": 80}


class UntrustedEndpointError(CollectionStopped):
    """A request or a server-given URL names an origin other than Resource Manager's.

    Nothing was sent to it. Never retried: the SDK's retry policy retries AzureError, and this
    is not one.
    """


def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an absolute URL, lower-cased, default port filled in; None if
    the URL is not absolute or does not parse."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not scheme or not host:
        return None
    return scheme, host, port if port is not None else _DEFAULT_PORTS.get(scheme, -1)


def is_arm_url(url: str, arm_endpoint: str) -> bool:
    allowed = origin(arm_endpoint)
    return allowed is not None and origin(url) == allowed


def require_arm_url(url: str, arm_endpoint: str, what: str) -> str:
    """`url` when it is on Resource Manager's origin; UntrustedEndpointError otherwise."""
    if not is_arm_url(url, arm_endpoint):
        raise UntrustedEndpointError(
            f"{what} points to {origin_text(url)}, not to Resource Manager "
            f"({origin_text(arm_endpoint)}): not followed, no request sent"
        )
    return url


class ArmOnlyPolicy(SansIOHTTPPolicy[Any, Any]):
    """Refuses to send any request to an origin other than the configured ARM endpoint."""

    def __init__(self, arm_endpoint: str) -> None:
        if origin(arm_endpoint) is None:
            raise ValueError(f"not an absolute URL: {arm_endpoint!r}")
        self._endpoint = arm_endpoint

    def on_request(self, request: PipelineRequest[Any]) -> None:
        url = str(request.http_request.url)
        if not is_arm_url(url, self._endpoint):
            raise UntrustedEndpointError(
                f"refused to send a request to {origin_text(url)}: only Resource Manager "
                f"({origin_text(self._endpoint)}) receives the auditor's requests"
            )


def arm_only_policies(arm_endpoint: str) -> dict[str, Any]:
    """Keyword arguments for an SDK client: the ARM-only policy on every attempt, before the
    bearer-token policy (azure-core inserts per-retry policies right after RetryPolicy)."""
    return {"per_retry_policies": [ArmOnlyPolicy(arm_endpoint)]}


def guarded_before_token(policies: list[Any]) -> bool:
    """Whether an ArmOnlyPolicy runs before every bearer-token policy of a policy list."""
    unwrapped = [getattr(p, "_policy", p) for p in policies]  # SansIO policies come wrapped
    guards = [i for i, p in enumerate(unwrapped) if isinstance(p, ArmOnlyPolicy)]
    tokens = [i for i, p in enumerate(unwrapped) if isinstance(p, BearerTokenCredentialPolicy)]
    return bool(guards) and all(min(guards) < i for i in tokens)


def ensure_guarded(pipeline_client: Any) -> None:
    """Raise at construction when an SDK pipeline could send a token without the guard first
    (for example if a new SDK version placed per-retry policies elsewhere)."""
    policies = list(getattr(getattr(pipeline_client, "_pipeline", None), "_impl_policies", []))
    if not guarded_before_token(policies):
        raise RuntimeError(
            f"{type(pipeline_client).__name__}'s pipeline has no ArmOnlyPolicy before its "
            "bearer-token policy: refusing to build a client that could send the token elsewhere"
        )
