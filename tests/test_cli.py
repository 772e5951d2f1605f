"""The `billing` command line, run as a user would: real processes, real exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.secret_watch import record

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [
    "setup",
    "info",
    "pay",
    "pay-all",
    "start",
    "restart",
    "monitor",
    "metrics",
    "users",
    "user",
    "subscriptions",
    "balance",
    "config",
    "update",
    "test-otel",
    "replay",
    "tail",
    "demo",
    "simulator",
]


def billing(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("APP_", "SCAN_", "BILLING_", "LOG_"))}
    base.update(env or {})
    exe = Path(sys.executable).parent / "billing"
    result = subprocess.run([str(exe), *args], cwd=cwd, env=base, capture_output=True, text=True, timeout=60)
    record(f"billing {' '.join(args)}", result.stdout, result.stderr)
    return result


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = billing("--help", cwd=tmp_path)
    assert result.returncode == 0
    for name in COMMANDS:
        assert f"    {name} " in result.stdout, name


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(tmp_path: Path, name: str) -> None:
    result = billing(name, "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "usage: billing" in result.stdout


def test_version(tmp_path: Path) -> None:
    result = billing("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("billing ")


def test_catalogue_commands_on_sample_data(tmp_path: Path) -> None:
    env = {"BILLING_DATA_DIR": str(ROOT / "data")}
    users = billing("users", cwd=tmp_path, env=env)
    assert users.returncode == 0, users.stderr
    assert "alice" in users.stdout and "Registered users (5)" in users.stdout
    plans = billing("subscriptions", "--json", cwd=tmp_path, env=env)
    assert {p["name"] for p in json.loads(plans.stdout)} >= {"prover", "verifier"}
    assert json.loads(plans.stdout)[0]["price"] == "2"
    alice = billing("user", "alice", "--json", cwd=tmp_path, env=env)
    assert json.loads(alice.stdout)[0]["email"] == "alice@example.com"
    verifier = billing("users", "with-subscription", "verifier", "--json", cwd=tmp_path, env=env)
    assert [u["id"] for u in json.loads(verifier.stdout)] == ["alice", "carol"]


def test_broken_users_json_is_a_located_error_with_exit_2(tmp_path: Path, data_dir: Path) -> None:
    doc = json.loads((data_dir / "users.json").read_text())
    doc["users"][1]["email"] = "not-an-email"
    (data_dir / "users.json").write_text(json.dumps(doc))
    result = billing("users", cwd=tmp_path, env={"BILLING_DATA_DIR": str(data_dir)})
    assert result.returncode == 2
    assert "users.json: users[1].email: not an email address" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_configuration_exits_2_and_names_every_variable(tmp_path: Path) -> None:
    result = billing("users", cwd=tmp_path, env={"RETENTION_DAYS": "x", "MAX_IN_FLIGHT": "-3"})
    assert result.returncode == 2
    assert "RETENTION_DAYS" in result.stderr and "MAX_IN_FLIGHT" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_user_is_a_clear_error(tmp_path: Path) -> None:
    result = billing("user", "nobody-at-all", cwd=tmp_path, env={"BILLING_DATA_DIR": str(ROOT / "data")})
    assert result.returncode == 1
    assert "no user matches 'nobody-at-all'" in result.stderr


def test_the_demo_runs_end_to_end_and_charges_each_period_once(tmp_path: Path) -> None:
    result = billing("demo", cwd=tmp_path, env={"BILLING_DATA_DIR": str(ROOT / "data")})
    assert result.returncode == 0, result.stderr
    assert "every period charged exactly once" in result.stdout
    assert "TransferPreapproval already exists" in result.stdout  # setup is idempotent
    assert "already paid or requested (not charged again) │ 5" in result.stdout


def test_console_prints_text_as_given_never_as_emoji_or_markup() -> None:
    from io import StringIO

    from commands.console import Console

    out, err = StringIO(), StringIO()
    console = Console(out=out, err=err, width=200)
    console.line("listen on 127.0.0.1:thumbs_down: [bold]x[/bold]")
    console.error("port 127.0.0.1:-1 :smile: is not valid")
    assert out.getvalue() == "listen on 127.0.0.1:thumbs_down: [bold]x[/bold]\n"
    assert err.getvalue() == "error: port 127.0.0.1:-1 :smile: is not valid\n"


@pytest.mark.parametrize(
    "args",
    [
        ("tail", "--since", "yesterday"),
        ("tail", "--since", "2026-11-24T00:00:00"),
        ("simulator", "--fault", "no_such_fault=0.1"),
    ],
)
def test_a_malformed_option_value_is_bad_input_exit_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = billing(
        *args, cwd=tmp_path, env={"ROCKSDB_PATH": str(tmp_path / "state"), "BILLING_DATA_DIR": str(ROOT / "data")}
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and args[1] in lines[0], result.stderr
