"""Two state folders, one ledger: a folder that misses charges never reports "paid" without a
transfer, and never charges a period twice (real `billing` processes, the simulator over TCP).

Folder A charges; folder B (A lost, moved, or a cron job in another directory) refuses to charge
until it is rebuilt from the ledger; after the rebuild both folders report what the ledger holds.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.processes import billing, simulator, transfers_per_period

MONTH = str(30 * 86400)  # long periods: no test run straddles a period boundary


def catalogue(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    plans = [{"id": "p", "name": "prover", "price": 2, "currency": "CC", "interval_sec": MONTH}]
    people = [
        {
            "id": f"u{i}",
            "party": f"u{i}::1220{i:060x}",
            "name": f"User {i}",
            "email": f"u{i}@example.com",
            "subscriptions": [{"name": "prover", "expires_at": "2031-12-31"}],
        }
        for i in range(3)
    ]
    (folder / "subscriptions.json").write_text(json.dumps({"subscriptions": plans}))
    (folder / "users.json").write_text(json.dumps({"users": people}))
    return folder


def one_error(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr[-2000:]
    return errors[0]


def test_a_second_state_folder_refuses_until_rebuilt_and_never_charges_twice(tmp_path: Path) -> None:
    data = catalogue(tmp_path / "data")
    with simulator(data) as sim:
        a = {**sim, "BILLING_DATA_DIR": str(data), "ROCKSDB_PATH": str(tmp_path / "a")}
        b = {**a, "ROCKSDB_PATH": str(tmp_path / "b")}
        first = billing("pay", "-u", "u0", "-s", "prover", env=a)
        assert first.returncode == 0 and first.stdout.startswith("paid: 2 CC from u0"), first.stderr[-2000:]
        assert billing("pay-all", env=a).returncode == 0
        ledger = transfers_per_period(sim)
        assert len(ledger) == 3 and set(ledger.values()) == {1}

        # B holds nothing: it says where it looked and refuses, whatever it is asked to charge.
        notes = []
        for args in (("pay", "-u", "u0", "-s", "prover"), ("pay-all",), ("restart",), ("start", "--once")):
            refused = billing(*args, env=b)
            notes.append("no billing state at" in refused.stderr)
            assert refused.returncode == 1, (args, refused.stdout, refused.stderr[-2000:])
            line = one_error(refused.stderr)
            assert "the ledger shows 3 charge(s) by this app" in line and str(tmp_path / "b") in line
            assert "billing replay --from-ledger" in line and "paid" not in refused.stdout
            assert transfers_per_period(sim) == ledger
        assert notes == [True, False, False, False]  # the new folder is announced when it is made

        rebuilt = billing("replay", "--from-ledger", env=b)
        assert rebuilt.returncode == 0 and "Recorded from the ledger" in rebuilt.stdout, rebuilt.stderr[-2000:]
        again = billing("pay", "-u", "u0", "-s", "prover", env=b)
        assert again.returncode == 0 and again.stdout.startswith("already paid: u0 prover"), again.stderr[-2000:]
        assert billing("pay-all", env=b).returncode == 0
        assert billing("pay-all", env=a).returncode == 0  # A still knows every charge on the ledger
        assert transfers_per_period(sim) == ledger

        # What billing reports equals the ledger, in both folders.
        for env in (a, b):
            shown = billing("metrics", "--window", "24h", "--json", env=env)
            (row,) = json.loads(shown.stdout)
            assert (row["success_count"], row["total_amount"]) == (3, "6"), (env["ROCKSDB_PATH"], row)


def test_read_only_commands_say_where_they_looked_and_create_nothing(tmp_path: Path) -> None:
    env = {"BILLING_DATA_DIR": str(catalogue(tmp_path / "data")), "ROCKSDB_PATH": str(tmp_path / "nowhere")}
    for args in (("metrics",), ("tail",), ("replay",)):
        result = billing(*args, env=env)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert f"no billing state at {tmp_path / 'nowhere'}" in one_error(result.stderr)
        assert result.stdout == ""
    assert not (tmp_path / "nowhere").exists()
