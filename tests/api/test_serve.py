"""`python -m auditor serve`: local mode over uvicorn, loopback only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from auditor.adapters.tables.store import SnapshotStore
from auditor.cli import main
from tests.api.scenario import TENANT_A, TENANT_B, TENANT_C, Scenario
from tools.devservices import Azurite, free_port, serve_api

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "example.com", "::"])  # noqa: S104
def test_serve_refuses_a_non_loopback_host(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--host", host]) == 2
    assert "loopback" in capsys.readouterr().err


def test_serve_refuses_a_malformed_principal(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--principal", "has space"]) == 2
    assert "--principal" in capsys.readouterr().err


@contextmanager
def serving(azurite: Azurite, store: SnapshotStore, *args: str, policy: str | None = None
            ) -> Iterator[str]:  # fmt: skip
    env = {
        **os.environ,
        "AUDITOR_STORAGE": azurite.connection_string,
        "AUDITOR_TABLE_PREFIX": store.tables.prefix,
    }
    env.pop("AUDITOR_ACCESS_POLICY", None)
    if policy is not None:
        env["AUDITOR_ACCESS_POLICY"] = policy
    with serve_api(env, *args, timeout=30) as base:
        yield base


def test_serve_answers_as_local_dev_who_sees_every_tenant_without_a_policy(
    azurite: Azurite, api_store: SnapshotStore, scenario: Scenario
) -> None:
    with serving(azurite, api_store) as base:
        tenants = httpx.get(f"{base}/api/tenants").json()["value"]
        assert [t["tenantId"] for t in tenants] == [TENANT_A, TENANT_B, TENANT_C]
        diff = httpx.get(f"{base}/api/tenants/{TENANT_A}/diff")
        assert diff.status_code == 200
        assert diff.json()["nextLink"] is None
        assert httpx.get(f"{base}/api/openapi.json").json()["info"]["title"]


def test_serve_applies_the_policy_to_its_principal_exactly_as_in_azure(
    azurite: Azurite, api_store: SnapshotStore, scenario: Scenario
) -> None:
    policy = json.dumps({"grants": [{"principal": "auditor-1", "tenants": [TENANT_B]}]})
    with serving(azurite, api_store, "--principal", "auditor-1", policy=policy) as base:
        tenants = httpx.get(f"{base}/api/tenants").json()["value"]
        assert [t["tenantId"] for t in tenants] == [TENANT_B]
        assert httpx.get(f"{base}/api/tenants/{TENANT_A}/diff").status_code == 404
    with serving(azurite, api_store, policy=policy) as base:  # local-dev is granted nothing
        assert httpx.get(f"{base}/api/tenants").json()["value"] == []


def test_serve_stops_at_start_on_a_bad_policy(azurite: Azurite) -> None:
    env = {**os.environ, "AUDITOR_STORAGE": azurite.connection_string,
           "AUDITOR_ACCESS_POLICY": '{"grants": [{"principal": "*"}]}'}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "auditor", "serve", "--port", str(free_port())],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "setting AUDITOR_ACCESS_POLICY: grants[0]: missing 'tenants'" in done.stderr


def test_serve_answers_only_loopback_hosts_and_links_from_the_bound_address(
    azurite: Azurite, api_store: SnapshotStore, scenario: Scenario
) -> None:
    # Issue 9 §5: any Host was answered and copied into nextLink (DNS rebinding, forged links).
    with serving(azurite, api_store) as base:
        for host in ("evil.example", "evil.example:80", "10.0.0.1", ""):
            refused = httpx.get(f"{base}/api/tenants", headers={"Host": host})
            assert refused.status_code == 400, host
            assert refused.json()["parameter"] == "Host"
        port = base.rsplit(":", 1)[1]
        for host in (f"localhost:{port}", f"127.0.0.2:{port}", f"[::1]:{port}"):
            page = httpx.get(f"{base}/api/tenants", params={"$top": "1"}, headers={"Host": host})
            assert page.status_code == 200, host
            assert page.json()["nextLink"].startswith(f"{base}/api/tenants?"), host


def test_serve_refuses_a_cross_site_text_plain_post(
    azurite: Azurite, api_store: SnapshotStore, scenario: Scenario
) -> None:
    with serving(azurite, api_store) as base:
        before = httpx.get(f"{base}/api/tenants/{TENANT_A}/reports").json()["value"]
        response = httpx.post(
            f"{base}/api/tenants/{TENANT_A}/reports",
            content=b'{"to": "2026-11-27T02:00:00Z"}',
            headers={"Content-Type": "text/plain", "Origin": "https://evil.example"},
        )
        assert response.status_code == 415
        assert "application/json" in response.json()["detail"]
        listed = httpx.get(f"{base}/api/tenants/{TENANT_A}/reports")
        assert listed.status_code == 200 and listed.json()["value"] == before


def test_serve_reports_a_taken_port_in_one_line_before_printing_its_address(
    azurite: Azurite, api_store: SnapshotStore
) -> None:
    # Issue 11: serve printed "auditor API on http://127.0.0.1:7071/api", then uvicorn's
    # traceback-like "address already in use" lines, and exited 1.
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    env = {**os.environ, "AUDITOR_STORAGE": azurite.connection_string,
           "AUDITOR_TABLE_PREFIX": api_store.tables.prefix}  # fmt: skip
    try:
        done = subprocess.run(
            [sys.executable, "-m", "auditor", "serve", "--port", str(port)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        taken.close()
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        f"error: cannot listen on 127.0.0.1:{port}: taken by another program; "
        "choose another --port\n"
    )


def test_a_pack_requested_from_serve_completes_and_downloads(
    azurite: Azurite, api_store: SnapshotStore, scenario: Scenario
) -> None:
    # Issue 11/15: locally nothing worked the report queue, so a requested pack stayed queued.
    import hashlib
    import time

    env = {**os.environ, "AUDITOR_STORAGE": azurite.connection_string,
           "AUDITOR_TABLE_PREFIX": api_store.tables.prefix,
           "AUDITOR_REPORT_QUEUE": f"r{api_store.tables.prefix}"}  # fmt: skip
    env.pop("AUDITOR_ACCESS_POLICY", None)
    with serve_api(env, timeout=30) as base:
        answer = httpx.post(
            f"{base}/api/tenants/{TENANT_A}/reports", json={"to": "2026-11-27T02:00:00Z"}
        )
        assert answer.status_code == 202, answer.text
        url = f"{base}{answer.json()['statusUrl']}"
        deadline = time.monotonic() + 180
        status = httpx.get(url).json()
        while status["status"] == "queued" and time.monotonic() < deadline:
            time.sleep(0.5)  # polling the status URL, as a client does (Retry-After)
            status = httpx.get(url).json()
        assert status["status"] == "succeeded", status
        workbook = httpx.get(f"{base}{status['download']['url']}")
        assert workbook.status_code == 200
        assert hashlib.sha256(workbook.content).hexdigest() == status["workbookSha256"]


def test_the_reference_renders_in_chromium_with_nothing_fetched_from_elsewhere(
    azurite: Azurite, api_store: SnapshotStore, scenario: Scenario
) -> None:
    # Issue 11: no /api/docs; FastAPI's default would load Swagger UI from a CDN.
    from playwright.sync_api import sync_playwright

    with serving(azurite, api_store) as base, sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path="/usr/bin/chromium")
        try:
            page = browser.new_page()
            requested: list[str] = []
            problems: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.on("console", lambda message: problems.append(message.text))
            page.on("pageerror", lambda error: problems.append(str(error)))
            answer = page.goto(f"{base}/api/docs")
            assert answer is not None and answer.status == 200
            assert page.title() == "Lighthouse compliance auditor API reference"
            width = page.evaluate("getComputedStyle(document.body).maxWidth")
            assert width != "none"  # the stylesheet loaded under the page's CSP
            assert page.locator("section.op").count() >= 8
        finally:
            browser.close()
    assert requested and all(url.startswith(f"{base}/api/docs") for url in requested), requested
    assert problems == []
