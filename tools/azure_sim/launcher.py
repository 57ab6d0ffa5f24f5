"""Start and drive the simulator from tests and tools.

    from tools.azure_sim.launcher import start_simulator

    with start_simulator(tmp_path, size="tiny", quota=None) as sim:
        os.environ.update(sim.env())
        ...
        sim.set_day(1)
        truth = sim.estate()

The simulator runs as a separate process (``sys.executable -m tools.azure_sim``) so that the
product under test talks to it over real HTTPS, exactly as to Azure.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[2]

# Variables that would make DefaultAzureCredential (or MSAL) pick another credential or another
# managed identity flavour than App Service's.
CONFLICTING_ENV = (
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "IMDS_ENDPOINT",
    "IDENTITY_SERVER_THUMBPRINT",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
)


class SimulatorError(RuntimeError):
    pass


class Simulator:
    """A running simulator process and its control API."""

    def __init__(self, process: subprocess.Popen[bytes], state_dir: Path, info: dict[str, Any]):
        self.process = process
        self.state_dir = state_dir
        self.info = info
        self.pid: int = int(info["pid"])
        self.port: int = int(info["port"])
        self.base_url: str = info["base_url"]
        self.ca_bundle: str = info["ca_bundle"]
        self.identity_endpoint: str = info["identity_endpoint"]
        self.identity_header: str = info["identity_header"]
        self._ssl = ssl.create_default_context(cafile=self.ca_bundle)
        self._lock = threading.Lock()
        self._conn: http.client.HTTPSConnection | None = None

    # --- environment for the product --------------------------------------------------------

    def env(self) -> dict[str, str]:
        """Variables a process needs so that DefaultAzureCredential and the product use the
        simulator. Also unset ``CONFLICTING_ENV`` in that process."""
        return {
            "IDENTITY_ENDPOINT": self.identity_endpoint,
            "IDENTITY_HEADER": self.identity_header,
            "REQUESTS_CA_BUNDLE": self.ca_bundle,
            "SSL_CERT_FILE": self.ca_bundle,
            "AUDITOR_ARM_ENDPOINT": self.base_url,
        }

    # --- control API -------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        host = urlsplit(self.base_url).hostname or "127.0.0.1"
        data = None if body is None else json.dumps(body).encode()
        headers = {"X-Sim-Control": self.identity_header, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        with self._lock:
            for attempt in (1, 2):  # a kept-alive connection may have been closed by the server
                if self._conn is None:
                    self._conn = http.client.HTTPSConnection(
                        host, self.port, context=self._ssl, timeout=120
                    )
                try:
                    self._conn.request(method, path, body=data, headers=headers)
                    resp = self._conn.getresponse()
                    payload = resp.read()
                    break
                except (http.client.HTTPException, ConnectionError, ssl.SSLError):
                    self._conn.close()
                    self._conn = None
                    if attempt == 2:
                        raise
        if resp.status != 200:
            raise SimulatorError(f"{method} {path} -> {resp.status}: {payload[:500]!r}")
        return json.loads(payload)

    def set_day(self, day: int) -> None:
        self._call("POST", "/_sim/day", {"day": day})

    def set_faults(self, faults: dict[str, Any]) -> dict[str, Any]:
        """Merge faults; ``{}`` clears them all. Returns the faults now in force."""
        result: dict[str, Any] = self._call("POST", "/_sim/faults", faults)
        return result

    def clear_faults(self) -> dict[str, Any]:
        return self.set_faults({})

    def set_quota(self, limit: int | None, window_s: float = 5.0) -> None:
        """``set_quota(15, 5)``; ``set_quota(None)`` turns the quota off. Resets usage."""
        body = {"off": True} if limit is None else {"limit": limit, "window_s": window_s}
        self._call("POST", "/_sim/quota", body)

    def estate(self, day: int | None = None, *, details: bool = True) -> dict[str, Any]:
        q = [] if day is None else [f"day={day}"]
        if not details:
            q.append("details=0")
        result: dict[str, Any] = self._call(
            "GET", "/_sim/estate" + ("?" + "&".join(q) if q else "")
        )
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/_sim/stats")
        return result

    def reset_stats(self) -> None:
        self._call("POST", "/_sim/reset-stats")

    def config(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/_sim/config")
        return result

    # --- lifecycle ---------------------------------------------------------------------------

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        if self.process.poll() is not None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)

    def __enter__(self) -> Simulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_simulator(
    state_dir: str | os.PathLike[str],
    *,
    size: str = "tiny",
    seed: int = 1,
    day: int = 0,
    quota: str | None = "15/5",
    faults: dict[str, Any] | None = None,
    timeout: float = 60.0,
    port: int = 0,
    verbose: bool = False,
) -> Simulator:
    """Spawn ``python -m tools.azure_sim`` and wait until its ready.json appears.

    ``quota`` is ``"LIMIT/WINDOW_S"``, ``"off"`` or ``None`` (off).
    """
    sdir = Path(state_dir).resolve()
    sdir.mkdir(parents=True, exist_ok=True)
    ready = sdir / "ready.json"
    if ready.exists():
        ready.unlink()
    cmd = [
        sys.executable,
        "-m",
        "tools.azure_sim",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--size",
        size,
        "--seed",
        str(seed),
        "--day",
        str(day),
        "--state-dir",
        str(sdir),
        "--quota",
        "off" if quota is None else quota,
    ]
    if faults:
        cmd += ["--faults", json.dumps(faults)]
    if verbose:
        cmd.append("--verbose")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    log = open(sdir / "sim.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    finally:
        log.close()
    deadline = time.monotonic() + timeout
    while True:
        if ready.exists():
            try:
                info = json.loads(ready.read_text())
            except ValueError:
                info = None
            if info and info.get("pid") == proc.pid:
                return Simulator(proc, sdir, info)
        if proc.poll() is not None:
            tail = (sdir / "sim.log").read_text(errors="replace")[-2000:]
            raise SimulatorError(f"simulator exited with {proc.returncode}:\n{tail}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise SimulatorError(f"simulator not ready within {timeout} s")
        time.sleep(0.05)
