"""Bounded reading of control-plane answers: bytes, time and shape (auditor/adapters/bounded.py).

Bodies come from a real loopback HTTP server through azure-core's own pipeline and transport,
streamed as the collector streams them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from azure.core import PipelineClient
from azure.core.rest import HttpRequest

from auditor.adapters.bounded import (
    MAX_VALUES_PER_ANSWER,
    LimitReached,
    MalformedAnswer,
    TimeBoundReached,
    error_summary,
    parse_json,
    read_body,
    request_timeouts,
)

MiB = 1 << 20


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        size = int(self.path.rsplit("/", 1)[1]) if self.path.count("/") > 1 else 0
        try:
            if self.path.startswith("/length/"):
                self._start({"Content-Length": str(size)})
                self._write_bytes(size, chunked=False)
            elif self.path.startswith("/chunked/"):
                self._start({"Transfer-Encoding": "chunked"})
                self._write_bytes(size, chunked=True)
                self.wfile.write(b"0\r\n\r\n")
            elif self.path.startswith("/drip/"):
                self._start({"Transfer-Encoding": "chunked"})
                for _ in range(size):
                    self.wfile.write(b"1\r\nA\r\n")
                    self.wfile.flush()
                    time.sleep(0.2)  # the server trickles: the client's deadline must hold
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    def _start(self, headers: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _write_bytes(self, size: int, *, chunked: bool) -> None:
        block = b"A" * (256 * 1024)
        left = size
        while left:
            piece = block[: min(left, len(block))]
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
            left -= len(piece)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def streamed(base_url: str, path: str) -> Any:
    client: PipelineClient[HttpRequest, Any] = PipelineClient(base_url)
    return client.send_request(HttpRequest("GET", base_url + path), stream=True)


def test_a_body_within_the_cap_is_read_whole(base_url: str) -> None:
    assert read_body(streamed(base_url, "/chunked/300000"), MiB, None) == b"A" * 300_000


def test_a_declared_length_over_the_cap_is_refused_before_reading(base_url: str) -> None:
    with pytest.raises(LimitReached, match=r"response of 157,286,400 bytes exceeds the cap"):
        read_body(streamed(base_url, f"/length/{150 * MiB}"), 8 * MiB, None)


def test_an_undeclared_length_stops_at_the_cap(base_url: str) -> None:
    with pytest.raises(LimitReached, match="stopped reading there"):
        read_body(streamed(base_url, f"/chunked/{150 * MiB}"), 2 * MiB, None)


def test_a_trickling_answer_stops_at_the_deadline(base_url: str) -> None:
    response = streamed(base_url, "/drip/100")  # 100 bytes over 20 s
    with pytest.raises(TimeBoundReached):
        read_body(response, MiB, time.monotonic() + 1.0)


def test_request_timeouts_never_exceed_the_time_left() -> None:
    assert request_timeouts(None) == {"connection_timeout": 20.0, "read_timeout": 120.0}
    left = request_timeouts(time.monotonic() + 5)
    assert 4 < left["read_timeout"] <= 5 and 4 < left["connection_timeout"] <= 5
    with pytest.raises(TimeBoundReached):
        request_timeouts(time.monotonic() - 0.001)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"data": [', "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nests deeper than any real payload"),
        (b'{"n": ' + b"9" * 5000 + b"}", "not JSON"),  # beyond Python's int digits limit
        (b"[" + b"{}," * max(MAX_VALUES_PER_ANSWER + 1, 400_000) + b"{}]", "JSON values"),
    ],
    ids=["truncated", "not-utf8", "deep", "huge-number", "too-many-values"],
)
def test_an_answer_that_is_not_plausible_json_is_malformed_never_a_crash(
    body: bytes, reason: str
) -> None:
    with pytest.raises(MalformedAnswer, match=reason):
        parse_json(body)


def test_a_real_sized_page_parses() -> None:
    page = {"data": [{"id": f"/subscriptions/x/{i}", "properties": {"n": i}} for i in range(1000)]}
    assert parse_json(json.dumps(page).encode()) == page


def test_error_summaries_quote_server_text_on_one_line() -> None:
    body = json.dumps(
        {"error": {"code": "BadRequest", "details": [{"code": "InvalidQuery", "message": "x\ny"}]}}
    ).encode()
    assert error_summary(400, body) == ("InvalidQuery", "x")
    hostile = json.dumps({"error": {"code": "E\x1b[2K", "message": "m" * 1000}}).encode()
    code, message = error_summary(500, hostile)
    assert "\x1b" not in code and len(message) <= 203
    assert error_summary(502, b"<html>bad gateway</html>") == ("", "")
