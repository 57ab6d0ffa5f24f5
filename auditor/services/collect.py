"""Collect every delegated tenant's Defender for Cloud posture.

Discovery reads subscriptions (``resourcecontainers``) and Lighthouse registration assignments
(``managedserviceresources``); each tenant is then read with two Resource Graph queries (posture
types, and hardening recommendations filtered by key) plus the REST calls Resource Graph cannot
answer. Queries stay inside the simple KQL subset the simulator documents: shaping happens in
the pure normalizers, not in KQL.

A tenant that cannot be read for a lasting reason (403, a rejected query) comes back with an
incomplete or failed completeness record; a transient failure that outlived its retries raises
TransientCollectionError, so the queue path can retry the tenant later. A read that stops early
because of what the control plane sent (a cap, a repeating or untrusted link, a malformed page;
auditor/adapters/bounded.py) keeps what was read and makes the tenant incomplete with the reason.

Tenant-level data (assessment metadata, the tenant directory) that cannot be read to its end
makes every tenant relying on it incomplete with the reason, collected by this process, until
it is read: the run goes on. Discovery itself failing fails the run: DiscoveryFailed.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from azure.core.credentials import TokenCredential

from auditor import __version__
from auditor.adapters.arm_lists import ArmCallError, ListStats
from auditor.adapters.bounded import (
    CollectionStopped,
    LimitReached,
    MalformedAnswer,
    TimeBoundReached,
)
from auditor.adapters.credentials import build_credential
from auditor.adapters.quota_lease import shared_pacer
from auditor.adapters.reach import Unreachable
from auditor.adapters.resource_graph import (
    RETRYABLE_STATUS,
    DeadlineExceeded,
    GraphQueryError,
    QueryStats,
    ResourceGraph,
    prefetch,
)
from auditor.adapters.security_rest import SecurityRest
from auditor.adapters.tenants_rest import TenantDirectory
from auditor.core.model import (
    MALFORMED_PAGES,
    Completeness,
    RecommendationMetadata,
    Subscription,
    Tenant,
    TenantPosture,
)
from auditor.core.normalize import T_REGISTRATION_ASSIGNMENT, T_SUBSCRIPTION
from auditor.core.quoted import first_line, quote
from auditor.core.registry import (
    REGISTRY,
    Batch,
    Derivation,
    Section,
    empty_posture,
    posture_of,
    queries,
)
from auditor.core.snapshot import is_tenant_id
from auditor.settings import Settings

log = logging.getLogger(__name__)
_T = TypeVar("_T")

COLLECTOR_VERSION = f"auditor-collector/{__version__}"


DISCOVER_SUBSCRIPTIONS = (
    f"resourcecontainers | where type == '{T_SUBSCRIPTION}' "
    "| project id, name, tenantId, subscriptionId, properties"
)
DISCOVER_DELEGATIONS = (
    f"managedserviceresources | where type =~ '{T_REGISTRATION_ASSIGNMENT}' "
    "| project id, tenantId, subscriptionId, properties"
)
# One query per query group of the section registry (auditor/core/registry.py).
TENANT_QUERIES: dict[str, str] = queries()


class TransientCollectionError(RuntimeError):
    """The tenant could not be read now (throttling, 5xx, network, time bound): retry later."""


class DiscoveryFailed(Unreachable):
    """Discovery could not list the delegated tenants (after its retries, or because of what
    the control plane answered). str() is one line: the reason. Nothing can be collected.

    An Unreachable (auditor/adapters/reach.py): every command that reports an unreachable
    control plane in one line with exit 2 reports this one the same way."""


# What a REST read can fail with: an error answer, or a stop for a lasting reason.
_REST_FAILURES = (ArmCallError, CollectionStopped)


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

    A row that is not an object, or a delegated subscription whose subscription or tenant id is
    not a GUID, is malformed: MalformedAnswer (those ids name storage keys and URLs).
    """
    names = names or {}
    delegated = set()
    for row in delegation_rows:
        if not isinstance(row, dict):
            raise MalformedAnswer("a delegation row is not an object")
        if isinstance(row.get("subscriptionId"), str) and row["subscriptionId"]:
            delegated.add(row["subscriptionId"].lower())
    by_tenant: dict[str, list[Subscription]] = defaultdict(list)
    for row in subscription_rows:
        if not isinstance(row, dict):
            raise MalformedAnswer("a subscription row is not an object")
        sub_id = _text(row.get("subscriptionId")).lower()
        if not sub_id or sub_id not in delegated:
            continue
        tenant_id = _text(row.get("tenantId")).lower()
        if not is_tenant_id(sub_id) or not is_tenant_id(tenant_id):
            raise MalformedAnswer(
                f"subscription row {quote(sub_id)} of tenant {quote(tenant_id)}: "
                "an id is not a GUID"
            )
        props = row.get("properties") if isinstance(row.get("properties"), dict) else {}
        by_tenant[tenant_id].append(
            Subscription(
                subscription_id=sub_id,
                tenant_id=tenant_id,
                display_name=_text(row.get("name")) or sub_id,
                state=_text((props or {}).get("state")),
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


class _TenantLevel(Generic[_T]):
    """A tenant-level read shared by every tenant of the process (assessment metadata, the
    tenant directory). Kept once read to its end; a failure is remembered for RETRY_SECONDS,
    reported to every tenant relying on it meanwhile, then tried again, so a hostile or slow
    answer costs the process one bounded read, not one per tenant."""

    RETRY_SECONDS = 600.0

    def __init__(self, what: str, read: Callable[[float | None, ListStats], _T]) -> None:
        self._what = what
        self._read = read
        self._value: _T | None = None
        self._failure: tuple[float, str] | None = None  # (when, reason)

    def get(self, deadline: float | None, stats: ListStats) -> _T:
        """The value; _Unavailable(reason) when it cannot be read (calls counted on `stats`)."""
        if self._value is not None:
            return self._value
        now = time.monotonic()
        if self._failure is not None and now - self._failure[0] < self.RETRY_SECONDS:
            raise _Unavailable(self._failure[1])
        try:
            self._value = self._read(deadline, stats)
        except _REST_FAILURES as exc:
            reason = first_line(exc)
            if not reason.startswith(self._what):
                reason = f"{self._what}: {reason}"
            if not isinstance(exc, TimeBoundReached):  # that tenant's time, not the data's fault
                self._failure = (now, reason)
            raise _Unavailable(reason) from exc
        self._failure = None
        return self._value


class _Unavailable(Exception):
    """Tenant-level data could not be read; str() is the reason."""


class Collector:
    """Reads tenants' posture. One per process: the quota pacer and tenant-level data are shared."""

    def __init__(
        self,
        settings: Settings,
        credential: TokenCredential | None = None,
        *,
        graph: ResourceGraph | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rest_backoff_base: float = 0.5,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sections: Sequence[Section[Any]] = REGISTRY,
    ) -> None:
        self.settings = settings
        # The sections it collects: the whole registry; fewer (a benchmark's baseline) read
        # only their own queries and rows.
        self.sections = tuple(sections)
        self._queries = TENANT_QUERIES if self.sections == REGISTRY else queries(self.sections)
        # "Now" of the data read (look-backs count from it): the wall clock against Azure.
        self._clock = clock
        self.limits = settings.collect_limits
        self._credential = credential or build_credential()
        # Every worker of the identity shares its Resource Graph quota (quota_lease.py).
        self._shared_pacer = shared_pacer(settings) if graph is None else None
        self.graph = graph or ResourceGraph(
            self._credential,
            settings.arm_endpoint,
            sleep=sleep,
            limits=self.limits,
            pacer=self._shared_pacer,
        )
        self.rest = SecurityRest(
            self._credential, settings.arm_endpoint, self.limits, backoff_base=rest_backoff_base
        )
        self._directory_client = TenantDirectory(
            self._credential, settings.arm_endpoint, self.limits, backoff_base=rest_backoff_base
        )
        self._metadata = _TenantLevel("assessment metadata", self.rest.assessment_metadata)
        self._directory = _TenantLevel("tenant directory", self._directory_client.display_names)
        self.version = COLLECTOR_VERSION

    def close(self) -> None:
        self.graph.close()
        if self._shared_pacer is not None:
            self._shared_pacer.close()
        self.rest.close()
        self._directory_client.close()

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def discover(self) -> list[Tenant]:
        """Every delegated tenant with its subscriptions; DiscoveryFailed (one line) when the
        tenants cannot be listed, after the query's own retries."""
        deadline = time.monotonic() + self.settings.collect_timeout_seconds
        stats = QueryStats()
        try:
            subscription_rows = self._rows(DISCOVER_SUBSCRIPTIONS, stats, deadline)
            delegation_rows = self._rows(DISCOVER_DELEGATIONS, stats, deadline)
            names = self._names(deadline)
            tenants = tenants_from_rows(subscription_rows, delegation_rows, names)
        except Unreachable as exc:  # already one line naming what could not be reached
            raise DiscoveryFailed(str(exc)) from exc
        except (GraphQueryError, CollectionStopped) as exc:
            raise DiscoveryFailed(f"discovery failed: {first_line(exc)}") from exc
        log.info(
            "discovered tenants",
            extra={"tenants": len(tenants), "queries": stats.queries, "pages": stats.pages},
        )
        return tenants

    def _rows(self, query: str, stats: QueryStats, deadline: float) -> list[dict[str, Any]]:
        return [
            row for page in self.graph.query(query, stats=stats, deadline=deadline) for row in page
        ]

    def _names(self, deadline: float | None) -> dict[str, str]:
        # Names only label the evidence: without them discovery goes on, tenants named by id;
        # each tenant left unnamed is then incomplete with the reason (see collect).
        try:
            return self._directory.get(deadline, ListStats())
        except _Unavailable as exc:
            log.warning("tenant display names unavailable: %s", exc)
            return {}

    def collect(self, tenant: Tenant, until: float | None = None) -> TenantPosture:
        """Read one tenant's posture; failures that will not pass by retrying are recorded.

        `until` is the run's deadline (epoch seconds): when it comes before the collection's
        own time bound, a query still waiting then (for quota, a retry) is not read, and the
        tenant is incomplete with the reason (failed when nothing was read) instead of being
        handed back for a retry that would end past the run."""
        started = time.monotonic()
        deadline = started + self.settings.collect_timeout_seconds
        run_bound = until is not None and started + (until - time.time()) < deadline
        if run_bound and until is not None:
            deadline = started + (until - time.time())
        expected = tuple(s.subscription_id for s in tenant.subscriptions)
        stats = QueryStats()
        rest_stats = ListStats()
        batch = Batch(self.sections)
        missing: dict[str, str] = {}
        errors: list[str] = []
        pages_stopped = 0

        for label, query in self._queries.items():
            if missing:
                break  # the whole scope is already known to be unreadable
            try:
                pages = self.graph.query(
                    query, subscriptions=expected, stats=stats, deadline=deadline
                )
                for page in prefetch(pages):
                    batch.extend(page)
            except DeadlineExceeded as exc:
                if not run_bound:
                    raise TransientCollectionError(f"{label} query: {exc}") from exc
                labels = list(TENANT_QUERIES)
                unread = ", ".join(labels[labels.index(label) :])
                reason = f"the run's deadline came before these queries were read: {unread} ({exc})"
                if stats.pages == 0:  # nothing read: the tenant failed, with the reason
                    missing.update((sub, reason) for sub in expected)
                else:
                    errors.append(reason)
                break
            except GraphQueryError as exc:
                if _is_transient(exc):
                    raise TransientCollectionError(f"{label} query: {exc}") from exc
                for sub in expected:
                    missing[sub] = f"{label} query failed: {exc}"
            except CollectionStopped as exc:
                # What was read stays; the tenant is incomplete with the reason.
                errors.append(f"{label} query stopped early: {first_line(exc)}")
                pages_stopped += isinstance(exc, MalformedAnswer)
                if isinstance(exc, LimitReached) and stats.rows >= self.limits.max_rows_per_tenant:
                    break  # the next query would meet the same cap at once

        collected = tuple(sub for sub in expected if sub not in missing)
        tenant, name_problem = self._named(tenant, rest_stats, deadline)
        errors.extend(name_problem)
        metadata: dict[str, RecommendationMetadata] = {}
        try:
            metadata = self._metadata.get(deadline, rest_stats)
        except _Unavailable as exc:
            errors.append(
                f"{exc} (tenant-level data: hardening rows lack severity and remediation)"
            )
        jit, jit_errors, jit_malformed = self._jit(collected, rest_stats, deadline)
        errors.extend(jit_errors)
        pages_stopped += jit_malformed

        malformed = dict(batch.malformed)
        if pages_stopped:
            malformed[MALFORMED_PAGES] = malformed.get(MALFORMED_PAGES, 0) + pages_stopped
        return self._posture(
            tenant,
            batch,
            expected=expected,
            collected=collected,
            missing=missing,
            metadata=metadata,
            jit=jit,
            completeness_counts={
                "queries": stats.queries,
                "pages": stats.pages,
                "rest_calls": rest_stats.calls,
                "throttles": stats.throttles + rest_stats.throttles,
                "retries": stats.retries + rest_stats.retries,
            },
            errors=errors,
            malformed=malformed,
            started=started,
        )

    def _named(self, tenant: Tenant, stats: ListStats, deadline: float) -> tuple[Tenant, list[str]]:
        """The tenant with its display name when discovery could not give one (the queue path
        reads the directory in the worker); a reason when the directory cannot be read."""
        if tenant.display_name != tenant.tenant_id:
            return tenant, []
        try:
            name = self._directory.get(deadline, stats).get(tenant.tenant_id)
        except _Unavailable as exc:
            return tenant, [f"{exc} (the tenant is named by its id)"]
        if name:
            tenant = Tenant(tenant.tenant_id, name, tenant.subscriptions)
        return tenant, []

    def _jit(
        self, subscriptions: tuple[str, ...], stats: ListStats, deadline: float
    ) -> tuple[dict[str, int], list[str], int]:
        """(covered VMs per subscription read, errors, malformed pages)."""
        jit: dict[str, int] = {}
        errors: list[str] = []
        malformed = 0
        for number, sub in enumerate(subscriptions):
            try:
                jit[sub] = self.rest.jit_covered_vms(sub, stats, deadline)
            except TimeBoundReached as exc:
                left = len(subscriptions) - number
                errors.append(
                    f"just-in-time policies of {left} subscription(s) not read: {first_line(exc)}"
                )
                break
            except _REST_FAILURES as exc:
                errors.append(f"subscription {sub}: {first_line(exc)}")
                malformed += isinstance(exc, MalformedAnswer)
        return jit, errors, malformed

    def _posture(
        self,
        tenant: Tenant,
        batch: Batch,
        *,
        expected: tuple[str, ...],
        collected: tuple[str, ...],
        missing: dict[str, str],
        metadata: dict[str, RecommendationMetadata],
        jit: dict[str, int],
        completeness_counts: dict[str, int],
        errors: list[str],
        malformed: dict[str, int],
        started: float,
    ) -> TenantPosture:
        with_compliance = {record.subscription_id for record in batch["compliance"]}
        warnings = [
            f"subscription {sub}: no regulatory compliance data"
            for sub in collected
            if sub not in with_compliance
        ]
        warnings.extend(batch.warnings)
        completeness = Completeness(
            expected_subscriptions=expected,
            collected_subscriptions=collected,
            missing=missing,
            errors=tuple(errors),
            malformed=malformed,
            warnings=tuple(warnings),
            duration_seconds=round(time.monotonic() - started, 3),
            **completeness_counts,
        )
        context = Derivation(
            frozenset(collected),
            metadata=metadata,
            jit_covered_vms=jit,
            now=self._clock(),
            caps={
                "alerts": self.settings.alerts_max_per_tenant,
                "recommendations": self.settings.recommendation_max_resources,
            },
            lookback_days=self.settings.alerts_lookback_days,
        )
        return posture_of(empty_posture(tenant, completeness), batch.derive(context))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
