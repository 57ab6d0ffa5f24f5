"""The dashboard steps of `make demo` and `make serve`: serve the app on loopback, say where.

`make demo` ends by serving the dashboard over what it stored and printing its address; when
attached to a terminal it keeps the stack up until the user presses Enter (in CI it checks
that the dashboard answers, then stops as before). `make serve` (``python -m tools.demo
--serve``) does only the two days of snapshots and then serves until Enter, Ctrl-C or SIGTERM
(each stops every service it started).
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

import httpx

from tools.devservices import serve_api


def _until_stopped(read_enter: bool) -> None:
    """Block until Enter (when `read_enter`), SIGINT or SIGTERM."""
    stop = threading.Event()

    def on_signal(_: int, __: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    if read_enter:
        threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def dashboard_step(env: dict[str, str], *, wait: bool) -> None:
    """Serve the dashboard over `env`'s storage; when `wait`, until stopped."""
    with serve_api(env, timeout=60) as base:
        status = httpx.get(base + "/", timeout=60).status_code
        print(f"\n── Dashboard\n  {base}/  (the API: {base}/api/tenants; answered {status})")
        if not wait:
            return
        terminal = sys.stdin.isatty()
        print(f"  {'Press Enter' if terminal else 'Send SIGTERM'} to stop everything (or Ctrl-C).",
              flush=True)  # fmt: skip
        _until_stopped(read_enter=terminal)
