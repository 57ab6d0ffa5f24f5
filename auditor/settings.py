"""Application settings: the one place that knows every setting the code reads.

Settings come from the process environment (App Settings in Azure, ``local.settings.json``
values under the Functions host, or the shell locally). A bad value fails at start with one
line that names the setting, so a misconfigured deployment never runs half-working.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from auditor.core.access import PolicyError, is_guid, parse_policy

PUBLIC_CLOUD_ARM = "https://management.azure.com"

STORAGE_CONNECTION = "AUDITOR_STORAGE"
STORAGE_SERVICE_URI_SUFFIXES = ("tableServiceUri", "queueServiceUri", "blobServiceUri")


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """A setting the code reads: its name, default (None = no default) and meaning."""

    name: str
    default: str | None
    meaning: str


WEB_SECRET_MIN_CHARS = 32

# Every setting the application reads. infra/main.bicep must set each one (tests/infra checks it),
# except those marked local-only below.
SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "AUDITOR_STORAGE",
        None,
        "Storage connection: a connection string locally; in Azure use the identity-based "
        "AUDITOR_STORAGE__tableServiceUri / __queueServiceUri / __blobServiceUri instead.",
    ),
    SettingSpec(
        "AUDITOR_ARM_ENDPOINT", PUBLIC_CLOUD_ARM, "Azure Resource Manager endpoint (cloud)."
    ),
    SettingSpec(
        "AUDITOR_SNAPSHOT_SCHEDULE", "0 0 2 * * *", "NCRONTAB schedule of the daily snapshot run."
    ),
    SettingSpec(
        "AUDITOR_REPORT_SCHEDULE", "0 0 4 1 * *", "NCRONTAB schedule of the monthly evidence packs."
    ),
    SettingSpec(
        "AUDITOR_SNAPSHOT_QUEUE", "auditor-snapshots", "Queue of one-tenant snapshot jobs."
    ),
    SettingSpec("AUDITOR_REPORT_QUEUE", "auditor-reports", "Queue of evidence-pack jobs."),
    SettingSpec("AUDITOR_TABLE_PREFIX", "auditor", "Prefix of every table name (alphanumeric)."),
    SettingSpec("AUDITOR_EVIDENCE_CONTAINER", "evidence", "Write-once blob container of evidence."),
    SettingSpec(
        "AUDITOR_EVIDENCE_RETENTION_DAYS",
        "2555",
        "Days the evidence container's immutability policy retains blobs (recorded in manifests).",
    ),
    SettingSpec(
        "AUDITOR_ACCESS_POLICY",
        None,
        'JSON access policy of the API: {"grants": [{"principal": ..., "tenants": [...] | "*"}]}. '
        "Unset in Azure means nobody may see any tenant.",
    ),
    SettingSpec(
        "AUDITOR_ROLE",
        "all",
        "Which functions function_app.py registers: collector (timers and queues; the "
        "identity customers delegate to), api (the HTTP API only) or all (local runs).",
    ),
    SettingSpec(
        "AUDITOR_COLLECT_TIMEOUT_SECONDS",
        "900",
        "Upper bound on one tenant's collection time, retries and throttling included.",
    ),
    SettingSpec(
        "AUDITOR_ARG_QUOTA",
        "15/5",
        "Resource Graph quota of the collector's identity, LIMIT/SECONDS: every worker of the "
        "identity shares it through a slot lease in Table Storage (docs/scale.md); off paces "
        "each process on the quota headers alone.",
    ),
    # Caps on what one collection reads, whatever the control plane sends (reaching one makes
    # the tenant incomplete with the reason). Defaults: far above any real answer (a Resource
    # Graph page of 1,000 rows is about 0.8 MB; the `large` estate's biggest tenant is about
    # 13,500 rows in 14 pages), and together within the collector's 400 MB memory budget.
    SettingSpec(
        "AUDITOR_COLLECT_MAX_RESPONSE_BYTES",
        str(8 * 1024 * 1024),
        "Cap on the bytes of one control-plane response (read incrementally, abandoned there).",
    ),
    SettingSpec(
        "AUDITOR_COLLECT_MAX_ROWS_PER_TENANT",
        "250000",
        "Cap on the Resource Graph rows read for one tenant.",
    ),
    SettingSpec(
        "AUDITOR_COLLECT_MAX_PAGES_PER_QUERY",
        "1000",
        "Cap on the pages of one query or REST list (a $skipToken or nextLink chain).",
    ),
    # Run digests and notification sinks (docs/notifications.md). Each sink is on when its
    # URL or endpoint is set; the digest is always logged for Azure Monitor.
    SettingSpec(
        "AUDITOR_STALE_SLOTS",
        "3",
        "A tenant is stale in a run's digest when none of its last N slots has a complete "
        "snapshot.",
    ),
    SettingSpec(
        "AUDITOR_NOTIFY_WEBHOOK_URL",
        None,
        "HTTPS URL receiving each run's digest as a signed CloudEvent (unset: no webhook).",
    ),
    SettingSpec(
        "AUDITOR_NOTIFY_WEBHOOK_SECRET",
        None,
        "HMAC-SHA256 key of the webhook's X-Auditor-Signature header (required with the URL).",
    ),
    SettingSpec(
        "AUDITOR_NOTIFY_CHAT_URL",
        None,
        "Teams Workflows or Slack incoming-webhook URL for a short message per run (unset: none).",
    ),
    SettingSpec(
        "AUDITOR_NOTIFY_CHAT_FORMAT", "teams", "teams (Adaptive Card) or slack (Block Kit)."
    ),
    SettingSpec(
        "AUDITOR_NOTIFY_EVENTGRID_ENDPOINT",
        None,
        "Event Grid custom topic endpoint (CloudEvents, managed identity; unset: none).",
    ),
    SettingSpec(
        "AUDITOR_DASHBOARD_URL",
        None,
        "Base URL of the dashboard and API that chat messages link to (unset: no links).",
    ),
    # Security alerts: every alert is counted (per subscription, severity and status); the
    # active and in-progress ones are also listed, up to this cap per tenant, and the count of
    # those the cap left out is stored beside them (never silently dropped).
    SettingSpec(
        "AUDITOR_ALERTS_MAX_PER_TENANT",
        "1000",
        "Cap on the active and in-progress security alerts listed per tenant (all are counted).",
    ),
    SettingSpec(
        "AUDITOR_ALERTS_LOOKBACK_DAYS",
        "30",
        "Resolved and dismissed alerts that ended within this many days are counted.",
    ),
    # The dashboard's CSRF tokens are signed with it: one value for every instance of the API
    # app, so a form rendered by one instance posts to another. Unset locally: `serve` makes
    # one per process. Never logged.
    SettingSpec(
        "AUDITOR_WEB_SECRET",
        None,
        f"Key signing the dashboard's CSRF tokens, at least {WEB_SECRET_MIN_CHARS} characters, "
        "the same on every instance (Azure: a Key Vault reference; unset locally: one per "
        "process).",
    ),
    # Set only when customers sign in (docs/dashboard.md, tenant:self): a user whose home
    # tenant is another one is then a customer, granted nothing but tenant:self.
    SettingSpec(
        "AUDITOR_MANAGING_TENANT_ID",
        None,
        "Managing tenant id (GUID) when users of customer tenants sign in to the dashboard: "
        "their users see only their own tenant through tenant:self grants. Unset: only the "
        "managing tenant's users sign in.",
    ),
    SettingSpec(
        "AUDITOR_RECOMMENDATION_MAX_RESOURCES",
        "200",
        "Cap on the unhealthy resource ids listed per subscription and recommendation "
        "(all are counted).",
    ),
)

# Settings that exist only for local runs and tests; infra does not set them.
LOCAL_ONLY: frozenset[str] = frozenset({"AUDITOR_TABLE_PREFIX"})
# Settings only the collector app reads (it closes runs and sends digests): infra keeps them,
# the webhook secret and chat URL among them, out of the internet-facing API app.
COLLECTOR_ONLY: frozenset[str] = frozenset(
    {
        "AUDITOR_NOTIFY_WEBHOOK_URL",
        "AUDITOR_NOTIFY_WEBHOOK_SECRET",
        "AUDITOR_NOTIFY_CHAT_URL",
        "AUDITOR_NOTIFY_CHAT_FORMAT",
        "AUDITOR_NOTIFY_EVENTGRID_ENDPOINT",
    }
)

# Settings only the API app reads: infra keeps them out of the collector.
API_ONLY: frozenset[str] = frozenset({"AUDITOR_WEB_SECRET", "AUDITOR_MANAGING_TENANT_ID"})

_SPECS = {spec.name: spec for spec in SETTINGS}

ROLES = ("collector", "api", "all")


class SettingsError(ValueError):
    """A setting is missing or malformed. str() is one line naming the setting."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"setting {name}: {problem}")
        self.name = name


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """Either a connection string (local, Azurite) or service URIs used with managed identity."""

    connection_string: str | None
    table_uri: str | None = None
    queue_uri: str | None = None
    blob_uri: str | None = None


@dataclass(frozen=True, slots=True)
class CollectLimits:
    """Caps on what one collection reads (the AUDITOR_COLLECT_MAX_* settings)."""

    max_response_bytes: int
    max_rows_per_tenant: int
    max_pages_per_query: int

    @classmethod
    def defaults(cls) -> CollectLimits:
        return cls(
            max_response_bytes=int(_default("AUDITOR_COLLECT_MAX_RESPONSE_BYTES")),
            max_rows_per_tenant=int(_default("AUDITOR_COLLECT_MAX_ROWS_PER_TENANT")),
            max_pages_per_query=int(_default("AUDITOR_COLLECT_MAX_PAGES_PER_QUERY")),
        )


def _default(name: str) -> str:
    default = _SPECS[name].default
    assert default is not None, f"{name} has no default"
    return default


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """Run digests and their sinks (the AUDITOR_NOTIFY_* settings, AUDITOR_STALE_SLOTS)."""

    stale_slots: int = 3
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    chat_url: str | None = field(default=None, repr=False)  # the URL is the chat's credential
    chat_format: str = "teams"
    eventgrid_endpoint: str | None = None
    dashboard_url: str | None = None


CHAT_FORMATS = ("teams", "slack")
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def _sink_url(env: Mapping[str, str], name: str) -> str | None:
    """An optional sink URL: https (http only to a loopback host, for local receivers)."""
    value = _get(env, name)
    if value is None:
        return None
    parts = urlsplit(value)
    loopback = parts.hostname in LOOPBACK_HOSTS
    if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        # The value is not echoed: a chat webhook's URL is its credential.
        raise SettingsError(name, "must be an https:// URL (http:// only to a loopback host)")
    return value


KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("


def _resolved(env: Mapping[str, str], name: str) -> None:
    # App Service leaves a Key Vault reference it could not resolve as its literal text.
    if (env.get(name) or "").strip().startswith(KEY_VAULT_REFERENCE):
        raise SettingsError(
            name, "is a Key Vault reference the platform could not resolve (see the secret)"
        )


def load_notify(env: Mapping[str, str]) -> NotifySettings:
    for name in ("AUDITOR_NOTIFY_WEBHOOK_SECRET", "AUDITOR_NOTIFY_CHAT_URL"):
        _resolved(env, name)
    webhook = _sink_url(env, "AUDITOR_NOTIFY_WEBHOOK_URL")
    secret = _get(env, "AUDITOR_NOTIFY_WEBHOOK_SECRET")
    if webhook and not secret:
        raise SettingsError(
            "AUDITOR_NOTIFY_WEBHOOK_SECRET", "must be set when AUDITOR_NOTIFY_WEBHOOK_URL is"
        )
    if secret is not None and len(secret) < 16:
        raise SettingsError("AUDITOR_NOTIFY_WEBHOOK_SECRET", "must be at least 16 characters")
    chat_format = (_get(env, "AUDITOR_NOTIFY_CHAT_FORMAT") or "").lower()
    if chat_format not in CHAT_FORMATS:
        raise SettingsError(
            "AUDITOR_NOTIFY_CHAT_FORMAT", f"must be teams or slack, got {chat_format!r}"
        )
    return NotifySettings(
        stale_slots=_int(env, "AUDITOR_STALE_SLOTS", 1),
        webhook_url=webhook,
        webhook_secret=secret,
        chat_url=_sink_url(env, "AUDITOR_NOTIFY_CHAT_URL"),
        chat_format=chat_format,
        eventgrid_endpoint=_sink_url(env, "AUDITOR_NOTIFY_EVENTGRID_ENDPOINT"),
        dashboard_url=_sink_url(env, "AUDITOR_DASHBOARD_URL"),
    )


@dataclass(frozen=True, slots=True)
class Settings:
    arm_endpoint: str
    storage: StorageSettings | None
    snapshot_schedule: str
    report_schedule: str
    snapshot_queue: str
    report_queue: str
    table_prefix: str
    evidence_container: str
    evidence_retention_days: int
    access_policy_json: str | None
    collect_timeout_seconds: float
    collect_limits: CollectLimits = field(default_factory=CollectLimits.defaults)
    role: str = "all"
    notify: NotifySettings = field(default_factory=lambda: NotifySettings())
    alerts_max_per_tenant: int = 1000
    alerts_lookback_days: int = 30
    recommendation_max_resources: int = 200
    web_secret: str | None = field(default=None, repr=False)
    # (limit, window seconds) of the identity's Resource Graph quota; None: paced per process.
    arg_quota: tuple[int, float] | None = (15, 5.0)
    # The tenant whose users are the operator's own; None when no customer signs in.
    managing_tenant: str | None = None

    @property
    def arm_scope(self) -> str:
        """Token scope for Resource Manager: it follows the endpoint (sovereign clouds)."""
        return self.arm_endpoint.rstrip("/") + "/.default"


_QUEUE_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")
_CONTAINER_NAME = _QUEUE_NAME
_TABLE_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,39}$")


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        default = _SPECS[name].default
        return default
    return value.strip()


def _https_url(env: Mapping[str, str], name: str) -> str:
    value = _get(env, name) or ""
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise SettingsError(name, f"must be an https:// URL, got {value!r}")
    return value.rstrip("/")


def _ncrontab(env: Mapping[str, str], name: str) -> str:
    value = _get(env, name) or ""
    if len(value.split()) != 6:
        raise SettingsError(name, f"must be an NCRONTAB expression with six fields, got {value!r}")
    return value


def _int(env: Mapping[str, str], name: str, minimum: int) -> int:
    raw = _get(env, name) or ""
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(name, f"must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(name, f"must be at least {minimum}, got {value}")
    return value


def _named(env: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str) -> str:
    value = _get(env, name) or ""
    if not pattern.match(value):
        raise SettingsError(name, f"must be {what}, got {value!r}")
    return value


def load_storage(env: Mapping[str, str]) -> StorageSettings | None:
    """Read the AUDITOR_STORAGE connection in either of its two forms (None when absent)."""
    conn = env.get(STORAGE_CONNECTION, "").strip()
    uris = {
        suffix: env.get(f"{STORAGE_CONNECTION}__{suffix}", "").strip()
        for suffix in STORAGE_SERVICE_URI_SUFFIXES
    }
    if conn:
        if conn != "UseDevelopmentStorage=true" and "AccountName=" not in conn:
            raise SettingsError(
                STORAGE_CONNECTION,
                "must be a storage connection string (AccountName=...;...) "
                "or UseDevelopmentStorage=true",
            )
        return StorageSettings(connection_string=conn)
    if any(uris.values()):
        for suffix, uri in uris.items():
            parts = urlsplit(uri)
            if parts.scheme not in ("https", "http") or not parts.hostname:
                raise SettingsError(
                    f"{STORAGE_CONNECTION}__{suffix}", f"must be a service URL, got {uri!r}"
                )
        return StorageSettings(
            connection_string=None,
            table_uri=uris["tableServiceUri"],
            queue_uri=uris["queueServiceUri"],
            blob_uri=uris["blobServiceUri"],
        )
    return None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise SettingsError naming the first bad one."""
    env = os.environ if env is None else env
    policy = _get(env, "AUDITOR_ACCESS_POLICY")
    if policy is not None:
        try:
            parse_policy(policy)
        except PolicyError as exc:
            raise SettingsError("AUDITOR_ACCESS_POLICY", str(exc)) from None
    return Settings(
        arm_endpoint=_https_url(env, "AUDITOR_ARM_ENDPOINT"),
        storage=load_storage(env),
        snapshot_schedule=_ncrontab(env, "AUDITOR_SNAPSHOT_SCHEDULE"),
        report_schedule=_ncrontab(env, "AUDITOR_REPORT_SCHEDULE"),
        snapshot_queue=_named(env, "AUDITOR_SNAPSHOT_QUEUE", _QUEUE_NAME, "a queue name"),
        report_queue=_named(env, "AUDITOR_REPORT_QUEUE", _QUEUE_NAME, "a queue name"),
        table_prefix=_named(env, "AUDITOR_TABLE_PREFIX", _TABLE_PREFIX, "alphanumeric"),
        evidence_container=_named(
            env, "AUDITOR_EVIDENCE_CONTAINER", _CONTAINER_NAME, "a blob container name"
        ),
        evidence_retention_days=_int(env, "AUDITOR_EVIDENCE_RETENTION_DAYS", 1),
        access_policy_json=policy,
        collect_timeout_seconds=float(_int(env, "AUDITOR_COLLECT_TIMEOUT_SECONDS", 10)),
        collect_limits=CollectLimits(
            max_response_bytes=_int(env, "AUDITOR_COLLECT_MAX_RESPONSE_BYTES", 64 * 1024),
            max_rows_per_tenant=_int(env, "AUDITOR_COLLECT_MAX_ROWS_PER_TENANT", 1000),
            max_pages_per_query=_int(env, "AUDITOR_COLLECT_MAX_PAGES_PER_QUERY", 2),
        ),
        role=load_role(env),
        notify=load_notify(env),
        alerts_max_per_tenant=_int(env, "AUDITOR_ALERTS_MAX_PER_TENANT", 0),
        alerts_lookback_days=_int(env, "AUDITOR_ALERTS_LOOKBACK_DAYS", 1),
        recommendation_max_resources=_int(env, "AUDITOR_RECOMMENDATION_MAX_RESOURCES", 0),
        web_secret=load_web_secret(env),
        arg_quota=load_arg_quota(env),
        managing_tenant=load_managing_tenant(env),
    )


def load_managing_tenant(env: Mapping[str, str]) -> str | None:
    """AUDITOR_MANAGING_TENANT_ID in lower case, or None when unset; SettingsError naming it
    when it is not a tenant id (a GUID)."""
    value = _get(env, "AUDITOR_MANAGING_TENANT_ID")
    if value is None:
        return None
    if not is_guid(value):
        raise SettingsError(
            "AUDITOR_MANAGING_TENANT_ID", f"must be a tenant id (GUID), got {value!r}"
        )
    return value.lower()


def load_web_secret(env: Mapping[str, str]) -> str | None:
    """AUDITOR_WEB_SECRET, or None when unset; SettingsError naming it when it is an
    unresolved Key Vault reference or too short (the value itself is never echoed)."""
    _resolved(env, "AUDITOR_WEB_SECRET")
    secret = _get(env, "AUDITOR_WEB_SECRET")
    if secret is not None and len(secret) < WEB_SECRET_MIN_CHARS:
        raise SettingsError(
            "AUDITOR_WEB_SECRET", f"must be at least {WEB_SECRET_MIN_CHARS} characters"
        )
    return secret


_QUOTA = re.compile(r"^([1-9][0-9]{0,5})/([0-9]{1,5}(?:\.[0-9]+)?)$")


def load_arg_quota(env: Mapping[str, str]) -> tuple[int, float] | None:
    """AUDITOR_ARG_QUOTA: LIMIT/SECONDS (e.g. 15/5) or off; SettingsError naming it otherwise."""
    raw = (_get(env, "AUDITOR_ARG_QUOTA") or "").lower()
    if raw == "off":
        return None
    match = _QUOTA.match(raw)
    if not match or float(match.group(2)) <= 0:
        raise SettingsError(
            "AUDITOR_ARG_QUOTA", f"must be LIMIT/SECONDS (e.g. 15/5) or off, got {raw!r}"
        )
    return int(match.group(1)), float(match.group(2))


def load_role(env: Mapping[str, str] | None = None) -> str:
    """AUDITOR_ROLE: collector, api or all (the default); SettingsError naming it otherwise."""
    env = os.environ if env is None else env
    value = (_get(env, "AUDITOR_ROLE") or "").lower()
    if value not in ROLES:
        raise SettingsError("AUDITOR_ROLE", f"must be one of {', '.join(ROLES)}, got {value!r}")
    return value


def require_storage(settings: Settings) -> StorageSettings:
    """The storage connection, or SettingsError when it is not configured."""
    if settings.storage is None:
        raise SettingsError(
            STORAGE_CONNECTION,
            "is not set: give a connection string, or AUDITOR_STORAGE__tableServiceUri, "
            "__queueServiceUri and __blobServiceUri for managed identity",
        )
    return settings.storage
