"""The report queue: one message per evidence pack, Base64 as the queue trigger expects.

The Functions host retries a failed message after host.json's ``visibilityTimeout`` and moves it
to ``<queue>-poison`` after ``maxDequeueCount`` failed dequeues.
"""

from __future__ import annotations

import contextlib
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from auditor.adapters.storage import queue_client
from auditor.settings import Settings, require_storage


class ReportQueue:
    """Sends report jobs (the producer side of the report queue trigger)."""

    def __init__(self, queue: QueueClient) -> None:
        self._queue = queue

    @classmethod
    def from_settings(
        cls, settings: Settings, credential: TokenCredential | None = None, **options: Any
    ) -> ReportQueue:
        return cls(
            queue_client(
                require_storage(settings),
                settings.report_queue,
                credential,
                message_encode_policy=TextBase64EncodePolicy(),
                message_decode_policy=TextBase64DecodePolicy(),
                **options,
            )
        )

    @property
    def name(self) -> str:
        return str(self._queue.queue_name)

    def close(self) -> None:
        self._queue.close()

    def __enter__(self) -> ReportQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, text: str) -> None:
        """Queue one message (creating the queue on first use, as a local run needs)."""
        try:
            self._queue.send_message(text)
        except ResourceNotFoundError:
            with contextlib.suppress(ResourceExistsError):
                self._queue.create_queue()
            self._queue.send_message(text)

    def receive_texts(self, max_messages: int = 32) -> list[str]:
        """Take up to `max_messages` messages off the queue (tests and the command line)."""
        try:
            messages = list(self._queue.receive_messages(max_messages=max_messages))
        except ResourceNotFoundError:
            return []
        for message in messages:
            self._queue.delete_message(message)
        return [str(m.content) for m in messages]
