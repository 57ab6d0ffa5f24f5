"""The notification settings stop the program at start naming the setting, and never echo a
chat URL (it is the chat's credential)."""

from __future__ import annotations

import pytest

from auditor.settings import SettingsError, load_settings

BASE = {"AUDITOR_STORAGE": "UseDevelopmentStorage=true"}
SECRET = "sixteen-chars-or-more"


def test_no_sink_is_on_by_default() -> None:
    notify = load_settings(BASE).notify
    assert (notify.webhook_url, notify.chat_url, notify.eventgrid_endpoint) == (None, None, None)
    assert notify.stale_slots == 3 and notify.chat_format == "teams"


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"AUDITOR_NOTIFY_WEBHOOK_URL": "http://example.com/hook"}, "AUDITOR_NOTIFY_WEBHOOK_URL"),
        ({"AUDITOR_NOTIFY_WEBHOOK_URL": "https://example.com/hook"},
         "AUDITOR_NOTIFY_WEBHOOK_SECRET"),
        ({"AUDITOR_NOTIFY_WEBHOOK_URL": "https://example.com/h",
          "AUDITOR_NOTIFY_WEBHOOK_SECRET": "short"}, "AUDITOR_NOTIFY_WEBHOOK_SECRET"),
        ({"AUDITOR_NOTIFY_CHAT_FORMAT": "discord"}, "AUDITOR_NOTIFY_CHAT_FORMAT"),
        ({"AUDITOR_NOTIFY_EVENTGRID_ENDPOINT": "ftp://topic"}, "AUDITOR_NOTIFY_EVENTGRID_ENDPOINT"),
        ({"AUDITOR_STALE_SLOTS": "0"}, "AUDITOR_STALE_SLOTS"),
        ({"AUDITOR_NOTIFY_CHAT_URL": "@Microsoft.KeyVault(VaultName=v;SecretName=s)"},
         "AUDITOR_NOTIFY_CHAT_URL"),
    ],
)  # fmt: skip
def test_a_bad_sink_setting_names_itself(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, **env})
    assert caught.value.name == name


def test_a_bad_chat_url_is_not_echoed() -> None:
    leaked = "http://hooks.slack.example/services/T000/B000/XXXXSECRET"
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, "AUDITOR_NOTIFY_CHAT_URL": leaked})
    assert "XXXXSECRET" not in str(caught.value)


def test_http_is_accepted_only_for_a_loopback_receiver() -> None:
    env = {"AUDITOR_NOTIFY_WEBHOOK_URL": "http://127.0.0.1:8080/hook",
           "AUDITOR_NOTIFY_WEBHOOK_SECRET": SECRET}  # fmt: skip
    settings = load_settings({**BASE, **env})
    assert settings.notify.webhook_url == "http://127.0.0.1:8080/hook"
    assert SECRET not in repr(settings)  # never in a log line of the settings
    env["AUDITOR_NOTIFY_WEBHOOK_URL"] = "http://10.0.0.1:8080/hook"
    with pytest.raises(SettingsError):
        load_settings({**BASE, **env})
