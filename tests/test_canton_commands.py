"""setup/info/balance/config/update against the simulator over TCP, and their one-line errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pipeline.asgi_server import free_port
from tests.processes import ROOT, billing, simulator

DATA = ROOT / "data"


@pytest.fixture(scope="module")
def sim_env() -> Iterator[dict[str, str]]:
    with simulator(DATA) as env:
        yield {**env, "BILLING_DATA_DIR": str(DATA)}


def test_info_balance_config_update_show_the_network(sim_env: dict[str, str], tmp_path: Path) -> None:
    env = {**sim_env, "ROCKSDB_PATH": str(tmp_path / "state"), "LOG_LEVEL": "warn"}
    info = billing("info", env=env)
    assert info.returncode == 0, info.stderr
    assert "DSO party" in info.stdout and "500.0000000000 CC" in info.stdout
    assert sim_env["APP_PROVIDER_JWT"] not in info.stdout and "******** (set)" in info.stdout
    balance = billing("balance", env=env)
    assert balance.returncode == 0 and "Total: 500.0000000000 CC in 1 amulet(s)" in balance.stdout
    config = billing("config", env=env)
    assert config.returncode == 0 and "Payment context from Scan" in config.stdout and "max inputs" in config.stdout
    pay = billing("pay", "-u", "bob", "-s", "prover", env=env)
    assert pay.returncode == 0, pay.stderr
    update_id = pay.stdout.rsplit("ledger update ", 1)[1].strip()
    update = billing("update", update_id, env=env)
    assert update.returncode == 0
    assert json.loads(update.stdout)["update"]["Transaction"]["value"]["updateId"] == update_id


class _Answer(BaseHTTPRequestHandler):
    status = 200
    body = b"<html>not json</html>"

    def _reply(self) -> None:
        self.send_response(self.status)
        self.send_header("content-length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST = _reply

    def log_message(self, *args: Any) -> None:
        pass


def _server(status: int, body: bytes) -> ThreadingHTTPServer:
    handler = type("Handler", (_Answer,), {"status": status, "body": body})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize("command", [["info"], ["balance"], ["config"], ["update", "abc"], ["setup"]])
@pytest.mark.parametrize("failure", ["unreachable", "401", "malformed"])
def test_network_problems_are_one_clear_line(tmp_path: Path, command: list[str], failure: str) -> None:
    server = None
    if failure == "unreachable":
        url = f"http://127.0.0.1:{free_port()}"
    else:
        server = _server(401, b'{"error": "bad token"}') if failure == "401" else _server(200, b"<html>x</html>")
        url = f"http://127.0.0.1:{server.server_address[1]}"
    env = {
        "APP_PROVIDER_API_URL": url,
        "SCAN_API_URL": url + "/api/scan",
        "APP_PROVIDER_JWT": "wrong-token-123",
        "PARTY_APP": "app::1220ab",
        "BILLING_DATA_DIR": str(DATA),
        "ROCKSDB_PATH": str(tmp_path / "s"),
        "HTTP_TIMEOUT_SECS": "3",
    }
    try:
        result = billing(*command, env=env, timeout=60)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "wrong-token-123" not in result.stderr + result.stdout
