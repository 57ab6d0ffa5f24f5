"""The dashboard's pages as served by the API's app: who may see them, how they protect the
browser, what they show (against the API tests' scenario on Azurite)."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest

from auditor.api import create_app
from auditor.core.access import AccessPolicy, Principal
from auditor.services.history import SnapshotHistory
from auditor.web.security import CONTENT_SECURITY_POLICY
from tests.api.conftest import HostedClient, TestClient, principal_header
from tests.api.scenario import DAY1, DAY3, TENANT_A, TENANT_B, TENANT_C, Scenario

USER = Principal(object_id="a11ce000-0000-4000-8000-000000000001", auth_type="aad")
PAGES = (
    "/",
    "/act",
    "/operations",
    f"/tenants/{TENANT_A}",
    f"/tenants/{TENANT_A}/changes?from={DAY1}&to={DAY3}",
    f"/tenants/{TENANT_C}",
)


class ScriptAndStyleAudit(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, handlers, style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.blocked: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.blocked.append("inline <script>")
        if tag == "style":
            self.blocked.append("inline <style>")
        self.blocked += [f"{tag}[{n}]" for n in names if n.startswith("on") or n == "style"]
        for name, value in attrs:
            if name in ("href", "src", "action") and value and re.match(r"^\s*(https?:)?//", value):
                self.blocked.append(f"external {name} {value}")


def test_in_azure_a_page_without_a_caller_redirects_to_sign_in_while_the_api_keeps_its_401(
    hosted: HostedClient,
) -> None:
    client = hosted(AccessPolicy.allow_all())
    page = client.get(f"/tenants/{TENANT_A}?days=7", follow_redirects=False)
    assert page.status_code == 302
    assert page.headers["location"] == (
        "/.auth/login/aad?post_login_redirect_uri="
        "%2Ftenants%2Fa0000000-0000-4000-8000-00000000000a%3Fdays%3D7"
    )
    assert client.get("/api/tenants").status_code == 401


def test_without_app_service_authentication_pages_are_401_and_a_forged_header_is_ignored(
    history: SnapshotHistory,
) -> None:
    client = TestClient(
        create_app(history, AccessPolicy.allow_all(), trust_principal_header=False),
        raise_server_exceptions=False,
    )
    page = client.get("/", headers=principal_header(USER), follow_redirects=False)
    assert page.status_code == 401
    assert "Sign-in required" in page.text
    assert TENANT_A not in page.text


def test_every_page_carries_a_strict_policy_and_holds_no_inline_script_or_style(
    local_client: TestClient, scenario: Scenario
) -> None:
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    for path in PAGES:
        response = local_client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        audit = ScriptAndStyleAudit()
        audit.feed(response.text)
        assert audit.blocked == [], path
    assert "content-security-policy" not in local_client.get("/api/tenants").headers


def test_a_form_post_without_the_csrf_token_is_refused_before_anything_is_queued(
    local_client: TestClient, scenario: Scenario
) -> None:
    path = f"/tenants/{TENANT_A}/evidence"
    local_client.cookies.clear()
    local_client.get("/")
    assert local_client.cookies.get("csrftoken")
    refused = local_client.post(path, data={"from": DAY1}, follow_redirects=False)
    assert refused.status_code == 403
    forged = local_client.post(
        path, data={"csrftoken": "forged", "from": DAY1}, follow_redirects=False
    )
    assert forged.status_code == 403
    token = local_client.cookies["csrftoken"]
    accepted = local_client.post(
        path, data={"csrftoken": token, "from": DAY1}, follow_redirects=False
    )
    # Past the CSRF check: this app has no evidence container, so the page says so.
    assert accepted.status_code == 404
    assert "Evidence packs are not configured here" in accepted.text


def test_each_page_view_writes_one_audit_record_naming_the_caller_and_the_tenant(
    hosted: HostedClient, scenario: Scenario, caplog: pytest.LogCaptureFixture
) -> None:
    client = hosted(AccessPolicy.allow_all())
    with caplog.at_level(logging.INFO, logger="auditor.audit"):
        client.get(f"/tenants/{TENANT_B}", headers=principal_header(USER))
        for asset in ("dashboard.css", "dashboard.js", "favicon.svg"):
            assert client.get(f"/static/{asset}").status_code == 200
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "auditor.audit"]
    assert len(records) == 1
    assert records[0]["principal"] == USER.object_id
    assert records[0]["route"] == "/tenants/{tenant}"
    assert records[0]["tenant"] == TENANT_B
    assert records[0]["status"] == 200


def test_the_portfolio_shows_status_compliance_change_and_totals(
    local_client: TestClient, scenario: Scenario
) -> None:
    page = local_client.get("/?sort=name").text
    assert "3 of 3 tenants shown" in page
    a3 = scenario.a[2]
    assert "incomplete" in page and "failed" in page
    for standard, value in a3.compliance_by_standard.items():
        if value is not None:
            assert f"{standard}: {value:.1f} %" in page
    only_failed = local_client.get("/?status=failed").text
    assert "1 of 3 tenants shown" in only_failed
    assert f"/tenants/{TENANT_C}" in only_failed and f"/tenants/{TENANT_A}" not in only_failed
    assert local_client.get("/?status=nonsense").status_code == 400


def test_a_tenant_whose_latest_snapshot_is_older_than_the_schedules_slot_is_stale(
    history: SnapshotHistory, scenario: Scenario
) -> None:
    app = create_app(
        history,
        AccessPolicy.allow_all(),
        local_principal="local-dev",
        snapshot_schedule="0 0 2 * * *",
    )
    app.state.run_grace = timedelta(hours=1)
    page = TestClient(app).get("/?status=stale").text
    # Every scenario snapshot is of November 2026's past slots: all are stale today.
    assert "3 of 3 tenants shown" in page


def test_the_tenant_page_lists_failing_assessments_with_days_failing(
    local_client: TestClient, scenario: Scenario
) -> None:
    day3 = scenario.postures[2]
    failing = next(r for r in day3.compliance if r.state.value == "Failed")
    page = local_client.get(
        f"/tenants/{TENANT_A}",
        params={"standard": failing.standard, "control": failing.control},
    ).text
    assert "Failing assessments of" in page
    assert failing.subscription_id in page
    assert scenario.a[2].content_hash in page  # the chain section names the hash
