"""Who is calling, and which tenants they may see. Pure: no I/O.

The access policy (app setting ``AUDITOR_ACCESS_POLICY``) is JSON::

    {"grants": [{"principal": "<object id>" | "role:<app role>" | "group:<group id>"
                              | "app:<client id>" | "*",
                 "tenants": ["<tenant id>" | "tenant:self", ...] | "*"}],
     "operators": ["role:operator", ...]}

``operators`` (optional) names who may read operations data: runs, their digests and the
status (principal selectors as in grants). An operator's digest rows are still filtered by the
tenants its grants name.

A grant's ``principal`` ``"*"`` matches any signed-in *user*. A caller may see a tenant when at
least one grant that matches the caller names the tenant (or ``"*"``). Everything else is
denied: an empty policy, an unknown principal and an unauthenticated caller see nothing.

``tenant:self`` in a grant's tenants stands for the signed-in *user's* home tenant (the ``tid``
claim): ``{"principal": "*", "tenants": ["tenant:self"]}`` lets a user of a delegated customer
tenant see that tenant alone, the customer's own read-only view. It never admits an app-only
caller (an application is granted by name only), and a caller without a home tenant claim gets
nothing from it.

Users and applications. A token an application got for itself (client credentials: no user
signed in) is *app-only*. It is admitted only by an explicit ``app:<client id>`` grant, never
by ``"*"``, an object id, a role or a group: a daemon that happens to get a token for the API
(any app of the tenant can ask for one unless assignment is required) must not inherit what
users were granted. How a caller is told apart, following Microsoft's access token claims
reference (learn.microsoft.com/entra/identity-platform/access-token-claims-reference): the
optional ``idtyp`` claim is ``app`` for app-only tokens and ``user`` for user tokens; without it,
the ``scp`` claim (delegated scopes) is present only in tokens issued for a user, so a token
without ``scp`` is app-only. The client id is ``azp`` (v2.0 tokens) or ``appid`` (v1.0).
A person signed in to the dashboard through App Service Authentication is known by the claims
of an *ID token* (learn.microsoft.com/entra/identity-platform/id-token-claims-reference): it
has no ``scp``, but it is only ever issued for a user, names no client (every access token
carries ``azp`` or ``appid``; an ID token neither) and carries sign-in claims no app-only token
has (``nonce``, ``preferred_username``, ``name``). Such a principal is a user.

Customers signing in. When the policy knows the managing tenant (``AUDITOR_MANAGING_TENANT_ID``,
set when App Service Authentication accepts sign-ins from every tenant), a principal whose home
tenant is any other — or unknown — is a *customer*: it is admitted only by a ``"*"`` grant that
names ``tenant:self``, and sees its own tenant alone through it. Nothing else a foreign token
says counts: not its object id, groups or client id, and not its ``roles`` (a customer's admin
assigns the app's roles in the customer's own enterprise application), so it never matches a
``"*"`` tenants grant, a named tenant or ``operators``. An app-only token of another tenant gets
nothing. Without a managing tenant (one issuer, local runs) every principal is treated as above.

In Azure the caller comes from App Service Authentication, which injects the header
``X-MS-CLIENT-PRINCIPAL``: base64 of ``{"auth_typ", "name_typ", "role_typ",
"claims": [{"typ", "val"}, ...]}``; it spells some claim types as URIs (``scp`` is
``http://schemas.microsoft.com/identity/claims/scope``, ``oid`` ``.../objectidentifier``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from auditor.core import jsonlimits

ANY = "*"
ROLE_PREFIX = "role:"
GROUP_PREFIX = "group:"
APP_PREFIX = "app:"
SELF_TENANT = "tenant:self"

OBJECT_ID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
ROLES_CLAIM = "roles"
GROUPS_CLAIM = "groups"
SCOPE_CLAIMS = ("http://schemas.microsoft.com/identity/claims/scope", "scp")
TOKEN_TYPE_CLAIM = "idtyp"  # noqa: S105 - a claim name, not a secret
CLIENT_ID_CLAIMS = ("azp", "appid")
HOME_TENANT_CLAIMS = ("http://schemas.microsoft.com/identity/claims/tenantid", "tid")
# Claims of an ID token (a signed-in user) that no app-only access token carries.
ID_TOKEN_USER_CLAIMS = ("nonce", "preferred_username", "name")
# A principal document nests three levels (object, claims list, claim); anything deeper is not
# one, and json would recurse on it.
MAX_PRINCIPAL_DEPTH = 8

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
# Object ids in Entra ID are GUIDs; local mode also names principals like "local-dev".
_PRINCIPAL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
_ROLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,119}$")
# App Service caps request headers far below this; a larger value is not a real principal.
MAX_PRINCIPAL_HEADER = 64 * 1024


class PolicyError(ValueError):
    """The access policy is malformed. str() names the JSON path of the first problem."""


class MalformedPrincipal(ValueError):
    """The principal header is present but is not a client principal document."""


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: Entra object id, app roles and group ids; `app_only` when no
    user signed in (an application's own token), with the application's client id."""

    object_id: str
    roles: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    auth_type: str = ""
    app_only: bool = False
    app_id: str | None = None
    # The user's home tenant (the ``tid`` claim, a GUID, lower case); None when unknown.
    home_tenant: str | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    """One grant: who (a principal selector) may see which tenants (None means all). The
    tenants may hold ``tenant:self``: the matching user's own home tenant."""

    principal: str
    tenants: frozenset[str] | None

    def tenants_of(self, principal: Principal) -> frozenset[str]:
        """The tenant ids this grant names for `principal` (``tenant:self`` resolved)."""
        assert self.tenants is not None
        if SELF_TENANT not in self.tenants:
            return self.tenants
        named = self.tenants - {SELF_TENANT}
        home = principal.home_tenant
        if home and not principal.app_only and _GUID.match(home):
            named |= {home.lower()}
        return named

    def matches(self, principal: Principal) -> bool:
        if self.principal.startswith(APP_PREFIX):
            wanted = self.principal[len(APP_PREFIX) :]
            return principal.app_only and _normal_id(principal.app_id or "") == wanted
        if principal.app_only:
            return False  # an application alone is admitted only by its app: grant
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
    # Who may read operations data (runs, digests, status): principal selectors as in grants.
    # An operator still sees only the tenant rows its grants name.
    operators: tuple[str, ...] = ()
    # The operator's own tenant (lower case); when set, users of any other tenant are customers.
    managing_tenant: str | None = None

    @classmethod
    def deny_all(cls) -> AccessPolicy:
        return cls(grants=())

    @classmethod
    def allow_all(cls) -> AccessPolicy:
        """Any authenticated caller sees every tenant and is an operator (local mode without a
        policy)."""
        return cls(grants=(Grant(principal=ANY, tenants=None),), operators=(ANY,))

    def is_customer(self, principal: Principal) -> bool:
        """True when `principal` is not of the managing tenant (which the policy knows)."""
        return self.managing_tenant is not None and principal.home_tenant != self.managing_tenant

    def is_operator(self, principal: Principal | None) -> bool:
        if principal is None or self.is_customer(principal):
            return False
        return any(Grant(selector, None).matches(principal) for selector in self.operators)

    def scope_of(self, principal: Principal | None) -> TenantScope:
        """The tenants `principal` may see (nothing when unauthenticated)."""
        if principal is None:
            return NOTHING
        if self.is_customer(principal):
            return self._customer_scope(principal)
        tenants: set[str] = set()
        for grant in self.grants:
            if not grant.matches(principal):
                continue
            if grant.tenants is None:
                return TenantScope(everything=True, tenants=frozenset())
            tenants |= grant.tenants_of(principal)
        return TenantScope(everything=False, tenants=frozenset(tenants))

    def _customer_scope(self, principal: Principal) -> TenantScope:
        # Only "*" grants naming tenant:self, resolved to the customer's own tenant alone.
        self_grants = [
            grant
            for grant in self.grants
            if grant.principal == ANY and grant.tenants is not None and SELF_TENANT in grant.tenants
        ]
        if not self_grants or principal.app_only:
            return NOTHING
        return TenantScope(
            everything=False, tenants=Grant(ANY, frozenset({SELF_TENANT})).tenants_of(principal)
        )

    def allowed(self, principal: Principal | None, tenant_id: str) -> bool:
        """True only when a grant matching `principal` names `tenant_id` (or every tenant)."""
        return tenant_id in self.scope_of(principal)


def is_guid(value: str) -> bool:
    """A tenant, object or client id: a GUID, any case."""
    return bool(_GUID.match(value))


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
    if value.startswith(APP_PREFIX):
        client = value[len(APP_PREFIX) :]
        if not _GUID.match(client):
            raise PolicyError(f"{where}: {value!r} must be 'app:' followed by a client id (GUID)")
        return APP_PREFIX + client.lower()
    if value.startswith(GROUP_PREFIX):
        group = value[len(GROUP_PREFIX) :]
        if not _GUID.match(group):
            raise PolicyError(f"{where}: {value!r} must be 'group:' followed by a group id (GUID)")
        return GROUP_PREFIX + group.lower()
    if not _PRINCIPAL_NAME.match(value):
        raise PolicyError(
            f"{where}: {value!r} is not '*', 'role:<app role>', 'group:<group id>', "
            "'app:<client id>' or an object id"
        )
    return _normal_id(value)


def _parse_tenants(value: Any, where: str) -> frozenset[str] | None:
    if value == ANY:
        return None
    if not isinstance(value, list):
        raise PolicyError(f'{where}: must be "*" or a list of tenant ids')
    tenants: set[str] = set()
    for number, tenant in enumerate(value):
        if tenant == SELF_TENANT:
            tenants.add(SELF_TENANT)
            continue
        if not isinstance(tenant, str) or not _GUID.match(tenant):
            raise PolicyError(
                f"{where}[{number}]: {tenant!r} is not a tenant id (GUID) or {SELF_TENANT!r}"
            )
        tenants.add(tenant.lower())
    return frozenset(tenants)


def parse_policy(text: str) -> AccessPolicy:
    """Parse the policy JSON; PolicyError names the first problem and where it is."""
    try:
        document = jsonlimits.loads(text)
    except jsonlimits.JsonTooDeep as exc:
        raise PolicyError(str(exc)) from None
    except ValueError as exc:
        where = f" at line {exc.lineno}" if hasattr(exc, "lineno") else ""
        raise PolicyError(f"is not valid JSON ({getattr(exc, 'msg', exc)}{where})") from None
    if not isinstance(document, dict):
        raise PolicyError('must be a JSON object {"grants": [...]}')
    unknown = sorted(set(document) - {"grants", "operators"})
    if unknown:
        raise PolicyError(f"unknown key {unknown[0]!r} (only 'grants' and 'operators' are allowed)")
    operators = document.get("operators", [])
    if not isinstance(operators, list):
        raise PolicyError("operators: must be a list of principals")
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
    return AccessPolicy(
        grants=tuple(parsed),
        operators=tuple(
            _parse_principal_selector(value, f"operators[{number}]")
            for number, value in enumerate(operators)
        ),
    )


def _claim_values(claims: Iterable[Mapping[str, Any]], types: Iterable[str]) -> list[str]:
    wanted = set(types)
    return [
        claim["val"]
        for claim in claims
        if claim.get("typ") in wanted and isinstance(claim.get("val"), str)
    ]


def parse_client_principal(header: str | None) -> Principal | None:
    """The caller from an ``X-MS-CLIENT-PRINCIPAL`` header; None when absent or malformed."""
    try:
        return read_client_principal(header)
    except MalformedPrincipal:
        return None


def read_client_principal(header: str | None) -> Principal | None:
    """The caller from an ``X-MS-CLIENT-PRINCIPAL`` header; None when absent.

    MalformedPrincipal when the header is not a principal document (not base64, not JSON,
    nested deeper than any principal, not an object with a list of claims). A document without
    exactly one object id (a GUID) identifies nobody: None, since nothing can be granted to it.
    """
    if not header:
        return None
    if len(header) > MAX_PRINCIPAL_HEADER:
        raise MalformedPrincipal("the principal header is longer than any principal")
    try:
        raw = base64.b64decode(header.strip() + "=" * (-len(header.strip()) % 4), validate=True)
        document = jsonlimits.loads(raw, max_depth=MAX_PRINCIPAL_DEPTH)
    except (binascii.Error, ValueError):
        raise MalformedPrincipal("the principal header is not base64 of a JSON document") from None
    if not isinstance(document, dict):
        raise MalformedPrincipal("the principal header is not a JSON object")
    claims = document.get("claims")
    if not isinstance(claims, list) or not all(isinstance(c, dict) for c in claims):
        raise MalformedPrincipal("the principal header has no list of claims")
    object_ids = _claim_values(claims, OBJECT_ID_CLAIMS)
    if len(set(object_ids)) != 1 or not _GUID.match(object_ids[0]):
        return None
    role_types = {ROLES_CLAIM}
    role_typ = document.get("role_typ")
    if isinstance(role_typ, str) and role_typ:
        role_types.add(role_typ)
    auth_type = document.get("auth_typ")
    token_types = {v.lower() for v in _claim_values(claims, (TOKEN_TYPE_CLAIM,))}
    has_scope = bool(_claim_values(claims, SCOPE_CLAIMS))
    client_ids = _claim_values(claims, CLIENT_ID_CLAIMS)
    id_token = not client_ids and bool(_claim_values(claims, ID_TOKEN_USER_CLAIMS))
    app_only = "app" in token_types or (
        not has_scope and not id_token and "user" not in token_types
    )
    homes = {h.lower() for h in _claim_values(claims, HOME_TENANT_CLAIMS) if _GUID.match(h)}
    return Principal(
        object_id=object_ids[0].lower(),
        roles=frozenset(_claim_values(claims, role_types)),
        groups=frozenset(g.lower() for g in _claim_values(claims, (GROUPS_CLAIM,))),
        auth_type=auth_type if isinstance(auth_type, str) else "",
        app_only=app_only,
        app_id=client_ids[0].lower() if client_ids else None,
        # Two different home tenants identify none: tenant:self then grants nothing.
        home_tenant=homes.pop() if len(homes) == 1 else None,
    )


def encode_client_principal(principal: Principal) -> str:
    """The header App Service Authentication would send for `principal` (tests, tools): a user
    token carries a delegated scope, an app-only one the ``idtyp`` app claim and no scope."""
    claims = [{"typ": OBJECT_ID_CLAIMS[0], "val": principal.object_id}]
    claims += [{"typ": ROLES_CLAIM, "val": role} for role in sorted(principal.roles)]
    claims += [{"typ": GROUPS_CLAIM, "val": group} for group in sorted(principal.groups)]
    if principal.app_only:
        claims.append({"typ": TOKEN_TYPE_CLAIM, "val": "app"})
    else:
        claims.append({"typ": SCOPE_CLAIMS[0], "val": "user_impersonation"})
    if principal.app_id:
        claims.append({"typ": CLIENT_ID_CLAIMS[0], "val": principal.app_id})
    if principal.home_tenant:
        claims.append({"typ": HOME_TENANT_CLAIMS[0], "val": principal.home_tenant})
    document = {
        "auth_typ": principal.auth_type or "aad",
        "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        "role_typ": ROLES_CLAIM,
        "claims": claims,
    }
    return base64.b64encode(json.dumps(document).encode()).decode()
