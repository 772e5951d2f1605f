"""Real processes: SIGKILL during pay-all never double-charges; the daemon and other commands coexist;
a bug in a payment step stops the daemon in one line, and starting it again charges nothing twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pipeline.asgi_server import free_port
from tests.processes import (
    BILLING,
    assert_stopped_by_the_lost_answer,
    billing,
    billing_losing_first_answer,
    clean_env,
    simulator,
    start_daemon,
    transfers_per_period,
    wait_for_transfers,
    write_catalogue,
)

KILL_ROUNDS = int(os.environ.get("BILLING_CRASH_ROUNDS", "8"))


@pytest.mark.slow
def test_sigkill_at_random_points_of_pay_all_charges_each_period_exactly_once(tmp_path: Path) -> None:
    seed = random.randrange(10**6)
    print(f"crash test seed {seed}")  # rerun a failure with the same kill points
    rng = random.Random(seed)
    data = write_catalogue(tmp_path / "data", users=40)
    with simulator(
        data, "--latency-ms", "30", "--fault", "timeout_after_commit=0.05", "--fault", "drop_after_commit=0.05"
    ) as sim_env:
        env = {
            **sim_env,
            "BILLING_DATA_DIR": str(data),
            "ROCKSDB_PATH": str(tmp_path / "state"),
            "PAYMENT_RETRY_INTERVAL": "1",
            "LOG_LEVEL": "warn",
            "MAX_IN_FLIGHT": "8",
        }
        for _ in range(KILL_ROUNDS):
            proc = subprocess.Popen(
                [BILLING, "pay-all"], env=clean_env(**env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            time.sleep(rng.uniform(0.3, 1.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        final = billing("pay-all", env=env, timeout=180)
        assert final.returncode == 0, final.stdout + final.stderr
        counts = transfers_per_period(sim_env)
    assert len(counts) == 40, f"missing periods: {40 - len(counts)} (seed {seed})"
    assert set(counts.values()) == {1}, f"charged twice: {[k for k, n in counts.items() if n > 1]} (seed {seed})"


@pytest.mark.slow
def test_commands_work_while_the_daemon_runs(tmp_path: Path) -> None:
    data = write_catalogue(tmp_path / "data", users=3)
    with simulator(data) as sim_env:
        env = {
            **sim_env,
            "BILLING_DATA_DIR": str(data),
            "ROCKSDB_PATH": str(tmp_path / "state"),
            "BILLING_API_PORT": str(free_port()),
            "CHECK_INTERVAL_SECS": "1",
            "LOG_LEVEL": "warn",
        }
        daemon = start_daemon(env)
        try:
            wait_for_transfers(sim_env, 3)
            assert len(transfers_per_period(sim_env)) == 3, "the daemon did not charge the three subscriptions"
            again = billing("pay", "-u", "u1", "-s", "prover", env=env)
            assert again.returncode == 0, again.stderr
            assert "already paid" in again.stdout
            other = billing("pay", "-u", "u2", "-s", "prover", "--period", "7", env=env)
            assert other.returncode == 0 and "paid: 2 CC" in other.stdout, other.stdout + other.stderr
            for args in (["users"], ["metrics", "--json"], ["tail"], ["restart", "--dry-run"]):
                result = billing(*args, env=env)
                assert result.returncode == 0, (args, result.stderr)
                assert "locked" not in result.stderr.lower()
            second = subprocess.run(
                [BILLING, "start"], env=clean_env(**env), capture_output=True, text=True, timeout=60
            )
            # Its API port is taken first: it stops, in one line, before it opens the busy store.
            assert second.returncode == 1 and "is already in use: another billing daemon" in second.stderr
        finally:
            daemon.send_signal(signal.SIGTERM)
            _, err = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, err
        counts = transfers_per_period(sim_env)
        assert set(counts.values()) == {1} and len(counts) == 4


@pytest.mark.slow
def test_a_bug_in_a_payment_step_stops_the_daemon_in_one_line_and_a_restart_charges_once(tmp_path: Path) -> None:
    data = write_catalogue(tmp_path / "data", users=1)
    with simulator(data) as sim_env:
        env = {
            **sim_env,
            "BILLING_DATA_DIR": str(data),
            "ROCKSDB_PATH": str(tmp_path / "state"),
            "BILLING_API_PORT": str(free_port()),
            "LOG_LEVEL": "warn",
        }
        crashed = billing_losing_first_answer("start", env=env)
        assert_stopped_by_the_lost_answer(crashed)
        assert len(transfers_per_period(sim_env)) == 1  # committed, never recorded as confirmed
        resumed = billing("start", "--once", env=env, timeout=60)
        assert resumed.returncode == 0, resumed.stderr
        counts = transfers_per_period(sim_env)
        audit = billing("tail", "--json", env=env)
    assert len(counts) == 1 and set(counts.values()) == {1}
    kinds = [line.split('"type":"')[1].split('"')[0] for line in audit.stdout.splitlines() if '"type":"' in line]
    assert kinds == ["payment.requested", "payment.submitted", "payment.confirmed"], audit.stdout
