"""The auditor's HTTP API (FastAPI): see app.py and docs/api.md."""

from auditor.api.app import create_app

__all__ = ["create_app"]
