"""`worker`: work the snapshot and report queues as the Functions host would, outside it."""

from __future__ import annotations

import argparse
import signal
import sys
from contextlib import ExitStack
from types import FrameType
from typing import Any

from auditor.adapters.queues import HostQueueOptions
from auditor.services.worker import QUEUE_KINDS, Worker, open_lanes
from auditor.settings import load_settings


def _kinds(text: str) -> list[str]:
    kinds = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [k for k in kinds if k not in QUEUE_KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(
            f"{text!r}: must be one or more of {', '.join(QUEUE_KINDS)}, comma-separated"
        )
    return list(dict.fromkeys(kinds))


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a whole number, at least 1")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="work the snapshot and report queues as the Functions host would",
        description=(
            "Take messages from the queues and make, for each, the same service call as "
            "function_app.py's queue trigger, with host.json's rules: a message in hand stays "
            "hidden for functionTimeout; a failure is retried after visibilityTimeout and, on "
            "its maxDequeueCount-th dequeue, moved to <queue>-poison. Runs until every queue "
            "is empty (messages awaiting a retry included) or, with --no-until-empty, until "
            "stopped; SIGTERM or Ctrl-C finishes the messages in hand and leaves every other "
            "one in its queue. It schedules nothing: the timers plan runs and packs. Exit "
            "code 1 when a message was moved to a poison queue."
        ),
    )
    parser.add_argument(
        "--queues",
        type=_kinds,
        default=list(QUEUE_KINDS),
        metavar="KINDS",
        help=f"which queues, comma-separated (default {','.join(QUEUE_KINDS)})",
    )
    parser.add_argument(
        "--concurrency",
        type=_positive,
        default=None,
        metavar="N",
        help=(
            "messages worked at once (default: as the host works them on one instance, "
            "host.json's batchSize + newBatchThreshold)"
        ),
    )
    parser.add_argument(
        "--until-empty",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="stop when the queues are empty (default); --no-until-empty waits for more",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    options = HostQueueOptions.from_host_json()
    concurrency = args.concurrency or options.in_hand
    with ExitStack() as stack:
        worker = Worker(
            open_lanes(settings, args.queues, stack),
            options,
            concurrency=concurrency,
            until_empty=args.until_empty,
        )

        def stop(signum: int, _: FrameType | None) -> None:
            print(
                f"{signal.Signals(signum).name}: finishing the messages in hand",
                file=sys.stderr,
                flush=True,
            )
            worker.stop()

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        print(
            f"working {', '.join(args.queues)} with {concurrency} at once, "
            + ("until empty" if args.until_empty else "until stopped"),
            file=sys.stderr,
            flush=True,
        )
        try:
            tally = worker.run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    print(
        f"{tally.succeeded + tally.retried + tally.poisoned} messages: {tally.succeeded} "
        f"succeeded, {tally.retried} to retry, {tally.poisoned} moved to a poison queue"
        + (" (stopped)" if worker.stopping else "")
    )
    return 1 if tally.poisoned else 0
