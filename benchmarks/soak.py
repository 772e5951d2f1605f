"""Soak: `billing start` against `billing simulator` over TCP, with faults and random SIGKILLs.

Thousands of subscriptions with short periods; the daemon is killed (SIGKILL) at random
moments in the first half and restarted at once, then runs undisturbed while its RSS is
sampled. At the end one `billing start --once` settles everything, and the ledger is checked:
every due period paid exactly once, none skipped; window metrics equal those of a fresh
replay; RSS flat after warm-up (at most 10 % growth). Prints a table; with ``--record``
writes its section of benchmarks/RESULTS.md.

    python -m benchmarks.soak                 # 5 minutes, 1000 subscriptions, 60 s periods
    python -m benchmarks.soak --seconds 30 --subscriptions 200 --interval 10
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.machine import record, table
from pipeline.asgi_server import free_port
from pipeline.ids import parse_description
from tests.processes import BILLING, billing, clean_env, simulator, transfers_per_period
from tests.secret_watch import record as record_output

FAULTS = ["timeout_after_commit=0.02", "drop_after_commit=0.02", "in_flight=0.02", "proxy_502_after_commit=0.01"]
MAX_GROWTH = 0.10


def write_catalogue(folder: Path, count: int, interval: int, start: datetime) -> None:
    folder.mkdir(parents=True)
    plans = [{"id": "soak", "name": "soak", "price": "0.01", "currency": "CC", "interval_sec": str(interval)}]
    users = [
        {
            "id": f"s{i}",
            "party": f"s{i}::1220{i:060x}",
            "name": f"Soak {i}",
            "email": f"s{i}@example.com",
            "subscriptions": [{"name": "soak", "expires_at": "2031-12-31", "starts_at": start.isoformat()}],
        }
        for i in range(count)
    ]
    (folder / "subscriptions.json").write_text(json.dumps({"subscriptions": plans}))
    (folder / "users.json").write_text(json.dumps({"users": users}))


class Daemon:
    """`billing start` as a child process that can be killed and restarted."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log, self.starts, self.kills = env, log, 0, 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        # Its log goes to a file: a pipe nobody reads fills up and blocks the daemon.
        with self.log.open("a") as out:
            self.proc = subprocess.Popen([BILLING, "start"], env=clean_env(**self.env), stdout=out, stderr=out)
        self.starts += 1

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.kills += 1

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # nothing left running after a failed soak
            self.proc.wait(timeout=30)
            said = self.log.read_text()[-3000:]
            raise SystemExit(f"the daemon did not stop within 60 s of SIGTERM: {said}") from None
        if self.proc.returncode != 0:
            raise SystemExit(f"the daemon exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")

    def rss_mb(self) -> float | None:
        assert self.proc is not None
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return None
        kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), None)
        return None if kb is None else kb / 1024


def run_phases(daemon: Daemon, seconds: float, rng: random.Random) -> list[float]:
    """Kill at random in the first half; sample RSS in the second. Returns the samples (MB)."""
    end_of_kills = time.monotonic() + seconds / 2
    while (left := end_of_kills - time.monotonic()) > 0:
        time.sleep(min(left, rng.uniform(2, max(3.0, seconds / 8))))
        if time.monotonic() < end_of_kills:
            daemon.kill()
            daemon.start()
    samples, end = [], time.monotonic() + seconds / 2
    while time.monotonic() < end:
        time.sleep(1)
        if (rss := daemon.rss_mb()) is not None:
            samples.append(rss)
    return samples


def rss_growth(samples: list[float]) -> float:
    """Growth of the last fifth over the fifth after a 40 % warm-up (0.05 = 5 %)."""
    if len(samples) < 10:
        return 0.0
    n = len(samples)
    base = statistics.median(samples[int(n * 0.4) : int(n * 0.6)])
    return max(samples[int(n * 0.8) :]) / base - 1


def check_ledger(
    sim_env: dict[str, str], anchor: datetime, interval: int, before: datetime, after: datetime
) -> dict[str, int]:
    """Every subscription: each period from its first to the one due at ``before`` once, none later than ``after``."""
    periods: dict[str, list[int]] = defaultdict(list)
    for (sender, text), count in transfers_per_period(sim_env).items():
        said = parse_description(text)
        assert said is not None, text
        periods[sender] += [int((said.start - anchor).total_seconds() // interval)] * count
    due = int((before - anchor).total_seconds() // interval)
    last = int((after - anchor).total_seconds() // interval)
    twice = sum(len(p) - len(set(p)) for p in periods.values())
    skipped = sum(len(set(range(min(p), due + 1)) - set(p)) for p in periods.values())
    early = sum(1 for p in periods.values() if max(p) > last)
    late_first = sum(1 for p in periods.values() if min(p) > 0)
    return {
        "subscriptions paid": len(periods),
        "transfers": sum(map(len, periods.values())),
        "charged twice": twice,
        "periods skipped": skipped,
        "beyond due": early,
        "first seen after period 0": late_first,
        "due periods per subscription": due + 1,
    }


def metrics_match_replay(env: dict[str, str]) -> bool:
    live = billing("metrics", "--json", env=env)
    rebuilt = billing("replay", env=env)
    again = billing("metrics", "--json", env=env)
    for result in (live, rebuilt, again):
        if result.returncode != 0:
            raise SystemExit(f"metrics/replay failed: {result.stderr[-1000:]}")
    return bool(json.loads(live.stdout) == json.loads(again.stdout))


def soak(seconds: float, count: int, interval: int, seed: int) -> tuple[dict[str, object], bool]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="billing-soak-") as tmp:
        anchor = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        write_catalogue(Path(tmp) / "data", count, interval, anchor)
        faults = [a for f in FAULTS for a in ("--fault", f)]
        with simulator(Path(tmp) / "data", *faults, env={"MIN_INTERVAL_SEC": "1"}) as sim_env:
            env = {
                **sim_env,
                "BILLING_DATA_DIR": f"{tmp}/data",
                "ROCKSDB_PATH": f"{tmp}/state",
                "BILLING_API_PORT": str(free_port()),
                "CHECK_INTERVAL_SECS": "1",
                "MIN_INTERVAL_SEC": "1",
                "PAYMENT_RETRY_INTERVAL": "1",
                "MAX_IN_FLIGHT": "64",
                "LOG_LEVEL": "warn",
                "LOG_FSYNC": "false",
            }
            daemon = Daemon(env, Path(tmp) / "daemon.log")
            try:
                samples = run_phases(daemon, seconds, rng)
                daemon.stop()
            finally:
                record_output("billing start (soak)", daemon.log.read_text())
            before = datetime.now(UTC)
            settle = billing("start", "--once", env=env, timeout=600)
            after = datetime.now(UTC)
            if settle.returncode != 0:
                raise SystemExit(f"the final pass failed: {settle.stderr[-2000:]}")
            figures: dict[str, object] = dict(check_ledger(sim_env, anchor, interval, before, after))
            figures["metrics equal a fresh replay"] = metrics_match_replay(env)
    growth = rss_growth(samples)
    figures.update(
        {
            "daemon starts": daemon.starts,
            "SIGKILLs": daemon.kills,
            "RSS first/last MB": f"{samples[0]:.0f} / {samples[-1]:.0f}" if samples else "-",
            "RSS growth after warm-up": f"{growth:.1%}",
        }
    )
    ok = (
        figures["charged twice"] == 0
        and figures["periods skipped"] == 0
        and figures["beyond due"] == 0
        and figures["subscriptions paid"] == count
        and figures["metrics equal a fresh replay"] is True
        and growth <= MAX_GROWTH
    )
    return figures, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--interval", type=int, default=60, help="interval_sec of the plan")
    parser.add_argument("--seed", type=int, default=random.randrange(10**6))
    parser.add_argument("--record", action="store_true", help="write the section of benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    print(f"soak: {args.seconds:g} s, {args.subscriptions} subscriptions every {args.interval} s, seed {args.seed}")
    figures, ok = soak(args.seconds, args.subscriptions, args.interval, args.seed)
    body = table([(k, str(v)) for k, v in figures.items()], ("check", "value"))
    print(body)
    print("PASS" if ok else "FAIL")
    if args.record:
        record(
            "Soak: daemon, faults and SIGKILLs (benchmarks/soak.py)",
            f"`python -m benchmarks.soak --seconds {args.seconds:g} --subscriptions {args.subscriptions} "
            f"--interval {args.interval} --seed {args.seed}`; simulator faults {', '.join(FAULTS)}.\n\n"
            f"{body}\n\nResult: {'PASS' if ok else 'FAIL'}.",
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
