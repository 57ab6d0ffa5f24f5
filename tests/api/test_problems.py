"""Every error the framework itself raises is a problem document with the right status."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.exceptions import HTTPException

from auditor.api import problems


def app_raising(status: int) -> FastAPI:
    app = FastAPI()
    problems.install(app)

    @app.get("/boom")
    def boom() -> None:
        raise HTTPException(status_code=status)

    return app


def test_a_framework_400_is_a_400_problem_naming_the_body_not_a_500() -> None:
    response = TestClient(app_raising(400)).get("/boom")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == problems.INVALID_PARAMETER


def test_other_unexpected_framework_errors_are_500_problems_without_details() -> None:
    response = TestClient(app_raising(418), raise_server_exceptions=False).get("/boom")
    assert response.status_code == 500
    assert response.json()["type"] == problems.INTERNAL
