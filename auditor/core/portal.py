"""Azure portal pages an officer can open from a pack: Defender for Cloud's page of a
recommendation and its regulatory compliance dashboard. Pure.

The portal follows the cloud of ``AUDITOR_ARM_ENDPOINT`` (public, US Government, China); a
Resource Manager REST URL is no page a person can read, so packs link here instead.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

PUBLIC_PORTAL = "https://portal.azure.com"

# Resource Manager host -> portal of the same cloud.
PORTALS = {
    "management.azure.com": PUBLIC_PORTAL,
    "management.usgovcloudapi.net": "https://portal.azure.us",
    "management.chinacloudapi.cn": "https://portal.azure.cn",
}


_RECOMMENDATION_BLADE = "GenericRecommendationDetailsBlade"


def portal_for(arm_endpoint: str) -> str:
    """The portal of the cloud whose Resource Manager is `arm_endpoint` (ValueError if none:
    a link to the wrong cloud's portal would be worse than none)."""
    host = (urlsplit(arm_endpoint).hostname or "").lower()
    try:
        return PORTALS[host]
    except KeyError:
        known = ", ".join(sorted(PORTALS))
        raise ValueError(f"no Azure portal known for {arm_endpoint!r} (known: {known})") from None


def recommendation_url(portal: str, assessment_key: str) -> str:
    """Defender for Cloud's page of one recommendation (assessment key, a GUID)."""
    key = quote(assessment_key, safe="")
    return f"{portal}/#view/Microsoft_Azure_Security/{_RECOMMENDATION_BLADE}/assessmentKey/{key}"


def compliance_url(portal: str) -> str:
    """Defender for Cloud's regulatory compliance dashboard (every assigned standard)."""
    return f"{portal}/#view/Microsoft_Azure_Security/SecurityMenuBlade/~/22"
