"""Snapshot jobs: one small message per tenant and slot; anything else is refused, by name."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditor.core.runs import JobFormatError, SnapshotJob, decode_job, encode_job


@given(
    st.text(min_size=1),
    st.datetimes(datetime(2000, 1, 1), datetime(2999, 1, 1), timezones=st.just(UTC)),
)
def test_a_job_round_trips_through_its_message_text(tenant_id: str, slot: datetime) -> None:
    job = SnapshotJob.for_slot(tenant_id, slot)
    assert decode_job(encode_job(job)) == job
    assert job.scheduled_at == slot.replace(microsecond=0)


def test_the_message_names_only_tenant_and_slot() -> None:
    job = SnapshotJob("7e0a0000-0000-0000-0000-000000000001", "20240501T020000Z")
    assert encode_job(job) == (
        '{"format": "auditor-snapshot-job/1", "snapshot_id": "20240501T020000Z", '
        '"tenant_id": "7e0a0000-0000-0000-0000-000000000001"}'
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("hello", "not JSON"),
        ("[]", "not a auditor-snapshot-job/1 job"),
        ('{"format": "auditor-snapshot-job/1", "snapshot_id": "20240501T020000Z"}', "tenant_id"),
        ('{"format": "auditor-snapshot-job/1", "tenant_id": "t", "snapshot_id": "x"}', "snapshot"),
    ],
)
def test_malformed_messages_are_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(JobFormatError, match=problem):
        decode_job(text)
