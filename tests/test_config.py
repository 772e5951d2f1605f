"""Settings: names as in the seed README, all problems at once, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from commands.config import SPECS, Settings
from commands.errors import ConfigError


def test_defaults_match_the_documented_ones() -> None:
    s = Settings.from_env({}, dotenv=None)
    assert s.rocksdb_path == "./billing_db"
    assert s.retention_days == 365
    assert s.log_level == "info"
    assert s.app_name == "canton-billing"
    assert s.canton_chain == "unknown"


def test_every_problem_is_listed_at_once_by_name() -> None:
    bad = {
        "RETENTION_DAYS": "forever",
        "APP_PROVIDER_API_URL": "localhost:3975",
        "PARTY_APP": "no-namespace",
        "MAX_IN_FLIGHT": "0",
        "LOG_LEVEL": "loud",
    }
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(bad, dotenv=None)
    text = str(caught.value)
    for name in bad:
        assert name in text
    assert "http:// or https:// URL" in text
    assert "party id" in text


@pytest.mark.parametrize("url", ["http://localhost:3975/", "http://localhost:3975"])
def test_urls_work_with_or_without_trailing_slash(url: str) -> None:
    scan = url.rstrip("/") + "/api/scan/"
    s = Settings.from_env({"APP_PROVIDER_API_URL": url, "SCAN_API_URL": scan}, dotenv=None)
    assert s.app_provider_api_url == "http://localhost:3975"
    assert s.scan_api_url == "http://localhost:3975/api/scan"


@pytest.mark.parametrize(
    ("rust_log", "level"), [("debug", "debug"), ("warn,h2=info", "warn"), ("h2=info,ERROR", "error")]
)
def test_rust_log_is_an_alias_for_the_level(rust_log: str, level: str) -> None:
    assert Settings.from_env({"RUST_LOG": rust_log}, dotenv=None).log_level == level


def test_log_level_wins_over_rust_log() -> None:
    assert Settings.from_env({"RUST_LOG": "debug", "LOG_LEVEL": "error"}, dotenv=None).log_level == "error"


def test_environment_wins_over_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("APP_NAME=from-file\nCANTON_CHAIN=devnet\n")
    s = Settings.from_env({"APP_NAME": "from-env"}, dotenv=dotenv)
    assert s.app_name == "from-env"
    assert s.canton_chain == "devnet"


def test_secrets_are_masked_and_listed_for_redaction() -> None:
    s = Settings.from_env(
        {"APP_PROVIDER_JWT": "eyJhbGciOi.secret", "OPENTELEMETRY_SOURCE_TOKEN": "tok-12345"}, dotenv=None
    )
    shown = dict(s.masked())
    assert shown["APP_PROVIDER_JWT"] == "******** (set)"
    assert "secret" not in " ".join(shown.values())
    assert set(s.secrets()) == {"eyJhbGciOi.secret", "tok-12345"}


def test_invalid_secret_value_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"BILLING_API_TOKEN": "x", "RETENTION_DAYS": "-1"}, dotenv=None)
    assert "RETENTION_DAYS=-1" in str(caught.value)


def test_require_names_every_missing_variable() -> None:
    s = Settings.from_env({"PARTY_APP": "app::1220ab"}, dotenv=None)
    with pytest.raises(ConfigError) as caught:
        s.require("PARTY_APP", "APP_PROVIDER_API_URL", "SCAN_API_URL", why="`billing pay`")
    assert "APP_PROVIDER_API_URL, SCAN_API_URL" in str(caught.value)
    assert "PARTY_APP," not in str(caught.value)


def test_every_setting_is_documented() -> None:
    table = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    missing = [s.env for s in SPECS if f"`{s.env}`" not in table]
    assert not missing, f"docs/configuration.md lacks {missing}"
