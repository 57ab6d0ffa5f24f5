"""Each regulatory compliance assessment names the Defender assessment it comes from
(``assessmentDetailsLink`` -> assessment key), on the project's own fixture
(tests/fixtures/regulatory_compliance_sources.json): derived from the stored link, so the
canonical content (and every stored hash) is unchanged."""

from __future__ import annotations

import json

from auditor.core import canonical
from auditor.core.model import ComplianceRecord
from auditor.core.normalize import T_ASSESSMENT, source_assessment
from auditor.core.registry import Batch
from tests.fixtures import values
from tests.unit.test_normalize import as_arg_rows


def records() -> list[ComplianceRecord]:
    batch = Batch()
    batch.extend(as_arg_rows(values("regulatory_compliance_sources"), T_ASSESSMENT))
    assert batch.malformed == {}
    return list(batch["compliance"])


def test_each_compliance_assessment_names_its_source_assessment_key() -> None:
    by_control = {r.control: source_assessment(r) for r in records()}
    assert by_control == {
        # Its own name is another GUID: the source is the link's, lower-cased.
        "1.1": "1195afff-c881-495e-9bc5-1486211ae03f",
        # The assessments/{key} form, with a query string.
        "2.3": "4fb67663-9ab9-475d-b026-8c544cced439",
        # No link, or one that names no assessment key: no source, never a guess.
        "4.1": "",
        "5.2": "",
    }


def test_the_source_is_derived_so_the_canonical_record_is_as_before() -> None:
    for record in records():
        fields = json.loads(canonical.encode_record(record))
        assert set(fields) <= {
            "subscription_id",
            "standard",
            "control",
            "assessment",
            "state",
            "passed_resources",
            "failed_resources",
            "skipped_resources",
            "description",
            "assessment_type",
            "details_link",
        }
