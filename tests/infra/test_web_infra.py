"""Infra of the dashboard in Azure (issue 13): the CSRF signing key shared by every instance of
the API app, as a Key Vault secret only the API's identity reads, never reaching the collector."""

from __future__ import annotations

from typing import Any

import pytest

from auditor.settings import API_ONLY, WEB_SECRET_MIN_CHARS
from tests.infra.test_bicep import (
    MAIN,
    _parse,
    _principal,
    _role_name,
    app_settings,
    param_default,
    render,
    resource,
    resources_of_type,
)


@pytest.fixture(scope="module")
def main() -> dict[str, Any]:
    return _parse(MAIN)


def test_every_api_instance_reads_one_web_secret_from_key_vault(main: dict[str, Any]) -> None:
    api = app_settings(main, "functionApp")
    assert render(api["AUDITOR_WEB_SECRET"]) == (
        "@Microsoft.KeyVault(SecretUri=${webSecretValue.properties.secretUri})"
    )
    site = resource(main, "functionApp")
    assert render(site["properties"]["keyVaultReferenceIdentity"]) == "apiIdentity.id"
    secret = resource(main, "webSecretValue")
    assert secret["parent"] == "notifyVault"
    assert render(secret["properties"]["value"]) == "webSecret"
    parameter = main["parameters"]["webSecret"]
    decorators = str(parameter.get("decorators"))
    assert "secure" in decorators and str(WEB_SECRET_MIN_CHARS) in decorators


def test_only_the_api_identity_may_read_the_web_secret_and_the_collector_never_gets_it(
    main: dict[str, Any],
) -> None:
    on_secret = [
        ra
        for ra in resources_of_type(main, "Microsoft.Authorization/roleAssignments").values()
        if ra.get("scope") == "webSecretValue"
    ]
    assert [(_principal(ra), _role_name(main, ra)) for ra in on_secret] == [
        ("apiIdentity", "Key Vault Secrets User")
    ]
    assert not API_ONLY & set(app_settings(main, "collectorApp"))


def test_customer_sign_in_is_off_by_default_and_then_one_tenant_issues_every_token(
    main: dict[str, Any],
) -> None:
    assert main["parameters"]["customerSignIn"]["type"] == "bool"
    assert param_default(main, "customerSignIn") is False
    issuer = _issuer(main)
    assert issuer["condition"] == "customerSignIn"
    assert issuer["false_value"] == (
        "${environment().authentication.loginEndpoint}${apiAuthTenantId}/v2.0"
    )
    # Off, the app knows no managing tenant: every signed-in user is judged as before.
    api = app_settings(main, "functionApp")
    assert render(api["AUDITOR_MANAGING_TENANT_ID"]) == "customerSignIn ? apiAuthTenantId : "


def test_customer_sign_in_accepts_every_tenant_and_names_the_managing_one_to_the_app(
    main: dict[str, Any],
) -> None:
    # The common issuer (Microsoft's multi-tenant pattern): App Service Authentication takes
    # any tenant's token for the app registration, and the app, told the managing tenant,
    # admits every other tenant's user through tenant:self alone (auditor/core/access.py).
    assert _issuer(main)["true_value"] == (
        "${environment().authentication.loginEndpoint}common/v2.0"
    )
    value = app_settings(main, "functionApp")["AUDITOR_MANAGING_TENANT_ID"]
    assert value["operator"]["operands"]["true_value"] == "apiAuthTenantId"
    assert "AUDITOR_MANAGING_TENANT_ID" in API_ONLY
    assert "AUDITOR_MANAGING_TENANT_ID" not in app_settings(main, "collectorApp")


def _issuer(main: dict[str, Any]) -> dict[str, Any]:
    (auth,) = resources_of_type(main, "Microsoft.Web/sites/config").values()
    expr = auth["properties"]["identityProviders"]["azureActiveDirectory"]["registration"]
    operator = expr["openIdIssuer"]["operator"]
    assert operator["type"] == "conditional"
    operands: dict[str, Any] = operator["operands"]
    return operands
