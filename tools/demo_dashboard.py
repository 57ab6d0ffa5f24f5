"""The dashboard steps of `make demo` and `make serve`: serve the app on loopback, say where.

`make demo` ends by serving the dashboard over what it stored and printing its address; when
attached to a terminal it keeps the stack up until the user presses Enter (in CI it checks
that the dashboard answers, then stops as before). `make serve` (``python -m tools.demo
--serve``) does only the two days of snapshots and then serves until Enter or Ctrl-C.
"""

from __future__ import annotations

import sys
import threading

import httpx

from tools.devservices import serve_api


def dashboard_step(env: dict[str, str], *, wait: bool) -> None:
    """Serve the dashboard over `env`'s storage; wait for Enter (or Ctrl-C) when `wait`."""
    with serve_api(env, timeout=60) as base:
        status = httpx.get(base + "/", timeout=60).status_code
        print(f"\n── Dashboard\n  {base}/  (the API: {base}/api/tenants; answered {status})")
        if not wait:
            return
        print("  Press Enter to stop everything (or Ctrl-C).", flush=True)
        try:
            if sys.stdin.isatty():
                sys.stdin.readline()
            else:
                threading.Event().wait()  # `--serve` without a terminal: until Ctrl-C/SIGTERM
        except KeyboardInterrupt:
            pass
