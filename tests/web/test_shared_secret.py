"""AUDITOR_WEB_SECRET: every instance of the API app signs the dashboard's CSRF tokens with the
same key, so a form rendered by one instance posts to another; a bad value stops the app at
start naming the setting, and the value is never shown."""

from __future__ import annotations

import secrets

import pytest
from itsdangerous.url_safe import URLSafeSerializer

from auditor.api import create_app
from auditor.api.hosting import azure_app, local_app, shared_web_secret
from auditor.core.access import AccessPolicy, Principal
from auditor.services.history import SnapshotHistory
from auditor.settings import SettingsError, load_settings
from tests.api.conftest import TestClient, principal_header
from tests.api.scenario import DAY1, TENANT_A, Scenario

USER = Principal(object_id="a11ce000-0000-4000-8000-000000000001", auth_type="aad")
EVIDENCE = f"/tenants/{TENANT_A}/evidence"
NOT_CONFIGURED = "Evidence packs are not configured here"


def instance(history: SnapshotHistory, secret: str | None) -> TestClient:
    """One instance of the API app as Azure hosts it (Secure cookies: an https base URL)."""
    app = create_app(history, AccessPolicy.allow_all(), web_secret=secret)
    return TestClient(app, base_url="https://testserver", raise_server_exceptions=False)


def issued_token(client: TestClient) -> str:
    """The CSRF token an instance issues with a page (the cookie a form echoes)."""
    client.cookies.clear()
    page = client.get("/", headers=principal_header(USER))
    assert page.status_code == 200
    token: str = page.cookies["csrftoken"]
    return token


def post_form(client: TestClient, token: str, cookie: str) -> int:
    client.cookies.clear()
    answer = client.post(
        EVIDENCE,
        data={"csrftoken": token, "from": DAY1},
        headers={**principal_header(USER), "cookie": f"csrftoken={cookie}"},
        follow_redirects=False,
    )
    if answer.status_code != 403:
        # Past the CSRF check: this app has no evidence container, so the page says so.
        assert NOT_CONFIGURED in answer.text
    return answer.status_code


def test_a_form_rendered_by_one_instance_posts_to_another_with_the_same_secret(
    history: SnapshotHistory, scenario: Scenario
) -> None:
    secret = secrets.token_urlsafe(32)
    one, two = instance(history, secret), instance(history, secret)
    token = issued_token(one)
    assert post_form(two, token, token) == 404  # accepted: the page's own answer, not 403


def test_a_forged_token_is_refused_by_every_instance_sharing_the_secret(
    history: SnapshotHistory, scenario: Scenario
) -> None:
    secret = secrets.token_urlsafe(32)
    one, two = instance(history, secret), instance(history, secret)
    cookie = issued_token(one)
    # Signed with another key, or not signed at all, or not the cookie's: all 403.
    other_key = str(URLSafeSerializer("x" * 43, "csrftoken").dumps(secrets.token_urlsafe(64)))
    assert post_form(two, other_key, other_key) == 403
    assert post_form(two, "forged", "forged") == 403
    assert post_form(two, issued_token(two), cookie) == 403  # another token than the cookie


def test_instances_with_different_secrets_refuse_each_others_forms(
    history: SnapshotHistory, scenario: Scenario
) -> None:
    # What every instance did before the setting: a secret of its own.
    one, two = instance(history, None), instance(history, None)
    token = issued_token(one)
    assert post_form(two, token, token) == 403


@pytest.mark.parametrize(
    "value",
    ["too-short", " " * 3 + "x" * 31, "@Microsoft.KeyVault(VaultName=kv;SecretName=web-secret)"],
)
def test_a_bad_secret_stops_the_app_at_start_naming_the_setting_not_the_value(value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"AUDITOR_WEB_SECRET": value})
    assert raised.value.name == "AUDITOR_WEB_SECRET"
    assert str(raised.value).startswith("setting AUDITOR_WEB_SECRET: ")
    assert value.strip() not in str(raised.value)


def test_in_azure_the_app_does_not_start_without_the_shared_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings({})
    assert shared_web_secret(settings, {}) is None  # outside Azure: one per process
    monkeypatch.setenv("WEBSITE_HOSTNAME", "func-auditor-x.azurewebsites.net")
    with pytest.raises(SettingsError, match=r"^setting AUDITOR_WEB_SECRET: is not set"):
        azure_app(settings)


def test_the_secret_is_not_in_the_settings_repr_and_serve_uses_it() -> None:
    secret = secrets.token_urlsafe(32)
    settings = load_settings({"AUDITOR_WEB_SECRET": secret, "AUDITOR_STORAGE": CONN})
    assert settings.web_secret == secret
    assert secret not in repr(settings)
    app, store = local_app(settings)
    try:
        assert app.state.csrf_secret == secret
    finally:
        store.close()
    app, store = local_app(load_settings({"AUDITOR_STORAGE": CONN}))
    try:
        assert len(app.state.csrf_secret) >= 32  # serve makes one
    finally:
        store.close()


CONN = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    "TableEndpoint=http://127.0.0.1:1/devstoreaccount1;"
    "QueueEndpoint=http://127.0.0.1:1/devstoreaccount1;"
    "BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;"
)
