"""Real processes on the Kafka backend: pay-all through faust workers, and a rebalance in the middle of it.

A bug in a payment step stops a worker in one line; the next worker charges nothing twice.
Every test starts the simulator (`billing simulator`), uses the session's broker, and runs
`billing start --backend kafka` workers and `billing pay-all` as separate processes. The
check is the simulated ledger's: exactly one transfer per due period.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.log.kafka import KafkaTopic
from pipeline.log.store import Store
from projections.windows import WindowProjection
from tests.processes import (
    BILLING,
    assert_stopped_by_the_lost_answer,
    billing_losing_first_answer,
    clean_env,
    simulator,
    transfers_per_period,
    write_catalogue,
)

PARTITIONS = 4


def kafka_env(kafka_url: str, tmp_path: Path, sim_env: dict[str, str], data: Path) -> dict[str, str]:
    name = "billing-" + uuid.uuid4().hex[:8]
    return {
        **sim_env,
        "BILLING_DATA_DIR": str(data),
        "EVENT_LOG": kafka_url,
        "KAFKA_TOPIC": name,
        "KAFKA_GROUP": name,
        "KAFKA_PARTITIONS": str(PARTITIONS),
        "KAFKA_SESSION_TIMEOUT_SECS": "2",
        "CHECK_INTERVAL_SECS": "3600",
        "PAYMENT_RETRY_INTERVAL": "1",
        "LOG_LEVEL": "info",
        "ROCKSDB_PATH": str(tmp_path / "cli"),
    }


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([BILLING, *args], env=clean_env(**env), stdout=out, stderr=subprocess.STDOUT)


def worker(env: dict[str, str], state: Path) -> subprocess.Popen[bytes]:
    return start(["start", "--backend", "kafka"], {**env, "ROCKSDB_PATH": str(state)}, state.with_suffix(".log"))


def start_once(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`billing start --backend kafka --once`: one scheduler pass, until what it requested settles."""
    return subprocess.run(
        [BILLING, "start", "--backend", "kafka", "--once"],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def published(env: dict[str, str]) -> int:
    async def count() -> int:
        topic = await KafkaTopic.open(env["EVENT_LOG"], env["KAFKA_TOPIC"], partitions=PARTITIONS)
        try:
            return sum([len(b) async for b in topic.read_all(dict.fromkeys(range(PARTITIONS), 0))])
        finally:
            await topic.close()

    return asyncio.run(count())


def wait_until(check: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=30)


def end(proc: subprocess.Popen[bytes]) -> None:
    """Stop a worker at the end of a test, killing it if it does not stop in time."""
    try:
        stop(proc)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def settled(*logs: Path) -> bool:
    """Every worker's latest assignment is in place and, together, they own every partition."""
    owned: list[int] = []
    for log in logs:
        lines = [line for line in log.read_text().splitlines() if "logger=pipeline.log.agent_feed" in line]
        if not lines or "partitions assigned" not in lines[-1]:
            return False
        owned += json.loads(lines[-1].split('partitions="', 1)[1].split('"', 1)[0])
    return sorted(owned) == list(range(PARTITIONS))


def show(*logs: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs if p.exists())


@pytest.mark.slow
def test_pay_all_publishes_to_kafka_and_a_worker_charges_each_period_once(kafka_url: str, tmp_path: Path) -> None:
    users = 12
    data = write_catalogue(tmp_path / "data", users=users)
    with simulator(data) as sim_env:
        env = kafka_env(kafka_url, tmp_path, sim_env, data)
        pay_all = start(["pay-all"], env, tmp_path / "pay-all.log")
        wait_until(lambda: published(env) >= users or pay_all.poll() is not None, "pay-all to publish")
        one = worker(env, tmp_path / "w1")
        try:
            rc = pay_all.wait(timeout=120)
            assert rc == 0, show(tmp_path / "pay-all.log", tmp_path / "w1.log")
            counts = transfers_per_period(sim_env)
        finally:
            pay_all.kill()
            pay_all.wait(timeout=10)
            assert stop(one) == 0, show(tmp_path / "w1.log")
    assert len(counts) == users and set(counts.values()) == {1}, counts


def confirmed_in_projections(states: list[Path]) -> int:
    """Confirmed payments counted by the window projections: per partition, its most advanced copy."""
    best: dict[str, tuple[int, int]] = {}
    for state in states:
        for path in sorted((state / "projections").glob("p*")):
            projection = WindowProjection(Store.open(path, mode="follow"))  # beside a running worker
            count = projection.metrics("30d", datetime.now(UTC)).success_count
            if projection.position >= best.get(path.name, (-1, 0))[0]:
                best[path.name] = (projection.position, count)
            projection.store.close()
    return sum(count for _, count in best.values())


@pytest.mark.slow
def test_a_rebalance_in_the_middle_of_pay_all_never_charges_or_counts_twice(kafka_url: str, tmp_path: Path) -> None:
    users = 48
    data = write_catalogue(tmp_path / "data", users=users)
    with simulator(data, "--latency-ms", "400", "--fault", "timeout_after_commit=0.1") as sim_env:
        env = {**kafka_env(kafka_url, tmp_path, sim_env, data), "MAX_IN_FLIGHT": "1"}
        logs = [tmp_path / "pay-all.log", tmp_path / "w1.log", tmp_path / "w2.log"]
        pay_all = start(["pay-all"], env, logs[0])
        wait_until(lambda: published(env) >= users or pay_all.poll() is not None, "pay-all to publish")
        one = worker(env, tmp_path / "w1")
        two = None
        try:
            wait_until(lambda: len(transfers_per_period(sim_env)) >= 6, "the first worker to charge")
            two = worker(env, tmp_path / "w2")  # joins: the partitions are shared out again
            wait_until(lambda: "partitions assigned" in logs[2].read_text(), "the second worker's partitions")
            wait_until(lambda: len(transfers_per_period(sim_env)) >= 20, "both workers to charge")
            wait_until(lambda: settled(logs[1], logs[2]), "the group to settle on both workers")
            # Tansu once ignored a member that left a second after a rebalance (the survivor kept
            # half the partitions for 90 s): leave from a group that has been stable a while.
            time.sleep(3)
            assert stop(one) == 0, show(*logs)  # leaves: the second worker takes every partition
            wait_until(lambda: 'partitions="[0, 1, 2, 3]"' in logs[2].read_text(), "the second worker to take over")
            assert len(transfers_per_period(sim_env)) < users, "pay-all ended before the take-over: make it longer"
            rc = pay_all.wait(timeout=120)
            assert rc == 0, show(*logs)
            counts = transfers_per_period(sim_env)
            states = [tmp_path / "w1", tmp_path / "w2"]
            wait_until(lambda: confirmed_in_projections(states) >= users, "the projections to fold every outcome")
        finally:
            pay_all.kill()
            pay_all.wait(timeout=10)
            for proc in (one, two):
                if proc is not None:
                    end(proc)
    assert len(counts) == users, f"missing periods: {users - len(counts)}"
    assert set(counts.values()) == {1}, f"charged twice: {[k for k, n in counts.items() if n > 1]}"
    assert confirmed_in_projections(states) == users  # none counted twice, after the last commit too


@pytest.mark.slow
def test_a_bug_in_a_payment_step_stops_the_worker_in_one_line_and_the_next_charges_once(
    kafka_url: str, tmp_path: Path
) -> None:
    data = write_catalogue(tmp_path / "data", users=1)
    with simulator(data) as sim_env:
        env = {**kafka_env(kafka_url, tmp_path, sim_env, data), "ROCKSDB_PATH": str(tmp_path / "w1")}
        crashed = billing_losing_first_answer("start", "--backend", "kafka", env=env)
        assert_stopped_by_the_lost_answer(crashed)
        assert len(transfers_per_period(sim_env)) == 1  # committed, never recorded as confirmed
        resumed = start_once(env)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        counts = transfers_per_period(sim_env)
    assert len(counts) == 1 and set(counts.values()) == {1}, counts


@pytest.mark.slow
def test_a_worker_start_names_each_subscriber_that_cannot_be_charged(kafka_url: str, tmp_path: Path) -> None:
    """As `billing start` on the embedded log does: one line per party, before any charge."""
    known = write_catalogue(tmp_path / "known", users=2)  # the participant hosts these two
    with simulator(known) as sim_env:
        data = write_catalogue(tmp_path / "data", users=3)  # u2 is hosted nowhere the simulator knows
        env = {**kafka_env(kafka_url, tmp_path, sim_env, data), "ROCKSDB_PATH": str(tmp_path / "w1")}
        run = start_once(env)
        assert run.returncode == 0, run.stderr[-3000:]
        counts = transfers_per_period(sim_env)
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning: subscriber")]
    assert len(warnings) == 1 and "subscriber u2:" in warnings[0] and "not hosted" in warnings[0], run.stderr[-3000:]
    assert len(counts) == 2 and set(counts.values()) == {1}, counts  # u0 and u1 charged once each
