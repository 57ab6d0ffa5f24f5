"""What every route may use: the snapshot history, the caller, and the tenant access check.

Routes (``routes_*.py``) get an ``ApiContext`` and the caller through FastAPI dependencies and
call ``visible_tenant`` before touching the store for a tenant: a tenant outside the caller's
grant then answers exactly as a tenant that does not exist, without a single store read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from auditor.api.problems import (
    INVALID_PARAMETER,
    UNAUTHENTICATED,
    ApiProblem,
    snapshot_not_found,
    tenant_not_found,
)
from auditor.core.access import AccessPolicy, Principal
from auditor.core.snapshot import SnapshotIndexEntry
from auditor.services.diff_query import DiffQueryError, EndNotFound, TenantUnknown, resolve_end
from auditor.services.history import SnapshotHistory, SnapshotRef

CALLER_SCOPE_KEY = "auditor.caller"
MALFORMED_CALLER_SCOPE_KEY = "auditor.caller.malformed"
PRINCIPAL_HEADER_NAME = "X-MS-CLIENT-PRINCIPAL"


@dataclass(frozen=True)
class ApiContext:
    history: SnapshotHistory
    policy: AccessPolicy
    local_principal: Principal | None = None  # set in local mode: every request is this caller
    # Services other routers need (e.g. evidence blobs), by name.
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def local(self) -> bool:
        return self.local_principal is not None

    def visible_tenant(self, caller: Principal, tenant_id: str) -> str:
        """`tenant_id` when the caller may see it; otherwise the tenant-not-found problem."""
        if not self.policy.allowed(caller, tenant_id):
            raise tenant_not_found()
        return tenant_id

    def resolve(self, tenant_id: str, ref: SnapshotRef | None, name: str) -> SnapshotIndexEntry:
        """The snapshot `ref` names (None: the latest) for a visible tenant.

        A tenant without any committed snapshot is not found (exactly as an unknown one); a
        known tenant without a matching snapshot is a snapshot-not-found problem.
        """
        try:
            return resolve_end(self.history, tenant_id, ref, name)
        except DiffQueryError as exc:
            raise as_problem(exc) from None


def as_problem(exc: DiffQueryError) -> ApiProblem:
    """The problem a diff query's error answers (the same words the command line prints)."""
    if isinstance(exc, TenantUnknown):
        return tenant_not_found()
    if isinstance(exc, EndNotFound):
        return snapshot_not_found(exc.detail)
    return ApiProblem(400, INVALID_PARAMETER, exc.detail, parameter=exc.parameter)


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.context
    return ctx


def caller(request: Request) -> Principal:
    """The authenticated caller, or a 401 problem (never a tenant-specific answer); a 400 naming
    the header when the platform's principal header is not a principal document."""
    malformed = request.scope.get(MALFORMED_CALLER_SCOPE_KEY)
    if malformed:
        raise ApiProblem(400, INVALID_PARAMETER, f"{malformed}.", parameter=PRINCIPAL_HEADER_NAME)
    principal = request.scope.get(CALLER_SCOPE_KEY)
    if not isinstance(principal, Principal):
        raise ApiProblem(
            401,
            UNAUTHENTICATED,
            "No authenticated caller: sign in through the app's Entra ID authentication.",
        )
    return principal
