"""Azure Functions entry points (Python v2 programming model).

Every trigger, its schedule or queue, and the one service call it makes. No logic here: see
auditor/services/.

One package, two apps (infra/main.bicep): AUDITOR_ROLE chooses what this app registers.

- ``collector``: the timers and queues below (the blueprint ``collector``). It runs with the
  identity customers delegate to through Lighthouse, and has no HTTP function.
- ``api``: the HTTP API and the dashboard only, with an identity that reads storage (and may
  only queue packs): the internet-facing app never holds the delegated identity.
- ``all`` (the default, local runs): both.

A bad AUDITOR_ROLE stops the app at load with one line naming the setting. To add a trigger
(a timer, a queue), declare it on ``collector``: it is registered wherever the role collects.
"""

from __future__ import annotations

import os

import azure.functions as func

from auditor.adapters import telemetry
from auditor.services import report as reports
from auditor.services import snapshot as snapshots
from auditor.settings import load_role

ROLE = load_role()

# Timers and queues: the collector role.
collector = func.Blueprint()


# Daily (AUDITOR_SNAPSHOT_SCHEDULE, NCRONTAB): discover delegated tenants, record the run's
# manifest and queue one snapshot job per tenant. use_monitor catches up a run missed while the
# app was down; planning is retried, and re-planning a slot never duplicates a snapshot.
@collector.timer_trigger(
    arg_name="timer",
    schedule="%AUDITOR_SNAPSHOT_SCHEDULE%",
    use_monitor=True,
    run_on_startup=False,
)
@collector.retry(
    strategy="exponential_backoff",
    max_retry_count="3",
    minimum_interval="00:00:30",
    maximum_interval="00:10:00",
)
def plan_snapshot_run(timer: func.TimerRequest) -> None:
    snapshots.on_timer(past_due=timer.past_due)


# One tenant per message, so the work scales out across instances. A failure raises: the host
# retries the message, and after host.json's maxDequeueCount it lands in the poison queue (the
# slot is then committed as failed with the reason).
@collector.queue_trigger(
    arg_name="message",
    queue_name="%AUDITOR_SNAPSHOT_QUEUE%",
    connection="AUDITOR_STORAGE",
)
def snapshot_tenant(message: func.QueueMessage) -> None:
    snapshots.on_queue_message(message.get_body().decode("utf-8"), message.dequeue_count or 1)


# Monthly (AUDITOR_REPORT_SCHEDULE, NCRONTAB): queue last month's evidence pack of every tenant
# (one message each; a new report id per pack, so a rerun never overwrites one).
@collector.timer_trigger(
    arg_name="timer",
    schedule="%AUDITOR_REPORT_SCHEDULE%",
    use_monitor=True,
    run_on_startup=False,
)
def queue_monthly_packs(timer: func.TimerRequest) -> None:
    reports.on_timer()


# One evidence pack per message: build the workbook, store it write-once beside its manifest. A
# lasting failure is recorded and not retried; a transient one raises for the host to retry,
# and after maxDequeueCount the message lands in the poison queue with its failure recorded.
@collector.queue_trigger(
    arg_name="message",
    queue_name="%AUDITOR_REPORT_QUEUE%",
    connection="AUDITOR_STORAGE",
)
def build_evidence_pack(message: func.QueueMessage) -> None:
    reports.on_queue_message(message.get_body().decode("utf-8"), message.dequeue_count or 1)


# The one app object. The API app answers HTTP on two functions over one FastAPI app
# (auditor/api/http_functions.py; host.json routePrefix ""): `api/{*route}` needs the function
# key, `{*route}` (the dashboard's pages, signed in through App Service Authentication) does
# not; a path under /api through the second answers like an unknown one. The caller's
# identity comes from App Service Authentication.
app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
if ROLE in ("api", "all"):
    from auditor.api.hosting import azure_app, settle_heap
    from auditor.api.http_functions import http_functions

    app.register_functions(http_functions(azure_app()))
    settle_heap()  # the API's start-up heap, out of every later full collection
if ROLE in ("collector", "all"):
    app.register_functions(collector)
    # The run digest's figures as metrics in Application Insights (logs go there via the host).
    telemetry.configure_from_environment(os.environ)
