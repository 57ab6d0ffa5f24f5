"""A second loopback listener that counts whatever reaches it.

Tests hand its address to the simulator as the "other host" of a foreign nextLink or redirect:
any connection at all means the auditor sent something (perhaps its token) away from Resource
Manager. It accepts, records the bytes, and closes without answering. Started in the test's own
process on a free port and closed by the test (``with CountingListener() as listener``).
"""

from __future__ import annotations

import socket
import socketserver
import threading
from types import TracebackType


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.server.record_connection()
        self.request.settimeout(2.0)
        try:
            while chunk := self.request.recv(65536):
                self.server.record_bytes(chunk)
        except OSError:
            pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Condition()
        self.connections = 0
        self.received = b""

    def record_connection(self) -> None:
        with self.lock:
            self.connections += 1
            self.lock.notify_all()

    def record_bytes(self, chunk: bytes) -> None:
        with self.lock:
            if len(self.received) < 1 << 20:
                self.received += chunk


class CountingListener:
    def __init__(self) -> None:
        self._server = _Server()
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        with self._server.lock:
            return self._server.connections

    @property
    def received(self) -> bytes:
        with self._server.lock:
            return self._server.received

    def wait_for_connections(self, count: int, timeout: float = 10.0) -> int:
        """Block until `count` connections were accepted (or the timeout); the number seen."""
        with self._server.lock:
            self._server.lock.wait_for(lambda: self._server.connections >= count, timeout)
            return self._server.connections

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> CountingListener:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def reachable(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port (a self-check of the listener)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False
