"""Run checkov over infra/ offline and fail on anything that is not a clean pass.

    python tools/check_infra.py [--dir infra] [--report out/checkov.json]

checkov parses the Bicep files natively (pycep-parser) and applies its Azure checks. It exits 0
even when a file could not be parsed, so this script reads the JSON report itself and exits
non-zero on any failed check, any parsing error, any check that crashed while running (checkov
only logs those), any suppression without a written reason, or a scan that found no resource at
all (a wrong path would otherwise pass silently). The last line printed is always

    checkov: N passed, M failed, K skipped, P parsing errors
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / "infra"

# checkov logs a check that raised instead of returning a result like this, and moves on.
_CRASHED_CHECK = re.compile(r"Failed to run check (\S+) on (\S+)")
# The default text checkov records when a skip comment gives no reason.
_NO_REASON = {"", "no comment provided"}


@dataclass
class Outcome:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    parsing_errors: int = 0
    resource_count: int = 0
    failures: list[str] = field(default_factory=list)
    unparsed_files: list[str] = field(default_factory=list)
    crashed_checks: list[str] = field(default_factory=list)
    unexplained_skips: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.failed == 0
            and self.parsing_errors == 0
            and not self.crashed_checks
            and not self.unexplained_skips
            and self.resource_count > 0
        )

    def summary_line(self) -> str:
        return (
            f"checkov: {self.passed} passed, {self.failed} failed, {self.skipped} skipped, "
            f"{self.parsing_errors} parsing errors"
        )


def _suppress_comment(check: dict[str, Any]) -> str:
    result = check.get("check_result") or {}
    if isinstance(result, dict):
        return str(result.get("suppress_comment") or "")
    # Some checkov versions serialise check_result as the repr of a dict.
    match = re.search(r"'suppress_comment':\s*'([^']*)'", str(result))
    return match.group(1) if match else ""


def evaluate(report: Any, stderr: str = "") -> Outcome:
    """Read checkov's JSON report (one framework: a dict; several: a list) and its stderr."""
    reports = report if isinstance(report, list) else [report]
    outcome = Outcome()
    for item in reports:
        if not isinstance(item, dict):
            continue
        # With nothing to scan checkov prints the bare summary instead of a full report.
        summary = item.get("summary", item)
        outcome.passed += int(summary.get("passed", 0))
        outcome.failed += int(summary.get("failed", 0))
        outcome.skipped += int(summary.get("skipped", 0))
        outcome.parsing_errors += int(summary.get("parsing_errors", 0))
        outcome.resource_count += int(summary.get("resource_count", 0))
        results = item.get("results", {})
        for check in results.get("failed_checks", []):
            outcome.failures.append(
                f"{check.get('check_id')} {check.get('resource')} "
                f"({check.get('repo_file_path') or check.get('file_path')}): "
                f"{check.get('check_name')}"
            )
        outcome.unparsed_files.extend(str(path) for path in results.get("parsing_errors", []))
        for check in results.get("skipped_checks", []):
            if _suppress_comment(check).strip().lower() in _NO_REASON:
                outcome.unexplained_skips.append(f"{check.get('check_id')} {check.get('resource')}")
    outcome.crashed_checks = sorted(
        {f"{m.group(1)} on {m.group(2)}" for m in _CRASHED_CHECK.finditer(stderr)}
    )
    # A parsing error listed by file but not counted (or the reverse) still counts.
    outcome.parsing_errors = max(outcome.parsing_errors, len(outcome.unparsed_files))
    return outcome


def _checkov_command() -> list[str]:
    beside_python = Path(sys.executable).parent / "checkov"
    if beside_python.exists():
        return [str(beside_python)]
    found = shutil.which("checkov")
    if found:
        return [found]
    raise FileNotFoundError("checkov is not installed: pip install -r requirements-dev.txt")


def run_checkov(directory: Path) -> tuple[Any, str, float]:
    command = [
        *_checkov_command(),
        "--skip-download",
        "--framework",
        "bicep",
        "--directory",
        str(directory),
        "--output",
        "json",
    ]
    started = time.monotonic()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    # 0: no failed check, 1: failed checks. Anything else is checkov itself failing.
    if proc.returncode not in (0, 1):
        raise RuntimeError(
            f"checkov exited {proc.returncode}:\n{proc.stderr[-4000:] or proc.stdout[-4000:]}"
        )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise RuntimeError(
            f"checkov printed no JSON report ({exc}):\n{proc.stdout[-2000:]}"
        ) from None
    return report, proc.stderr, elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="folder of .bicep files")
    parser.add_argument("--report", type=Path, help="also write checkov's JSON report here")
    args = parser.parse_args(argv)

    try:
        report, stderr, elapsed = run_checkov(args.dir)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"check_infra: {exc}", file=sys.stderr)
        print("checkov: 0 passed, 0 failed, 0 skipped, 0 parsing errors (checkov did not run)")
        return 2
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=2), encoding="utf-8")

    outcome = evaluate(report, stderr)
    for line in outcome.failures:
        print(f"FAILED  {line}")
    for path in outcome.unparsed_files:
        print(
            f"PARSING ERROR  {path} (pycep-parser could not read it: plain resource blocks "
            "only, no deployer(), no user-defined functions)"
        )
    for line in outcome.crashed_checks:
        print(f"CHECK CRASHED  {line} (the check did not evaluate this resource)")
    for line in outcome.unexplained_skips:
        print(f"SKIPPED WITHOUT REASON  {line} (write '// checkov:skip=ID: reason')")
    if outcome.resource_count == 0:
        print(f"NO RESOURCES  checkov scanned no Bicep resource under {args.dir}")
    print(f"checkov took {elapsed:.1f} s on {args.dir}")
    print(outcome.summary_line())
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
