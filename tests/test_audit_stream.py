"""The daemon streams the audit trail over a loopback WebSocket; another process follows it live."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from commands.services.events_view import Periods, audit_row, event_line
from pipeline.asgi_server import free_port
from pipeline.events import AnyEvent, PaymentConfirmed, PaymentFailed, PaymentRequested, Period, Recorded
from tests.processes import BILLING, ROOT, billing, clean_env, simulator, transfers_per_period, write_catalogue

TOKEN = "audit-stream-test-token"


def lines_of(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    out: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.put(line.strip())

    threading.Thread(target=pump, daemon=True).start()
    return out


def rows_until(
    lines: queue.Queue[str], done: Callable[[list[dict[str, Any]]], bool], seconds: float = 60
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while not done(rows):
        rows.append(json.loads(lines.get(timeout=max(deadline - time.monotonic(), 0.1))))
    return rows


def wait_healthy(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if (
                httpx.get(
                    f"http://127.0.0.1:{port}/v1/health", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=2
                ).status_code
                == 200
            ):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the daemon's local API did not come up")


@pytest.mark.slow
def test_a_second_process_follows_the_audit_stream_as_events_are_appended(tmp_path: Path) -> None:
    data = write_catalogue(tmp_path / "data", users=2)
    port = free_port()
    with simulator(data) as sim_env:
        env = {
            **sim_env,
            "BILLING_DATA_DIR": str(data),
            "ROCKSDB_PATH": str(tmp_path / "state"),
            "BILLING_API_PORT": str(port),
            "BILLING_API_TOKEN": TOKEN,
            "CHECK_INTERVAL_SECS": "1",
            "LOG_LEVEL": "warn",
        }
        daemon = subprocess.Popen(
            [BILLING, "start"], env=clean_env(**env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        follower = None
        try:
            wait_healthy(port)
            follower = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.audit_follower_child",
                    f"ws://127.0.0.1:{port}/v1/audit?from=0",
                    TOKEN,
                    "1000",
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            lines = lines_of(follower)
            assert lines.get(timeout=30) == "connected"

            def confirmed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
                return [r for r in rows if r["type"] == "payment.confirmed"]

            first = rows_until(lines, lambda rows: len(confirmed(rows)) == 2)  # the daemon's own charges
            assert {r["party"].split("::")[0] for r in confirmed(first)} == {"u0", "u1"}
            assert len(transfers_per_period(sim_env)) == 2

            paid = billing("pay", "-u", "u1", "-s", "prover", "--period", "7", env=env)  # appended now
            assert paid.returncode == 0, paid.stderr
            new = rows_until(lines, lambda rows: bool(confirmed(rows)))
        finally:
            if follower is not None:
                follower.kill()
                follower.communicate(timeout=10)
            daemon.send_signal(signal.SIGTERM)
            daemon.communicate(timeout=30)
    requested = next(r for r in new if r["type"] == "payment.requested")
    (row,) = confirmed(new)
    assert requested["period"]["index"] == 7 and row["payment_id"] == requested["payment_id"]
    assert row["period_index"] == 7 and row["amount"] == "2" and row["outcome"] == "confirmed"
    assert row["update_id"] and row["offset"] > max(r["offset"] for r in first)


def test_tail_lines_carry_payment_period_amount_update_id_and_outcome() -> None:
    t0 = datetime(2026, 11, 24, 12, tzinfo=UTC)
    pid = "a1b2c3d4e5f60718"
    common: dict[str, Any] = {
        "payment_id": pid,
        "at": t0,
        "party": "alice::1220abcdef",
        "plan": "prover",
        "amount": Decimal(2),
    }
    events: list[AnyEvent] = [
        PaymentRequested(
            **common,
            user_id="alice",
            receiver="app::1",
            description="d",
            period=Period(index=3, start=t0, end=t0 + timedelta(minutes=5)),
        ),
        PaymentFailed(
            **common,
            attempt=1,
            code="UNAVAILABLE",
            message="try later",
            retryable=True,
            final=False,
            next_attempt_at=t0 + timedelta(seconds=30),
        ),
        PaymentConfirmed(**common, update_id="1220feed"),
    ]
    periods = Periods()
    lines = [event_line(Recorded(i, e), periods) for i, e in enumerate(events)]
    assert all(pid[:12] in line and "#3" in line and "2 CC" in line for line in lines), lines
    assert "requested" in lines[0] and "retrying" in lines[1] and "retry at 12:00:30" in lines[1]
    assert "confirmed" in lines[2] and "update 1220feed" in lines[2]
    row = audit_row(Recorded(2, events[2]), periods)
    assert (row["outcome"], row["period_index"], row["update_id"], row["amount"]) == ("confirmed", 3, "1220feed", "2")
