"""Run in a fresh interpreter (as a Functions worker process would be): load function_app.py,
find its HTTP functions and invoke one with real ``func.HttpRequest`` objects.

Reads ``[{"url": ..., "headers": {...}, "function": "api"|"pages", "method": ..., "body": ...},
...]`` on stdin (``function`` defaults to ``api``, ``method`` to GET); writes
``[{"status": ..., "headers": {...}, "body": "..."}, ...]`` on stdout.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from types import SimpleNamespace

import azure.functions as func

from tests.functions.worker import indexed_functions


class AuditRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(getattr(record, "audit", {}))


def main() -> None:
    audit = AuditRecords()
    logging.getLogger("auditor.audit").addHandler(audit)
    logging.getLogger("auditor.audit").setLevel(logging.INFO)
    handlers = {f.get_function_name(): f.get_user_function() for f in indexed_functions()}
    answers = []
    for request in json.load(sys.stdin):
        name = request.get("function", "api")
        handler = handlers[name]
        context = SimpleNamespace(
            function_directory="/home/site/wwwroot",
            function_name=name,
            invocation_id="00000000-0000-0000-0000-000000000001",
            thread_local_storage=None,
            trace_context=None,
            retry_context=None,
        )
        req = func.HttpRequest(
            request.get("method", "GET"),
            request["url"],
            headers=request.get("headers", {}),
            body=request.get("body", "").encode("utf-8"),
        )
        audit.records.clear()
        response = asyncio.run(handler(req, context))
        answers.append(
            {
                "status": response.status_code,
                "headers": dict(response.headers),
                "body": response.get_body().decode("utf-8"),
                "audit": list(audit.records),
            }
        )
    json.dump(answers, sys.stdout)


if __name__ == "__main__":
    main()
