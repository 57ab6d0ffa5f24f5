"""A sink's failure reason is recorded on the run and logged: it never carries the URL's secret
parts (user:password before the host, a chat URL's path and query)."""

from __future__ import annotations

import socket

import pytest
import requests

from auditor.adapters.notify_sinks import SinkError, post


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_receivers_reason_names_its_host_and_none_of_its_secrets() -> None:
    port = _closed_port()
    url = f"https://user:pa55word@127.0.0.1:{port}/hooks/SECRETPATH?sig=SECRETSIG"
    with requests.Session() as session, pytest.raises(SinkError) as raised:
        post(session, url, b"{}", {}, True)
    reason = str(raised.value)
    assert reason.startswith(f"https://127.0.0.1:{port} could not be reached")
    for secret in ("user", "pa55word", "SECRETPATH", "SECRETSIG"):
        assert secret not in reason
