"""Real processes for crash and coexistence tests: the simulator over TCP and `billing` itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx

from pipeline.asgi_server import free_port
from tests.secret_watch import SECRETS, record

ROOT = Path(__file__).resolve().parents[1]
BILLING = str(Path(sys.executable).parent / "billing")
Completed = subprocess.CompletedProcess[str]


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("APP_", "SCAN_", "BILLING_", "LOG_", "PARTY_", "ROCKSDB", "OTEL_", "OPENTELEMETRY"))
    }
    return {**env, **extra}


@contextmanager
def simulator(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[dict[str, str]]:
    """`billing simulator` on a free loopback port; yields the environment it printed."""
    port = free_port()
    # The ledger token is the canary JWT: every billing run against it must keep it secret.
    extra = {"APP_PROVIDER_JWT": SECRETS["APP_PROVIDER_JWT"], **(env or {})}
    proc = subprocess.Popen(
        [BILLING, "simulator", "--port", str(port), "--with-preapproval", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(BILLING_DATA_DIR=str(data_dir), **extra),
    )
    drains: list[_Drain] = []
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        if not first.startswith("simulator ready on http://127.0.0.1:"):
            proc.kill()
            raise AssertionError(f"the simulator did not start: {first}{proc.communicate()[1]}")
        env = dict(proc.stdout.readline().strip().split("=", 1) for _ in range(4))
        # Keep reading what it prints: a full pipe would block the simulator (found by the soak run).
        drains += [_Drain(proc.stdout), _Drain(proc.stderr)]
        yield env
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for drain in drains:
            drain.join(timeout=10)
        record("billing simulator", *("".join(d.lines) for d in drains))


class _Drain(threading.Thread):
    """Reads a child's pipe to the end, keeping the lines (for the secrets grep)."""

    def __init__(self, stream: IO[str] | None) -> None:
        super().__init__(daemon=True)
        self.stream, self.lines = stream, list[str]()
        self.start()

    def run(self) -> None:
        if self.stream is not None:
            self.lines += list(self.stream)
            self.stream.close()


def stop_process(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 5) -> int:
    """Send ``sig``, wait ``timeout`` seconds, kill the process if it is still there; its exit code."""
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
        raise


def billing(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([BILLING, *args], env=clean_env(**env), capture_output=True, text=True, timeout=timeout)
    record(f"billing {' '.join(args)}", result.stdout, result.stderr)
    return result


def billing_losing_first_answer(*args: str, env: dict[str, str], timeout: float = 90) -> Completed:
    """`billing ARGS` whose first submission is committed on the ledger, then its answer turns into a
    plain RuntimeError (a bug in billing, as far as it can tell): `tests/lost_answer_child.py`."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.lost_answer_child", *args],
        cwd=ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    record(f"billing {' '.join(args)} (answer lost)", result.stdout, result.stderr)
    return result


def assert_stopped_by_the_lost_answer(result: Completed) -> None:
    """Exit 70 and one readable error line naming the payment, the error and what to do; no traceback."""
    assert result.returncode == 70, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "processing stopped at payment " in errors[0]
    assert "unexpected RuntimeError: injected bug: the answer to a submission was lost" in errors[0]
    assert "This is a bug" in errors[0] and "looked up on the ledger" in errors[0]


def start_daemon(env: dict[str, str]) -> subprocess.Popen[str]:
    """`billing start` in the background (stop it with SIGTERM, then ``communicate``)."""
    return subprocess.Popen(
        [BILLING, "start"], env=clean_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_transfers(env: dict[str, str], count: int, seconds: float = 30) -> int:
    """Poll the simulated ledger until ``count`` periods are paid or ``seconds`` pass; the count paid."""
    deadline = time.monotonic() + seconds
    while (paid := len(transfers_per_period(env))) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return paid


def transfers_per_period(env: dict[str, str]) -> Counter[tuple[str, str]]:
    """(sender, description) of every TransferPreapproval_Send on the simulated ledger, counted."""
    scan = env["SCAN_API_URL"]
    items = httpx.post(f"{scan}/v2/updates", json={"page_size": 100000}, timeout=30).json()["transactions"]
    seen: Counter[tuple[str, str]] = Counter()
    for item in items:
        for event in item["events_by_id"].values():
            if event.get("choice") == "TransferPreapproval_Send":
                arg = event["choice_argument"]
                seen[(arg["sender"], arg["description"])] += 1
    return seen


def write_catalogue(folder: Path, users: int) -> Path:
    """A catalogue of ``users`` users, each on one plan (300 s periods starting a second ago: without
    ``starts_at`` periods are aligned on the epoch, and a boundary could fall in the middle of a test)."""
    folder.mkdir(parents=True, exist_ok=True)
    starts = (datetime.now(UTC) - timedelta(seconds=1)).replace(microsecond=0).isoformat()
    plans = [{"id": "p", "name": "prover", "price": 2, "currency": "CC", "interval_sec": "300"}]
    people = [
        {
            "id": f"u{i}",
            "party": f"u{i}::1220{i:060x}",
            "name": f"User {i}",
            "email": f"u{i}@example.com",
            "subscriptions": [{"name": "prover", "expires_at": "2031-12-31", "starts_at": starts}],
        }
        for i in range(users)
    ]
    (folder / "subscriptions.json").write_text(json.dumps({"subscriptions": plans}))
    (folder / "users.json").write_text(json.dumps({"users": people}))
    return folder
