"""`notify`: send a closed run's digest again to every configured sink."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from auditor.adapters.tables.run_digests import DigestTampered, RunDigestStore
from auditor.commands.output import shown
from auditor.core.snapshot import SNAPSHOT_ID
from auditor.services.notify import Notifier, sinks_from_settings
from auditor.settings import load_settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "notify",
        help="send a closed run's digest again to every configured sink",
        description=(
            "Send the digest of a closed run again to every sink the settings configure "
            "(webhook, Teams or Slack, Event Grid, and the log for Azure Monitor), whatever "
            "their recorded state, with the same event ids (receivers de-duplicate on them). "
            "Each sink's outcome is recorded on the run. Exit code 1 when a sink was not "
            "delivered."
        ),
    )
    parser.add_argument("--slot", metavar="S", required=True, help="the run's slot")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not SNAPSHOT_ID.match(args.slot):
        print(f"error: --slot must be a slot YYYYMMDDTHHMMSSZ, got {args.slot!r}", file=sys.stderr)
        return 2
    settings = load_settings()
    digests = RunDigestStore.from_settings(settings)
    try:
        try:
            found = digests.digest(args.slot)
        except DigestTampered as exc:
            print(f"error: {shown(str(exc))}: not sent", file=sys.stderr)
            return 1
        if found is None:
            print(f"error: run {args.slot} is not closed (or was never planned)", file=sys.stderr)
            return 1
        notifier = Notifier(sinks_from_settings(settings), digests)
        outcomes = notifier.deliver(args.slot, found[1], force=True)
    finally:
        digests.close()
    for delivery in outcomes.values():
        reason = f": {shown(delivery.reason)}" if delivery.reason else ""
        print(f"{delivery.sink}: {delivery.state} ({delivery.attempts} attempts){reason}")
    return 0 if all(d.state == "delivered" for d in outcomes.values()) else 1
