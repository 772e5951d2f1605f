"""Bad environment values, generated for every setting: a ConfigError naming it, or a usable value.

Accepted values must be usable for the whole run (durations fit datetime arithmetic,
numbers are finite), rejected ones are reported on one line each, by name, cut to a
readable length, and a secret's value never appears in the message.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.config import SPECS, Settings
from commands.env_values import Spec
from commands.errors import ConfigError
from tests.bad_inputs import tried

SPECIAL = [
    "",
    " ",
    "0",
    "-1",
    "1e3",
    "1.5",
    "nan",
    "inf",
    "-inf",
    "9" * 5000,
    "٣",
    "0x10",
    "true",
    "yes",
    "http://",
    "https://a b",
    "ftp://x",
    "localhost:3975",
    "app::",
    "::x",
    "\t1\t",
    "1_000",
    "DEBUG",
    "trace,h2=info",
    "=",
    "a=b=c",
    "€",
    "\U0001f600",
    "http://127.0.0.1:1/" + "a" * 3000,
]
values = st.sampled_from(SPECIAL) | st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=40
)
DURATIONS = {
    "CHECK_INTERVAL_SECS",
    "PAYMENT_RETRY_INTERVAL",
    "RETRY_HORIZON_SECS",
    "DEDUPLICATION_SECS",
    "MIN_INTERVAL_SEC",
    "OTEL_EXPORT_INTERVAL_SECS",
    "HTTP_TIMEOUT_SECS",
}
NOW = datetime(2026, 11, 24, tzinfo=UTC)


def _usable(s: Settings) -> None:
    for spec in SPECS:
        value = getattr(s, spec.field)
        if isinstance(value, float):
            assert math.isfinite(value), spec.env
        if spec.env in DURATIONS:
            assert NOW + timedelta(seconds=value) > NOW, spec.env
    assert s.retention_days * 86400 > 0 and NOW - timedelta(days=s.retention_days) < NOW


def _without_secrets(env: dict[str, str], secrets: list[str]) -> str:
    """The error text for ``env`` with the secret values left out: what is said whatever they are
    (e.g. "expected true or false" is no leak of a token that happens to be 'true')."""
    try:
        Settings.from_env({k: v for k, v in env.items() if v not in secrets}, dotenv=None)
    except ConfigError as err:
        return str(err)
    return ""


def _rejected_well(err: ConfigError, names: list[str], secrets: list[str], env: dict[str, str] | None = None) -> None:
    text = str(err)
    lines = text.splitlines()
    assert lines[0] == "invalid configuration:"
    assert all(len(line) < 400 for line in lines), "a bad value flooded the error"
    named = [n for n in names if n in text or (n == "LOG_LEVEL" and "RUST_LOG" in text)]
    assert named, text
    said_anyway = set(_without_secrets(env, secrets).splitlines()) if env else set()
    for secret in secrets:
        assert not [line for line in lines if secret in line and line not in said_anyway], text


@settings(max_examples=600, deadline=None)
@given(st.dictionaries(st.sampled_from([s.env for s in SPECS] + ["RUST_LOG"]), values, min_size=1, max_size=4))
def test_any_values_for_any_settings(env: dict[str, str]) -> None:
    tried("environment variables", len(env))
    secret_names = {s.env for s in SPECS if s.secret}
    shown = {v for k, v in env.items() if k not in secret_names}  # the same text may be a plain value too
    secrets = [v for k, v in env.items() if k in secret_names and len(v.strip()) >= 4 and v not in shown]
    try:
        s = Settings.from_env(env, dotenv=None)
    except ConfigError as err:
        _rejected_well(err, list(env), secrets, env)
        return
    _usable(s)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.env)
def test_every_setting_rejects_or_accepts_every_special_value(spec: Spec) -> None:
    for raw in SPECIAL:
        tried("environment variables")
        try:
            _usable(Settings.from_env({spec.env: raw}, dotenv=None))
        except ConfigError as err:
            _rejected_well(err, [spec.env], [raw] if spec.secret and len(raw) >= 4 else [])


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DEDUPLICATION_SECS": "9" * 30}, "DEDUPLICATION_SECS=" + "9" * 30 + ": expected a whole number <="),
        ({"PAYMENT_RATE_LIMIT": "inf"}, "PAYMENT_RATE_LIMIT=inf: expected a number <="),
        ({"HTTP_TIMEOUT_SECS": "nan"}, "HTTP_TIMEOUT_SECS=nan: expected a number"),
        ({"RETENTION_DAYS": "9" * 5000}, "… (5000 characters): expected a whole number"),
        ({"RUST_LOG": "loud"}, "RUST_LOG=loud (read as LOG_LEVEL): must be one of trace, debug"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT=xml: must be one of kv, json"),
        ({"LOG_FSYNC": "yes"}, "LOG_FSYNC=yes: expected true or false"),
        ({"BILLING_API_PORT": "0x10"}, "BILLING_API_PORT=0x10: expected a whole number"),
    ],
)
def test_found_by_the_properties(env: dict[str, str], expected: str) -> None:
    tried("environment variables")
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env, dotenv=None)
    assert expected in str(caught.value)


def test_a_broken_dotenv_line_is_a_named_error_or_ignored(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_bytes(b"RETENTION_DAYS=\xff\xfe\nMAX_IN_FLIGHT\n=3\nexport LOG_LEVEL=debug\n")
    tried("environment variables", 4)
    with pytest.raises(ConfigError, match=r"\.env: cannot read it as UTF-8 text"):
        Settings.from_env({}, dotenv=dotenv)
    dotenv.write_text("MAX_IN_FLIGHT\n=3\nexport LOG_LEVEL=debug\nRETENTION_DAYS='7\n")
    try:
        s = Settings.from_env({}, dotenv=dotenv)
    except ConfigError as err:
        assert "RETENTION_DAYS" in str(err)
    else:
        assert s.log_level == "debug"
