"""Where run digests are sent: one class per kind of receiver. Each ``send`` either returns
(delivered) or raises ``SinkError`` saying whether trying again may help.

- ``WebhookSink``: an HTTPS POST of one CloudEvent 1.0 in structured JSON mode, signed with
  HMAC-SHA256 over the exact body in ``X-Auditor-Signature: sha256=<hex>``;
- ``ChatSink``: a Teams Workflows (Adaptive Card) or Slack (blocks) incoming webhook;
- ``EventGridSink``: CloudEvents to an Event Grid custom topic through azure-eventgrid's
  ``EventGridPublisherClient`` with the app's managed identity.

HTTP receivers are never followed to another host: a redirect is followed (at most
``MAX_REDIRECTS``) only when it stays on the receiver's scheme, host and port, since the body
and its signature are for that receiver alone.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import requests
from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.core.messaging import CloudEvent as AzureCloudEvent
from cloudevents.v1.conversion import to_structured
from cloudevents.v1.http import CloudEvent

from auditor.core.notify_messages import Event

SIGNATURE_HEADER = "X-Auditor-Signature"
SPEC_TIMEOUT_SECONDS = (5.0, 15.0)  # connect, read: a receiver that hangs is a retryable miss
MAX_REDIRECTS = 3


class SinkError(RuntimeError):
    """A delivery failed; `retryable` when a later attempt may succeed (5xx, 429, timeout)."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


class Sink(Protocol):
    name: str

    def send(self, events: Sequence[Event]) -> None: ...


def signature(secret: str, body: bytes) -> str:
    """The value of X-Auditor-Signature for `body`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def structured(event: Event) -> tuple[dict[str, str], bytes]:
    """The event in CloudEvents' structured JSON mode: (headers, body)."""
    ce = CloudEvent(
        {
            "id": event.id,
            "type": event.type,
            "source": event.source,
            "subject": event.subject,
            "time": event.time,
            "datacontenttype": "application/json",
        },
        dict(event.data),
    )
    headers, body = to_structured(ce)
    return dict(headers), body if isinstance(body, bytes) else str(body).encode("utf-8")


def ca_bundle(verify: Any) -> Any:
    """What to verify receivers with: the given bundle, else REQUESTS_CA_BUNDLE when set (a
    private CA), else the default store. Sessions ignore the environment otherwise (no proxy
    sees the digest), so the bundle is taken from it here, explicitly."""
    if verify is True:
        return os.environ.get("REQUESTS_CA_BUNDLE") or True
    return verify


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


def _safe(url: str) -> str:
    """A receiver's URL without credentials, path and query (chat URLs carry their secret in
    the path or query, and a URL may carry user:password before its host)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def post(
    session: requests.Session, url: str, body: bytes, headers: Mapping[str, str], verify: Any
) -> None:
    """POST `body`; follow redirects only on the same origin; SinkError otherwise."""
    target = url
    for _ in range(MAX_REDIRECTS + 1):
        try:
            response = session.post(
                target,
                data=body,
                headers=dict(headers),
                timeout=SPEC_TIMEOUT_SECONDS,
                allow_redirects=False,
                verify=verify,
            )
        except requests.Timeout:
            raise SinkError(f"{_safe(url)} did not answer in time", retryable=True) from None
        except requests.exceptions.SSLError:
            # A certificate the receiver's CA does not vouch for: retrying will not fix it.
            raise SinkError(
                f"{_safe(url)} failed TLS verification (its certificate is not trusted)",
                retryable=False,
            ) from None
        except requests.ConnectionError as exc:
            raise SinkError(
                f"{_safe(url)} could not be reached: {type(exc).__name__}", retryable=True
            ) from None
        with response:
            status = response.status_code
            if status in (301, 302, 303, 307, 308):
                location = urljoin(target, response.headers.get("Location", ""))
                if not _same_origin(url, location):
                    raise SinkError(
                        f"{_safe(url)} redirected to another host ({_safe(location)}): "
                        "not followed",
                        retryable=False,
                    )
                target = location
                continue
            if 200 <= status < 300:
                return
            retryable = status >= 500 or status in (408, 429)
            raise SinkError(f"{_safe(url)} answered HTTP {status}", retryable=retryable)
    raise SinkError(f"{_safe(url)} redirected more than {MAX_REDIRECTS} times", retryable=False)


class WebhookSink:
    name = "webhook"

    def __init__(self, url: str, secret: str, *, verify: Any = True) -> None:
        self._url = url
        self._secret = secret
        self._verify = ca_bundle(verify)
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy from the environment sees the digest

    def send(self, events: Sequence[Event]) -> None:
        for event in events[:1]:  # the run digest; per-tenant events are Event Grid's
            headers, body = structured(event)
            headers[SIGNATURE_HEADER] = signature(self._secret, body)
            post(self._session, self._url, body, headers, self._verify)


class ChatSink:
    """Teams or Slack: `render` turns the run digest event into the chat's JSON."""

    def __init__(self, name: str, url: str, render: Any, *, verify: Any = True) -> None:
        self.name = name
        self._url = url
        self._render = render
        self._verify = ca_bundle(verify)
        self._session = requests.Session()
        self._session.trust_env = False

    def send(self, events: Sequence[Event]) -> None:
        body = json.dumps(self._render(events[0].data), ensure_ascii=True).encode("ascii")
        post(self._session, self._url, body, {"Content-Type": "application/json"}, self._verify)


class EventGridSink:
    name = "eventgrid"

    def __init__(
        self, endpoint: str, credential: TokenCredential, *, connection_verify: Any = None
    ) -> None:
        from azure.eventgrid import EventGridPublisherClient

        self._endpoint = endpoint
        self._client = EventGridPublisherClient(endpoint, credential)
        # For a basic topic the client drops constructor options, so a CA bundle (the local
        # stand-in's) rides on each send.
        self._send_options = {"connection_verify": connection_verify} if connection_verify else {}

    def send(self, events: Sequence[Event]) -> None:
        batch = [
            AzureCloudEvent(
                source=e.source,
                type=e.type,
                data=dict(e.data),
                subject=e.subject,
                id=e.id,
                time=None,
                datacontenttype="application/json",
                extensions=None,
            )
            for e in events
        ]
        for cloud, event in zip(batch, events, strict=True):
            cloud.time = _parse_time(event.time)
        try:
            self._client.send(batch, **self._send_options)
        except HttpResponseError as exc:
            status = exc.status_code or 0
            raise SinkError(
                f"Event Grid {_safe(self._endpoint)} answered HTTP {status}",
                retryable=status >= 500 or status in (408, 429),
            ) from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise SinkError(
                f"Event Grid {_safe(self._endpoint)} could not be reached: {type(exc).__name__}",
                retryable=True,
            ) from None

    def close(self) -> None:
        self._client.close()


def _parse_time(text: str) -> Any:
    from auditor.core.canonical import parse_time

    return parse_time(text)
