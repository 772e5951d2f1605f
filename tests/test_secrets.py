"""Secrets and access: canary secrets never printed, TLS verified, the local API loopback-only
behind a token, state files owner-only.

Every `billing` run here (and in the rest of the suite, through `tests/processes.py`) is
recorded; `tests/conftest.py` greps all of it for the canaries at the end of the session.
"""

from __future__ import annotations

import logging
import signal
import ssl
import stat
from pathlib import Path

import httpx

from commands.logs import configure
from pipeline.asgi_server import free_port
from pipeline.canton.http import PooledTransport, make_client
from projections.telemetry import Destination, Telemetry, resource
from tests.otlp_receiver import Receiver
from tests.processes import billing, simulator, start_daemon, wait_for_transfers, write_catalogue
from tests.secret_watch import SECRETS, record

ALL_SECRETS = {
    **SECRETS,
    "OPENTELEMETRY_INGESTING_HOST": "http://127.0.0.1:9",
    "LOG_LEVEL": "trace",
    "PARTY_APP": "app::1220ab",
    "APP_PROVIDER_API_URL": "http://127.0.0.1:9",
    "SCAN_API_URL": "http://127.0.0.1:9/api/scan",
}


def _no_canary(*texts: str) -> None:
    for text in texts:
        for name, value in SECRETS.items():
            assert value not in text, f"{name} printed"


def test_a_bad_config_never_shows_a_secret(tmp_path: Path) -> None:
    bad = billing(
        "config",
        env={
            **ALL_SECRETS,
            "RETENTION_DAYS": SECRETS["APP_PROVIDER_JWT"],
            "MAX_IN_FLIGHT": SECRETS["LEDGER_AUTH_CLIENT_SECRET"],
        },
    )
    assert bad.returncode == 2 and "RETENTION_DAYS" in bad.stderr and "MAX_IN_FLIGHT" in bad.stderr
    assert "******** (a secret's value)" in bad.stderr  # a secret pasted into the wrong variable
    _no_canary(bad.stdout, bad.stderr)


def test_config_info_and_a_refused_oauth_secret_at_trace_level(tmp_path: Path) -> None:
    data = write_catalogue(tmp_path / "data", users=1)
    with simulator(data) as sim_env:
        env = {**ALL_SECRETS, **sim_env, "BILLING_DATA_DIR": str(data), "ROCKSDB_PATH": str(tmp_path / "s")}
        shown = billing("config", env=env)
        assert shown.returncode == 0, shown.stderr
        info = billing("info", env=env)
        assert info.returncode == 0, info.stderr
        oauth = {
            **env,
            "LEDGER_AUTH_TOKEN_URL": sim_env["APP_PROVIDER_API_URL"] + "/oauth/token",
            "LEDGER_AUTH_CLIENT_ID": "billing",
        }
        refused = billing("balance", env=oauth)
        assert refused.returncode != 0
        _no_canary(shown.stdout, shown.stderr, info.stdout, info.stderr, refused.stdout, refused.stderr)


def test_otel_logs_and_attributes_carry_no_secret() -> None:
    token = SECRETS["OPENTELEMETRY_SOURCE_TOKEN"]
    jwt = SECRETS["APP_PROVIDER_JWT"]
    configure("info", "kv", [jwt, token])
    with Receiver() as rx:
        telemetry = Telemetry(resource("b", "c", None), Destination.from_settings(rx.url, token), lambda: [], 3600)
        logging.getLogger("pipeline.processor.runner").warning("submission refused for Bearer %s", jwt)
        telemetry.shutdown()
        exported = [str(req) for req in rx.logs] + [str(req) for req in rx.metrics]
    assert rx.logs, "the warning was not exported"
    assert all(jwt not in text and token not in text for text in exported), "a secret reached OTel"


def test_tls_verification_is_on_by_default_for_https() -> None:
    client = make_client("https://scan.example.com/api/scan", 5)
    transport = client._transport
    context = (
        transport.tls
        if isinstance(transport, PooledTransport)  # ours, unless a proxy is configured
        else transport._pool._ssl_context  # type: ignore[attr-defined]  # httpx exposes no getter
    )
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def _listening(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp* shows them) with a listening socket on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_the_daemon_api_is_loopback_only_token_guarded_and_its_files_owner_only(tmp_path: Path) -> None:
    data = write_catalogue(tmp_path / "data", users=2)
    state, port = tmp_path / "state", free_port()
    with simulator(data) as sim_env:
        env = {
            **sim_env,
            "BILLING_DATA_DIR": str(data),
            "ROCKSDB_PATH": str(state),
            "BILLING_API_PORT": str(port),
            "CHECK_INTERVAL_SECS": "1",
            "LOG_LEVEL": "debug",
        }
        daemon = start_daemon(env)
        try:
            wait_for_transfers(sim_env, 2)
            assert _listening(port) == {"0100007F"}, "the local API must listen on 127.0.0.1 only"
            url = f"http://127.0.0.1:{port}/v1/health"
            assert httpx.get(url, timeout=5).status_code == 401
            assert httpx.get(url, headers={"authorization": "Bearer wrong"}, timeout=5).status_code == 401
            token = (state / "api-token").read_text().strip()
            assert httpx.get(url, headers={"authorization": f"Bearer {token}"}, timeout=5).status_code == 200
        finally:
            daemon.send_signal(signal.SIGTERM)
            out, err = daemon.communicate(timeout=30)
            record("billing start", out, err)
    loose = [
        f"{p.relative_to(state)} {stat.filemode(p.stat().st_mode)}"
        for p in [state, *state.rglob("*")]
        if p.stat().st_mode & 0o077
    ]
    assert not loose, f"readable by others: {loose}"
