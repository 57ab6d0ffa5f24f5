"""The completeness rule: dropped (malformed) rows or pages never read as complete."""

from __future__ import annotations

from auditor.core.model import CollectionStatus, Completeness

SUBS = ("s1", "s2")


def completeness(**fields: object) -> Completeness:
    return Completeness(expected_subscriptions=SUBS, collected_subscriptions=SUBS, **fields)  # type: ignore[arg-type]


def test_everything_read_and_nothing_dropped_is_complete() -> None:
    c = completeness(warnings=("subscription s2: no regulatory compliance data",))
    assert (c.status, c.reasons) == (CollectionStatus.COMPLETE, ())


def test_any_malformed_row_makes_the_tenant_incomplete_with_the_count_as_reason() -> None:
    c = completeness(malformed={"compliance": 3, "pages": 1, "plans": 0})
    assert c.status is CollectionStatus.INCOMPLETE
    assert c.malformed_count == 4
    assert c.reasons == (
        "4 malformed rows or pages dropped (compliance 3, pages 1); see the warnings",
    )


def test_errors_and_missing_subscriptions_come_first_in_the_reasons() -> None:
    c = Completeness(
        expected_subscriptions=SUBS,
        collected_subscriptions=("s1",),
        missing={"s2": "posture query failed: HTTP 403"},
        errors=("assessment metadata: nextLink repeats an earlier page; stopped",),
        malformed={"rows": 2},
    )
    assert c.status is CollectionStatus.INCOMPLETE
    assert c.reasons == (
        "subscription s2: posture query failed: HTTP 403",
        "assessment metadata: nextLink repeats an earlier page; stopped",
        "2 malformed rows or pages dropped (rows 2); see the warnings",
    )


def test_nothing_read_is_failed_whatever_else() -> None:
    c = Completeness(expected_subscriptions=SUBS, collected_subscriptions=(), malformed={"x": 1})
    assert c.status is CollectionStatus.FAILED
