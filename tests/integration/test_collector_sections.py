"""The collector restricted to fewer sections (the benchmark's baseline: the sections before
issue 12) reads only their queries and rows, and what it collects is what the whole registry
collects of those sections; the sections it leaves out are *not collected*, never empty."""

from __future__ import annotations

from auditor.core import registry
from auditor.services.collect import Collector
from auditor.settings import load_settings
from bench.bench_large_snapshot import VARIANTS
from tests.integration.helpers import make_collector
from tools.azure_sim.launcher import Simulator


def test_a_collector_of_the_sections_before_issue_12_collects_those_alone_and_alike(
    fresh: Simulator,
) -> None:
    baseline = VARIANTS["before issue 12"]
    # As before issue 12: the posture query without alerts or every assessment, and the
    # hardening keys in a query of their own.
    queries = registry.queries(baseline)
    assert list(queries) == ["posture", "hardening"]
    for kind in (registry.ALERT_ROWS, registry.ASSESSMENT_ROWS):
        assert f"'{kind.graph_type}'" not in queries["posture"]
    assert f"'{registry.ASSESSMENT_ROWS.graph_type}'" in queries["hardening"]
    with make_collector() as whole:
        everything = {t.tenant_id: whole.collect(t) for t in whole.discover()}
    with Collector(load_settings(), sections=baseline) as restricted:
        before = {t.tenant_id: restricted.collect(t) for t in restricted.discover()}
    assert before.keys() == everything.keys()
    for tenant_id, posture in before.items():
        full = everything[tenant_id]
        assert posture.sections == {}  # alerts, recommendations: not collected
        assert full.sections.keys() >= {"alerts", "recommendations"}
        for section in baseline:
            assert registry.records_of(posture, section) == registry.records_of(full, section)
