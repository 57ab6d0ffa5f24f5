"""The seeded, synthetic multi-tenant estate served by the simulator.

``Estate(size, seed)`` is deterministic: the same (size, seed, day) always gives byte-identical
rows. Rows are generated lazily per (subscription, day, type) and kept in a bounded LRU cache, so
the ``large`` estate (about a million compliance rows) never has to be in memory at once.

Public API (the ground truth for tests):

- ``Estate(size, seed)``; ``.tenants(day)``; ``.subscriptions(day)``
- ``.rows(table, day, subscriptions=None)``: iterator of row dicts in id order, exactly as served
- ``.summary(day)``: the summary ``GET /_sim/estate`` returns
- ``.jit_policies(sid, day)`` and ``.assessment_metadata()``: what the REST endpoints serve

Internally a row is a ``Row`` tuple ``(scalars, fragments)``: the nine string columns as Python
strings (for filtering and sorting) and every column pre-encoded as a JSON text fragment, so that
a page of 1,000 rows is assembled by joining strings.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import threading
import uuid
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from . import catalog as cat

# --- columns and types -------------------------------------------------------------------------

COLUMNS: tuple[str, ...] = (
    "id",
    "name",
    "type",
    "tenantId",
    "kind",
    "location",
    "resourceGroup",
    "subscriptionId",
    "managedBy",
    "sku",
    "plan",
    "properties",
    "tags",
    "identity",
    "zones",
    "extendedLocation",
)
SCALAR_COLUMNS: tuple[str, ...] = COLUMNS[:9]  # string columns: filterable and sortable
COLUMN_INDEX: dict[str, int] = {c: i for i, c in enumerate(COLUMNS)}

T_SUBSCRIPTION = "microsoft.resources/subscriptions"
T_RESOURCE_GROUP = "microsoft.resources/subscriptions/resourcegroups"
T_REG_ASSIGNMENT = "microsoft.managedservices/registrationassignments"
T_REG_DEFINITION = "microsoft.managedservices/registrationdefinitions"
T_STANDARD = "microsoft.security/regulatorycompliancestandards"
T_CONTROL = T_STANDARD + "/regulatorycompliancecontrols"
T_COMPLIANCE = T_CONTROL + "/regulatorycomplianceassessments"
T_SECURE_SCORE = "microsoft.security/securescores"
T_SECURE_SCORE_CONTROL = "microsoft.security/securescores/securescorecontrols"
T_PRICING = "microsoft.security/pricings"
T_STANDARD_ASSIGNMENT = "microsoft.security/standardassignments"
T_ASSESSMENT = "microsoft.security/assessments"
T_ALERT = "microsoft.security/locations/alerts"

TABLES: dict[str, tuple[str, ...]] = {
    "resourcecontainers": (T_SUBSCRIPTION, T_RESOURCE_GROUP),
    "managedserviceresources": (T_REG_ASSIGNMENT, T_REG_DEFINITION),
    "securityresources": (
        T_STANDARD,
        T_CONTROL,
        T_COMPLIANCE,
        T_SECURE_SCORE,
        T_SECURE_SCORE_CONTROL,
        T_PRICING,
        T_STANDARD_ASSIGNMENT,
        T_ASSESSMENT,
        T_ALERT,
    ),
}
TYPE_TABLE: dict[str, str] = {t: table for table, types in TABLES.items() for t in types}

# size -> (tenants, subscriptions a tenant; in `wide` the most a tenant has, see WIDE_SUBSCRIPTIONS)
SIZES: dict[str, tuple[int, int]] = {
    "tiny": (2, 3),
    "small": (10, 5),
    "large": (100, 10),
    "wide": (1000, 5),
}
WIDE_SUBSCRIPTIONS = (1, 5)  # `wide`: each tenant has between these many subscriptions
BASE_NOW = datetime(2026, 11, 1, tzinfo=UTC)
FLIP_RATE = 0.02
EXEMPTION_SCHEDULE_DAYS = 60  # one exemption expires on each of days 1..60
MAX_DAY = 3650
MALFORMED_TENANT_INDEX = 1
LARGE_RESOURCES = (20, 50)  # resources a subscription of the `large` estate holds
APPLIES_SHARE = 0.5  # share of a kind's recommendations that apply to one extra resource

PASSED, FAILED, SKIPPED, UNSUPPORTED = "Passed", "Failed", "Skipped", "Unsupported"


class Row(NamedTuple):
    scalars: tuple[str, ...]  # values of SCALAR_COLUMNS
    fragments: tuple[str, ...]  # JSON text of every column in COLUMNS

    @property
    def id(self) -> str:
        return self.scalars[0]

    def to_json(self, columns: Iterable[int] | None = None) -> str:
        idx = range(len(COLUMNS)) if columns is None else columns
        f = self.fragments
        return "{" + ",".join(_KEY_PREFIX[i] + f[i] for i in idx) + "}"

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.to_json())
        return result


_KEY_PREFIX = tuple(json.dumps(c) + ":" for c in COLUMNS)
_enc = json.JSONEncoder(separators=(",", ":")).encode
_encs: Any = json.encoder.encode_basestring_ascii


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def now_for_day(day: int) -> datetime:
    return BASE_NOW + timedelta(days=day)


def _digest(seed: int, parts: tuple[object, ...]) -> bytes:
    text = "|".join(str(p) for p in (seed, *parts))
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def det_guid(seed: int, *parts: object) -> str:
    return str(uuid.UUID(bytes=_digest(seed, parts), version=4))


def det_unit(seed: int, *parts: object) -> float:
    return int.from_bytes(_digest(seed, parts)[:7], "big") / float(1 << 56)


# --- structure ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tenant:
    index: int
    tenant_id: str
    display_name: str


@dataclass(frozen=True)
class Subscription:
    sid: str
    tenant: Tenant
    index: int
    display_name: str
    location: str


@dataclass(frozen=True)
class Vm:
    rid: str
    name: str
    rg: str
    jit: bool


@dataclass
class Resources:
    rgs: tuple[str, ...]
    vms: tuple[Vm, ...]
    vmss: tuple[tuple[str, str], ...]  # (resource id, rg)
    others: tuple[tuple[str, str, str], ...]  # (resource id, rg, applies_to)
    # `large` only: more resources of every kind, to 20-50 a subscription, each assessed on
    # the share of its kind's recommendations that applies to it (extra_assessments).
    extras: tuple[tuple[str, str, str], ...] = ()  # (resource id, rg, kind)


@dataclass
class DayEvents:
    day: int
    subscriptions_added: list[dict[str, str]] = field(default_factory=list)
    subscriptions_removed: list[dict[str, str]] = field(default_factory=list)
    standards_assigned: list[dict[str, str]] = field(default_factory=list)
    standards_removed: list[dict[str, str]] = field(default_factory=list)
    plans_downgraded: list[dict[str, str]] = field(default_factory=list)
    exemptions_expired: list[dict[str, str]] = field(default_factory=list)


class _LRU:
    """Row-count-bounded LRU of row lists."""

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self._data: OrderedDict[tuple[object, ...], list[Row]] = OrderedDict()
        self._rows = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[object, ...]) -> list[Row] | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: tuple[object, ...], value: list[Row]) -> None:
        with self._lock:
            if key in self._data:
                return
            self._data[key] = value
            self._rows += len(value)
            while self._rows > self.max_rows and len(self._data) > 1:
                _, old = self._data.popitem(last=False)
                self._rows -= len(old)

    @property
    def rows(self) -> int:
        return self._rows


def _state_counts(state: str, n: int, f0: int) -> tuple[int, int, int]:
    if state == PASSED:
        return n, 0, 0
    if state == FAILED:
        return n - f0, f0, 0
    if state == SKIPPED:
        return 0, 0, n
    return 0, 0, 0


def _rollup(passed: int, failed: int, skipped: int) -> str:
    if failed:
        return FAILED
    if passed:
        return PASSED
    if skipped:
        return SKIPPED
    return UNSUPPORTED


class Estate:
    """A deterministic synthetic estate. Thread-safe."""

    def __init__(self, size: str = "tiny", seed: int = 1, *, cache_rows: int = 250_000) -> None:
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; expected one of {sorted(SIZES)}")
        self.size = size
        self.seed = int(seed)
        # Fault "undelegated_from" (the server shares its dict): tenant id -> first day gone.
        self.undelegated_from: dict[str, int] = {}
        n_tenants, n_subs = SIZES[size]
        self.managing_tenant_id = det_guid(self.seed, "managing-tenant")
        self.managing_tenant_name = "Auditor MSP"
        self.principal_id = det_guid(self.seed, "principal")
        self.principal_name = "compliance-auditor (managed identity)"
        self._lock = threading.RLock()
        self._cache = _LRU(cache_rows)

        self.tenant_list: list[Tenant] = []
        for t in range(n_tenants):
            base = cat.TENANT_NAMES[t % len(cat.TENANT_NAMES)]
            name = base if t < len(cat.TENANT_NAMES) else f"{base} {t // len(cat.TENANT_NAMES) + 1}"
            self.tenant_list.append(Tenant(t, det_guid(self.seed, "tenant", t), name))

        counts = [self._subscription_count(t, n_subs) for t in range(n_tenants)]
        rng = random.Random(f"{self.seed}|structure")
        # Tenant that loses a subscription from day 1 (never the malformed-data tenant, never
        # its tenant's only one) and the tenant that gains one.
        lose_candidates = [
            t for t in range(n_tenants) if t != MALFORMED_TENANT_INDEX and counts[t] > 1
        ]
        self._loser = rng.choice(lose_candidates)
        self._gainer = rng.choice([t for t in range(n_tenants) if t != self._loser])

        self._subs: dict[str, Subscription] = {}
        self._base_subs: list[str] = []
        for tenant in self.tenant_list:
            for j in range(counts[tenant.index]):
                sub = self._make_sub(tenant, j)
                self._base_subs.append(sub.sid)
        gainer = self.tenant_list[self._gainer]
        self.added_sub = self._make_sub(gainer, counts[self._gainer]).sid
        self.removed_sub = det_guid(self.seed, "sub", self._loser, counts[self._loser] - 1)
        self._stable_subs = sorted(s for s in self._base_subs if s != self.removed_sub)
        self._malformed_sub = det_guid(self.seed, "sub", MALFORMED_TENANT_INDEX, 0)

        self._base_standards: dict[str, frozenset[str]] = {}
        for sid in self._subs:
            r = random.Random(f"{self.seed}|standards|{sid}")
            optional = r.sample(cat.OPTIONAL_STANDARDS, 2)
            self._base_standards[sid] = frozenset([cat.MCSB, *optional])

        # drift timelines, computed lazily and sequentially
        self._events: list[DayEvents] = [DayEvents(0)]
        self._std_timeline: dict[str, list[tuple[int, str, bool]]] = {}
        self._downgrades: dict[tuple[str, str], int] = {}
        self._cur_standards: dict[str, frozenset[str]] = dict(self._base_standards)
        self._flip_log: dict[str, list[tuple[tuple[str, str, str], ...]]] = {}
        self._flip_state: dict[str, dict[str, str]] = {}
        self._base_assess_cache: dict[str, dict[str, tuple[str, int, int]]] = {}
        self._resources_cache: dict[str, Resources] = {}
        self._exemptions = self._plan_exemptions()

    # --- structure ---------------------------------------------------------------------------

    def _subscription_count(self, tenant_index: int, most: int) -> int:
        """Subscriptions of a tenant: `most` in every size but `wide`, where each tenant has
        its own deterministic count in WIDE_SUBSCRIPTIONS (about 3,000 in all)."""
        if self.size != "wide":
            return most
        low, high = WIDE_SUBSCRIPTIONS
        return low + int(det_unit(self.seed, "wide-subs", tenant_index) * (high - low + 1))

    def _make_sub(self, tenant: Tenant, j: int) -> Subscription:
        sid = det_guid(self.seed, "sub", tenant.index, j)
        role = cat.SUBSCRIPTION_ROLES[j % len(cat.SUBSCRIPTION_ROLES)]
        loc = cat.LOCATIONS[int(det_unit(self.seed, "loc", sid) * len(cat.LOCATIONS))]
        sub = Subscription(sid, tenant, j, f"{tenant.display_name} {role}", loc)
        self._subs[sid] = sub
        return sub

    def subscription(self, sid: str) -> Subscription | None:
        return self._subs.get(sid.lower())

    def is_delegated(self, sid: str, day: int) -> bool:
        sub = self._subs.get(sid)
        if sub is not None and day >= self.undelegated_from.get(sub.tenant.tenant_id, MAX_DAY + 1):
            return False  # fault: the tenant removed its delegation from that day
        if sid == self.added_sub:
            return day >= 1
        if sid == self.removed_sub:
            return day < 1
        return sid in self._subs

    def subscriptions(self, day: int) -> list[Subscription]:
        """Delegated subscriptions on ``day``, sorted by subscription id."""
        return [self._subs[s] for s in sorted(self._subs) if self.is_delegated(s, day)]

    def tenants(self, day: int) -> list[dict[str, Any]]:
        by_tenant: dict[int, list[Subscription]] = {}
        for sub in self.subscriptions(day):
            by_tenant.setdefault(sub.tenant.index, []).append(sub)
        out = []
        for tenant in self.tenant_list:
            subs = sorted(by_tenant.get(tenant.index, []), key=lambda s: s.index)
            out.append(
                {
                    "tenantId": tenant.tenant_id,
                    "displayName": tenant.display_name,
                    "subscriptions": [
                        {"subscriptionId": s.sid, "displayName": s.display_name} for s in subs
                    ],
                }
            )
        return out

    def tenant_of(self, sid: str) -> str | None:
        sub = self._subs.get(sid.lower())
        return sub.tenant.tenant_id if sub else None

    # --- drift -------------------------------------------------------------------------------

    def _check_day(self, day: int) -> None:
        if not 0 <= day <= MAX_DAY:
            raise ValueError(f"day must be between 0 and {MAX_DAY}")

    def _ensure_events(self, day: int) -> None:
        self._check_day(day)
        with self._lock:
            while len(self._events) <= day:
                self._events.append(self._compute_events(len(self._events)))

    def _compute_events(self, k: int) -> DayEvents:
        ev = DayEvents(k)
        if k == 1:
            added = self._subs[self.added_sub]
            removed = self._subs[self.removed_sub]
            ev.subscriptions_added.append(
                {"tenantId": added.tenant.tenant_id, "subscriptionId": added.sid}
            )
            ev.subscriptions_removed.append(
                {"tenantId": removed.tenant.tenant_id, "subscriptionId": removed.sid}
            )
        subs = [s.sid for s in self.subscriptions(k)]
        rng = random.Random(f"{self.seed}|drift|{k}")
        # a standard is assigned to one subscription and removed from another
        assign = [
            (sid, std)
            for sid in subs
            for std in cat.OPTIONAL_STANDARDS
            if std not in self._cur_standards[sid]
        ]
        if assign:
            sid, std = rng.choice(assign)
            self._cur_standards[sid] = self._cur_standards[sid] | {std}
            self._std_timeline.setdefault(sid, []).append((k, std, True))
            ev.standards_assigned.append(self._sub_ref(sid) | {"standard": std})
            remove = [
                (s, st)
                for s in subs
                if s != sid
                for st in sorted(self._cur_standards[s])
                if st != cat.MCSB and len(self._cur_standards[s]) > 1
            ]
            if remove:
                s2, st2 = rng.choice(remove)
                self._cur_standards[s2] = self._cur_standards[s2] - {st2}
                self._std_timeline.setdefault(s2, []).append((k, st2, False))
                ev.standards_removed.append(self._sub_ref(s2) | {"standard": st2})
        # one Defender plan is downgraded Standard -> Free
        candidates = [
            (sid, plan)
            for sid in subs
            for plan, _sub, deprecated, _ext in cat.PLANS
            if deprecated is None
            and (sid, plan) not in self._downgrades
            and self._base_tier(sid, plan) == "Standard"
        ]
        if candidates:
            sid, plan = rng.choice(candidates)
            self._downgrades[(sid, plan)] = k
            ev.plans_downgraded.append(
                self._sub_ref(sid) | {"plan": plan, "from": "Standard", "to": "Free"}
            )
        # one exemption's expiresOn passes
        for ex in self._exemptions:
            if ex["scheduled_day"] == k:
                ev.exemptions_expired.append(
                    self._sub_ref(ex["sid"])
                    | {
                        "id": ex["id"],
                        "assessmentKey": ex["key"],
                        "expiresOn": ex["expiresOn"],
                    }
                )
        return ev

    def _sub_ref(self, sid: str) -> dict[str, str]:
        return {"tenantId": self._subs[sid].tenant.tenant_id, "subscriptionId": sid}

    def standards(self, sid: str, day: int) -> frozenset[str]:
        self._ensure_events(day)
        result = set(self._base_standards[sid])
        for k, std, added in self._std_timeline.get(sid, ()):
            if k > day:
                break
            if added:
                result.add(std)
            else:
                result.discard(std)
        return frozenset(result)

    def _base_tier(self, sid: str, plan: str) -> str:
        deprecated = next(p[2] for p in cat.PLANS if p[0] == plan)
        if deprecated is not None:
            return "Free"
        return "Standard" if det_unit(self.seed, "tier", sid, plan) < 0.7 else "Free"

    def tier(self, sid: str, plan: str, day: int) -> str:
        self._ensure_events(day)
        k = self._downgrades.get((sid, plan))
        if k is not None and k <= day:
            return "Free"
        return self._base_tier(sid, plan)

    def events(self, day: int) -> list[DayEvents]:
        """Events of days 1..day (index 0 is day 1)."""
        self._ensure_events(day)
        return self._events[1 : day + 1]

    # --- compliance states -------------------------------------------------------------------

    def _base_assessments(self, sid: str) -> dict[str, tuple[str, int, int]]:
        cached = self._base_assess_cache.get(sid)
        if cached is not None:
            return cached
        out: dict[str, tuple[str, int, int]] = {}
        for key in cat.METADATA_KEYS:
            u = det_unit(self.seed, "cstate", sid, key)
            state = (
                PASSED if u < 0.80 else FAILED if u < 0.86 else SKIPPED if u < 0.95 else UNSUPPORTED
            )
            n = 1 + int(det_unit(self.seed, "cn", sid, key) * 12)
            f0 = 1 + int(det_unit(self.seed, "cf", sid, key) * n)
            out[key] = (state, n, f0)
        with self._lock:
            self._base_assess_cache[sid] = out
        return out

    def _present_keys(self, standards: frozenset[str]) -> list[str]:
        keys: set[str] = set()
        for std in standards:
            keys |= _STANDARD_KEYS[std]
        return sorted(keys)

    def _ensure_flips(self, sid: str, day: int) -> None:
        self._ensure_events(day)
        with self._lock:
            log = self._flip_log.setdefault(sid, [()])
            if len(log) > day:
                return
            state = self._flip_state.get(sid)
            if state is None:
                state = {k: v[0] for k, v in self._base_assessments(sid).items()}
                self._flip_state[sid] = state
            while len(log) <= day:
                k = len(log)
                present = self._present_keys(self.standards(sid, k))
                flippable = [g for g in present if state[g] in (PASSED, FAILED)]
                flips: list[tuple[str, str, str]] = []
                if flippable and self.is_delegated(sid, k):
                    m = max(1, round(FLIP_RATE * len(flippable)))
                    chosen = random.Random(f"{self.seed}|flip|{sid}|{k}").sample(flippable, m)
                    for g in sorted(chosen):
                        new = FAILED if state[g] == PASSED else PASSED
                        flips.append((g, state[g], new))
                        state[g] = new
                log.append(tuple(flips))

    def compliance_states(self, sid: str, day: int) -> dict[str, str]:
        """State of every assessment key on the subscription on ``day`` (flips applied)."""
        self._ensure_flips(sid, day)
        states = {k: v[0] for k, v in self._base_assessments(sid).items()}
        for flips in self._flip_log[sid][1 : day + 1]:
            for g, _old, new in flips:
                states[g] = new
        return states

    def flips(self, sid: str, day: int) -> tuple[tuple[str, str, str], ...]:
        """(key, from, to) of the flips that happened on ``day`` itself."""
        if day == 0:
            return ()
        self._ensure_flips(sid, day)
        return self._flip_log[sid][day]

    # --- resources ---------------------------------------------------------------------------

    def resources(self, sid: str) -> Resources:
        cached = self._resources_cache.get(sid)
        if cached is not None:
            return cached
        rng = random.Random(f"{self.seed}|resources|{sid}")
        rgs = tuple(
            sorted(
                rng.sample(
                    ["rg-app", "rg-data", "rg-web", "rg-mgmt", "rg-shared"], rng.randint(3, 4)
                )
            )
        )
        vms: list[Vm] = []
        base = f"/subscriptions/{sid}/resourceGroups/"
        for rg in rgs:
            for i in range(rng.randint(1, 3)):
                name = f"vm-{rg[3:]}-{i + 1:02d}"
                covered = i == 0 or rng.random() < 0.4
                vms.append(
                    Vm(
                        f"{base}{rg}/providers/Microsoft.Compute/virtualMachines/{name}",
                        name,
                        rg,
                        covered,
                    )
                )
        vmss = []
        for i in range(rng.randint(0, 2)):
            rg = rng.choice(rgs)
            vmss.append(
                (f"{base}{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/vmss{i + 1}", rg)
            )
        others: list[tuple[str, str, str]] = []
        short = sid.split("-")[0]
        for i in range(rng.randint(1, 2)):
            rg = rng.choice(rgs)
            others.append(
                (
                    f"{base}{rg}/providers/Microsoft.Storage/storageAccounts/st{short}{i}",
                    rg,
                    "storage",
                )
            )
        rg = rng.choice(rgs)
        others.append(
            (f"{base}{rg}/providers/Microsoft.KeyVault/vaults/kv-{short}", rg, "keyvault")
        )
        if rng.random() < 0.6:
            rg = rng.choice(rgs)
            others.append((f"{base}{rg}/providers/Microsoft.Sql/servers/sql-{short}", rg, "sql"))
        extras = self._extras(sid, rgs, len(vms) + len(vmss) + len(others))
        res = Resources(rgs, tuple(vms), tuple(vmss), tuple(others), extras)
        with self._lock:
            self._resources_cache[sid] = res
        return res

    def _extras(
        self, sid: str, rgs: tuple[str, ...], base: int
    ) -> tuple[tuple[str, str, str], ...]:
        """The `large` estate's further resources (own random stream: the others stay as they
        are), so that a subscription holds 20-50 resources."""
        if self.size != "large":
            return ()
        rng = random.Random(f"{self.seed}|extras|{sid}")
        kinds = sorted(cat.RESOURCE_TYPES)
        short = sid.split("-")[0]
        out = []
        for i in range(max(0, rng.randint(*LARGE_RESOURCES) - base)):
            kind, rg = rng.choice(kinds), rng.choice(rgs)
            provider, prefix = cat.RESOURCE_TYPES[kind]
            name = f"{prefix}-{short}-{i:02d}"
            rid = f"/subscriptions/{sid}/resourceGroups/{rg}/providers/{provider}/{name}"
            out.append((rid, rg, kind))
        return tuple(out)

    def extra_assessments(self, sid: str) -> Iterator[tuple[str, str, str]]:
        """(resource id, rg, key) of every assessment of the extras: a recommendation of the
        resource's kind applies with probability APPLIES_SHARE (deterministic)."""
        for rid, rg, kind in self.resources(sid).extras:
            for key in cat.KIND_KEYS[kind]:
                if det_unit(self.seed, "applies", rid, key) < APPLIES_SHARE:
                    yield rid, rg, key

    def jit_policies(self, sid: str, day: int) -> list[dict[str, Any]]:
        """JIT network access policies (GetJitNetworkAccessPoliciesSubscription shape)."""
        sub = self._subs[sid]
        res = self.resources(sid)
        out = []
        for rg in res.rgs:
            covered = [vm for vm in res.vms if vm.rg == rg and vm.jit]
            if not covered:
                continue
            ports = [
                {
                    "number": 22,
                    "protocol": "*",
                    "allowedSourceAddressPrefix": "*",
                    "maxRequestAccessDuration": "PT3H",
                },
                {
                    "number": 3389,
                    "protocol": "*",
                    "allowedSourceAddressPrefix": "*",
                    "maxRequestAccessDuration": "PT3H",
                },
            ]
            out.append(
                {
                    "id": f"/subscriptions/{sid}/resourceGroups/{rg}/providers/Microsoft.Security/"
                    f"locations/{sub.location}/jitNetworkAccessPolicies/default",
                    "name": "default",
                    "type": "Microsoft.Security/locations/jitNetworkAccessPolicies",
                    "kind": "Basic",
                    "location": sub.location,
                    "properties": {
                        "virtualMachines": [{"id": vm.rid, "ports": ports} for vm in covered],
                        "requests": [],
                        "provisioningState": "Succeeded",
                    },
                }
            )
        return out

    def assessment_metadata(self) -> list[dict[str, Any]]:
        """Tenant-level assessment metadata (ListAssessmentsMetadata shape), sorted by name."""
        out = []
        for key in cat.METADATA_KEYS:
            r = cat.RECOMMENDATION_BY_KEY[key]
            out.append(
                {
                    "id": f"/providers/Microsoft.Security/assessmentMetadata/{key}",
                    "name": key,
                    "type": "Microsoft.Security/assessmentMetadata",
                    "properties": {
                        "displayName": r.display_name,
                        "policyDefinitionId": r.policy_definition_id,
                        "description": r.description,
                        "remediationDescription": r.remediation,
                        "categories": list(r.categories),
                        "severity": r.severity,
                        "userImpact": r.user_impact,
                        "implementationEffort": r.implementation_effort,
                        "threats": list(r.threats),
                        "publishDates": {"GA": "06/01/2021", "public": "06/01/2021"},
                        "assessmentType": "BuiltIn",
                    },
                }
            )
        return out

    # --- exemptions and attestations -----------------------------------------------------------

    def _plan_exemptions(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for sid in sorted(self._subs):
            rng = random.Random(f"{self.seed}|exempt|{sid}")
            for i in range(rng.randint(1, 2)):
                out.append(self._exemption(sid, rng, f"x{i}", None))
        for k in range(1, EXEMPTION_SCHEDULE_DAYS + 1):
            rng = random.Random(f"{self.seed}|exempt-scheduled|{k}")
            sid = rng.choice(self._stable_subs)
            out.append(self._exemption(sid, rng, f"s{k}", k))
        return out

    def _exemption(
        self, sid: str, rng: random.Random, tag: str, scheduled_day: int | None
    ) -> dict[str, Any]:
        res = self.resources(sid)
        if rng.random() < 0.3:
            scope = f"/subscriptions/{sid}"
            rg = ""
            key = cat.KEY_MFA_OWNER
        else:
            vm = rng.choice(res.vms)
            scope, rg = vm.rid, vm.rg
            key = rng.choice(cat.VM_KEYS)
        if scheduled_day is None:
            expires = BASE_NOW + timedelta(days=90 + rng.randint(0, 500), hours=rng.randint(0, 23))
        else:
            expires = BASE_NOW + timedelta(days=scheduled_day - 1, hours=12)
        name = det_guid(self.seed, "exemption", sid, tag)
        return {
            "sid": sid,
            "rg": rg,
            "id": f"{scope}/providers/Microsoft.Security/standardAssignments/{name}",
            "name": name,
            "key": key,
            "category": rng.choice(("waiver", "mitigated")),
            "expiresOn": expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "scheduled_day": scheduled_day,
        }

    def exemptions(self, sid: str) -> list[dict[str, Any]]:
        return [e for e in self._exemptions if e["sid"] == sid]

    # --- counts without materialising ----------------------------------------------------------

    def _malformed(self, sid: str) -> bool:
        return sid == self._malformed_sub

    def type_count(self, sid: str, day: int, type_: str) -> int:
        """Number of rows of ``type_`` in a delegated subscription on ``day`` (cheap)."""
        if type_ in (T_SUBSCRIPTION, T_REG_ASSIGNMENT, T_REG_DEFINITION, T_SECURE_SCORE):
            return 1
        if type_ == T_RESOURCE_GROUP:
            return len(self.resources(sid).rgs)
        if type_ == T_STANDARD:
            return len(self.standards(sid, day))
        if type_ == T_CONTROL:
            return sum(len(cat.STANDARD_BY_NAME[s].controls) for s in self.standards(sid, day))
        if type_ == T_COMPLIANCE:
            n = sum(_STANDARD_ROWS[s] for s in self.standards(sid, day))
            return n + (3 if self._malformed(sid) else 0)
        if type_ == T_SECURE_SCORE_CONTROL:
            return len(cat.SECURE_SCORE_CONTROLS)
        if type_ == T_PRICING:
            return len(cat.PLANS)
        if type_ == T_STANDARD_ASSIGNMENT:
            return (
                len(self.standards(sid, day))
                + len(self.exemptions(sid))
                + len(self._attestations(sid))
            )
        if type_ == T_ALERT:
            return len(alerts_of(self, sid, day))
        if type_ == T_ASSESSMENT:
            return assessment_count(self, sid, day)
        raise KeyError(type_)

    # --- rows ----------------------------------------------------------------------------------

    def type_rows(self, sid: str, day: int, type_: str) -> list[Row]:
        """Rows of one type in one subscription, sorted by id (cached)."""
        key = (sid, day, type_)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        rows = _BUILDERS[type_](self, _Ctx(self, sid, day))
        rows.sort(key=lambda r: r.scalars[0])
        self._cache.put(key, rows)
        return rows

    def sub_rows(self, sid: str, day: int, types: Iterable[str]) -> list[Row]:
        """Rows of several types in one subscription, merged in id order."""
        types = list(types)
        if len(types) == 1:
            return self.type_rows(sid, day, types[0])
        merged: list[Row] = []
        for t in types:
            merged.extend(self.type_rows(sid, day, t))
        merged.sort(key=lambda r: r.scalars[0])
        return merged

    def rows(
        self, table: str, day: int, subscriptions: Iterable[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every row of ``table`` (lower-case name) on ``day``, in id order, as served."""
        types = TABLES[table.lower()]
        wanted = None if subscriptions is None else {s.lower() for s in subscriptions}
        for sub in self.subscriptions(day):
            if wanted is not None and sub.sid not in wanted:
                continue
            for row in self.sub_rows(sub.sid, day, types):
                yield row.to_dict()

    @property
    def cache_rows(self) -> int:
        return self._cache.rows

    def _attestations(self, sid: str) -> list[dict[str, Any]]:
        rng = random.Random(f"{self.seed}|attest|{sid}")
        manual = cat.manual_controls(cat.MCSB)
        out = []
        for control in rng.sample(manual, rng.randint(1, 3)):
            out.append(
                {
                    "name": det_guid(self.seed, "attestation", sid, control.name),
                    "control": control.name,
                    "key": cat.manual_key(cat.MCSB, control.name),
                    "state": rng.choice(("compliant", "compliant", "nonCompliant", "unknown")),
                    "date": iso(BASE_NOW - timedelta(days=rng.randint(10, 200))),
                }
            )
        return out

    # --- ground truth --------------------------------------------------------------------------

    def malformed_rows(self, day: int) -> list[dict[str, str]]:
        if not self.is_delegated(self._malformed_sub, day):
            return []
        sub = self._subs[self._malformed_sub]
        return [
            {
                "tenantId": sub.tenant.tenant_id,
                "subscriptionId": sub.sid,
                "id": rid,
                "problem": problem,
            }
            for rid, problem in _malformed_ids(sub.sid)
        ]

    def state_changes(self, day: int, ref_day: int) -> list[dict[str, Any]]:
        """Compliance assessment keys whose state differs between ``ref_day`` and ``day``."""
        out: list[dict[str, Any]] = []
        for sub in self.subscriptions(day):
            if not self.is_delegated(sub.sid, ref_day):
                continue
            now_stds = self.standards(sub.sid, day)
            ref_keys = set(self._present_keys(self.standards(sub.sid, ref_day)))
            now_states = self.compliance_states(sub.sid, day)
            ref_states = self.compliance_states(sub.sid, ref_day)
            for key in self._present_keys(now_stds):
                if key in ref_keys and now_states[key] != ref_states[key]:
                    rows = sum(
                        c.assessment_keys.count(key)
                        for s in now_stds
                        for c in cat.STANDARD_BY_NAME[s].controls
                    )
                    out.append(
                        {
                            "tenantId": sub.tenant.tenant_id,
                            "subscriptionId": sub.sid,
                            "assessmentKey": key,
                            "from": ref_states[key],
                            "to": now_states[key],
                            "rows": rows,
                        }
                    )
        return out

    def _diff(self, day: int, ref_day: int, details: bool) -> dict[str, Any]:
        evs = [e for e in self.events(day) if e.day > ref_day]
        changes = self.state_changes(day, ref_day) if day != ref_day else []
        # net standard changes
        assigned, removed = [], []
        for sub in self.subscriptions(day):
            if not self.is_delegated(sub.sid, ref_day):
                continue
            now_s, ref_s = self.standards(sub.sid, day), self.standards(sub.sid, ref_day)
            for std in sorted(now_s - ref_s):
                assigned.append(self._sub_ref(sub.sid) | {"standard": std})
            for std in sorted(ref_s - now_s):
                removed.append(self._sub_ref(sub.sid) | {"standard": std})
        added = [s for s in self.subscriptions(day) if not self.is_delegated(s.sid, ref_day)]
        gone = [s for s in self.subscriptions(ref_day) if not self.is_delegated(s.sid, day)]
        result: dict[str, Any] = {
            "fromDay": ref_day,
            "toDay": day,
            "subscriptionsAdded": [self._sub_ref(s.sid) for s in added],
            "subscriptionsRemoved": [self._sub_ref(s.sid) for s in gone],
            "standardsAssigned": assigned,
            "standardsRemoved": removed,
            "plansDowngraded": [p for e in evs for p in e.plans_downgraded],
            "exemptionsExpired": [x for e in evs for x in e.exemptions_expired],
            "complianceStateChangeCount": len(changes),
            "complianceRowsChanged": sum(c["rows"] for c in changes),
        }
        if details:
            result["complianceStateChanges"] = changes
        return result

    def summary(self, day: int, *, details: bool = True) -> dict[str, Any]:
        self._check_day(day)
        tenants = []
        totals: dict[str, int] = {}
        for tinfo in self.tenants(day):
            counts: dict[str, int] = {}
            subs = []
            for s in tinfo["subscriptions"]:
                sid = s["subscriptionId"]
                for t in TYPE_TABLE:
                    n = self.type_count(sid, day, t)
                    counts[t] = counts.get(t, 0) + n
                    totals[t] = totals.get(t, 0) + n
                subs.append(
                    s
                    | {
                        "standards": sorted(self.standards(sid, day)),
                        "complianceAssessments": self.type_count(sid, day, T_COMPLIANCE)
                        - (3 if self._malformed(sid) else 0),
                        "alerts": alert_truth(self, sid, day, details),
                        "recommendations": assessment_truth(self, sid, day, details),
                    }
                )
            malformed = [m for m in self.malformed_rows(day) if m["tenantId"] == tinfo["tenantId"]]
            tenants.append(
                tinfo
                | {
                    "subscriptions": subs,
                    "counts": counts,
                    "complianceAssessments": sum(x["complianceAssessments"] for x in subs),
                    "malformedRows": malformed,
                }
            )
        return {
            "size": self.size,
            "seed": self.seed,
            "day": day,
            "now": iso(now_for_day(day)),
            "managingTenantId": self.managing_tenant_id,
            "managingTenantName": self.managing_tenant_name,
            "principalId": self.principal_id,
            "tenants": tenants,
            "totals": totals,
            "complianceAssessments": sum(t["complianceAssessments"] for t in tenants),
            "malformedRows": self.malformed_rows(day),
            "retiredAssessmentKeys": list(cat.RETIRED_KEYS),
            "drift": {
                "sinceDay0": self._diff(day, 0, details),
                "sincePreviousDay": self._diff(day, max(0, day - 1), details),
                "events": [
                    {
                        "day": e.day,
                        "subscriptionsAdded": e.subscriptions_added,
                        "subscriptionsRemoved": e.subscriptions_removed,
                        "standardsAssigned": e.standards_assigned,
                        "standardsRemoved": e.standards_removed,
                        "plansDowngraded": e.plans_downgraded,
                        "exemptionsExpired": e.exemptions_expired,
                    }
                    for e in self.events(day)
                ],
            },
        }


# --- row builders --------------------------------------------------------------------------

_STANDARD_KEYS = {s.name: cat.standard_keys(s.name) for s in cat.STANDARDS}
_STANDARD_ROWS = {s.name: cat.standard_row_count(s.name) for s in cat.STANDARDS}
_OTHER_KEYS = {"storage": cat.STORAGE_KEYS, "keyvault": cat.KEYVAULT_KEYS, "sql": cat.SQL_KEYS}
_NULL = "null"
_EMPTY = '""'


class _Ctx:
    __slots__ = ("day", "estate", "sid", "sid_frag", "sub", "tenant_frag", "tenant_id")

    def __init__(self, estate: Estate, sid: str, day: int) -> None:
        self.estate = estate
        self.sid = sid
        self.day = day
        self.sub = estate._subs[sid]
        self.tenant_id = self.sub.tenant.tenant_id
        self.tenant_frag = _enc(self.tenant_id)
        self.sid_frag = _enc(sid)

    def row(
        self,
        id_: str,
        name: str,
        type_: str,
        properties: Any,
        *,
        rg: str = "",
        location: str = "",
        tags: Any = None,
        type_frag: str | None = None,
    ) -> Row:
        scalars = (id_, name, type_, self.tenant_id, "", location, rg, self.sid, "")
        frags = (
            _encs(id_),
            _encs(name),
            type_frag or _encs(type_),
            self.tenant_frag,
            _EMPTY,
            _encs(location) if location else _EMPTY,
            _encs(rg) if rg else _EMPTY,
            self.sid_frag,
            _EMPTY,
            _NULL,
            _NULL,
            _enc(properties),
            _NULL if tags is None else _enc(tags),
            _NULL,
            _NULL,
            _NULL,
        )
        return Row(scalars, frags)


def _b_subscription(e: Estate, c: _Ctx) -> list[Row]:
    sub = c.sub
    props = {
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
        "authorizationSource": "RoleBased",
        "managedByTenants": [{"tenantId": e.managing_tenant_id}],
        "managementGroupAncestorsChain": [
            {"displayName": "Tenant Root Group", "name": sub.tenant.tenant_id}
        ],
        "state": "Enabled",
    }
    tags = {"environment": sub.display_name.split()[-1].lower(), "costCenter": f"cc-{sub.index}"}
    return [c.row(f"/subscriptions/{c.sid}", sub.display_name, T_SUBSCRIPTION, props, tags=tags)]


def _b_resource_groups(e: Estate, c: _Ctx) -> list[Row]:
    out = []
    for rg in e.resources(c.sid).rgs:
        out.append(
            c.row(
                f"/subscriptions/{c.sid}/resourceGroups/{rg}",
                rg,
                T_RESOURCE_GROUP,
                {"provisioningState": "Succeeded"},
                rg=rg,
                location=c.sub.location,
                tags={},
            )
        )
    return out


def _authorizations(e: Estate) -> list[dict[str, str]]:
    return [
        {
            "principalId": e.principal_id,
            "principalIdDisplayName": e.principal_name,
            "roleDefinitionId": cat.READER_ROLE_ID,
        },
        {
            "principalId": e.principal_id,
            "principalIdDisplayName": e.principal_name,
            "roleDefinitionId": cat.SECURITY_READER_ROLE_ID,
        },
    ]


def _definition(e: Estate, c: _Ctx) -> tuple[str, str, dict[str, Any]]:
    name = det_guid(e.seed, "regdef", c.sub.tenant.index)
    rid = (
        f"/subscriptions/{c.sid}/providers/Microsoft.ManagedServices/registrationDefinitions/{name}"
    )
    props = {
        "description": "Read-only access for the regulatory compliance auditor",
        "registrationDefinitionName": "Compliance auditor (read-only)",
        "authorizations": _authorizations(e),
        "provisioningState": "Succeeded",
        "manageeTenantId": c.tenant_id,
        "manageeTenantName": c.sub.tenant.display_name,
        "managedByTenantId": e.managing_tenant_id,
        "managedByTenantName": e.managing_tenant_name,
    }
    return name, rid, props


def _b_reg_definition(e: Estate, c: _Ctx) -> list[Row]:
    name, rid, props = _definition(e, c)
    return [c.row(rid, name, T_REG_DEFINITION, props)]


def _b_reg_assignment(e: Estate, c: _Ctx) -> list[Row]:
    def_name, def_id, def_props = _definition(e, c)
    name = det_guid(e.seed, "regassign", c.sid)
    props = {
        "registrationDefinitionId": def_id,
        "provisioningState": "Succeeded",
        "registrationDefinition": {
            "properties": def_props,
            "id": def_id,
            "type": "Microsoft.ManagedServices/registrationDefinitions",
            "name": def_name,
        },
    }
    rid = (
        f"/subscriptions/{c.sid}/providers/Microsoft.ManagedServices/registrationAssignments/{name}"
    )
    return [c.row(rid, name, T_REG_ASSIGNMENT, props)]


def _std_base(sid: str, std: str) -> str:
    return f"/subscriptions/{sid}/providers/Microsoft.Security/regulatoryComplianceStandards/{std}"


def _malformed_ids(sid: str) -> list[tuple[str, str]]:
    base = _std_base(sid, cat.MCSB)
    g = [cat.synthetic_key(f"malformed|{sid}|{i}") for i in range(3)]
    return [
        (
            f"{base}/regulatoryComplianceControls/NS.2/regulatoryComplianceAssessments/{g[0]}",
            "missing properties.state",
        ),
        (
            f"{base}/regulatoryComplianceControls/NS.2/regulatoryComplianceAssessments/{g[1]}",
            "state 'Bogus'",
        ),
        (
            f"{base}/regulatoryComplianceAssessments/{g[2]}",
            "id is not a regulatory compliance assessment id (no control segment)",
        ),
    ]


def _compliance(e: Estate, c: _Ctx, want: str) -> list[Row]:
    """Standards, controls or assessments of a subscription, summaries consistent."""
    states = e.compliance_states(c.sid, c.day)
    base = e._base_assessments(c.sid)
    out: list[Row] = []
    type_frag = _enc(want)
    for std_name in sorted(e.standards(c.sid, c.day)):
        std = cat.STANDARD_BY_NAME[std_name]
        std_base = _std_base(c.sid, std_name)
        ctl_counts = {PASSED: 0, FAILED: 0, SKIPPED: 0, UNSUPPORTED: 0}
        for control in std.controls:
            ctl_id = f"{std_base}/regulatoryComplianceControls/{control.name}"
            p = f = s = 0
            for key in control.assessment_keys:
                st = states[key]
                if st == PASSED:
                    p += 1
                elif st == FAILED:
                    f += 1
                elif st == SKIPPED:
                    s += 1
                if want == T_COMPLIANCE:
                    _b, n, f0 = base[key]
                    pr, fr, sr = _state_counts(st, n, f0)
                    props = {
                        "description": cat.RECOMMENDATION_BY_KEY[key].display_name,
                        "assessmentType": "Assessment",
                        "assessmentDetailsLink": "https://management.azure.com/subscriptions/"
                        f"{c.sid}/providers/Microsoft.Security/securityStatuses/{key}",
                        "state": st,
                        "passedResources": pr,
                        "failedResources": fr,
                        "skippedResources": sr,
                    }
                    out.append(
                        c.row(
                            f"{ctl_id}/regulatoryComplianceAssessments/{key}",
                            key,
                            want,
                            props,
                            type_frag=type_frag,
                        )
                    )
            ctl_state = _rollup(p, f, s)
            ctl_counts[ctl_state] += 1
            if want == T_CONTROL:
                props = {
                    "description": control.description,
                    "state": ctl_state,
                    "passedAssessments": p,
                    "failedAssessments": f,
                    "skippedAssessments": s,
                }
                out.append(c.row(ctl_id, control.name, want, props, type_frag=type_frag))
        if want == T_STANDARD:
            props = {
                "state": _rollup(ctl_counts[PASSED], ctl_counts[FAILED], ctl_counts[SKIPPED]),
                "passedControls": ctl_counts[PASSED],
                "failedControls": ctl_counts[FAILED],
                "skippedControls": ctl_counts[SKIPPED],
                "unsupportedControls": ctl_counts[UNSUPPORTED],
            }
            out.append(c.row(std_base, std_name, want, props, type_frag=type_frag))
    if want == T_COMPLIANCE and e._malformed(c.sid):
        (id0, _), (id1, _), (id2, _) = _malformed_ids(c.sid)
        rec = cat.RECOMMENDATION_BY_KEY[cat.KEY_CLOSE_MGMT_PORTS]
        common = {
            "description": rec.display_name,
            "assessmentType": "Assessment",
            "assessmentDetailsLink": "https://management.azure.com/subscriptions/"
            f"{c.sid}/providers/Microsoft.Security/securityStatuses/{rec.key}",
        }
        counts = {"passedResources": 1, "failedResources": 2, "skippedResources": 0}
        out.append(c.row(id0, id0.rsplit("/", 1)[1], want, common | counts))
        out.append(c.row(id1, id1.rsplit("/", 1)[1], want, common | {"state": "Bogus"} | counts))
        out.append(c.row(id2, id2.rsplit("/", 1)[1], want, common | {"state": FAILED} | counts))
    return out


def _b_standards(e: Estate, c: _Ctx) -> list[Row]:
    return _compliance(e, c, T_STANDARD)


def _b_controls(e: Estate, c: _Ctx) -> list[Row]:
    return _compliance(e, c, T_CONTROL)


def _b_compliance(e: Estate, c: _Ctx) -> list[Row]:
    return _compliance(e, c, T_COMPLIANCE)


def _score_controls(e: Estate, sid: str) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for guid, name, max_score in cat.SECURE_SCORE_CONTROLS:
        h = int(det_unit(e.seed, "ssh", sid, guid) * 8)
        u = int(det_unit(e.seed, "ssu", sid, guid) * 6)
        na = int(det_unit(e.seed, "ssn", sid, guid) * 3)
        current = round(max_score * h / (h + u), 2) if h + u else 0
        pct = round(current / max_score, 4) if max_score else 0
        props = {
            "displayName": name,
            "healthyResourceCount": h,
            "unhealthyResourceCount": u,
            "notApplicableResourceCount": na,
            "score": {"max": max_score, "current": current, "percentage": pct},
            "weight": h + u,
        }
        out.append((guid, name, props))
    return out


def _b_secure_score(e: Estate, c: _Ctx) -> list[Row]:
    controls = _score_controls(e, c.sid)
    mx = sum(p["score"]["max"] for _g, _n, p in controls)
    cur = round(sum(p["score"]["current"] for _g, _n, p in controls), 2)
    props = {
        "displayName": "ASC score",
        "score": {"max": mx, "current": cur, "percentage": round(cur / mx, 4) if mx else 0},
        "weight": sum(p["weight"] for _g, _n, p in controls),
    }
    rid = f"/subscriptions/{c.sid}/providers/Microsoft.Security/secureScores/ascScore"
    return [c.row(rid, "ascScore", T_SECURE_SCORE, props)]


def _b_secure_score_controls(e: Estate, c: _Ctx) -> list[Row]:
    base = f"/subscriptions/{c.sid}/providers/Microsoft.Security/secureScores/ascScore"
    return [
        c.row(f"{base}/secureScoreControls/{g}", g, T_SECURE_SCORE_CONTROL, p)
        for g, _n, p in _score_controls(e, c.sid)
    ]


def _b_pricings(e: Estate, c: _Ctx) -> list[Row]:
    out = []
    for plan, sub_plan, deprecated, extensions in cat.PLANS:
        tier = e.tier(c.sid, plan, c.day)
        props: dict[str, Any] = {"pricingTier": tier}
        if tier == "Standard" and sub_plan:
            props["subPlan"] = sub_plan
        props["freeTrialRemainingTime"] = "PT0S"
        if tier == "Standard":
            props["enablementTime"] = "2025-03-01T12:42:42.1921106Z"
        props["enforce"] = "False"
        props["resourcesCoverageStatus"] = "FullyCovered" if tier == "Standard" else "NotCovered"
        if tier == "Standard" and extensions:
            props["extensions"] = [{"name": x, "isEnabled": "True"} for x in extensions]
        if deprecated:
            props["deprecated"] = True
            props["replacedBy"] = list(deprecated)
        rid = f"/subscriptions/{c.sid}/providers/Microsoft.Security/pricings/{plan}"
        out.append(c.row(rid, plan, T_PRICING, props))
    return out


_ASSIGN_META = {
    "createdBy": "c23b5354-ff0a-4b2a-9f92-6f144effd936",
    "createdOn": "2025-11-10T08:31:26.7993124Z",
    "lastUpdatedBy": "c23b5354-ff0a-4b2a-9f92-6f144effd936",
    "lastUpdatedOn": "2025-11-10T08:31:26.7993124Z",
}


def _b_standard_assignments(e: Estate, c: _Ctx) -> list[Row]:
    out = []
    sub_scope = f"/subscriptions/{c.sid}"
    for std_name in sorted(e.standards(c.sid, c.day)):
        std = cat.STANDARD_BY_NAME[std_name]
        name = det_guid(e.seed, "assignment", c.sid, std_name)
        props = {
            "description": f"Assignment of {std.display_name}",
            "assignedStandard": {
                "id": f"/providers/Microsoft.Security/securityStandards/{std.security_standard_id}"
            },
            "displayName": std.display_name,
            "effect": "Audit",
            "metadata": _ASSIGN_META,
        }
        rid = f"{sub_scope}/providers/Microsoft.Security/standardAssignments/{name}"
        out.append(c.row(rid, name, T_STANDARD_ASSIGNMENT, props))
    mcsb = cat.STANDARD_BY_NAME[cat.MCSB]
    mcsb_ref = {
        "id": f"/providers/Microsoft.Security/securityStandards/{mcsb.security_standard_id}"
    }
    for ex in e.exemptions(c.sid):
        props = {
            "description": f"Exemption ({ex['category']})",
            "assignedStandard": mcsb_ref,
            "displayName": "Exemption for "
            + cat.RECOMMENDATION_BY_KEY[ex["key"]].display_name[:60],
            "effect": "Exempt",
            "exemptionData": {
                "assignedAssessment": {"assessmentKey": ex["key"]},
                "exemptionCategory": ex["category"],
            },
            "expiresOn": ex["expiresOn"],
            "metadata": _ASSIGN_META,
        }
        out.append(c.row(ex["id"], ex["name"], T_STANDARD_ASSIGNMENT, props, rg=ex["rg"]))
    for at in e._attestations(c.sid):
        props = {
            "description": f"Manual attestation of {cat.MCSB} {at['control']}",
            "assignedStandard": mcsb_ref,
            "displayName": f"Attestation {at['control']}",
            "effect": "Attest",
            "attestationData": {
                "assignedAssessment": {"assessmentKey": at["key"]},
                "complianceState": at["state"],
                "complianceDate": at["date"],
                "evidence": [
                    {
                        "description": f"Evidence for {at['control']}",
                        "sourceUrl": f"https://evidence.example.com/{c.sid}/{at['control']}",
                    }
                ],
            },
            "metadata": _ASSIGN_META,
        }
        rid = f"{sub_scope}/providers/Microsoft.Security/standardAssignments/{at['name']}"
        out.append(c.row(rid, at["name"], T_STANDARD_ASSIGNMENT, props))
    return out


_NA_CAUSE = "OffByPolicy"
_NA_DESC = (
    "The effective policy for the assessment was evaluated to off - use "
    "Microsoft.Authorization/policyAssignments to turn this assessment on"
)


def _assessment_row(e: Estate, c: _Ctx, resource_id: str, rg: str, key: str, code: str) -> Row:
    rec = cat.RECOMMENDATION_BY_KEY[key]
    status: dict[str, Any] = {"code": code}
    if code == "NotApplicable":
        status["cause"] = _NA_CAUSE
        status["description"] = _NA_DESC
    day = 1 + int(det_unit(e.seed, "sd", resource_id, key) * 28)
    status["statusChangeDate"] = f"2026-10-{day:02d}T09:07:18.6759138Z"
    status["firstEvaluationDate"] = "2026-04-12T09:07:18.6759138Z"
    props = {
        "resourceDetails": {"Source": "Azure", "Id": resource_id},
        "displayName": rec.display_name,
        "status": status,
        "links": {
            "azurePortalUri": "https://www.portal.azure.com/?fea#blade/Microsoft_Azure_Security/"
            f"RecommendationsBlade/assessmentKey/{key}"
        },
        "metadata": {
            "displayName": rec.display_name,
            "severity": rec.severity,
            "assessmentType": "BuiltIn",
        },
    }
    rid = f"{resource_id}/providers/Microsoft.Security/assessments/{key}"
    return c.row(rid, key, T_ASSESSMENT, props, rg=rg)


# --- resource-level assessments: drifting day by day ----------------------------------------
#
# Day 0 is each assessment's first draw (Healthy 55 %, Unhealthy 35 %, NotApplicable 10 %: the
# policy's verdict, which does not drift). From then on an assessment re-draws Healthy or
# Unhealthy once per epoch of its own length (ASSESSMENT_EPOCH_DAYS, its phase staggered), so
# about half a percent of them change on any day; and recommendations appear: a share of the
# recommendations of a resource's kind that do not apply to it on day 0 start applying on a
# day 1..APPEAR_WINDOW. All of it is a pure function of (seed, resource, key, day), like the
# alerts': any day can be served, in any order, and the ground truth is the same function.

ASSESSMENT_EPOCH_DAYS = (40, 160)
APPEAR_SHARE = 0.3
APPEAR_WINDOW = 60
_HEALTHY, _APPLICABLE = 0.55, 0.9  # the day-0 draw's bounds
_UNIT = float(1 << 56)


def _code(e: Estate, rid: str, key: str, day: int) -> str:
    digest = _digest(e.seed, ("acode", rid, key))
    u = int.from_bytes(digest[:7], "big") / _UNIT  # det_unit's draw: day 0 as before drift
    if u >= _APPLICABLE:
        return "NotApplicable"
    lo, hi = ASSESSMENT_EPOCH_DAYS
    period = lo + int.from_bytes(digest[7:9], "big") % (hi - lo)
    epoch = (day + int.from_bytes(digest[9:11], "big") % period) // period
    if epoch:
        u = det_unit(e.seed, "acode", rid, key, epoch) * _APPLICABLE
    return "Healthy" if u < _HEALTHY else "Unhealthy"


@functools.lru_cache(maxsize=65_536)
def _appearing(e: Estate, sid: str) -> tuple[tuple[str, str, str, int], ...]:
    """(resource id, rg, key, first day) of the recommendations that start applying to a
    resource after day 0: of storage, key vault and SQL resources, their kind's keys past the
    first four; of the `large` estate's extras, their kind's keys that did not apply."""
    res = e.resources(sid)
    candidates = [
        (rid, rg, key)
        for rid, rg, applies in res.others
        for key in cat.KIND_KEYS[applies][len(_OTHER_KEYS[applies]) :]
    ]
    candidates += [
        (rid, rg, key)
        for rid, rg, kind in res.extras
        for key in cat.KIND_KEYS[kind]
        if det_unit(e.seed, "applies", rid, key) >= APPLIES_SHARE
    ]
    out = []
    for rid, rg, key in candidates:
        digest = _digest(e.seed, ("appear", rid, key))
        if int.from_bytes(digest[:7], "big") / _UNIT < APPEAR_SHARE:
            out.append((rid, rg, key, 1 + int.from_bytes(digest[7:9], "big") % APPEAR_WINDOW))
    return tuple(out)


def appeared(e: Estate, sid: str, day: int) -> Iterator[tuple[str, str, str]]:
    """(resource id, rg, key) of the recommendations that started applying by `day`."""
    return ((rid, rg, key) for rid, rg, key, first in _appearing(e, sid) if first <= day)


def assessed(e: Estate, sid: str, day: int) -> Iterator[tuple[str, str, str, str]]:
    """(resource id, rg, assessment key, status code) of every resource-level assessment of a
    subscription on `day`: the rows served and the ground truth both come from here."""
    res = e.resources(sid)
    for vm in res.vms:
        for key in cat.VM_KEYS:
            if key == cat.KEY_JIT:  # follows the JIT policies (jit_policies), not the drift
                yield vm.rid, vm.rg, key, "Healthy" if vm.jit else "Unhealthy"
            else:
                yield vm.rid, vm.rg, key, _code(e, vm.rid, key, day)
    for rid, rg in res.vmss:
        for key in cat.VMSS_KEYS:
            yield rid, rg, key, _code(e, rid, key, day)
    sub_id = f"/subscriptions/{sid}"
    for key in cat.SUBSCRIPTION_KEYS:
        yield sub_id, "", key, _code(e, sub_id, key, day)
    for rid, rg, applies in res.others:
        for key in _OTHER_KEYS[applies]:
            yield rid, rg, key, _code(e, rid, key, day)
    for rid, rg, key in e.extra_assessments(sid):
        yield rid, rg, key, _code(e, rid, key, day)
    for rid, rg, key in appeared(e, sid, day):
        yield rid, rg, key, _code(e, rid, key, day)


def assessment_count(e: Estate, sid: str, day: int) -> int:
    """How many resource-level assessment rows a subscription has on `day` (no status drawn)."""
    res = e.resources(sid)
    return (
        len(res.vms) * len(cat.VM_KEYS)
        + len(res.vmss) * len(cat.VMSS_KEYS)
        + len(cat.SUBSCRIPTION_KEYS)
        + sum(len(_OTHER_KEYS[a]) for _r, _g, a in res.others)
        + sum(1 for _ in e.extra_assessments(sid))
        + sum(1 for _ in appeared(e, sid, day))
    )


def assessment_truth(e: Estate, sid: str, day: int, details: bool) -> dict[str, Any]:
    """Ground truth of a subscription's resource-level assessments on `day` (``/_sim/estate``);
    with details, every unhealthy resource id (lower case, as collected) per recommendation."""
    res = e.resources(sid)
    codes: Counter[str] = Counter()
    unhealthy: dict[str, list[str]] = {}
    keys: set[str] = set()
    for rid, _rg, key, code in assessed(e, sid, day):
        codes[code] += 1
        keys.add(key)
        if code == "Unhealthy":
            unhealthy.setdefault(key, []).append(rid.lower())
    truth: dict[str, Any] = {
        "resources": len(res.vms) + len(res.vmss) + len(res.others) + len(res.extras),
        "assessments": {code: codes[code] for code in ("Healthy", "Unhealthy", "NotApplicable")},
        "recommendations": len(keys),
        "recommendationsUnhealthy": len(unhealthy),
    }
    if details:
        truth["unhealthyResources"] = {k: sorted(ids) for k, ids in sorted(unhealthy.items())}
    return truth


def _b_assessments(e: Estate, c: _Ctx) -> list[Row]:
    return [
        _assessment_row(e, c, rid, rg, key, code)
        for rid, rg, key, code in assessed(e, c.sid, c.day)
    ]


# --- security alerts: appearing and resolving day by day ----------------------------------------

ALERT_HISTORY_DAYS = 45  # alerts that started this many days back are still listed
_ALERT_KINDS = (
    # (alert type, display name, intent, MITRE techniques)
    ("VM_CredentialDumping", "Credential dumping tool detected", "CredentialAccess", ("T1003",)),
    (
        "VM_SuspiciousScreenSaver",
        "Suspicious screensaver process executed",
        "Execution",
        ("T1059",),
    ),
    ("SQL.VM_BruteForce", "Brute force attack attempt on SQL", "PreAttack", ("T1110",)),
    ("K8S_PrivilegedContainer", "Privileged container detected", "PrivilegeEscalation", ("T1611",)),
    (
        "Storage.Blob_AnonymousAccessAnomaly",
        "Anonymous access to a storage account",
        "Collection",
        (),
    ),
    ("KV_SuspiciousAccess", "Unusual access to a key vault", "CredentialAccess", ("T1555",)),
)
_SEVERITIES = (("High", 0.2), ("Medium", 0.55), ("Low", 0.85), ("Informational", 1.0))


@dataclass(frozen=True)
class SimAlert:
    rid: str
    name: str
    rg: str
    location: str
    kind: int
    severity: str
    status: str
    start: datetime
    resource: str
    entity: str


def _alert_status(e: Estate, sid: str, started: int, i: int, day: int) -> str:
    """Open for 1-6 days (in progress for the last half), then resolved or dismissed."""
    lifetime = 1 + int(det_unit(e.seed, "alife", sid, started, i) * 6)
    age = day - started
    if age < lifetime:
        return "InProgress" if age * 2 >= lifetime and lifetime > 1 else "Active"
    return "Dismissed" if det_unit(e.seed, "aend", sid, started, i) < 0.3 else "Resolved"


def alerts_of(e: Estate, sid: str, day: int) -> list[SimAlert]:
    """The alerts of a subscription on `day`: 0-2 start every day; each stays listed for
    ALERT_HISTORY_DAYS after it started, open at first and closed later."""
    res = e.resources(sid)
    targets = [(vm.rid, vm.rg, vm.name) for vm in res.vms] + [
        (rid, rg, rid.rsplit("/", 1)[-1]) for rid, rg, _a in res.others
    ]
    out = []
    for started in range(day - ALERT_HISTORY_DAYS, day + 1):
        for i in range(int(det_unit(e.seed, "alerts", sid, started) * 3)):
            u = det_unit(e.seed, "asev", sid, started, i)
            severity = next(name for name, bound in _SEVERITIES if u < bound)
            resource, rg, entity = targets[
                int(det_unit(e.seed, "atgt", sid, started, i) * len(targets))
            ]
            kind = int(det_unit(e.seed, "akind", sid, started, i) * len(_ALERT_KINDS))
            guid = det_guid(e.seed, "alert", sid, started, i)
            name = f"{2517538088322968242 - started * 10 - i}_{guid}"
            location = "westeurope"
            out.append(
                SimAlert(
                    f"/subscriptions/{sid}/resourceGroups/{rg}/providers/Microsoft.Security/"
                    f"locations/{location}/alerts/{name}",
                    name,
                    rg,
                    location,
                    kind,
                    severity,
                    _alert_status(e, sid, started, i, day),
                    now_for_day(started) - timedelta(hours=3, minutes=7 * i),
                    resource,
                    entity,
                )
            )
    return out


def alert_truth(e: Estate, sid: str, day: int, details: bool) -> dict[str, Any]:
    """Ground truth of a subscription's alerts: counts by severity and status, open ids."""
    counts: dict[str, dict[str, int]] = {}
    open_ids, open_high = [], []
    for alert in alerts_of(e, sid, day):
        by_status = counts.setdefault(alert.severity, {})
        by_status[alert.status] = by_status.get(alert.status, 0) + 1
        if alert.status in ("Active", "InProgress"):
            open_ids.append(alert.rid.lower())
            if alert.severity == "High":
                open_high.append(alert.rid.lower())
    truth: dict[str, Any] = {"bySeverityStatus": counts, "open": len(open_ids)}
    if details:
        truth["openIds"] = sorted(open_ids)
        truth["openHighIds"] = sorted(open_high)
    return truth


def _b_alerts(e: Estate, c: _Ctx) -> list[Row]:
    out = []
    for alert in alerts_of(e, c.sid, c.day):
        alert_type, display, intent, techniques = _ALERT_KINDS[alert.kind]
        start = alert.start
        props = {
            "version": "2022-01-01",
            "alertType": alert_type,
            "systemAlertId": alert.name,
            "productComponentName": "Servers",
            "alertDisplayName": display,
            "description": f"{display} on {alert.entity}.",
            "severity": alert.severity,
            "intent": intent,
            "startTimeUtc": iso(start),
            "endTimeUtc": iso(start + timedelta(minutes=5)),
            "resourceIdentifiers": [{"azureResourceId": alert.resource, "type": "AzureResource"}],
            "remediationSteps": ["Investigate the activity.", "Escalate if unexpected."],
            "vendorName": "Microsoft",
            "status": alert.status,
            "alertUri": "https://portal.azure.com/#blade/Microsoft_Azure_Security/AlertBlade/"
            f"alertId/{alert.name}/subscriptionId/{c.sid}/resourceGroup/{alert.rg}/"
            f"referencedFrom/alertDeepLink/location/{alert.location}",
            "timeGeneratedUtc": iso(start + timedelta(minutes=6)),
            "productName": "Microsoft Defender for Cloud",
            "isIncident": alert.severity == "High",
            "compromisedEntity": alert.entity,
            "techniques": list(techniques),
        }
        out.append(
            c.row(alert.rid, alert.name, T_ALERT, props, rg=alert.rg, location=alert.location)
        )
    return out


_BUILDERS = {
    T_SUBSCRIPTION: _b_subscription,
    T_RESOURCE_GROUP: _b_resource_groups,
    T_REG_ASSIGNMENT: _b_reg_assignment,
    T_REG_DEFINITION: _b_reg_definition,
    T_STANDARD: _b_standards,
    T_CONTROL: _b_controls,
    T_COMPLIANCE: _b_compliance,
    T_SECURE_SCORE: _b_secure_score,
    T_SECURE_SCORE_CONTROL: _b_secure_score_controls,
    T_PRICING: _b_pricings,
    T_STANDARD_ASSIGNMENT: _b_standard_assignments,
    T_ASSESSMENT: _b_assessments,
    T_ALERT: _b_alerts,
}
