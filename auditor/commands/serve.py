"""`serve`: run the HTTP API locally (uvicorn), in local mode, bound to loopback only."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from auditor.api.app import LOCAL_PRINCIPAL
from auditor.core.access import is_principal_name
from auditor.core.loopback import is_loopback

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7071


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the HTTP API locally against the configured storage (Azurite)",
        description=(
            "Serve the auditor API (the same app Azure Functions hosts) with uvicorn, in local "
            "mode: every request comes from one principal (--principal, default local-dev). "
            "Without AUDITOR_ACCESS_POLICY that principal sees every tenant; with it the "
            "policy applies exactly as in Azure. Binds to a loopback address only and answers "
            "only requests addressed to a loopback host; links are built from the bound "
            "address. State-changing requests must be application/json; bodies are capped at "
            "1 MiB. OpenAPI: /api/openapi.json."
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
    import uvicorn

    from auditor.api.hosting import local_app

    address = f"[{args.host.strip('[]')}]" if ":" in args.host else args.host
    base_url = f"http://{address}:{args.port}"
    app, store = local_app(principal=args.principal, base_url=base_url)
    store.create_tables()
    audit = logging.getLogger("auditor.audit")
    audit.setLevel(logging.INFO)
    if not audit.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s audit %(message)s"))
        audit.addHandler(handler)
        audit.propagate = False
    print(
        f"auditor API on {base_url}/api (principal {args.principal})",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    store.close()
    return 0
