"""Collect every delegated tenant's Defender for Cloud posture.

Discovery reads subscriptions (``resourcecontainers``) and Lighthouse registration assignments
(``managedserviceresources``); each tenant is then read with two Resource Graph queries (posture
types, and hardening recommendations filtered by key) plus the REST calls Resource Graph cannot
answer. Queries stay inside the simple KQL subset the simulator documents: shaping happens in
the pure normalizers, not in KQL.

A tenant that cannot be read for a lasting reason (403, a rejected query) comes back with an
incomplete or failed completeness record; a transient failure that outlived its retries raises
TransientCollectionError, so the queue path can retry the tenant later.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from auditor import __version__
from auditor.adapters.credentials import build_credential
from auditor.adapters.resource_graph import (
    RETRYABLE_STATUS,
    DeadlineExceeded,
    GraphQueryError,
    QueryStats,
    ResourceGraph,
    prefetch,
)
from auditor.adapters.security_rest import RestStats, SecurityRest
from auditor.adapters.tenants_rest import TenantDirectory
from auditor.core import hardening
from auditor.core.model import Completeness, Subscription, Tenant, TenantPosture
from auditor.core.normalize import (
    POSTURE_TYPES,
    T_RECOMMENDATION,
    T_REGISTRATION_ASSIGNMENT,
    T_SUBSCRIPTION,
    Batch,
)
from auditor.settings import Settings

log = logging.getLogger(__name__)

COLLECTOR_VERSION = f"auditor-collector/{__version__}"


def _kql_list(values: Iterable[str]) -> str:
    # Values are our own constants (types, GUID keys), never caller input.
    return ", ".join(f"'{value}'" for value in values)


DISCOVER_SUBSCRIPTIONS = (
    f"resourcecontainers | where type == '{T_SUBSCRIPTION}' "
    "| project id, name, tenantId, subscriptionId, properties"
)
DISCOVER_DELEGATIONS = (
    f"managedserviceresources | where type =~ '{T_REGISTRATION_ASSIGNMENT}' "
    "| project id, tenantId, subscriptionId, properties"
)
POSTURE_QUERY = (
    f"securityresources | where type in~ ({_kql_list(POSTURE_TYPES)}) "
    "| project id, name, type, subscriptionId, properties"
)
HARDENING_QUERY = (
    f"securityresources | where type == '{T_RECOMMENDATION}' "
    f"and name in~ ({_kql_list(hardening.HARDENING_KEYS)}) "
    "| project id, name, type, subscriptionId, properties"
)


class TransientCollectionError(RuntimeError):
    """The tenant could not be read now (throttling, 5xx, network, time bound): retry later."""


def _is_transient(exc: GraphQueryError) -> bool:
    return isinstance(exc, DeadlineExceeded) or exc.status is None or exc.status in RETRYABLE_STATUS


def tenants_from_rows(
    subscription_rows: Iterable[dict[str, Any]],
    delegation_rows: Iterable[dict[str, Any]],
    names: dict[str, str] | None = None,
) -> list[Tenant]:
    """Group delegated subscriptions by tenant. Pure.

    A subscription counts when a Lighthouse registration assignment delegates it; the managing
    tenant's own subscriptions (no assignment) are not audited. A tenant without a known
    display name is named by its id.
    """
    names = names or {}
    delegated = {
        str(row.get("subscriptionId", "")).lower()
        for row in delegation_rows
        if row.get("subscriptionId")
    }
    by_tenant: dict[str, list[Subscription]] = defaultdict(list)
    for row in subscription_rows:
        sub_id = str(row.get("subscriptionId", "")).lower()
        tenant_id = str(row.get("tenantId", "")).lower()
        if not sub_id or not tenant_id or sub_id not in delegated:
            continue
        props = row.get("properties") if isinstance(row.get("properties"), dict) else {}
        by_tenant[tenant_id].append(
            Subscription(
                subscription_id=sub_id,
                tenant_id=tenant_id,
                display_name=str(row.get("name", "") or sub_id),
                state=str((props or {}).get("state", "") or ""),
            )
        )
    return [
        Tenant(
            tenant_id=tenant_id,
            display_name=names.get(tenant_id, tenant_id),
            subscriptions=tuple(sorted(subs, key=lambda s: s.subscription_id)),
        )
        for tenant_id, subs in sorted(by_tenant.items())
    ]


class Collector:
    """Reads tenants' posture. One per process: the quota pacer and metadata cache are shared."""

    def __init__(
        self,
        settings: Settings,
        credential: TokenCredential | None = None,
        *,
        graph: ResourceGraph | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._credential = credential or build_credential()
        self.graph = graph or ResourceGraph(self._credential, settings.arm_endpoint, sleep=sleep)
        self.rest = SecurityRest(self._credential, settings.arm_endpoint)
        self.version = COLLECTOR_VERSION

    def close(self) -> None:
        self.graph.close()
        self.rest.close()

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def discover(self) -> list[Tenant]:
        """Every delegated tenant with its subscriptions (raises GraphQueryError on failure)."""
        deadline = time.monotonic() + self.settings.collect_timeout_seconds
        stats = QueryStats()
        subscription_rows = [
            row
            for page in self.graph.query(DISCOVER_SUBSCRIPTIONS, stats=stats, deadline=deadline)
            for row in page
        ]
        delegation_rows = [
            row
            for page in self.graph.query(DISCOVER_DELEGATIONS, stats=stats, deadline=deadline)
            for row in page
        ]
        tenants = tenants_from_rows(subscription_rows, delegation_rows, self._tenant_names())
        log.info(
            "discovered tenants",
            extra={"tenants": len(tenants), "queries": stats.queries, "pages": stats.pages},
        )
        return tenants

    def _tenant_names(self) -> dict[str, str]:
        # Names only label the evidence: without them the run goes on, named by tenant id.
        directory = TenantDirectory(self._credential, self.settings.arm_endpoint)
        try:
            return directory.display_names()
        except (HttpResponseError, ServiceRequestError, ServiceResponseError) as exc:
            log.warning("tenant display names unavailable: %s", _first_line(exc))
            return {}
        finally:
            directory.close()

    def collect(self, tenant: Tenant) -> TenantPosture:
        """Read one tenant's posture; failures that will not pass by retrying are recorded."""
        started = time.monotonic()
        deadline = started + self.settings.collect_timeout_seconds
        expected = tuple(s.subscription_id for s in tenant.subscriptions)
        stats = QueryStats()
        rest_stats = RestStats()
        batch = Batch()
        missing: dict[str, str] = {}
        errors: list[str] = []
        warnings: list[str] = []

        for label, query in (("posture", POSTURE_QUERY), ("hardening", HARDENING_QUERY)):
            if missing:
                break  # the whole scope is already known to be unreadable
            try:
                pages = self.graph.query(
                    query, subscriptions=expected, stats=stats, deadline=deadline
                )
                for page in prefetch(pages):
                    batch.extend(page)
            except GraphQueryError as exc:
                if _is_transient(exc):
                    raise TransientCollectionError(f"{label} query: {exc}") from exc
                for sub in expected:
                    missing[sub] = f"{label} query failed: {exc}"

        collected = tuple(sub for sub in expected if sub not in missing)
        metadata = {}
        try:
            metadata = self.rest.assessment_metadata()
        except (HttpResponseError, ServiceRequestError, ServiceResponseError) as exc:
            warnings.append(f"assessment metadata unavailable: {_first_line(exc)}")

        jit: dict[str, int] = {}
        for sub in collected:
            try:
                jit[sub] = self.rest.jit_covered_vms(sub, rest_stats)
            except (HttpResponseError, ServiceRequestError, ServiceResponseError) as exc:
                errors.append(f"subscription {sub}: just-in-time policies: {_first_line(exc)}")

        with_compliance = {record.subscription_id for record in batch.compliance}
        warnings.extend(
            f"subscription {sub}: no regulatory compliance data"
            for sub in collected
            if sub not in with_compliance
        )
        warnings.extend(batch.warnings)
        in_scope = set(collected)
        coverage = hardening.rollup(
            collected,
            (r for r in batch.recommendations if r[0] in in_scope),
            metadata,
            jit,
        )
        completeness = Completeness(
            expected_subscriptions=expected,
            collected_subscriptions=collected,
            missing=missing,
            queries=stats.queries,
            pages=stats.pages,
            rest_calls=rest_stats.calls,
            throttles=stats.throttles,
            retries=stats.retries,
            errors=tuple(errors),
            malformed=dict(batch.malformed),
            warnings=tuple(warnings),
            duration_seconds=round(time.monotonic() - started, 3),
        )

        def mine(records: list[Any]) -> tuple[Any, ...]:
            return tuple(r for r in records if r.subscription_id in in_scope)

        return TenantPosture(
            tenant=tenant,
            compliance=mine(batch.compliance),
            standards=mine(batch.standards),
            controls=mine(batch.controls),
            plans=mine(batch.plans),
            secure_scores=mine(batch.secure_scores),
            secure_score_controls=mine(batch.secure_score_controls),
            hardening=tuple(coverage),
            assignments=mine(batch.assignments),
            completeness=completeness,
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
