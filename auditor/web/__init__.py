"""The web dashboard, served by the API's FastAPI app at ``/`` (the API stays under /api).

``install(app, ...)`` adds the page routes (auditor/web/pages.py), the static assets, the
error pages, CSRF on state-changing forms and the browser security headers. Callers are
identified by the API's audit middleware (one audit record per page view) and tenants are
checked against the same access policy (``ApiContext``).
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from auditor.web.pages import install_handlers, router
from auditor.web.render import TEMPLATES, RowCache
from auditor.web.security import FormCSRF, SecurityHeaders
from auditor.web.summary import TenantSummaries
from auditor.web.views import ranking_cache

STATIC = TEMPLATES.parent / "static"


def install(
    app: FastAPI,
    *,
    sign_in_redirect: bool,
    secure_cookies: bool,
    snapshot_schedule: str | None = None,
    run_grace: timedelta | None = None,
    secret: str | None = None,
) -> None:
    """Mount the dashboard on `app` (whose ``state.context`` is the API's ApiContext).

    `sign_in_redirect`: an unauthenticated page view is sent to App Service Authentication's
    sign-in (Azure with authentication on); otherwise it is a 401 page. `snapshot_schedule`
    (NCRONTAB) makes a tenant whose latest snapshot is older than the schedule's latest slot
    (allowing `run_grace` for the run) show as stale. `secret` signs the CSRF tokens: give
    every instance the same one (AUDITOR_WEB_SECRET) so that a form rendered by one instance
    posts to another; without it this process makes its own.
    """
    from auditor.web.pages import grace

    app.state.sign_in_redirect = sign_in_redirect
    app.state.snapshot_schedule = snapshot_schedule
    app.state.run_grace = run_grace if run_grace is not None else grace()
    app.state.summaries = TenantSummaries(app.state.context.history)
    app.state.portfolio_rows = RowCache("portfolio_row.html")
    app.state.rankings = ranking_cache()
    app.state.csrf_secret = secret or secrets.token_urlsafe(32)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    install_handlers(app)
    # Inner first: CSRF checks the form, the headers wrap every page answer (its 403 too).
    app.add_middleware(FormCSRF, secure_cookie=secure_cookies, secret=app.state.csrf_secret)
    app.add_middleware(SecurityHeaders)
