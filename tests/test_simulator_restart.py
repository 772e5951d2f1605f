"""The network goes away mid-run: the simulator's listener stops and starts again while a real
`billing start` is charging; the ledger (in memory, kept across the restart) ends with exactly
one transfer per due period.

The simulator runs in this process on its own event-loop thread so that only its HTTP
listener restarts and its ledger survives (the `billing simulator` process keeps its state
in memory, so killing it would lose the ledger the check needs).
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from commands.config import Settings
from commands.console import Console
from commands.context import Context
from commands.services.simulated_network import build
from pipeline.asgi_server import free_port
from pipeline.simulator.serve import settings_lines
from tests.processes import BILLING, clean_env, write_catalogue
from tests.secret_watch import SECRETS, record
from tests.sim_thread import Listener

USERS = 60


def _wait(listener: Listener, count: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while (paid := len(listener.senders())) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return paid


@pytest.mark.slow
def test_the_listener_restarts_while_the_daemon_charges(tmp_path: Path) -> None:
    data = write_catalogue(tmp_path / "data", users=USERS)
    settings = Settings.from_env(
        {"BILLING_DATA_DIR": str(data), "APP_PROVIDER_JWT": SECRETS["APP_PROVIDER_JWT"]}, dotenv=None
    )
    sim = build(Context(settings, Console()), latency_ms=100, preapproval=True)
    port = free_port()
    listener = Listener(sim, port)
    listener.start()
    sim_env = dict(line.split("=", 1) for line in settings_lines(sim, f"http://127.0.0.1:{port}"))
    env = {
        **sim_env,
        "BILLING_DATA_DIR": str(data),
        "ROCKSDB_PATH": str(tmp_path / "state"),
        "BILLING_API_PORT": str(free_port()),
        "CHECK_INTERVAL_SECS": "1",
        "PAYMENT_RETRY_INTERVAL": "1",
        "MAX_IN_FLIGHT": "2",
        "LOG_LEVEL": "warn",
    }
    daemon = subprocess.Popen(
        [BILLING, "start"], env=clean_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert _wait(listener, 6, 30) >= 6, "the daemon did not start charging"
        listener.stop()  # mid-run: submissions in flight lose their connection
        time.sleep(2)
        listener.start()
        assert _wait(listener, USERS, 90) == USERS, "not every subscription was charged after the restart"
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=30)
        record("billing start (listener restart)", out, err)
        counts = listener.senders()
        listener.stop()
        listener.close()
    assert daemon.returncode == 0, err
    assert len(counts) == USERS and set(counts.values()) == {1}, "a period was charged twice"
