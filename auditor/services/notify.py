"""Deliver a closed run's digest to every configured sink, and record each outcome on the run.

Delivery happens after the run is closed, so it never delays or fails a snapshot: a sink error
is caught, retried with backoff (``attempts`` per round) and recorded in the run's
``delivery~{sink}`` row as ``delivered``, ``retrying`` (the timer's next tick tries again) or
``failed`` with the reason (after ``rounds`` rounds, or at once for an error retrying cannot
fix: a 4xx, a redirect to another host). ``notify --slot S`` sends again whatever the state.

The Azure Monitor sink is the log itself: the digest's figures as one structured record
(``run.digest``) and one per tenant (``run.digest.tenant``), which the alert rules in
infra/main.bicep query; and the same figures as metrics (``auditor.run.*`` gauges,
``auditor.tenant.regressions``) for charts and metric alerts.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from auditor.adapters import telemetry
from auditor.adapters.notify_sinks import ChatSink, EventGridSink, Sink, SinkError, WebhookSink
from auditor.adapters.tables.run_digests import Delivery, RunDigestStore
from auditor.core.canonical import format_time, parse_time
from auditor.core.notify_messages import Event, digest_events, slack_message, teams_card
from auditor.settings import Settings

log = logging.getLogger("auditor.digest")

# A delivery in state "sending" younger than this belongs to a live worker: others leave it.
SENDING_LEASE = timedelta(minutes=10)


class MonitorSink:
    """The digest's figures as structured log records (Application Insights traces) and as
    metrics (auditor/adapters/telemetry.py)."""

    name = "monitor"

    def send(self, events: Sequence[Event]) -> None:
        document = events[0].data
        figures = {"slot": document["slot"], "outcome": document["outcome"], **document["counts"]}
        log.info("run.digest %s", json.dumps(figures, sort_keys=True), extra={"auditor": figures})
        for tenant in document["tenants"]:
            row = {
                "slot": document["slot"],
                "tenant": tenant["tenantId"],
                "status": tenant["status"],
                "stale": tenant["stale"],
                "regressed": tenant["regressed"],
                "regressions": (tenant["summary"] or {}).get("posture", {}).get("regressed", 0),
            }
            log.info(
                "run.digest.tenant %s", json.dumps(row, sort_keys=True), extra={"auditor": row}
            )
        telemetry.record_digest(document)


def sinks_from_settings(settings: Settings, **options: Any) -> list[Sink]:
    """The sinks the settings switch on (the monitor sink always). `options` (tests): `verify`
    for the HTTP sinks' CA bundle, `credential` and client options for Event Grid."""
    notify = settings.notify
    verify = options.pop("verify", True)
    credential = options.pop("credential", None)
    sinks: list[Sink] = [MonitorSink()]
    if notify.webhook_url and notify.webhook_secret:
        sinks.append(WebhookSink(notify.webhook_url, notify.webhook_secret, verify=verify))
    if notify.chat_url:
        dashboard = notify.dashboard_url.rstrip("/") if notify.dashboard_url else None
        chat: Callable[[Mapping[str, Any]], dict[str, Any]]
        if notify.chat_format == "slack":
            chat = lambda doc: slack_message(doc, dashboard)  # noqa: E731
        else:
            chat = lambda doc: teams_card(doc, dashboard)  # noqa: E731
        sinks.append(ChatSink(notify.chat_format, notify.chat_url, chat, verify=verify))
    if notify.eventgrid_endpoint:
        if credential is None:
            from auditor.adapters.credentials import build_credential

            credential = build_credential()
        sinks.append(EventGridSink(notify.eventgrid_endpoint, credential, **options))
    return sinks


@dataclass
class Notifier:
    sinks: list[Sink]
    digests: RunDigestStore
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = time.sleep
    attempts: int = 3  # per round, with backoff between them
    rounds: int = 4  # rounds (close, then the timer's ticks) before a delivery is failed
    backoff_seconds: float = 2.0

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sinks)

    def deliver(
        self, slot: str, document: Mapping[str, Any], *, force: bool = False
    ) -> dict[str, Delivery]:
        """Send to every sink whose delivery is not settled (all of them with `force`); the
        outcome of each. Never raises for a sink's failure."""
        events = digest_events(document)
        recorded = self.digests.deliveries(slot)
        out: dict[str, Delivery] = {}
        for sink in self.sinks:
            before = recorded.get(sink.name)
            if not force and before is not None and self._settled(before):
                out[sink.name] = before
                continue
            out[sink.name] = self._deliver_one(slot, sink, events, before)
        return out

    def _settled(self, delivery: Delivery) -> bool:
        if delivery.state in ("delivered", "failed"):
            return True
        if delivery.state == "sending":
            return self.clock() - parse_time(delivery.at) < SENDING_LEASE
        return False

    def _deliver_one(
        self, slot: str, sink: Sink, events: list[Event], before: Delivery | None
    ) -> Delivery:
        attempts = before.attempts if before is not None else 0
        event_id = events[0].id
        self.digests.record_delivery(
            slot, Delivery(sink.name, "sending", attempts, "", format_time(self.clock()), event_id)
        )
        reason = ""
        state = "retrying"
        for number in range(self.attempts):
            if number:
                self.sleep(self.backoff_seconds * 2 ** (number - 1))
            attempts += 1
            try:
                sink.send(events)
            except SinkError as exc:
                reason = str(exc)
                if not exc.retryable:
                    state = "failed"
                    break
                continue
            except Exception as exc:  # a sink's bug must not undo the run's close
                reason = f"{type(exc).__name__}: {exc}"
                state = "failed"
                break
            state, reason = "delivered", ""
            break
        if state == "retrying" and attempts >= self.attempts * self.rounds:
            state = "failed"
            reason = f"{reason} (gave up after {attempts} attempts)"
        delivery = Delivery(sink.name, state, attempts, reason, format_time(self.clock()), event_id)
        self.digests.record_delivery(slot, delivery)
        fields = {"slot": slot, "sink": sink.name, "state": state, "attempts": attempts,
                  "reason": reason}  # fmt: skip
        level = logging.INFO if state == "delivered" else logging.ERROR
        log.log(
            level, "run.notify %s", json.dumps(fields, sort_keys=True), extra={"auditor": fields}
        )
        return delivery
