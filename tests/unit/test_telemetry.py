"""Issue 14: the digest's figures reach Azure Monitor as metrics, not only as log records.

A real OpenTelemetry SDK meter with an in-memory reader stands where the Application Insights
exporter stands in Azure."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from auditor.adapters import telemetry

TENANT = "11111111-1111-1111-1111-111111111111"
DOCUMENT: dict[str, Any] = {
    "slot": "20261201T020000Z",
    "outcome": "partial",
    "counts": {"tenants": 2, "failed": 1, "stale": 1, "poison": 3, "regressed": 1},
    "tenants": [
        {"tenantId": TENANT, "name": "=HYPERLINK(1)", "status": "complete",
         "summary": {"posture": {"regressed": 4}}},
        {"tenantId": "22222222-2222-2222-2222-222222222222", "name": "x", "status": "failed",
         "summary": None},
    ],
}  # fmt: skip


def _points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], int]]]:
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, list[tuple[dict[str, Any], int]]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found[metric.name] = [
                    (dict(p.attributes or {}), int(p.value))  # type: ignore[union-attr]
                    for p in metric.data.data_points
                ]
    return found


def test_every_digest_figure_is_a_gauge_of_the_run_and_each_tenant_has_its_regressions() -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider([reader]).get_meter(telemetry.METER)
    telemetry.record_digest(DOCUMENT, meter)
    points = _points(reader)
    run = {"slot": "20261201T020000Z", "outcome": "partial"}
    for name, value in DOCUMENT["counts"].items():
        assert points[f"auditor.run.{name}"] == [(run, value)]
    by_tenant = {a["tenant"]: (a["status"], v) for a, v in points["auditor.tenant.regressions"]}
    assert by_tenant[TENANT] == ("complete", 4)
    assert by_tenant["22222222-2222-2222-2222-222222222222"] == ("failed", 0)
    # Customer-controlled names never become metric attributes.
    assert all("name" not in a for series in points.values() for a, _ in series)


def test_metrics_are_exported_only_when_the_app_has_an_application_insights_connection() -> None:
    assert telemetry.configure_from_environment({}) is False
    assert (
        telemetry.configure_from_environment({"APPLICATIONINSIGHTS_CONNECTION_STRING": "junk"})
        is False
    )
