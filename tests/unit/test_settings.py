import json
from pathlib import Path

import pytest

from auditor.settings import SETTINGS, CollectLimits, SettingsError, load_settings

SAMPLE = Path(__file__).resolve().parents[2] / "local.settings.sample.json"

CONN = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"


def test_defaults_are_valid_and_public_cloud() -> None:
    settings = load_settings({})
    assert settings.arm_endpoint == "https://management.azure.com"
    assert settings.arm_scope == "https://management.azure.com/.default"
    assert settings.storage is None


def test_token_scope_follows_a_sovereign_endpoint() -> None:
    settings = load_settings({"AUDITOR_ARM_ENDPOINT": "https://management.usgovcloudapi.net/"})
    assert settings.arm_scope == "https://management.usgovcloudapi.net/.default"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AUDITOR_ARM_ENDPOINT", "http://management.azure.com"),
        ("AUDITOR_ARM_ENDPOINT", "management.azure.com"),
        ("AUDITOR_SNAPSHOT_SCHEDULE", "0 2 * * *"),
        ("AUDITOR_REPORT_SCHEDULE", "monthly"),
        ("AUDITOR_SNAPSHOT_QUEUE", "Bad_Queue"),
        ("AUDITOR_TABLE_PREFIX", "has-dash"),
        ("AUDITOR_EVIDENCE_CONTAINER", "x"),
        ("AUDITOR_EVIDENCE_RETENTION_DAYS", "forever"),
        ("AUDITOR_COLLECT_TIMEOUT_SECONDS", "1"),
        ("AUDITOR_ARG_QUOTA", "15 per 5s"),
        ("AUDITOR_ARG_QUOTA", "0/5"),
        ("AUDITOR_ARG_QUOTA", "15/0"),
        ("AUDITOR_COLLECT_MAX_RESPONSE_BYTES", "1000"),
        ("AUDITOR_COLLECT_MAX_RESPONSE_BYTES", "8MB"),
        ("AUDITOR_COLLECT_MAX_ROWS_PER_TENANT", "10"),
        ("AUDITOR_COLLECT_MAX_PAGES_PER_QUERY", "1"),
        ("AUDITOR_ACCESS_POLICY", "{not json"),
        ("AUDITOR_MANAGING_TENANT_ID", "contoso.onmicrosoft.com"),
        ("AUDITOR_MANAGING_TENANT_ID", "aa000000-0000-4000-8000-0000000000aa,"),
        ("AUDITOR_STORAGE", "not a connection string"),
        ("AUDITOR_STORAGE__tableServiceUri", "nope"),
    ],
)
def test_bad_setting_fails_with_one_line_naming_it(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({name: value})
    assert caught.value.name.startswith(name.split("__")[0])
    assert str(caught.value).startswith(f"setting {caught.value.name}:")
    assert "\n" not in str(caught.value)


def test_storage_connection_string_or_identity_based_uris() -> None:
    assert load_settings({"AUDITOR_STORAGE": CONN}).storage.connection_string == CONN  # type: ignore[union-attr]
    uris = {
        "AUDITOR_STORAGE__tableServiceUri": "https://acct.table.core.windows.net",
        "AUDITOR_STORAGE__queueServiceUri": "https://acct.queue.core.windows.net",
        "AUDITOR_STORAGE__blobServiceUri": "https://acct.blob.core.windows.net",
    }
    storage = load_settings(uris).storage
    assert storage is not None and storage.connection_string is None
    assert storage.table_uri == "https://acct.table.core.windows.net"


def test_every_setting_has_a_meaning() -> None:
    assert all(spec.meaning for spec in SETTINGS)
    assert len({spec.name for spec in SETTINGS}) == len(SETTINGS)


def test_collection_caps_default_far_above_real_answers_and_can_be_set() -> None:
    limits = load_settings({}).collect_limits
    assert limits == CollectLimits.defaults()
    assert limits == CollectLimits(
        max_response_bytes=8 * 1024 * 1024, max_rows_per_tenant=250_000, max_pages_per_query=1000
    )
    custom = load_settings(
        {
            "AUDITOR_COLLECT_MAX_RESPONSE_BYTES": "1048576",
            "AUDITOR_COLLECT_MAX_ROWS_PER_TENANT": "5000",
            "AUDITOR_COLLECT_MAX_PAGES_PER_QUERY": "12",
        }
    ).collect_limits
    assert (custom.max_response_bytes, custom.max_rows_per_tenant) == (1_048_576, 5000)
    assert custom.max_pages_per_query == 12


def test_the_local_sample_sets_the_caps_at_their_defaults() -> None:
    sample = json.loads(SAMPLE.read_text(encoding="utf-8"))["Values"]
    defaults = {spec.name: spec.default for spec in SETTINGS}
    for name in (
        "AUDITOR_COLLECT_MAX_RESPONSE_BYTES",
        "AUDITOR_COLLECT_MAX_ROWS_PER_TENANT",
        "AUDITOR_COLLECT_MAX_PAGES_PER_QUERY",
    ):
        assert sample[name] == defaults[name]


def test_the_managing_tenant_is_unset_by_default_and_read_in_lower_case() -> None:
    assert load_settings({}).managing_tenant is None
    tenant = "AA000000-0000-4000-8000-0000000000AA"
    assert load_settings({"AUDITOR_MANAGING_TENANT_ID": tenant}).managing_tenant == tenant.lower()
