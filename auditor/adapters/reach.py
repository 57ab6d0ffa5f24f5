"""Saying which service could not be reached, in one line (the CLI's answer to an outage).

``probe`` asks Resource Manager for its root (no token sent) before the process's first token
for it (auditor/adapters/credentials.py): a control plane that refuses connections or never
answers then ends a command within PROBE_CONNECT_SECONDS + PROBE_READ_SECONDS, instead of after
every retry of every query (the collector's own retries are bounded by
AUDITOR_COLLECT_TIMEOUT_SECONDS, which is minutes).

The SDKs raise ServiceRequestError (no connection) or ServiceResponseError (no answer) with
the transport's message, which names the host and port; a service of ours may have wrapped it
(e.g. a Resource Graph query that ran out of retries). ``unreachable`` finds it in the
exception chain and names the service from the settings: table, queue or blob storage, or
Resource Manager.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from azure.core.exceptions import (
    ClientAuthenticationError,
    ServiceRequestError,
    ServiceResponseError,
)

from auditor.adapters.storage import READ_TIMEOUT_SECONDS
from auditor.settings import Settings

_HOST_PORT = re.compile(r"host='([^']+)', port=(\d+)")
_DEVELOPMENT_PORTS = {10000: "blob storage", 10001: "queue storage", 10002: "table storage"}
_CONNECTION_KEYS = {
    "BlobEndpoint": "blob storage",
    "QueueEndpoint": "queue storage",
    "TableEndpoint": "table storage",
}


PROBE_CONNECT_SECONDS = 10
PROBE_READ_SECONDS = 20


class Unreachable(Exception):
    """A service did not answer; str() is the one line to show."""


def probe(url: str, name: str) -> None:
    """Unreachable unless `url` answers an unauthenticated GET with any HTTP status."""
    import requests

    try:
        requests.get(
            url,
            timeout=(PROBE_CONNECT_SECONDS, PROBE_READ_SECONDS),
            allow_redirects=False,
            headers={"User-Agent": "auditor-reachability-probe"},
        ).close()
    except requests.exceptions.SSLError:
        return  # it answered; the client will report what is wrong with its certificate
    except requests.exceptions.ConnectionError as exc:
        why = "connection refused" if "refused" in str(exc).lower() else _short(exc)
        raise Unreachable(f"could not reach {name} ({url}): {why}") from None
    except requests.exceptions.Timeout:
        raise Unreachable(
            f"could not reach {name} ({url}): no answer within "
            f"{PROBE_CONNECT_SECONDS + PROBE_READ_SECONDS} s"
        ) from None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _address(url: str) -> tuple[str, int] | None:
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def known_endpoints(settings: Settings | None) -> dict[tuple[str, int], str]:
    """(host, port) -> the name of the service the settings put there."""
    names: dict[tuple[str, int], str] = {}
    if settings is None:
        return names
    arm = _address(settings.arm_endpoint)
    if arm:
        names[arm] = f"Resource Manager ({settings.arm_endpoint})"
    storage = settings.storage
    if storage is None:
        return names
    if storage.connection_string == "UseDevelopmentStorage=true":
        for port, name in _DEVELOPMENT_PORTS.items():
            names[("127.0.0.1", port)] = f"{name} (http://127.0.0.1:{port})"
        return names
    urls: list[tuple[str, str]] = []
    if storage.connection_string:
        for part in storage.connection_string.split(";"):
            key, _, value = part.partition("=")
            if key.strip() in _CONNECTION_KEYS and value.strip():
                urls.append((_CONNECTION_KEYS[key.strip()], value.strip()))
    else:
        urls += [
            ("table storage", storage.table_uri or ""),
            ("queue storage", storage.queue_uri or ""),
            ("blob storage", storage.blob_uri or ""),
        ]
    for name, url in urls:
        address = _address(url)
        if address is None:
            continue
        if address in names and not names[address].startswith(name):
            name = "storage"  # several services on one address (Azurite on one port)
        names[address] = f"{name} ({address[0]}:{address[1]})"
    return names


def unreachable(exc: BaseException, settings: Settings | None) -> str | None:
    """One line naming the service `exc` could not reach (or that gave no token) and why;
    None when `exc` is not about reaching a service."""
    if isinstance(exc, Unreachable):
        return str(exc)
    for link in _chain(exc):
        if isinstance(link, ClientAuthenticationError):
            return f"could not get a token for Resource Manager: {_short(link)[:300]}"
    for link in _chain(exc):
        if isinstance(link, ServiceRequestError | ServiceResponseError):
            text = str(link)
            break
    else:
        return None
    match = _HOST_PORT.search(text)
    where = "a service"
    if match:
        address = (match.group(1), int(match.group(2)))
        where = known_endpoints(settings).get(address, f"{address[0]}:{address[1]}")
    if "refused" in text.lower():
        why = "connection refused"
    elif "timed out" in text.lower() or "timeout" in text.lower():
        why = f"no answer within {READ_TIMEOUT_SECONDS} s"
    else:
        why = (text.strip().splitlines() or ["no answer"])[0][:200]
    return f"could not reach {where}: {why}"
