"""A loopback HTTPS receiver for notification tests: it records every POST (path, headers, body)
and answers with a scripted status (then 200), optionally redirecting.

TLS comes from a trustme CA made per receiver; ``ca_path`` is the bundle a client verifies with.
Started in the test's process on a free port, stopped by the test (``with Receiver() as r``).
"""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

import trustme


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        status, location = self.server.answer(
            Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        )
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Condition()
        self.received: list[Received] = []
        self.script: list[int] = []
        self.redirect_to: str | None = None

    def answer(self, request: Received) -> tuple[int, str | None]:
        with self.lock:
            self.received.append(request)
            self.lock.notify_all()
            if self.redirect_to and request.path != "/moved":
                return 307, self.redirect_to
            return (self.script.pop(0) if self.script else 200), None


class Receiver:
    def __init__(self, tmp: Path, ca: trustme.CA | None = None) -> None:
        self.ca = ca or trustme.CA()
        self.ca_path = str(tmp / "receiver-ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_path)
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self._server = _Server()
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/hook"

    @property
    def received(self) -> list[Received]:
        with self._server.lock:
            return list(self._server.received)

    def fail_next(self, *statuses: int) -> None:
        """Answer the next requests with these statuses (then 200 again)."""
        with self._server.lock:
            self._server.script.extend(statuses)

    def redirect(self, location: str | None) -> None:
        with self._server.lock:
            self._server.redirect_to = location

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> Receiver:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


def deployment_env(connection_string: str, table_prefix: str, **extra: str) -> dict[str, str]:
    """Settings of one test's deployment on the session's Azurite (isolated by names)."""
    suffix = table_prefix[1:11]
    return {
        "AUDITOR_STORAGE": connection_string,
        "AUDITOR_TABLE_PREFIX": table_prefix,
        "AUDITOR_SNAPSHOT_QUEUE": f"snap-{suffix}",
        "AUDITOR_EVIDENCE_CONTAINER": f"ev-{suffix}",
        **extra,
    }
