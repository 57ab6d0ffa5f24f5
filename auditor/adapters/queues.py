"""The snapshot queue: one message per tenant and slot, Base64 as the queue trigger expects.

The Functions host drives retries from the queue itself: a message that fails becomes visible
again after host.json's ``visibilityTimeout`` and, after ``maxDequeueCount`` failed dequeues, is
moved to ``<queue>-poison``. ``drain`` in the snapshot service does the same for the command line
(``--via-queue``), through this adapter.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Self

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import (
    QueueClient,
    QueueMessage,
    TextBase64DecodePolicy,
    TextBase64EncodePolicy,
)

from auditor.adapters.storage import queue_client
from auditor.core.runs import SnapshotJob, encode_job, rejected_job_document
from auditor.settings import Settings, require_storage

HOST_JSON = Path(__file__).resolve().parents[2] / "host.json"
DEFAULT_MAX_DEQUEUE_COUNT = 5  # the Functions host's default


def poison_queue_name(queue_name: str) -> str:
    """Where the Functions host moves a message after its last failed dequeue."""
    return f"{queue_name}-poison"


# The queue extension's defaults when host.json leaves them unset: batchSize 16, and
# newBatchThreshold half of it.
DEFAULT_BATCH_SIZE = 16


def max_dequeue_count(host_json: Path = HOST_JSON) -> int:
    """host.json's extensions.queues.maxDequeueCount (the host's default when unset)."""
    try:
        config = json.loads(host_json.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return DEFAULT_MAX_DEQUEUE_COUNT
    value = config.get("extensions", {}).get("queues", {}).get("maxDequeueCount")
    return int(value) if value else DEFAULT_MAX_DEQUEUE_COUNT


def _duration(text: str) -> timedelta:
    hours, minutes, seconds = (int(part) for part in text.split(":"))
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def run_deadline(host_json: Path = HOST_JSON) -> timedelta:
    """How long after planning every job of a run has either run or been given up by the host:
    maxDequeueCount × (functionTimeout + the queues' visibilityTimeout), from host.json."""
    host = HostQueueOptions.from_host_json(host_json)
    return host.max_dequeue_count * timedelta(seconds=host.hold_seconds + host.retry_delay_seconds)


@dataclass(frozen=True, slots=True)
class HostQueueOptions:
    """How the Functions host works a queue, from host.json: a failed message is retried after
    `retry_delay_seconds` (``visibilityTimeout``) and poisoned after `max_dequeue_count` tries;
    a message in hand stays hidden for `hold_seconds` (``functionTimeout``, the longest a
    function may run), so one whose worker died is retried after that. One instance works up
    to `in_hand` messages at once: ``batchSize``, and ``newBatchThreshold`` more fetched while
    the batch runs."""

    max_dequeue_count: int
    retry_delay_seconds: int
    hold_seconds: int
    in_hand: int = DEFAULT_BATCH_SIZE + DEFAULT_BATCH_SIZE // 2

    @classmethod
    def from_host_json(cls, host_json: Path = HOST_JSON) -> HostQueueOptions:
        try:
            config = json.loads(host_json.read_text(encoding="utf-8"))
        except FileNotFoundError:
            config = {}
        queues = config.get("extensions", {}).get("queues", {})
        timeout = _duration(str(config.get("functionTimeout") or "00:30:00"))
        visibility = _duration(str(queues.get("visibilityTimeout") or "00:00:00"))
        batch = int(queues.get("batchSize") or DEFAULT_BATCH_SIZE)
        return cls(
            max_dequeue_count=max_dequeue_count(host_json),
            retry_delay_seconds=int(visibility.total_seconds()),
            hold_seconds=int(timeout.total_seconds()),
            in_hand=batch + int(queues.get("newBatchThreshold", batch // 2)),
        )


@dataclass(frozen=True, slots=True)
class ReceivedJob:
    """A message taken from the queue: its text, how often it was dequeued, and its receipt."""

    text: str
    dequeue_count: int
    message: QueueMessage


class WorkQueue:
    """A queue a trigger works, and its poison queue: receive, delete, retry later, poison."""

    def __init__(self, queue: QueueClient, poison: QueueClient) -> None:
        self._queue = queue
        self._poison = poison

    @classmethod
    def named(
        cls,
        settings: Settings,
        queue_name: str,
        credential: TokenCredential | None = None,
        **options: Any,
    ) -> Self:
        """The queue `queue_name` of the configured storage (Base64, as triggers expect)."""
        storage = require_storage(settings)
        codec = {
            "message_encode_policy": TextBase64EncodePolicy(),
            "message_decode_policy": TextBase64DecodePolicy(),
        }
        return cls(
            queue_client(storage, queue_name, credential, **codec, **options),
            queue_client(storage, poison_queue_name(queue_name), credential, **codec, **options),
        )

    @property
    def name(self) -> str:
        return str(self._queue.queue_name)

    def close(self) -> None:
        self._queue.close()
        self._poison.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create_queues(self) -> None:
        """Create the queue and its poison queue if missing (idempotent)."""
        for client in (self._queue, self._poison):
            with contextlib.suppress(ResourceExistsError):
                client.create_queue()

    def receive_jobs(self, max_messages: int, visibility_timeout: int) -> list[ReceivedJob]:
        """Up to `max_messages` visible messages, hidden from others for `visibility_timeout` s."""
        try:
            messages = self._queue.receive_messages(
                max_messages=max_messages, visibility_timeout=visibility_timeout
            )
            return [ReceivedJob(str(m.content), int(m.dequeue_count or 1), m) for m in messages]
        except ResourceNotFoundError:
            return []

    def delete(self, job: ReceivedJob) -> None:
        self._queue.delete_message(job.message)

    def release(self, job: ReceivedJob, visibility_timeout: int) -> None:
        """Make a failed message visible again after `visibility_timeout` seconds (a retry)."""
        self._queue.update_message(job.message, visibility_timeout=visibility_timeout)

    def move_to_poison(self, job: ReceivedJob) -> None:
        """As the host does after the last failed dequeue: keep the message in the poison queue."""
        with contextlib.suppress(ResourceExistsError):
            self._poison.create_queue()
        self._poison.send_message(job.text)
        self._queue.delete_message(job.message)

    def approximate_count(self) -> int:
        """Messages in the queue, invisible ones (being processed or awaiting retry) included."""
        try:
            return int(self._queue.get_queue_properties().approximate_message_count or 0)
        except ResourceNotFoundError:
            return 0

    def depth(self, poison: bool = False) -> int:
        """Approximate messages in the queue (or its poison queue), hidden ones included."""
        client = self._poison if poison else self._queue
        try:
            return int(client.get_queue_properties().approximate_message_count or 0)
        except ResourceNotFoundError:
            return 0

    def oldest_inserted_at(self, poison: bool = False) -> datetime | None:
        """When the first visible message was inserted (None: no visible message)."""
        client = self._poison if poison else self._queue
        try:
            for message in client.peek_messages(max_messages=1):
                inserted = message.inserted_on
                return inserted if isinstance(inserted, datetime) else None
        except ResourceNotFoundError:
            return None
        return None

    def peek_texts(self, poison: bool = False) -> Iterator[str]:
        """Visible messages' texts, without dequeuing them (at most 32)."""
        client = self._poison if poison else self._queue
        try:
            for message in client.peek_messages(max_messages=32):
                yield str(message.content)
        except ResourceNotFoundError:
            return


class SnapshotQueue(WorkQueue):
    """Send and receive snapshot jobs (the producer side of the queue trigger)."""

    @classmethod
    def from_settings(
        cls, settings: Settings, credential: TokenCredential | None = None, **options: Any
    ) -> SnapshotQueue:
        return cls.named(settings, settings.snapshot_queue, credential, **options)

    def send_job(self, job: SnapshotJob) -> None:
        self._queue.send_message(encode_job(job))

    def reject(self, text: str, reason: str, rejected_at: str) -> None:
        """Refuse a job before any work: it goes to the poison queue wrapped with its reason."""
        with contextlib.suppress(ResourceExistsError):
            self._poison.create_queue()
        self._poison.send_message(rejected_job_document(text, reason, rejected_at))
