"""The auditor's HTTP API (FastAPI): see app.py and docs/api.md.

``create_app`` is imported on first use, so that the command line, which prints the API's
documents (auditor/api/documents.py, pure), does not load FastAPI at every start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditor.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from auditor.api.app import create_app

        return create_app
    raise AttributeError(f"module 'auditor.api' has no attribute {name!r}")
