"""Resource Graph rows → typed posture records. Pure: no I/O, fully unit-tested on fixtures.

What is collected, and which normalizer reads which Resource Graph type, is declared once in
auditor/core/registry.py (which also holds the ``Batch`` that dispatches rows). A row that does
not fit its shape (missing properties, unknown state, an id that does not parse) is counted as
malformed under its kind and described in a bounded list of warnings; it never raises.

Values are taken in their documented types and spelling, nothing coerced: a state is one of
``Passed``, ``Failed``, ``Skipped``, ``Unsupported`` exactly as Resource Graph returns it; a
count is a JSON integer from 0 to 2**53 - 1 (absent or null reads as 0); a score is a finite,
non-negative JSON number; text is a JSON string. ``"passed"``, ``"3"``, ``1.7``, ``1e309`` (read
as infinity) are malformed. A row that is not an object is malformed (kind ``rows``).

Ids are unique: the first row of an id (compared case-insensitively) that normalises is kept,
and every later row with that id — identical or conflicting — is malformed under its kind,
with a warning saying which state was kept and which dropped (an identical repeat is the
sign of a paging fault that may have skipped other rows, so it is not trusted either).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from auditor.core.model import (
    AlertSeverity,
    AlertStatus,
    AssessmentResult,
    ComplianceRecord,
    ControlSummary,
    DefenderPlan,
    Evidence,
    SecureScore,
    SecureScoreControl,
    SecurityAlert,
    StandardAssignment,
    StandardSummary,
    State,
)
from auditor.core.quoted import quote

Row = Mapping[str, Any]

T_STANDARD = "microsoft.security/regulatorycompliancestandards"
T_CONTROL = T_STANDARD + "/regulatorycompliancecontrols"
T_ASSESSMENT = T_CONTROL + "/regulatorycomplianceassessments"
T_SECURE_SCORE = "microsoft.security/securescores"
T_SECURE_SCORE_CONTROL = T_SECURE_SCORE + "/securescorecontrols"
T_PRICING = "microsoft.security/pricings"
T_STANDARD_ASSIGNMENT = "microsoft.security/standardassignments"
T_RECOMMENDATION = "microsoft.security/assessments"
T_SUBSCRIPTION = "microsoft.resources/subscriptions"
T_REGISTRATION_ASSIGNMENT = "microsoft.managedservices/registrationassignments"
T_ALERT = "microsoft.security/locations/alerts"

_SUB = r"/subscriptions/(?P<sub>[^/]+)"
_ASSESSMENT_ID = re.compile(
    _SUB + r"/providers/Microsoft\.Security/regulatoryComplianceStandards/(?P<standard>[^/]+)"
    r"/regulatoryComplianceControls/(?P<control>[^/]+)"
    r"/regulatoryComplianceAssessments/(?P<assessment>[^/]+)$",
    re.IGNORECASE,
)
_CONTROL_ID = re.compile(
    _SUB + r"/providers/Microsoft\.Security/regulatoryComplianceStandards/(?P<standard>[^/]+)"
    r"/regulatoryComplianceControls/(?P<control>[^/]+)$",
    re.IGNORECASE,
)
_STANDARD_ID = re.compile(
    _SUB + r"/providers/Microsoft\.Security/regulatoryComplianceStandards/(?P<standard>[^/]+)$",
    re.IGNORECASE,
)
_ASSESSMENT_SUFFIX = re.compile(r"/providers/Microsoft\.Security/assessments/[^/]+$", re.IGNORECASE)
# assessmentDetailsLink of a regulatory compliance assessment: the Defender assessment it comes
# from, as an ARM URL (or path) ending in securityStatuses/{key} (the form Microsoft's examples
# show) or assessments/{key}, optionally with a query string.
_SOURCE_ASSESSMENT = re.compile(
    r"/providers/Microsoft\.Security/(?:securityStatuses|assessments)/(?P<key>[0-9a-f-]{36})"
    r"/?(?:\?.*)?$",
    re.IGNORECASE,
)
_SUB_PREFIX = re.compile(r"^" + _SUB + r"(/|$)", re.IGNORECASE)

MAX_WARNINGS = 50
MAX_COUNT = 2**53 - 1  # the largest integer every JSON reader (and Excel) keeps exactly


class Malformed(ValueError):
    """A row does not have the shape its type promises."""


# --- field access -------------------------------------------------------------------------


def _props(row: Row) -> Mapping[str, Any]:
    props = row.get("properties")
    if not isinstance(props, Mapping):
        raise Malformed("no properties")
    return props


def _str(mapping: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = mapping.get(name)
    if type(value) is str:  # the common case first: this runs for every row
        return value
    if value is None:
        if required:
            raise Malformed(f"missing {name}")
        return ""
    raise Malformed(f"{name} is not a string")


def _int(mapping: Mapping[str, Any], name: str) -> int:
    value = mapping.get(name)
    if type(value) is int and 0 <= value <= MAX_COUNT:  # the common case first
        return value
    if value is None:
        return 0
    if type(value) is int:
        raise Malformed(f"{name} is {'negative' if value < 0 else 'beyond any real count'}")
    raise Malformed(f"{name} is not a non-negative integer ({_kind(value)})")


def _float(mapping: Mapping[str, Any], name: str) -> float:
    value = mapping.get(name)
    if type(value) is float:
        if math.isfinite(value) and value >= 0:
            return value
        raise Malformed(f"{name} is not a finite non-negative number")
    if type(value) is int:
        if 0 <= value <= MAX_COUNT:
            return float(value)
        raise Malformed(f"{name} is not a finite non-negative number")
    if value is None:
        return 0.0
    raise Malformed(f"{name} is not a number ({_kind(value)})")


def _kind(value: Any) -> str:
    if type(value) is float:
        return "a fraction" if math.isfinite(value) else "not finite"
    return {str: "a string", bool: "a boolean", list: "a list"}.get(type(value), "an object")


_STATES = {state.value: state for state in State}


def _state(props: Mapping[str, Any]) -> State:
    raw = props.get("state")
    known = _STATES.get(raw) if type(raw) is str else None
    if known is not None:
        return known
    if raw is None:
        raise Malformed("missing state")
    # Resource Graph spells states as documented; anything else (other casing included) is
    # not read as a state.
    raise Malformed(
        f"unknown state {quote(raw)!r}" if type(raw) is str else "state is not a string"
    )


_shared = sys.intern


def _match(pattern: re.Pattern[str], row: Row) -> re.Match[str]:
    row_id = row.get("id")
    if not isinstance(row_id, str):
        raise Malformed("missing id")
    match = pattern.match(row_id)
    if match is None:
        raise Malformed("id does not parse")
    return match


def subscription_of(row: Row) -> str:
    """The subscription a row belongs to: the subscriptionId column, else the id's prefix."""
    sub = row.get("subscriptionId")
    if isinstance(sub, str) and sub:
        return sub.lower()
    row_id = row.get("id")
    match = _SUB_PREFIX.match(row_id) if isinstance(row_id, str) else None
    if match is None:
        raise Malformed("no subscription")
    return match.group("sub").lower()


# --- normalizers ----------------------------------------------------------------------------


def compliance_record(row: Row) -> ComplianceRecord:
    match = _match(_ASSESSMENT_ID, row)
    props = _props(row)
    # Subscription, standard, control and type repeat across thousands of records: one string
    # each (interned), not one per record.
    return ComplianceRecord(
        subscription_id=_shared(match.group("sub").lower()),
        standard=_shared(match.group("standard")),
        control=_shared(match.group("control")),
        assessment=match.group("assessment").lower(),
        state=_state(props),
        passed_resources=_int(props, "passedResources"),
        failed_resources=_int(props, "failedResources"),
        skipped_resources=_int(props, "skippedResources"),
        description=_str(props, "description", required=False),
        assessment_type=_shared(_str(props, "assessmentType", required=False)),
        details_link=_str(props, "assessmentDetailsLink", required=False),
    )


def source_assessment(record: ComplianceRecord) -> str:
    """The assessment key (lower-case GUID) a regulatory compliance assessment comes from, read
    from its ``assessmentDetailsLink``; "" when the link names none.

    Derived, never stored: the link is already part of the record (and of the snapshot's
    hash), so every snapshot, older ones included, names its source with unchanged hashes.
    """
    match = _SOURCE_ASSESSMENT.search(record.details_link)
    return match.group("key").lower() if match else ""


def standard_summary(row: Row) -> StandardSummary:
    match = _match(_STANDARD_ID, row)
    props = _props(row)
    return StandardSummary(
        subscription_id=match.group("sub").lower(),
        standard=match.group("standard"),
        state=_state(props),
        passed_controls=_int(props, "passedControls"),
        failed_controls=_int(props, "failedControls"),
        skipped_controls=_int(props, "skippedControls"),
        unsupported_controls=_int(props, "unsupportedControls"),
    )


def control_summary(row: Row) -> ControlSummary:
    match = _match(_CONTROL_ID, row)
    props = _props(row)
    return ControlSummary(
        subscription_id=match.group("sub").lower(),
        standard=match.group("standard"),
        control=match.group("control"),
        description=_str(props, "description", required=False),
        state=_state(props),
        passed_assessments=_int(props, "passedAssessments"),
        failed_assessments=_int(props, "failedAssessments"),
        skipped_assessments=_int(props, "skippedAssessments"),
    )


def defender_plan(row: Row) -> DefenderPlan:
    props = _props(row)
    tier = _str(props, "pricingTier")
    if tier not in ("Free", "Standard"):
        raise Malformed(f"unknown pricingTier {tier!r}")
    replaced = props.get("replacedBy")
    replaced = [] if replaced is None else replaced
    if not isinstance(replaced, list) or not all(type(item) is str for item in replaced):
        raise Malformed("replacedBy is not a list of strings")
    deprecated = props.get("deprecated")
    if deprecated is not None and type(deprecated) is not bool:
        raise Malformed("deprecated is not a boolean")
    return DefenderPlan(
        subscription_id=subscription_of(row),
        plan=_str(row, "name"),
        tier=tier,
        sub_plan=_str(props, "subPlan", required=False),
        deprecated=deprecated is True,
        replaced_by=tuple(replaced),
        enablement_time=_str(props, "enablementTime", required=False),
    )


def _score(props: Mapping[str, Any]) -> Mapping[str, Any]:
    score = props.get("score")
    if not isinstance(score, Mapping):
        raise Malformed("missing score")
    return score


def secure_score(row: Row) -> SecureScore:
    props = _props(row)
    score = _score(props)
    return SecureScore(
        subscription_id=subscription_of(row),
        current=_float(score, "current"),
        maximum=_float(score, "max"),
        percentage=_float(score, "percentage"),
        weight=_int(props, "weight"),
    )


def secure_score_control(row: Row) -> SecureScoreControl:
    props = _props(row)
    score = _score(props)
    return SecureScoreControl(
        subscription_id=subscription_of(row),
        control_id=_str(row, "name"),
        display_name=_str(props, "displayName", required=False),
        current=_float(score, "current"),
        maximum=_float(score, "max"),
        percentage=_float(score, "percentage"),
        healthy_resources=_int(props, "healthyResourceCount"),
        unhealthy_resources=_int(props, "unhealthyResourceCount"),
        not_applicable_resources=_int(props, "notApplicableResourceCount"),
        weight=_int(props, "weight"),
    )


def _assessment_key(data: Mapping[str, Any]) -> str:
    assigned = data.get("assignedAssessment")
    if isinstance(assigned, Mapping):
        return _str(assigned, "assessmentKey", required=False).lower()
    return ""


def _object(mapping: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = mapping.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise Malformed(f"{name} is not an object")
    return value


def standard_assignment(row: Row) -> StandardAssignment:
    props = _props(row)
    effect = _str(props, "effect")
    standard_id = _str(_object(props, "assignedStandard"), "id", required=False)
    exemption = _object(props, "exemptionData")
    attestation = _object(props, "attestationData")
    evidence_rows = attestation.get("evidence")
    evidence_rows = [] if evidence_rows is None else evidence_rows
    if not isinstance(evidence_rows, list) or not all(
        isinstance(item, Mapping) for item in evidence_rows
    ):
        raise Malformed("attestation evidence is not a list of objects")
    evidence = tuple(
        Evidence(_str(item, "description", required=False), _str(item, "sourceUrl", required=False))
        for item in evidence_rows
    )
    if effect == "Exempt" and not exemption:
        raise Malformed("Exempt assignment without exemptionData")
    if effect == "Attest" and not attestation:
        raise Malformed("Attest assignment without attestationData")
    expires = _str(props, "expiresOn", required=False) or _str(
        attestation, "expiresOn", required=False
    )
    return StandardAssignment(
        subscription_id=subscription_of(row),
        assignment_id=_str(row, "id"),
        display_name=_str(props, "displayName", required=False),
        standard_id=standard_id,
        effect=effect,
        assessment_key=_assessment_key(exemption) or _assessment_key(attestation),
        expires_on=expires,
        exemption_category=_str(exemption, "exemptionCategory", required=False),
        compliance_state=_str(attestation, "complianceState", required=False),
        compliance_date=_str(attestation, "complianceDate", required=False),
        evidence=evidence,
        description=_str(props, "description", required=False),
    )


def recommendation(row: Row) -> AssessmentResult:
    """One resource-level assessment row: subscription, key, status code, resource."""
    props = _props(row)
    status = props.get("status")
    if not isinstance(status, Mapping):
        raise Malformed("missing status")
    code = _str(status, "code")
    if code not in ("Healthy", "Unhealthy", "NotApplicable"):
        raise Malformed(f"unknown status code {quote(code)!r}")
    details = _object(props, "resourceDetails")
    # The REST API spells it "id"; Resource Graph rows also come as "Id" (or "ResourceId").
    resource = next(
        (
            _str(details, name, required=False)
            for name in ("id", "Id", "ResourceId")
            if details.get(name)
        ),
        "",
    )
    if not resource:
        # The assessment's own id is the resource's id followed by its provider segment.
        resource = _ASSESSMENT_SUFFIX.sub("", _str(row, "id"))
    return AssessmentResult(
        subscription_id=subscription_of(row),
        key=_shared(_str(row, "name").lower()),
        code=_shared(code),
        resource_id=resource.lower(),
        cause=_shared(_str(status, "cause", required=False)),
        description=_str(status, "description", required=False),
    )


_ALERT_SEVERITIES = {severity.value: severity for severity in AlertSeverity}
_ALERT_STATUSES = {status.value: status for status in AlertStatus}
# ISO-8601 as Defender writes it: up to seven fractional digits, "Z" or an offset.
_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,7}))?(Z|[+-]\d\d:\d\d)$")


def _optional_time(mapping: Mapping[str, Any], name: str) -> datetime | None:
    return None if mapping.get(name) is None else _time(mapping, name)


def _time(mapping: Mapping[str, Any], name: str) -> datetime:
    value = mapping.get(name)
    match = _TIME.match(value) if type(value) is str else None
    if match is None:
        raise Malformed(
            f"{name} is not an ISO-8601 time" if value is not None else f"missing {name}"
        )
    base, fraction, zone = match.groups()
    micro = (fraction or "0")[:6].ljust(6, "0")
    try:
        moment = datetime.fromisoformat(f"{base}.{micro}{'+00:00' if zone == 'Z' else zone}")
    except ValueError as exc:
        raise Malformed(f"{name} is not a valid time") from exc
    return moment.astimezone(UTC)


def _strings(mapping: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = mapping.get(name)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(type(item) is str for item in value):
        raise Malformed(f"{name} is not a list of strings")
    return tuple(value)


def _enum(mapping: Mapping[str, Any], name: str, known: Mapping[str, Any]) -> Any:
    value = mapping.get(name)
    found = known.get(value) if type(value) is str else None
    if found is None:
        if value is None:
            raise Malformed(f"missing {name}")
        shown = quote(value) if type(value) is str else _kind(value)
        raise Malformed(f"unknown {name} {shown!r}")
    return found


def _resource_ids(props: Mapping[str, Any]) -> tuple[str, ...]:
    identifiers = props.get("resourceIdentifiers")
    if identifiers is None:
        return ()
    if not isinstance(identifiers, list) or not all(isinstance(i, Mapping) for i in identifiers):
        raise Malformed("resourceIdentifiers is not a list of objects")
    # Only Azure resources name a resource id; Log Analytics identifiers name a workspace.
    return tuple(
        _str(item, "azureResourceId").lower()
        for item in identifiers
        if item.get("type") == "AzureResource"
    )


def security_alert(row: Row) -> SecurityAlert:
    """A Defender for Cloud alert (REST 2022-01-01 shape; Resource Graph lower-cases type)."""
    props = _props(row)
    incident = props.get("isIncident")
    if incident is not None and type(incident) is not bool:
        raise Malformed("isIncident is not a boolean")
    link = _str(props, "alertUri", required=False)
    if link and not link.startswith("https://"):
        raise Malformed("alertUri is not an https:// link")
    return SecurityAlert(
        subscription_id=subscription_of(row),
        alert_id=_str(row, "id").lower(),
        alert_type=_shared(_str(props, "alertType")),
        display_name=_str(props, "alertDisplayName"),
        severity=_enum(props, "severity", _ALERT_SEVERITIES),
        status=_enum(props, "status", _ALERT_STATUSES),
        start_time=_time(props, "startTimeUtc"),
        end_time=_optional_time(props, "endTimeUtc"),
        intent=_str(props, "intent", required=False),
        techniques=_strings(props, "techniques"),
        compromised_entity=_str(props, "compromisedEntity", required=False),
        resource_ids=_resource_ids(props),
        product=_shared(_str(props, "productName", required=False)),
        portal_link=link,
        incident=incident is True,
    )
