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
