"""`serve`: run the HTTP API and the web dashboard locally (uvicorn), in local mode, bound to
loopback only."""

from __future__ import annotations

import argparse
import errno
import logging
import socket
import sys
import threading
from contextlib import ExitStack
from typing import Any

from auditor.api.app import LOCAL_PRINCIPAL
from auditor.core.access import is_principal_name
from auditor.core.loopback import is_loopback

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7071


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the HTTP API and the web dashboard locally against the configured storage",
        description=(
            "Serve the auditor API (the same app Azure Functions hosts) with uvicorn, in local "
            "mode: every request comes from one principal (--principal, default local-dev). "
            "Without AUDITOR_ACCESS_POLICY that principal sees every tenant; with it the "
            "policy applies exactly as in Azure. Binds to a loopback address only and answers "
            "only requests addressed to a loopback host; links are built from the bound "
            "address. State-changing requests must be application/json; bodies are capped at "
            "1 MiB. The web dashboard is at /; its forms' CSRF tokens are signed with "
            "AUDITOR_WEB_SECRET, or a key made at start. OpenAPI: /api/openapi.json; reference: "
            "/api/docs. "
            "A background thread works "
            "the report queue as `worker --queues reports` does, so requested packs complete."
        ),
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="loopback address (default %(default)s)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="default %(default)s")
    parser.add_argument(
        "--principal",
        default=LOCAL_PRINCIPAL,
        metavar="NAME",
        help="the caller of every request (default %(default)s)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not is_loopback(args.host):
        print(
            f"error: --host must be a loopback address (local mode has no authentication), "
            f"got {args.host!r}",
            file=sys.stderr,
        )
        return 2
    if not is_principal_name(args.principal):
        print(f"error: --principal: {args.principal!r} is not a principal name", file=sys.stderr)
        return 2
    if not 0 < args.port < 65536:
        print(f"error: --port must be 1-65535, got {args.port}", file=sys.stderr)
        return 2
    address = f"[{args.host.strip('[]')}]" if ":" in args.host else args.host
    try:
        # Bound before anything is printed or loaded: a taken port is one line, and the
        # socket handed to uvicorn is the one checked (no window for another server).
        sock = listen(args.host.strip("[]"), args.port)
    except OSError as exc:
        reason = "taken by another program" if exc.errno == errno.EADDRINUSE else exc.strerror
        print(
            f"error: cannot listen on {address}:{args.port}: {reason}; choose another --port",
            file=sys.stderr,
        )
        return 2
    with sock:
        return _serve(args, sock, f"http://{address}:{args.port}")


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on a loopback `host` and `port` (OSError when it cannot be)."""
    family, kind, proto, _, where = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICSERV
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        sock.bind(where)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def _serve(args: argparse.Namespace, sock: socket.socket, base_url: str) -> int:
    import uvicorn

    from auditor.adapters.queues import HostQueueOptions
    from auditor.api.hosting import local_app, settle_heap
    from auditor.services.worker import Worker, open_lanes
    from auditor.settings import load_settings

    settings = load_settings()
    app, store = local_app(settings, principal=args.principal, base_url=base_url)
    store.create_tables()
    lanes = ExitStack()
    # The report queue is worked here, as the collector app's trigger does in Azure, so that
    # POST /reports completes locally (the snapshot queue is left to `worker`: taking
    # snapshots is the collector's business, not the API's).
    worker = Worker(
        open_lanes(settings, ["reports"], lanes),
        HostQueueOptions.from_host_json(),
        until_empty=False,
    )
    working = threading.Thread(target=worker.run, name="auditor-serve-worker", daemon=True)
    audit = logging.getLogger("auditor.audit")
    audit.setLevel(logging.INFO)
    if not audit.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s audit %(message)s"))
        audit.addHandler(handler)
        audit.propagate = False
    settle_heap()
    print(
        f"auditor API on {base_url}/api (principal {args.principal}); reference {base_url}"
        "/api/docs; working the report queue",
        file=sys.stderr,
        flush=True,
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    working.start()
    try:
        server.run(sockets=[sock])
    finally:
        worker.stop()  # finishes a pack in hand; queued ones wait for the next start
        working.join()
        lanes.close()
        store.close()
    return 0
