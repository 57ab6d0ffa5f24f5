"""The run digest's figures as Azure Monitor metrics (OpenTelemetry instruments).

Log records alone make every chart a query; metrics give operators charts and metric alerts
over the figures themselves. The instruments are OpenTelemetry's: without a configured provider
the API's meter is a no-op, so tests and local runs emit nothing; in Azure the app exports them
to Application Insights (``configure_from_environment``), with Entra ID authentication when the
platform sets ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING`` (local auth off on the component).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from opentelemetry import metrics

log = logging.getLogger(__name__)

METER = "auditor"
# One gauge per figure of RunDigest.counts: the value of the latest closed run.
RUN_FIGURE = "auditor.run.{name}"
TENANT_REGRESSIONS = "auditor.tenant.regressions"


def record_digest(document: Mapping[str, Any], meter: metrics.Meter | None = None) -> None:
    """Set the run gauges from a digest document (its ``counts``) and each tenant's regressions.
    Attributes carry the slot and, per tenant, its id and status: never names (customer text)."""
    meter = meter or metrics.get_meter(METER)
    slot = str(document["slot"])
    for name, value in sorted(document["counts"].items()):
        gauge = meter.create_gauge(RUN_FIGURE.format(name=name), unit="1")
        gauge.set(int(value), {"slot": slot, "outcome": str(document["outcome"])})
    regressions = meter.create_gauge(TENANT_REGRESSIONS, unit="1")
    for tenant in document["tenants"]:
        summary = tenant.get("summary") or {}
        regressions.set(
            int(summary.get("posture", {}).get("regressed", 0)),
            {"slot": slot, "tenant": str(tenant["tenantId"]), "status": str(tenant["status"])},
        )


def configure_from_environment(env: Mapping[str, str]) -> bool:
    """Export metrics to Application Insights when the app has its connection string; True when
    configured. A bad connection string is logged, never fatal: metrics are not evidence."""
    connection = env.get("APPLICATIONINSIGHTS_CONNECTION_STRING")
    if not connection:
        return False
    from azure.monitor.opentelemetry.exporter import AzureMonitorMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    options: dict[str, Any] = {"connection_string": connection}
    if "AAD" in env.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", ""):
        from auditor.adapters.credentials import build_credential

        options["credential"] = build_credential()
    try:
        exporter = AzureMonitorMetricExporter(**options)
    except ValueError as exc:
        log.error("metrics: not exported to Application Insights: %s", exc)
        return False
    metrics.set_meter_provider(MeterProvider([PeriodicExportingMetricReader(exporter)]))
    return True
