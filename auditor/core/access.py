"""Who is calling, and which tenants they may see. Pure: no I/O.

The access policy (app setting ``AUDITOR_ACCESS_POLICY``) is JSON::

    {"grants": [{"principal": "<object id>" | "role:<app role>" | "group:<group id>" | "*",
                 "tenants": ["<tenant id>", ...] | "*"}]}

A grant's ``principal`` ``"*"`` matches any authenticated caller. A caller may see a tenant when
at least one grant that matches the caller names the tenant (or ``"*"``). Everything else is
denied: an empty policy, an unknown principal and an unauthenticated caller see nothing.

In Azure the caller comes from App Service Authentication, which injects the header
``X-MS-CLIENT-PRINCIPAL``: base64 of ``{"auth_typ", "name_typ", "role_typ",
"claims": [{"typ", "val"}, ...]}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ANY = "*"
ROLE_PREFIX = "role:"
GROUP_PREFIX = "group:"

OBJECT_ID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
ROLES_CLAIM = "roles"
GROUPS_CLAIM = "groups"

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
# Object ids in Entra ID are GUIDs; local mode also names principals like "local-dev".
_PRINCIPAL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
_ROLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,119}$")
# App Service caps request headers far below this; a larger value is not a real principal.
MAX_PRINCIPAL_HEADER = 64 * 1024


class PolicyError(ValueError):
    """The access policy is malformed. str() names the JSON path of the first problem."""


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: Entra object id, app roles and group ids."""

    object_id: str
    roles: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    auth_type: str = ""


@dataclass(frozen=True, slots=True)
class Grant:
    """One grant: who (a principal selector) may see which tenants (None means all)."""

    principal: str
    tenants: frozenset[str] | None

    def matches(self, principal: Principal) -> bool:
        if self.principal == ANY:
            return True
        if self.principal.startswith(ROLE_PREFIX):
            return self.principal[len(ROLE_PREFIX) :] in principal.roles
        if self.principal.startswith(GROUP_PREFIX):
            return self.principal[len(GROUP_PREFIX) :] in principal.groups
        return self.principal == _normal_id(principal.object_id)


@dataclass(frozen=True, slots=True)
class TenantScope:
    """The tenants one caller may see: every tenant, or exactly a set."""

    everything: bool
    tenants: frozenset[str]

    def __contains__(self, tenant_id: object) -> bool:
        if not isinstance(tenant_id, str) or not _GUID.match(tenant_id):
            return False
        return self.everything or tenant_id.lower() in self.tenants


NOTHING = TenantScope(everything=False, tenants=frozenset())


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    grants: tuple[Grant, ...]

    @classmethod
    def deny_all(cls) -> AccessPolicy:
        return cls(grants=())

    @classmethod
    def allow_all(cls) -> AccessPolicy:
        """Any authenticated caller sees every tenant (local mode without a policy)."""
        return cls(grants=(Grant(principal=ANY, tenants=None),))

    def scope_of(self, principal: Principal | None) -> TenantScope:
        """The tenants `principal` may see (nothing when unauthenticated)."""
        if principal is None:
            return NOTHING
        tenants: set[str] = set()
        for grant in self.grants:
            if not grant.matches(principal):
                continue
            if grant.tenants is None:
                return TenantScope(everything=True, tenants=frozenset())
            tenants |= grant.tenants
        return TenantScope(everything=False, tenants=frozenset(tenants))

    def allowed(self, principal: Principal | None, tenant_id: str) -> bool:
        """True only when a grant matching `principal` names `tenant_id` (or every tenant)."""
        return tenant_id in self.scope_of(principal)


def is_principal_name(value: str) -> bool:
    """A name a local principal (or an object id) may have."""
    return bool(_PRINCIPAL_NAME.match(value))


def _normal_id(value: str) -> str:
    # GUIDs compare case-insensitively; other local names compare exactly.
    return value.lower() if _GUID.match(value) else value


def _parse_principal_selector(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise PolicyError(f"{where}: must be a string, got {type(value).__name__}")
    if value == ANY:
        return ANY
    if value.startswith(ROLE_PREFIX):
        role = value[len(ROLE_PREFIX) :]
        if not _ROLE.match(role):
            raise PolicyError(f"{where}: {value!r} does not name an app role after 'role:'")
        return value
    if value.startswith(GROUP_PREFIX):
        group = value[len(GROUP_PREFIX) :]
        if not _GUID.match(group):
            raise PolicyError(f"{where}: {value!r} must be 'group:' followed by a group id (GUID)")
        return GROUP_PREFIX + group.lower()
    if not _PRINCIPAL_NAME.match(value):
        raise PolicyError(
            f"{where}: {value!r} is not '*', 'role:<app role>', 'group:<group id>' or an object id"
        )
    return _normal_id(value)


def _parse_tenants(value: Any, where: str) -> frozenset[str] | None:
    if value == ANY:
        return None
    if not isinstance(value, list):
        raise PolicyError(f'{where}: must be "*" or a list of tenant ids')
    tenants: set[str] = set()
    for number, tenant in enumerate(value):
        if not isinstance(tenant, str) or not _GUID.match(tenant):
            raise PolicyError(f"{where}[{number}]: {tenant!r} is not a tenant id (GUID)")
        tenants.add(tenant.lower())
    return frozenset(tenants)


def parse_policy(text: str) -> AccessPolicy:
    """Parse the policy JSON; PolicyError names the first problem and where it is."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(document, dict):
        raise PolicyError('must be a JSON object {"grants": [...]}')
    unknown = sorted(set(document) - {"grants"})
    if unknown:
        raise PolicyError(f"unknown key {unknown[0]!r} (only 'grants' is allowed)")
    grants = document.get("grants")
    if not isinstance(grants, list):
        raise PolicyError("grants: must be a list")
    parsed: list[Grant] = []
    for number, grant in enumerate(grants):
        where = f"grants[{number}]"
        if not isinstance(grant, dict):
            raise PolicyError(f"{where}: must be an object with 'principal' and 'tenants'")
        extra = sorted(set(grant) - {"principal", "tenants"})
        if extra:
            raise PolicyError(f"{where}: unknown key {extra[0]!r}")
        for key in ("principal", "tenants"):
            if key not in grant:
                raise PolicyError(f"{where}: missing {key!r}")
        parsed.append(
            Grant(
                principal=_parse_principal_selector(grant["principal"], f"{where}.principal"),
                tenants=_parse_tenants(grant["tenants"], f"{where}.tenants"),
            )
        )
    return AccessPolicy(grants=tuple(parsed))


def _claim_values(claims: Iterable[Mapping[str, Any]], types: Iterable[str]) -> list[str]:
    wanted = set(types)
    return [
        claim["val"]
        for claim in claims
        if claim.get("typ") in wanted and isinstance(claim.get("val"), str)
    ]


def parse_client_principal(header: str | None) -> Principal | None:
    """The caller from an ``X-MS-CLIENT-PRINCIPAL`` header; None when absent or malformed.

    A principal without an object id claim is not identified, so it is None as well: nothing
    can be granted to it.
    """
    if not header or len(header) > MAX_PRINCIPAL_HEADER:
        return None
    try:
        raw = base64.b64decode(header.strip() + "=" * (-len(header.strip()) % 4), validate=True)
        document = json.loads(raw)
    except (binascii.Error, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    claims = document.get("claims")
    if not isinstance(claims, list) or not all(isinstance(c, dict) for c in claims):
        return None
    object_ids = _claim_values(claims, OBJECT_ID_CLAIMS)
    if len(set(object_ids)) != 1 or not _GUID.match(object_ids[0]):
        return None
    role_types = {ROLES_CLAIM}
    role_typ = document.get("role_typ")
    if isinstance(role_typ, str) and role_typ:
        role_types.add(role_typ)
    auth_type = document.get("auth_typ")
    return Principal(
        object_id=object_ids[0].lower(),
        roles=frozenset(_claim_values(claims, role_types)),
        groups=frozenset(g.lower() for g in _claim_values(claims, (GROUPS_CLAIM,))),
        auth_type=auth_type if isinstance(auth_type, str) else "",
    )


def encode_client_principal(principal: Principal) -> str:
    """The header App Service Authentication would send for `principal` (tests, tools)."""
    claims = [{"typ": OBJECT_ID_CLAIMS[0], "val": principal.object_id}]
    claims += [{"typ": ROLES_CLAIM, "val": role} for role in sorted(principal.roles)]
    claims += [{"typ": GROUPS_CLAIM, "val": group} for group in sorted(principal.groups)]
    document = {
        "auth_typ": principal.auth_type or "aad",
        "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        "role_typ": ROLES_CLAIM,
        "claims": claims,
    }
    return base64.b64encode(json.dumps(document).encode()).decode()
