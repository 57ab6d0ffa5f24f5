"""Run every benchmark module (bench/bench_*.py) in its own process, one after another.

Each benchmark prints its own figures and the ratio to the baseline it names, measured in the
same run. `python -m bench NAME ...` runs only the named ones (e.g. `python -m bench collect`).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if argv:
        wanted = {a if a.startswith("bench_") else f"bench_{a}" for a in argv}
        unknown = wanted - set(names)
        if unknown:
            print(f"unknown benchmark(s): {', '.join(sorted(unknown))}; have {', '.join(names)}")
            return 2
        names = [n for n in names if n in wanted]
    failed = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, "-m", f"bench.{name}"], cwd=HERE.parent)
        print(f"--- {name}: exit {code} in {time.monotonic() - started:.1f}s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"\nbenchmarks that missed a target or failed: {', '.join(failed)}")
        return 1
    print("\nall benchmarks met their targets")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
