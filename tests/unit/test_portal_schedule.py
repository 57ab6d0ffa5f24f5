"""Portal pages of the pack follow the cloud; a period's scheduled slots follow NCRONTAB."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from auditor.core.portal import compliance_url, portal_for, recommendation_url
from auditor.core.schedule import occurrences
from auditor.services.report import pack_options
from auditor.settings import load_settings


@pytest.mark.parametrize(
    ("arm", "portal"),
    [
        ("https://management.azure.com", "https://portal.azure.com"),
        ("https://management.azure.com/", "https://portal.azure.com"),
        ("https://management.usgovcloudapi.net", "https://portal.azure.us"),
        ("https://management.chinacloudapi.cn/", "https://portal.azure.cn"),
    ],
)
def test_the_portal_follows_the_resource_manager_endpoint(arm: str, portal: str) -> None:
    assert portal_for(arm) == portal
    options = pack_options(load_settings({"AUDITOR_ARM_ENDPOINT": arm}))
    assert options.portal == portal


def test_an_unknown_endpoint_has_no_portal_of_its_own() -> None:
    with pytest.raises(ValueError, match="no Azure portal known"):
        portal_for("https://127.0.0.1:8443")
    # Packs built against the simulator still link somewhere a person can open.
    options = pack_options(load_settings({"AUDITOR_ARM_ENDPOINT": "https://127.0.0.1:8443"}))
    assert options.portal == "https://portal.azure.com"


def test_links_are_defender_for_cloud_pages_not_rest_urls() -> None:
    url = recommendation_url("https://portal.azure.us", "4fb67663-9ab9-475d-b026-8c544cced439")
    assert url == (
        "https://portal.azure.us/#view/Microsoft_Azure_Security/"
        "GenericRecommendationDetailsBlade/assessmentKey/4fb67663-9ab9-475d-b026-8c544cced439"
    )
    assert recommendation_url("https://portal.azure.com", "a/b#c").endswith("/a%2Fb%23c")
    assert compliance_url("https://portal.azure.cn").startswith("https://portal.azure.cn/#view/")


def test_a_period_has_one_slot_per_scheduled_moment_within_it() -> None:
    slots = occurrences(
        "0 0 2 * * *",
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC),
    )
    assert len(slots) == 31
    assert slots[0] == datetime(2025, 1, 1, 2, tzinfo=UTC)
    assert slots[-1] == datetime(2025, 1, 31, 2, tzinfo=UTC)
    # Both ends are inclusive; a twice-daily weekday schedule.
    edge = occurrences(
        "0 30 1,13 * * MON-FRI",
        datetime(2025, 1, 3, 13, 30, tzinfo=UTC),  # a Friday
        datetime(2025, 1, 6, 1, 30, tzinfo=UTC),  # the Monday after
    )
    assert edge == [
        datetime(2025, 1, 3, 13, 30, tzinfo=UTC),
        datetime(2025, 1, 6, 1, 30, tzinfo=UTC),
    ]
