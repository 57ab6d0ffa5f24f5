from datetime import UTC, datetime, timedelta, timezone

import pytest

from auditor.core.snapshot import slot_of, snapshot_id_for


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 27, 2, 0, tzinfo=UTC),
        datetime(1, 1, 1, 0, 0, tzinfo=UTC),  # the smallest instant a caller can send
        datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
    ],
)
def test_snapshot_ids_have_fixed_width_and_round_trip(moment: datetime) -> None:
    snapshot_id = snapshot_id_for(moment)
    assert len(snapshot_id) == 16
    assert slot_of(snapshot_id) == moment


def test_snapshot_id_is_the_utc_slot() -> None:
    local = datetime(2026, 11, 27, 3, 0, tzinfo=timezone(timedelta(hours=1)))
    assert snapshot_id_for(local) == "20261127T020000Z"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        snapshot_id_for(datetime(2026, 11, 27, 2, 0))
