"""``python -m tools.azure_sim``: run the Azure simulator (see docs/simulator.md)."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from .estate import MAX_DAY, SIZES, Estate


def parse_quota(text: str) -> tuple[int, float] | None:
    """``"15/5"`` -> (15, 5.0); ``"off"`` -> None."""
    if text.strip().lower() == "off":
        return None
    try:
        limit_s, window_s = text.split("/")
        limit, window = int(limit_s), float(window_s)
    except ValueError:
        raise argparse.ArgumentTypeError(
            "quota must be LIMIT/WINDOW_S (e.g. 15/5) or off"
        ) from None
    if limit < 1 or window <= 0:
        raise argparse.ArgumentTypeError("quota needs LIMIT >= 1 and WINDOW_S > 0")
    return limit, window


def parse_faults(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError("--faults must be a JSON object") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("--faults must be a JSON object")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.azure_sim", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind (127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port, 0 = pick a free one")
    p.add_argument("--size", choices=sorted(SIZES), default="tiny")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--day", type=int, default=0)
    p.add_argument("--state-dir", required=True, type=Path)
    p.add_argument(
        "--quota",
        type=parse_quota,
        default=(15, 5.0),
        help="ARG quota LIMIT/WINDOW_S or off (default 15/5)",
    )
    p.add_argument("--faults", type=parse_faults, default=None, help="initial faults (JSON)")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if not ipaddress.ip_address(args.host).is_loopback:
            raise ValueError
    except ValueError:
        print("azure_sim: --host must be a loopback address (127.0.0.1)", file=sys.stderr)
        return 2
    if not 0 <= args.day <= MAX_DAY:
        print(f"azure_sim: --day must be between 0 and {MAX_DAY}", file=sys.stderr)
        return 2

    import trustme  # only the server process needs it

    from .server import SimServer, SimState

    state_dir: Path = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    ready = state_dir / "ready.json"
    if ready.exists():
        ready.unlink()

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
    ca_path = state_dir / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)

    try:
        state = SimState(
            Estate(args.size, args.seed), day=args.day, quota=args.quota, faults=args.faults
        )
    except ValueError as exc:
        print(f"azure_sim: {exc}", file=sys.stderr)
        return 2
    server = SimServer((args.host, args.port), state, ctx)
    server.verbose = args.verbose  # type: ignore[attr-defined]
    port = server.server_address[1]
    base_url = f"https://{args.host}:{port}"
    state.base_url = base_url

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    thread = threading.Thread(
        target=server.serve_forever, args=(0.1,), name="azure-sim", daemon=True
    )
    thread.start()

    info = {
        "pid": os.getpid(),
        "port": port,
        "base_url": base_url,
        "ca_bundle": str(ca_path),
        "identity_endpoint": f"{base_url}/msi/token",
        "identity_header": state.identity_header,
    }
    tmp = state_dir / f".ready.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(info))
    os.replace(tmp, ready)
    print(json.dumps(info), flush=True)

    try:
        while not stop.wait(0.2):
            pass
    finally:
        server.shutdown()
        server.server_close()
        try:
            if json.loads(ready.read_text()).get("pid") == os.getpid():
                ready.unlink()
        except (OSError, ValueError):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
