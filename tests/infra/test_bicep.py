"""Offline checks of the infrastructure templates, over pycep-parser's parse of the Bicep files.

No Bicep compiler is available here, so these tests read the parsed syntax tree: identifiers
(parameters, variables, resource symbols) come back as bare strings, expressions as nested
``function`` / ``operator`` dicts. ``render`` turns an expression back into Bicep-like text so
that assertions can compare against readable expectations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pycep import BicepParser

from auditor.settings import (
    API_ONLY,
    COLLECTOR_ONLY,
    LOCAL_ONLY,
    SETTINGS,
    STORAGE_CONNECTION,
    STORAGE_SERVICE_URI_SUFFIXES,
)
from tools import check_infra

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
MAIN_PARAMETERS = INFRA / "main.parameters.json"
LIGHTHOUSE = INFRA / "lighthouse" / "delegate-auditor.bicep"
LIGHTHOUSE_PARAMETERS = INFRA / "lighthouse" / "delegate-auditor.parameters.example.json"
SAMPLE_SETTINGS = ROOT / "local.settings.sample.json"

ROLE = {
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "Storage Table Data Reader": "76199698-9eea-4c19-bc75-cec21354c6b6",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Blob Delegator": "db58b8e5-c6ad-4a2a-8342-4190687cbf4a",
    "Storage Queue Data Message Sender": "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",
    "Security Reader": "39bc4728-0917-49c7-9d2c-d95423bc2eb4",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "EventGrid Data Sender": "d5a91429-5739-47e2-a06b-3470a27159e7",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "Managed Services Registration assignment Delete Role": "91c1777a-f3dc-4fae-b103-61d183457e46",
}

# App settings that Flex Consumption rejects or ignores (runtime lives in functionAppConfig).
LEGACY_WORKER_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_MAX_HTTP_CONCURRENCY",
    "FUNCTIONS_WORKER_PROCESS_COUNT",
    "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_NODE_DEFAULT_VERSION",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
}
# Site properties listed in the Flex Consumption deprecations (rejected in newer regions).
FLEX_REJECTED_SITE_CONFIG = {
    "linuxFxVersion",
    "windowsFxVersion",
    "netFrameworkVersion",
    "pythonVersion",
    "javaVersion",
    "powerShellVersion",
    "alwaysOn",
    "ftpsState",
    "use32BitWorkerProcess",
    "preWarmedInstanceCount",
    "functionAppScaleLimit",
    "functionsRuntimeScaleMonitoringEnabled",
}
SECRET_MARKERS = (
    "AccountKey",
    "SharedAccessSignature",
    "DefaultEndpointsProtocol",
    "UseDevelopmentStorage",
    "listKeys",
    "listAccountSas",
    "listServiceSas",
    "primaryKey",
)


# ---------------------------------------------------------------------------------------------
# Parsing helpers
# ---------------------------------------------------------------------------------------------


def _parse(path: Path) -> dict[str, Any]:
    parsed = BicepParser().parse(text=path.read_text(encoding="utf-8"))
    assert parsed and parsed.get("resources"), f"pycep parsed no resource in {path}"
    return parsed


@pytest.fixture(scope="module")
def main() -> dict[str, Any]:
    return _parse(MAIN)


@pytest.fixture(scope="module")
def lighthouse() -> dict[str, Any]:
    return _parse(LIGHTHOUSE)


def render(expr: Any) -> Any:
    """Bicep-like text of a parsed expression; literals other than strings stay as they are."""
    if isinstance(expr, dict):
        if "operator" in expr:
            op = expr["operator"]
            operands = op["operands"]
            if op["type"] == "property_accessor":
                return f"{render(operands['operand_1'])}.{render(operands['operand_2'])}"
            if op["type"] == "conditional":
                return (
                    f"{render(operands['condition'])} ? {render(operands['true_value'])} "
                    f": {render(operands['false_value'])}"
                )
            return f"{op['type']}({', '.join(str(render(v)) for v in operands.values())})"
        if "function" in expr:
            fn = expr["function"]
            args = ", ".join(str(render(v)) for v in (fn.get("parameters") or {}).values() if v)
            text = f"{fn['type']}({args})"
            return f"{text}.{fn['property_name']}" if fn.get("property_name") else text
    return expr


def resource(parsed: dict[str, Any], symbol: str) -> dict[str, Any]:
    """The config of a resource (unwrapping `= if (...)` conditions)."""
    config = parsed["resources"][symbol]["config"]
    return config["config"] if "condition" in config else config


def resources_of_type(parsed: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {
        symbol: resource(parsed, symbol)
        for symbol, res in parsed["resources"].items()
        if res["type"].lower() == rtype.lower()
    }


def param_default(parsed: dict[str, Any], name: str) -> Any:
    assert name in parsed["parameters"], f"no parameter {name}"
    return parsed["parameters"][name].get("default")


def variable(parsed: dict[str, Any], name: str) -> Any:
    assert name in parsed["variables"], f"no variable {name}"
    return parsed["variables"][name]["value"]


def decorator(parsed: dict[str, Any], param: str, kind: str) -> Any:
    for deco in parsed["parameters"][param]["decorators"]:
        if deco["type"] == kind:
            return deco["argument"]
    return None


def _array(parsed: dict[str, Any], expr: Any) -> list[Any]:
    """Items of an array expression: a literal, a variable, or concat() of those."""
    if isinstance(expr, list):
        return expr
    if isinstance(expr, str) and expr in parsed["variables"]:
        return _array(parsed, variable(parsed, expr))
    if isinstance(expr, dict) and expr.get("function", {}).get("type") == "concat":
        items: list[Any] = []
        for arg in expr["function"]["parameters"].values():
            items.extend(_array(parsed, arg))
        return items
    raise AssertionError(f"not an array expression: {expr!r}")


# The two apps (issue 9 §6): symbol -> (its identity, host storage, plan, AUDITOR_ROLE, azd service)
APPS = {
    "collectorApp": ("identity", "hostStorage", "plan", "collector", "collector"),
    "functionApp": ("apiIdentity", "apiHostStorage", "apiPlan", "api", "api"),
}


def app_settings(parsed: dict[str, Any], app: str = "functionApp") -> dict[str, Any]:
    site = resource(parsed, app)
    items = _array(parsed, site["properties"]["siteConfig"]["appSettings"])
    names = [item["name"] for item in items]
    duplicates = {name for name in names if names.count(name) > 1}
    assert not duplicates, f"app settings set twice: {sorted(duplicates)}"
    return {item["name"]: item["value"] for item in items}


def literal_value(parsed: dict[str, Any], expr: Any) -> str:
    """The deployed text of a setting whose value is a parameter (or string(parameter))."""
    if isinstance(expr, dict) and expr.get("function", {}).get("type") == "string":
        expr = expr["function"]["parameters"]["value_to_convert"]
    assert isinstance(expr, str) and expr in parsed["parameters"], (
        f"expected a parameter, got {render(expr)!r}"
    )
    default = param_default(parsed, expr)
    assert default is not None and not isinstance(default, dict), f"{expr} has no literal default"
    return str(default)


def sample_values() -> dict[str, str]:
    return json.loads(SAMPLE_SETTINGS.read_text(encoding="utf-8"))["Values"]


def bicep_files() -> Iterator[Path]:
    yield from sorted(INFRA.rglob("*.bicep"))


# ---------------------------------------------------------------------------------------------
# App settings
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("app", list(APPS))
def test_every_setting_the_code_reads_is_set(main: dict[str, Any], app: str) -> None:
    settings = app_settings(main, app)
    missing = []
    for spec in SETTINGS:
        if spec.name in LOCAL_ONLY or (spec.name in COLLECTOR_ONLY and app != "collectorApp"):
            continue
        if spec.name in API_ONLY and app != "functionApp":
            continue
        if spec.name == STORAGE_CONNECTION:
            # In Azure the connection is identity-based: one URI per service instead.
            wanted = [f"{spec.name}__{suffix}" for suffix in STORAGE_SERVICE_URI_SUFFIXES]
        else:
            wanted = [spec.name]
        missing.extend(name for name in wanted if name not in settings)
    assert not missing, f"settings the code reads but main.bicep does not set: {missing}"


@pytest.mark.parametrize("app", list(APPS))
def test_local_only_settings_are_not_deployed(main: dict[str, Any], app: str) -> None:
    assert not LOCAL_ONLY & set(app_settings(main, app))


@pytest.mark.parametrize("app", list(APPS))
def test_each_app_has_its_role(main: dict[str, Any], app: str) -> None:
    # Issue 9 §6: same package, AUDITOR_ROLE chooses the functions (function_app.py).
    assert app_settings(main, app)["AUDITOR_ROLE"] == APPS[app][3]


@pytest.mark.parametrize("app", list(APPS))
def test_storage_connection_is_identity_based_and_points_at_the_data_account(
    main: dict[str, Any], app: str
) -> None:
    settings = app_settings(main, app)
    identity = APPS[app][0]
    for suffix, service in zip(
        STORAGE_SERVICE_URI_SUFFIXES, ("table", "queue", "blob"), strict=True
    ):
        value = render(settings[f"{STORAGE_CONNECTION}__{suffix}"])
        assert value == f"dataStorage.properties.primaryEndpoints.{service}"
    assert settings[f"{STORAGE_CONNECTION}__credential"] == "managedidentity"
    assert render(settings[f"{STORAGE_CONNECTION}__clientId"]) == f"{identity}.properties.clientId"
    # DefaultAzureCredential (Resource Graph calls) picks the user-assigned identity by this.
    assert render(settings["AZURE_CLIENT_ID"]) == f"{identity}.properties.clientId"


@pytest.mark.parametrize("app", list(APPS))
def test_host_storage_and_telemetry_use_the_identity(main: dict[str, Any], app: str) -> None:
    settings = app_settings(main, app)
    identity, host = APPS[app][0], APPS[app][1]
    assert render(settings["AzureWebJobsStorage__accountName"]) == f"{host}.name"
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert render(settings["AzureWebJobsStorage__clientId"]) == f"{identity}.properties.clientId"
    assert render(settings["APPLICATIONINSIGHTS_CONNECTION_STRING"]) == (
        "appInsights.properties.ConnectionString"
    )
    auth = settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
    assert "Authorization=AAD" in auth
    assert f"ClientId=${{{identity}.properties.clientId}}" in auth


@pytest.mark.parametrize("app", list(APPS))
def test_no_connection_strings_or_keys_in_app_settings(main: dict[str, Any], app: str) -> None:
    settings = app_settings(main, app)
    # The bare connection names would be read as connection strings (keys) before the URIs.
    assert "AzureWebJobsStorage" not in settings
    assert STORAGE_CONNECTION not in settings
    connection_strings = {name for name in settings if "CONNECTION" in name.upper()}
    # The Application Insights connection string names the resource; it holds no secret, and
    # with local auth disabled, ingestion needs the identity (the authentication string).
    assert connection_strings <= {"APPLICATIONINSIGHTS_CONNECTION_STRING"}
    for name, value in settings.items():
        text = json.dumps(render(value)) if not isinstance(value, str) else value
        for marker in SECRET_MARKERS:
            assert marker.lower() not in text.lower(), f"{name} carries {marker}"


# The one secure parameter: drawn at random by its default, never given by anyone.
GENERATED_SECRET = re.compile(r"@secure\(\)\n(@\w+\(.*\)\n)*param webSecret string = newGuid\(\)\n")


@pytest.mark.parametrize("path", list(bicep_files()), ids=lambda p: p.name)
def test_no_keys_anywhere_in_the_templates(path: Path) -> None:
    code = "\n".join(
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if not line.strip().startswith("//")
    )
    for marker in SECRET_MARKERS:
        assert marker.lower() not in code.lower(), f"{path.name} uses {marker}"
    # No secret parameters: everything is identity-based. The one exception holds no
    # credential anyone gives: the dashboard's CSRF key, which Bicep can only draw at random
    # as a parameter's default (newGuid), stored straight into Key Vault (test_web_infra.py).
    assert "@secure()" not in GENERATED_SECRET.sub("", code + "\n"), "no secret parameters"


@pytest.mark.parametrize("app", list(APPS))
def test_no_legacy_worker_settings_on_flex(main: dict[str, Any], app: str) -> None:
    assert not LEGACY_WORKER_SETTINGS & set(app_settings(main, app))
    site_config = resource(main, app)["properties"]["siteConfig"]
    assert not FLEX_REJECTED_SITE_CONFIG & set(site_config)


@pytest.mark.parametrize("name", ["AUDITOR_SNAPSHOT_SCHEDULE", "AUDITOR_REPORT_SCHEDULE"])
def test_schedules_match_local_settings_sample(main: dict[str, Any], name: str) -> None:
    deployed = literal_value(main, app_settings(main)[name])
    assert deployed == sample_values()[name]
    assert len(deployed.split()) == 6, "NCRONTAB has six fields"


@pytest.mark.parametrize(
    "name",
    [
        "AUDITOR_SNAPSHOT_QUEUE",
        "AUDITOR_REPORT_QUEUE",
        "AUDITOR_EVIDENCE_CONTAINER",
        "AUDITOR_EVIDENCE_RETENTION_DAYS",
        "AUDITOR_COLLECT_TIMEOUT_SECONDS",
        "AUDITOR_ARG_QUOTA",
    ],
)
def test_defaults_match_local_settings_sample_and_the_code(main: dict[str, Any], name: str) -> None:
    deployed = literal_value(main, app_settings(main)[name])
    assert deployed == sample_values()[name]
    spec_default = {spec.name: spec.default for spec in SETTINGS}[name]
    assert deployed == spec_default


def test_access_policy_defaults_to_deny_all(main: dict[str, Any]) -> None:
    value = app_settings(main)["AUDITOR_ACCESS_POLICY"]
    assert render(value) == "string(accessPolicy)"
    assert main["parameters"]["accessPolicy"]["type"] == "object"
    assert param_default(main, "accessPolicy") == {"grants": []}
    parameters = json.loads(MAIN_PARAMETERS.read_text(encoding="utf-8"))["parameters"]
    assert parameters["accessPolicy"]["value"] == {"grants": []}


def test_arm_endpoint_follows_the_cloud_of_the_deployment(main: dict[str, Any]) -> None:
    assert app_settings(main)["AUDITOR_ARM_ENDPOINT"] == "armEndpoint"
    assert render(param_default(main, "armEndpoint")) == "environment().resourceManager"


# ---------------------------------------------------------------------------------------------
# Function App on Flex Consumption
# ---------------------------------------------------------------------------------------------


def test_each_app_has_its_own_flex_consumption_plan(main: dict[str, Any]) -> None:
    plans = resources_of_type(main, "Microsoft.Web/serverfarms")
    assert set(plans) == {plan for _, _, plan, _, _ in APPS.values()}
    for plan in plans.values():
        assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
        assert plan["properties"]["reserved"] is True


def test_exactly_two_apps_with_two_identities_and_two_host_accounts(main: dict[str, Any]) -> None:
    assert set(resources_of_type(main, "Microsoft.Web/sites")) == set(APPS)
    identities = resources_of_type(main, "Microsoft.ManagedIdentity/userAssignedIdentities")
    assert set(identities) == {"identity", "apiIdentity"}
    # Existing customer delegations name the collector identity: it keeps the old name.
    assert resource(main, "identity")["name"] == "identityName"
    assert variable(main, "identityName") == "id-auditor-${resourceToken}"
    assert variable(main, "apiIdentityName") != variable(main, "identityName")


@pytest.mark.parametrize("app", list(APPS))
def test_function_app_runtime_and_deployment_storage(main: dict[str, Any], app: str) -> None:
    identity, host, plan, _, _ = APPS[app]
    site = resource(main, app)
    assert main["resources"][app]["api_version"] >= "2023-12-01"  # functionAppConfig
    assert site["kind"] == "functionapp,linux"
    assert render(site["properties"]["serverFarmId"]) == f"{plan}.id"
    config = site["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["value"].startswith(f"${{{host}.properties.primaryEndpoints.blob}}")
    assert storage["authentication"]["type"] == "UserAssignedIdentity"
    assert render(storage["authentication"]["userAssignedIdentityResourceId"]) == f"{identity}.id"
    scale = config["scaleAndConcurrency"]
    # The collector's own ceiling is derived from the shared quota (tests/infra/test_scale.py).
    ceiling = "collectorMaximumInstanceCount" if app == "collectorApp" else "maximumInstanceCount"
    assert scale["maximumInstanceCount"] == ceiling
    assert 1 <= param_default(main, ceiling) <= 1000


@pytest.mark.parametrize("app", list(APPS))
def test_function_app_identity_and_hardening(main: dict[str, Any], app: str) -> None:
    identity, _, _, _, service = APPS[app]
    site = resource(main, app)
    assert site["identity"]["type"] == "UserAssigned"
    assert list(site["identity"]["userAssignedIdentities"]) == [f"'${{{identity}.id}}'"]
    props = site["properties"]
    assert props["httpsOnly"] is True
    assert props["siteConfig"]["minTlsVersion"] == "1.2"
    assert props["siteConfig"]["remoteDebuggingEnabled"] is False
    # Flex has no FTP endpoint (ftpsState is rejected there); basic-auth publishing is off too.
    policies = [
        p
        for p in resources_of_type(
            main, "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
        ).values()
        if p["parent"] == app
    ]
    assert {p["name"]: p["properties"]["allow"] for p in policies} == {"ftp": False, "scm": False}
    assert site["tags"]["function"]["type"] == "union"  # keeps azd-service-name beside the tags
    tags = site["tags"]["function"]["parameters"]
    assert {"'azd-service-name'": service}.items() <= _tag_items(tags)


def _tag_items(parameters: dict[str, Any]) -> Any:
    items: dict[str, Any] = {}
    for value in parameters.values():
        if isinstance(value, dict):
            items.update(value)
    return items.items()


def test_api_authentication_is_optional_and_entra_only(main: dict[str, Any]) -> None:
    (auth,) = resources_of_type(main, "Microsoft.Web/sites/config").values()
    assert auth["name"] == "authsettingsV2"
    assert auth["parent"] == "functionApp"
    props = auth["properties"]
    assert props["platform"]["enabled"] == "enableApiAuth"
    assert main["parameters"]["enableApiAuth"]["type"] == "bool"
    assert param_default(main, "enableApiAuth") is False
    # The platform lets a caller-less request through; the app answers it (a page redirects
    # to sign-in, /api is 401): a platform 401 would stop the sign-in redirect of pages.
    assert props["globalValidation"] == {
        "requireAuthentication": False,
        "unauthenticatedClientAction": "AllowAnonymous",
    }
    aad = props["identityProviders"]["azureActiveDirectory"]
    assert aad["enabled"] == "enableApiAuth"
    assert aad["registration"]["clientId"] == "apiAuthClientId"
    # No secret stored: tokens are validated, and sign-in takes the ID-token flow.
    assert "clientSecretSettingName" not in aad["registration"]
    # One tenant's issuer unless customers sign in (tests/infra/test_web_infra.py).
    issuer = aad["registration"]["openIdIssuer"]["operator"]["operands"]
    assert issuer["false_value"].endswith("${apiAuthTenantId}/v2.0")
    # Only tokens for the API's own registration (and the listed extras) are accepted.
    audiences = render(aad["validation"]["allowedAudiences"])
    assert audiences == (
        "empty(apiAuthClientId) ? apiAuthExtraAudiences : "
        "concat(['api://${apiAuthClientId}', 'apiAuthClientId'], apiAuthExtraAudiences)"
    ), audiences


def test_outputs_give_principal_and_api_url(main: dict[str, Any]) -> None:
    outputs = main["outputs"]
    # Customers delegate to the collector's identity, never to the API's.
    assert render(outputs["AUDITOR_PRINCIPAL_ID"]["value"]) == "identity.properties.principalId"
    assert render(outputs["AUDITOR_API_PRINCIPAL_ID"]["value"]) == (
        "apiIdentity.properties.principalId"
    )
    assert outputs["AUDITOR_API_BASE_URL"]["value"] == (
        "https://${functionApp.properties.defaultHostName}"
    )
    assert "AUDITOR_MANAGING_TENANT_ID" in outputs


# ---------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", ["hostStorage", "apiHostStorage", "dataStorage"])
def test_storage_accounts_are_identity_only(main: dict[str, Any], symbol: str) -> None:
    props = resource(main, symbol)["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["allowBlobPublicAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True


@pytest.mark.parametrize(
    ("symbol", "var"),
    [
        ("hostStorage", "hostStorageName"),
        ("apiHostStorage", "apiHostStorageName"),
        ("dataStorage", "dataStorageName"),
    ],
)
def test_storage_account_names_follow_the_naming_rule(
    main: dict[str, Any], symbol: str, var: str
) -> None:
    # checkov cannot evaluate the expression (CKV_AZURE_43 is skipped); check it here.
    assert resource(main, symbol)["name"] == var
    match = re.fullmatch(r"([a-z0-9]+)\$\{resourceToken\}", variable(main, var))
    assert match, variable(main, var)
    token = render(variable(main, "resourceToken"))
    assert token.startswith("to_lower(unique_string(")  # uniqueString(): 13 characters
    assert 3 <= len(match.group(1)) + 13 <= 24


def test_data_and_host_storage_are_separate_accounts(main: dict[str, Any]) -> None:
    assert variable(main, "hostStorageName") != variable(main, "dataStorageName")
    # Tables and evidence are geo-redundant whatever SKU is chosen.
    assert resource(main, "dataStorage")["sku"]["name"] == "dataStorageSku"
    allowed = decorator(main, "dataStorageSku", "allowed")
    assert allowed and all(re.search(r"G(Z)?RS$", sku) for sku in allowed)


def test_queues_and_their_poison_queues(main: dict[str, Any]) -> None:
    queues = resources_of_type(main, "Microsoft.Storage/storageAccounts/queueServices/queues")
    names = sorted(q["name"] for q in queues.values())
    assert names == sorted(
        [
            "snapshotQueueName",
            "${snapshotQueueName}-poison",
            "reportQueueName",
            "${reportQueueName}-poison",
        ]
    )
    for q in queues.values():
        assert q["parent"] == "dataQueueService"
    assert resource(main, "dataQueueService")["parent"] == "dataStorage"
    settings = app_settings(main)
    assert settings["AUDITOR_SNAPSHOT_QUEUE"] == "snapshotQueueName"
    assert settings["AUDITOR_REPORT_QUEUE"] == "reportQueueName"
    for param in ("snapshotQueueName", "reportQueueName"):
        assert decorator(main, param, "max_length") <= 63 - len("-poison")


def test_table_service_is_declared_on_the_data_account(main: dict[str, Any]) -> None:
    tables = resources_of_type(main, "Microsoft.Storage/storageAccounts/tableServices")
    assert [t["parent"] for t in tables.values()] == ["dataStorage"]


def test_evidence_container_is_versioned_and_immutable(main: dict[str, Any]) -> None:
    container = resource(main, "evidenceContainer")
    assert container["name"] == "evidenceContainerName"
    assert container["properties"]["publicAccess"] == "None"
    assert container["properties"]["immutableStorageWithVersioning"] == {"enabled": True}
    blob_service = resource(main, container["parent"])
    assert blob_service["parent"] == "dataStorage"
    assert blob_service["properties"]["isVersioningEnabled"] is True

    (policy,) = resources_of_type(
        main, "Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies"
    ).values()
    assert policy["parent"] == "evidenceContainer"
    assert policy["properties"]["immutabilityPeriodSinceCreationInDays"] == "evidenceRetentionDays"
    # The code records the retention in manifests: the setting is the same parameter.
    assert render(app_settings(main)["AUDITOR_EVIDENCE_RETENTION_DAYS"]) == (
        "string(evidenceRetentionDays)"
    )
    assert app_settings(main)["AUDITOR_EVIDENCE_CONTAINER"] == "evidenceContainerName"


@pytest.mark.parametrize(
    ("symbol", "host"),
    [("deploymentContainer", "hostStorage"), ("apiDeploymentContainer", "apiHostStorage")],
)
def test_deployment_container_is_on_the_host_account(
    main: dict[str, Any], symbol: str, host: str
) -> None:
    container = resource(main, symbol)
    assert resource(main, container["parent"])["parent"] == host
    assert container["properties"]["publicAccess"] == "None"


# ---------------------------------------------------------------------------------------------
# Role assignments
# ---------------------------------------------------------------------------------------------

# (identity, scope) -> roles. Issue 9 §6: the API's identity holds read-only data roles plus
# exactly what POST /reports writes; the collector's only what it writes; blob roles on the
# evidence container, never the account.
EXPECTED_ROLES = {
    ("identity", "dataStorage"): {"Storage Table Data Contributor"},
    ("identity", "snapshotQueue"): {"Storage Queue Data Contributor"},
    ("identity", "snapshotPoisonQueue"): {"Storage Queue Data Contributor"},
    ("identity", "reportQueue"): {"Storage Queue Data Contributor"},
    ("identity", "reportPoisonQueue"): {"Storage Queue Data Contributor"},
    ("identity", "evidenceContainer"): {"Storage Blob Data Contributor"},
    ("identity", "hostStorage"): {"Storage Blob Data Owner"},
    ("identity", "appInsights"): {"Monitoring Metrics Publisher"},
    # Issue 14: only the collector publishes run digests to the Event Grid topic.
    ("identity", "eventGridTopic"): {"EventGrid Data Sender"},
    ("identity", "notifyVault"): {"Key Vault Secrets User"},
    ("apiIdentity", "dataStorage"): {"Storage Table Data Reader", "Storage Blob Delegator"},
    ("apiIdentity", "evidenceContainer"): {
        "Storage Blob Data Reader",
        "Storage Blob Data Contributor",  # conditioned: creates under requests/ only
    },
    ("apiIdentity", "reportQueue"): {"Storage Queue Data Message Sender"},
    ("apiIdentity", "apiHostStorage"): {"Storage Blob Data Owner"},
    ("apiIdentity", "appInsights"): {"Monitoring Metrics Publisher"},
    # Issue 13: the dashboard's CSRF key, that one secret only.
    ("apiIdentity", "webSecretValue"): {"Key Vault Secrets User"},
}
# Roles that carry data actions an account-wide scope would extend to other containers/queues.
BLOB_DATA_ROLES = {"Storage Blob Data Reader", "Storage Blob Data Contributor"}
WRITING_ROLES = {
    "Storage Table Data Contributor",
    "Storage Queue Data Contributor",
    "Storage Blob Data Contributor",
    "Storage Blob Data Owner",
}


def _role_name(main: dict[str, Any], assignment: dict[str, Any]) -> str:
    fn = assignment["properties"]["roleDefinitionId"]["function"]
    assert fn["type"] == "subscription_resource_id"
    assert fn["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
    role_id = variable(main, fn["parameters"]["resource_name_1"])
    names = [name for name, guid in ROLE.items() if guid == role_id]
    assert names, f"unknown role definition {role_id}"
    return names[0]


def _principal(assignment: dict[str, Any]) -> str:
    text = render(assignment["properties"]["principalId"])
    assert isinstance(text, str) and text.endswith(".properties.principalId"), text
    return text.split(".")[0]


def test_role_assignments_are_scoped_and_guid_named(main: dict[str, Any]) -> None:
    assignments = resources_of_type(main, "Microsoft.Authorization/roleAssignments")
    assert assignments
    granted: dict[tuple[str, str], set[str]] = {}
    for symbol, ra in assignments.items():
        scope = ra.get("scope")
        principal = _principal(ra)
        assert (principal, scope) in EXPECTED_ROLES, f"{symbol}: {principal} on {scope!r}"
        role = _role_name(main, ra)
        granted.setdefault((principal, scope), set()).add(role)

        name = ra["name"]["function"]
        assert name["type"] == "guid", f"{symbol} is not named with guid()"
        seeds = [render(v) for v in name["parameters"].values() if v]
        assert f"{scope}.id" in seeds, f"{symbol}'s name does not derive from its scope"
        assert f"{principal}.id" in seeds
        assert (
            ra["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
            in seeds
        )
        assert ra["properties"]["principalType"] == "ServicePrincipal"
    assert granted == EXPECTED_ROLES


def test_blob_data_roles_are_scoped_to_the_evidence_container(main: dict[str, Any]) -> None:
    for symbol, ra in resources_of_type(main, "Microsoft.Authorization/roleAssignments").items():
        role = _role_name(main, ra)
        if role in BLOB_DATA_ROLES:
            assert ra["scope"] == "evidenceContainer", symbol
        if role == "Storage Blob Data Owner":
            assert ra["scope"] in ("hostStorage", "apiHostStorage"), symbol


def test_the_api_identity_writes_only_what_a_pack_request_needs(main: dict[str, Any]) -> None:
    api = {
        symbol: ra
        for symbol, ra in resources_of_type(main, "Microsoft.Authorization/roleAssignments").items()
        if _principal(ra) == "apiIdentity"
    }
    writing = {s: ra for s, ra in api.items() if _role_name(main, ra) in WRITING_ROLES}
    # Its own host storage (keys, locks, package), and request records in the evidence container.
    assert {(ra["scope"], _role_name(main, ra)) for ra in writing.values()} == {
        ("apiHostStorage", "Storage Blob Data Owner"),
        ("evidenceContainer", "Storage Blob Data Contributor"),
    }
    (request_write,) = [ra for ra in writing.values() if ra["scope"] == "evidenceContainer"]
    props = request_write["properties"]
    assert props["conditionVersion"] == "2.0"
    condition = variable(main, props["condition"])
    assert "StringStartsWith \\'requests/\\'" in condition
    for action in ("blobWriteAction", "blobAddAction", "blobDeleteAction", "blobMoveAction"):
        assert f"${{{action}}}" in condition
    assert variable(main, "blobDeleteAction").endswith("/blobs/delete")
    # Sending to the report queue is the one queue right, on that queue alone.
    senders = [ra for ra in api.values() if _role_name(main, ra).startswith("Storage Queue")]
    assert [(ra["scope"], _role_name(main, ra)) for ra in senders] == [
        ("reportQueue", "Storage Queue Data Message Sender")
    ]


def test_the_delegated_identity_never_runs_the_http_api(main: dict[str, Any]) -> None:
    api_site = resource(main, "functionApp")
    assert list(api_site["identity"]["userAssignedIdentities"]) == ["'${apiIdentity.id}'"]
    assert (
        resources_of_type(main, "Microsoft.Web/sites/config")["apiAuth"]["parent"] == "functionApp"
    )


def test_app_insights_uses_entra_ingestion_on_a_workspace(main: dict[str, Any]) -> None:
    (ai,) = resources_of_type(main, "Microsoft.Insights/components").values()
    assert ai["properties"]["DisableLocalAuth"] is True
    assert render(ai["properties"]["WorkspaceResourceId"]) == "logAnalytics.id"
    workspaces = resources_of_type(main, "Microsoft.OperationalInsights/workspaces")
    assert list(workspaces) == ["logAnalytics"]


# ---------------------------------------------------------------------------------------------
# Template hygiene and azd wiring
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", list(bicep_files()), ids=lambda p: p.name)
def test_plain_resource_blocks_only(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"^\s*module\s", text, re.M), "modules hide resources from checkov"
    assert "br/public:" not in text and "br:" not in text
    assert "deployer()" not in text
    assert not re.search(r"^\s*func\s", text, re.M), "pycep cannot parse user-defined functions"


@pytest.mark.parametrize("path", list(bicep_files()), ids=lambda p: p.name)
def test_every_checkov_skip_gives_a_reason(path: Path) -> None:
    for line in path.read_text(encoding="utf-8").splitlines():
        if "checkov:skip" in line:
            match = re.search(r"checkov:skip=(CKV2?_[A-Z]+_\d+):(.*)$", line)
            assert match, f"malformed skip: {line.strip()}"
            assert len(match.group(2).split()) >= 8, f"{match.group(1)} needs a real reason"


def test_main_parameters_match_the_template(main: dict[str, Any]) -> None:
    parameters = json.loads(MAIN_PARAMETERS.read_text(encoding="utf-8"))["parameters"]
    unknown = set(parameters) - set(main["parameters"])
    assert not unknown, f"main.parameters.json sets unknown parameters {unknown}"
    required = {n for n, p in main["parameters"].items() if p.get("default") is None}
    assert required <= set(parameters), f"required parameters missing: {required - set(parameters)}"
    assert parameters["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert parameters["location"]["value"] == "${AZURE_LOCATION}"


def test_azure_yaml_deploys_the_function_app_from_infra(main: dict[str, Any]) -> None:
    project = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
    assert project["infra"]["provider"] == "bicep"
    assert (
        ROOT / project["infra"]["path"] / f"{project['infra'].get('module', 'main')}.bicep"
    ) == MAIN
    services = project["services"]
    # Both apps, from the same package (issue 9 §6).
    assert set(services) == {service for *_, service in APPS.values()}
    for service_name, service in services.items():
        assert service["host"] == "function"
        assert service["language"] in ("python", "py")
        assert service["project"] == "."
        assert (ROOT / service["project"] / "host.json").is_file()
        # azd finds the app to deploy by this tag.
        assert f"'azd-service-name': '{service_name}'" in MAIN.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Customer tenants: Lighthouse delegation
# ---------------------------------------------------------------------------------------------


def test_lighthouse_template_is_subscription_scoped(lighthouse: dict[str, Any]) -> None:
    assert lighthouse["globals"]["scope"]["value"] == "subscription"
    for name in ("managedByTenantId", "auditorPrincipalId"):
        assert param_default(lighthouse, name) is None, f"{name} must be given, not defaulted"


def test_lighthouse_delegates_reader_and_security_reader_only(
    lighthouse: dict[str, Any],
) -> None:
    (definition,) = resources_of_type(
        lighthouse, "Microsoft.ManagedServices/registrationDefinitions"
    ).values()
    props = definition["properties"]
    assert props["managedByTenantId"] == "managedByTenantId"
    authorizations = props["authorizations"]["function"]["parameters"]
    auditor = _array(lighthouse, authorizations["arg_1"])
    assert {a["principalId"] for a in auditor} == {"auditorPrincipalId"}
    assert {variable(lighthouse, a["roleDefinitionId"]) for a in auditor} == {
        ROLE["Reader"],
        ROLE["Security Reader"],
    }
    # The optional provider-side offboarding grant may hold only the assignment-delete role.
    optional = variable(lighthouse, authorizations["arg_2"])["operator"]["operands"]
    assert render(optional["condition"]) == "empty(offboardingPrincipalId)"
    assert optional["true_value"] == []
    assert [variable(lighthouse, a["roleDefinitionId"]) for a in optional["false_value"]] == [
        ROLE["Managed Services Registration assignment Delete Role"]
    ]
    assert render(variable(lighthouse, definition["name"])).startswith("guid(")


def test_lighthouse_assignment_points_at_the_definition(lighthouse: dict[str, Any]) -> None:
    (assignment,) = resources_of_type(
        lighthouse, "Microsoft.ManagedServices/registrationAssignments"
    ).values()
    assert render(assignment["properties"]["registrationDefinitionId"]) == (
        "registrationDefinition.id"
    )
    assert render(variable(lighthouse, assignment["name"])).startswith("guid(")


def test_lighthouse_parameters_example_fits_the_template(lighthouse: dict[str, Any]) -> None:
    parameters = json.loads(LIGHTHOUSE_PARAMETERS.read_text(encoding="utf-8"))["parameters"]
    assert set(parameters) <= set(lighthouse["parameters"])
    required = {n for n, p in lighthouse["parameters"].items() if p.get("default") is None}
    assert required <= set(parameters)
    guid = re.compile(r"^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$")
    for name in required:
        assert guid.match(parameters[name]["value"]), f"{name} must be a GUID"


# ---------------------------------------------------------------------------------------------
# tools/check_infra.py: the CI gate around checkov
# ---------------------------------------------------------------------------------------------


def _report(**summary: int) -> dict[str, Any]:
    base = {"passed": 3, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 2}
    base.update(summary)
    return {
        "check_type": "bicep",
        "results": {
            "passed_checks": [],
            "failed_checks": [],
            "skipped_checks": [],
            "parsing_errors": [],
        },
        "summary": base,
    }


def test_check_infra_passes_a_clean_report() -> None:
    outcome = check_infra.evaluate(_report())
    assert outcome.ok
    assert outcome.summary_line() == "checkov: 3 passed, 0 failed, 0 skipped, 0 parsing errors"


def test_check_infra_fails_on_a_failed_check() -> None:
    report = _report(failed=1)
    report["results"]["failed_checks"].append(
        {"check_id": "CKV_AZURE_3", "resource": "x", "check_name": "https", "file_path": "f"}
    )
    outcome = check_infra.evaluate(report)
    assert not outcome.ok and outcome.failures


def test_check_infra_fails_on_a_parsing_error_even_though_checkov_exits_0() -> None:
    report = _report(passed=0, resource_count=0)
    report["results"]["parsing_errors"].append("/infra/bad.bicep")
    outcome = check_infra.evaluate(report)
    assert not outcome.ok
    assert outcome.parsing_errors == 1


def test_check_infra_fails_when_a_check_crashed_or_nothing_was_scanned() -> None:
    stderr = "[ERROR]  Failed to run check CKV_AZURE_70 on infra/main.bicep:Microsoft.Web/sites/x\n"
    assert not check_infra.evaluate(_report(), stderr).ok
    bare_summary = {
        "passed": 0,
        "failed": 0,
        "skipped": 0,
        "parsing_errors": 0,
        "resource_count": 0,
    }
    assert not check_infra.evaluate(bare_summary).ok


def test_check_infra_fails_on_a_skip_without_reason() -> None:
    report = _report(skipped=1)
    report["results"]["skipped_checks"].append(
        {"check_id": "CKV_AZURE_17", "resource": "x", "check_result": {"suppress_comment": ""}}
    )
    assert not check_infra.evaluate(report).ok
    report["results"]["skipped_checks"][0]["check_result"]["suppress_comment"] = "a real reason"
    assert check_infra.evaluate(report).ok


def test_the_collector_identity_cannot_write_verify_checkpoints(main: dict[str, Any]) -> None:
    # An identity that can edit the snapshot tables must not also be able to vouch for them.
    ra = resource(main, "dataBlobRole")
    assert _principal(ra) == "identity"
    props = ra["properties"]
    assert props["conditionVersion"] == "2.0"
    condition = variable(main, props["condition"])
    assert "StringNotStartsWith \\'checkpoints/\\'" in condition
    for action in ("blobWriteAction", "blobAddAction"):
        assert f"${{{action}}}" in condition
