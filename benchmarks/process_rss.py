"""Resident memory of the processes the projection benchmarks start: a projection-only process and a
real `billing start` beside the simulator, both on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx  # only to ask the daemon whether it is up

from pipeline.asgi_server import free_port

ROOT = Path(__file__).resolve().parents[1]


PROJECTION_ONLY = """
import asyncio, sys
from pathlib import Path
from pipeline.log.embedded import EmbeddedLog
from projections.replay import catch_up, open_projection
from datetime import datetime
async def main(state, now):
    log = EmbeddedLog.open(state / "log")
    projection = open_projection(state / "projections")
    await catch_up(log, projection)
    for plan in (None, "prover", "verifier"):
        projection.all_windows(now, plan=plan)
    status = Path("/proc/self/status").read_text()
    print(next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")) / 1024)
asyncio.run(main(Path(sys.argv[1]), datetime.fromisoformat(sys.argv[2])))
"""


def projection_rss(state: Path, now: datetime) -> float:
    """VmRSS (MB) of a process doing only the daemon's projection work on ``state``: open, catch up, query
    every window at ``now``."""
    out = subprocess.run(
        [sys.executable, "-c", PROJECTION_ONLY, str(state), now.isoformat()],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return float(out.stdout.strip())


def daemon_rss(state: Path, parties: list[str]) -> float:
    """VmRSS (MB) of a real `billing start` on ``state`` once it is serving (simulator on loopback), with
    one expired subscription per party in ``parties`` (so the daemon charges nobody)."""
    data = state.parent / "data"
    data.mkdir(exist_ok=True)
    people = [
        {
            "id": f"user{i}",
            "party": party,
            "name": f"User {i}",
            "email": f"user{i}@example.com",
            "subscriptions": [{"name": "prover", "expires_at": "2020-01-01"}],
        }
        for i, party in enumerate(parties)
    ]
    plans = [
        {"id": n, "name": n, "price": p, "currency": "CC", "interval_sec": "300"}
        for n, p in (("prover", 2), ("verifier", 1))
    ]
    (data / "users.json").write_text(json.dumps({"users": people}))  # expired: the daemon charges nobody
    (data / "subscriptions.json").write_text(json.dumps({"subscriptions": plans}))
    exe = str(Path(sys.executable).parent / "billing")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APP_", "SCAN_", "BILLING_", "OTEL_"))}
    env |= {
        "BILLING_DATA_DIR": str(data),
        "ROCKSDB_PATH": str(state),
        "LOG_LEVEL": "warn",
        "BILLING_API_PORT": str(free_port()),
        "BILLING_API_TOKEN": "bench-token",
    }
    sim = subprocess.Popen(
        [exe, "simulator", "--port", str(free_port()), "--with-preapproval"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert sim.stdout is not None and sim.stdout.readline().startswith("simulator ready")
        env |= dict(sim.stdout.readline().strip().split("=", 1) for _ in range(4))
        return _rss_of_daemon(exe, env)
    finally:
        sim.terminate()
        sim.communicate(timeout=10)


def _rss_of_daemon(exe: str, env: dict[str, str]) -> float:
    daemon = subprocess.Popen([exe, "start"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and daemon.poll() is None:
            try:
                httpx.get(
                    f"http://127.0.0.1:{env['BILLING_API_PORT']}/v1/health",
                    headers={"Authorization": "Bearer bench-token"},
                    timeout=2,
                ).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        time.sleep(5)  # a few ticks of scheduler, follower and committer
        status = Path(f"/proc/{daemon.pid}/status").read_text()
        return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")) / 1024
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=60)
        if daemon.returncode:
            print(err, file=sys.stderr)
