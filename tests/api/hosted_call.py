"""Run in a fresh interpreter (as a Functions worker process would be): load function_app.py,
find its HTTP function and invoke it with real ``func.HttpRequest`` objects.

Reads ``[{"url": ..., "headers": {...}}, ...]`` on stdin; writes
``[{"status": ..., "headers": {...}, "body": "..."}, ...]`` on stdout.
"""

from __future__ import annotations

import asyncio
import json
import sys
from types import SimpleNamespace

import azure.functions as func

from tests.functions.worker import indexed_functions


def main() -> None:
    [http] = [f for f in indexed_functions() if f.get_function_name() == "http_app_func"]
    handler = http.get_user_function()
    answers = []
    for request in json.load(sys.stdin):
        context = SimpleNamespace(
            function_directory="/home/site/wwwroot",
            function_name="http_app_func",
            invocation_id="00000000-0000-0000-0000-000000000001",
            thread_local_storage=None,
            trace_context=None,
            retry_context=None,
        )
        req = func.HttpRequest("GET", request["url"], headers=request.get("headers", {}), body=b"")
        response = asyncio.run(handler(req, context))
        answers.append(
            {
                "status": response.status_code,
                "headers": dict(response.headers),
                "body": response.get_body().decode("utf-8"),
            }
        )
    json.dump(answers, sys.stdout)


if __name__ == "__main__":
    main()
