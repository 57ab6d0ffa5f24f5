"""`python -m auditor`: one subcommand per use case, each in its own module under commands/.

A command module exposes ``register(subparsers)``, which adds its parser and sets
``handler=`` (a function taking the parsed namespace and returning the exit code).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from auditor import __version__
from auditor.commands.output import PlainTextStream
from auditor.core.text import plain_text
from auditor.settings import Settings, SettingsError, load_settings

# Order is the order of `--help`.
COMMANDS: tuple[str, ...] = (
    "collect",
    "snapshot",
    "tenants",
    "snapshots",
    "diff",
    "serve",
    "worker",
    "report",
    "verify",
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 2  # storage or the control plane could not be reached (one line, no trace)


class UsageError(Exception):
    """A command line argparse refuses: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    # One line in words instead of the usage block (bad input gets a clear error, no noise);
    # `--help` still prints the whole usage.
    def error(self, message: str) -> NoReturn:
        raise UsageError(re.sub(r"^argument ([^:]+): ", r"\1: ", message))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m auditor",
        description=(
            "Daily, evidenced Defender for Cloud compliance of Lighthouse-delegated tenants."
        ),
    )
    parser.add_argument("--version", action="version", version=f"auditor {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log progress and SDK details to stderr"
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"auditor.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"error: {plain_text(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        # The SDKs log every HTTP request at INFO and retell failures at WARNING (a refused
        # token prints the whole credential chain, 20 lines); keep the terminal for results
        # and one-line errors.
        logging.getLogger("azure").setLevel(logging.ERROR)
        # The snapshot service's structured events are for the Functions host's log (Application
        # Insights); a command prints its own account of the same outcomes.
        logging.getLogger("auditor.snapshot").setLevel(logging.CRITICAL)
    # Whatever a command prints, no control character of a tenant's text reaches the terminal.
    stdout = sys.stdout
    sys.stdout = PlainTextStream(stdout)
    try:
        code: int = args.handler(args)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        line = _outage(exc)
        if line is None:
            raise
        print(f"error: {plain_text(line)}", file=sys.stderr)
        return EXIT_UNREACHABLE
    finally:
        sys.stdout.flush()
        sys.stdout = stdout
    return code


def _settings() -> Settings | None:
    try:
        return load_settings()
    except SettingsError:
        return None


def _outage(exc: Exception) -> str | None:
    """One line for an exception that says a service could not be reached (or gave no token),
    None for anything else (a bug keeps its traceback)."""
    from auditor.adapters.reach import unreachable

    return unreachable(exc, _settings())
