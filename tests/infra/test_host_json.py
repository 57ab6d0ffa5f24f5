"""host.json: the audit log is never sampled away (issue 9 §6).

Python log records reach Application Insights as traces. With adaptive sampling on for traces,
a share of the `auditor.audit` records (one per API request) would be dropped under load: an
audit log with holes. Traces are excluded from sampling, and the log level keeps INFO.
"""

from __future__ import annotations

import json
from pathlib import Path

HOST = Path(__file__).resolve().parents[2] / "host.json"
LEVELS = ["Trace", "Debug", "Information", "Warning", "Error", "Critical", "None"]


def test_traces_are_never_sampled() -> None:
    logging = json.loads(HOST.read_text(encoding="utf-8"))["logging"]
    sampling = logging.get("applicationInsights", {}).get("samplingSettings", {})
    if sampling.get("isEnabled", True):  # the platform samples unless told not to
        excluded = {t.strip() for t in sampling.get("excludedTypes", "").split(";")}
        assert "Trace" in excluded
        assert "Request" in excluded and "Exception" in excluded


def test_information_records_of_functions_are_kept() -> None:
    levels = json.loads(HOST.read_text(encoding="utf-8"))["logging"].get("logLevel", {})
    for category in ("default", "Function"):
        level = levels.get(category, "Information")
        assert LEVELS.index(level) <= LEVELS.index("Information"), category
