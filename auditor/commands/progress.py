"""Progress on a terminal: one line on standard error, rewritten in place and erased at the end.

Only when standard error is a terminal (a pipe or a log file gets results, not carriage
returns), as `collect` and `snapshot` show it.
"""

from __future__ import annotations

import sys

from auditor.core.model import Tenant


class Progress:
    """`progress(number, total, tenant)` callback that draws `<verb> tenant 2/5 <id> (...)`."""

    def __init__(self, verb: str) -> None:
        self._verb = verb
        self._shown = sys.stderr.isatty()
        self._drawn = False

    def __call__(self, number: int, total: int, tenant: Tenant) -> None:
        if not self._shown:
            return
        print(
            f"\r\033[K{self._verb} tenant {number}/{total} {tenant.tenant_id} "
            f"({len(tenant.subscriptions)} subscriptions)...",
            end="",
            file=sys.stderr,
            flush=True,
        )
        self._drawn = True

    def done(self) -> None:
        """Erase the line (results follow on standard output)."""
        if self._drawn:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
            self._drawn = False
