"""Recovery with real processes: missed periods are charged once, however often restart runs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.processes import billing, simulator, transfers_per_period


@pytest.mark.slow
def test_restart_twice_then_start_never_charges_a_period_twice(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    plans = [{"id": "p", "name": "fast", "price": 1, "currency": "CC", "interval_sec": "2"}]
    users = [
        {
            "id": f"u{i}",
            "party": f"u{i}::1220{i:060x}",
            "name": f"U{i}",
            "email": f"u{i}@example.com",
            "subscriptions": [{"name": "fast", "expires_at": "2031-01-01"}],
        }
        for i in range(3)
    ]
    (data / "subscriptions.json").write_text(json.dumps({"subscriptions": plans}))
    (data / "users.json").write_text(json.dumps({"users": users}))
    with simulator(data, env={"MIN_INTERVAL_SEC": "1"}) as sim_env:
        env = {
            **sim_env,
            "BILLING_DATA_DIR": str(data),
            "ROCKSDB_PATH": str(tmp_path / "state"),
            "MIN_INTERVAL_SEC": "1",
            "LOG_LEVEL": "warn",
        }
        first = billing("pay-all", env=env)
        assert first.returncode == 0, first.stderr
        assert len(transfers_per_period(sim_env)) == 3  # period 0 of each
        time.sleep(7)  # billing is "down" for about three periods
        dry = billing("restart", "--dry-run", env=env)
        assert dry.returncode == 0 and "recovery" in dry.stdout, dry.stdout + dry.stderr
        assert len(transfers_per_period(sim_env)) == 3  # a dry run charges nothing
        for _ in range(2):
            again = billing("restart", env=env)
            assert again.returncode == 0, again.stderr
        after_restarts = transfers_per_period(sim_env)
        assert len(after_restarts) >= 3 + 3 * 2  # at least periods 1 and 2 of each subscription
        once = billing("start", "--once", env=env)
        assert once.returncode == 0, once.stderr
        counts = transfers_per_period(sim_env)
    assert set(counts.values()) == {1}, [k for k, n in counts.items() if n > 1]
    assert len(counts) >= len(after_restarts)
