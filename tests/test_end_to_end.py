"""Requests through the processor, the real clients and the simulator: one transfer per period."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.events import PaymentConfirmed, PaymentFailed, PaymentRequested, Period
from pipeline.ids import command_id, payment_id
from pipeline.log.embedded import EmbeddedLog
from pipeline.processor.retry import RetryPolicy
from pipeline.processor.runner import Processor
from pipeline.simulator.app import Simulator
from pipeline.simulator.faults import CLI_FAULTS
from tests.canton_sim import APP, USERS, adapter, simulator

PARTIES = list(USERS)
FAST = RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.05, horizon=120)


def request(party: str, index: int, amount: str = "2") -> PaymentRequested:
    start = datetime(2026, 11, 24, tzinfo=UTC) + timedelta(minutes=5 * index)
    return PaymentRequested(
        payment_id=payment_id(APP, party, "prover", start, start + timedelta(minutes=5)),
        at=datetime.now(UTC),
        party=party,
        user_id=party.split("::")[0],
        plan="prover",
        amount=Decimal(amount),
        receiver=APP,
        period=Period(index=index, start=start, end=start + timedelta(minutes=5)),
        description="prover payment",
    )


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[EmbeddedLog]:
    opened = EmbeddedLog.open(tmp_path / "log", sync=False)
    yield opened
    await opened.close()


async def charge(log: EmbeddedLog, sim: Simulator, requests: list[PaymentRequested]) -> Processor:
    await log.append_batch(requests)
    async with adapter(sim) as port:
        proc = Processor(log, port, clock=lambda: datetime.now(UTC), policy=FAST, verify_timeout=0.3)
        ids = {r.payment_id for r in requests}
        await asyncio.wait_for(proc.run(ids), timeout=30)
    return proc


async def test_payments_move_real_amulet_and_are_verified(log: EmbeddedLog) -> None:
    sim = simulator()
    reqs = [request(p, i) for p in PARTIES for i in range(2)]
    await charge(log, sim, reqs)
    transfers = sim.transfers()
    assert sorted(t.command_id for t in transfers) == sorted(command_id(r.payment_id) for r in reqs)
    assert sim.ledger.balance(APP) == Decimal("100") + 2 * len(reqs)
    assert sim.ledger.balance(PARTIES[0]) == Decimal("996")
    confirmed = [r.event async for r in log.read() if isinstance(r.event, PaymentConfirmed)]
    assert len(confirmed) == len(reqs) and {c.verified_by for c in confirmed} == {"scan"}


@pytest.mark.parametrize("fault", [f for f in CLI_FAULTS if f not in ("insufficient_funds", "scan_lag")])
async def test_each_fault_ends_in_exactly_one_transfer(log: EmbeddedLog, fault: str) -> None:
    sim = simulator()
    sim.inject(fault, count=2)
    r = request(PARTIES[0], 0)
    proc = await charge(log, sim, [r])
    assert [t.command_id for t in sim.transfers()] == [command_id(r.payment_id)]
    assert (state := proc.book.get(r.payment_id)) is not None and state.status == "confirmed"


async def test_insufficient_funds_is_a_final_explained_failure(log: EmbeddedLog) -> None:
    sim = simulator({PARTIES[0]: Decimal("1")})
    r = request(PARTIES[0], 0, amount="5")
    await charge(log, sim, [r])
    assert sim.transfers() == []
    (failed,) = [x.event async for x in log.read() if isinstance(x.event, PaymentFailed)]
    assert failed.final and failed.code == "INSUFFICIENT_FUNDS" and "needs 5 CC" in failed.message


async def test_missing_preapproval_says_run_setup(log: EmbeddedLog) -> None:
    sim = simulator(preapproval=False)
    await charge(log, sim, [request(PARTIES[0], 0)])
    (failed,) = [x.event async for x in log.read() if isinstance(x.event, PaymentFailed)]
    assert failed.final and "billing setup" in failed.message


async def test_mixed_faults_at_30_percent(log: EmbeddedLog) -> None:
    sim = simulator()
    for fault in (
        "timeout_after_commit",
        "in_flight",
        "stale_contract",
        "proxy_502_after_commit",
        "unavailable",
        "drop",
        "drop_after_commit",
        "scan_lag",
    ):
        sim.set_fault_rate(fault, 0.3 / 8)
    reqs = [request(p, i, amount="1") for p in PARTIES for i in range(10)]
    assert_once_or_explained(await charge(log, sim, reqs), sim, reqs)


@pytest.mark.parametrize("fault", CLI_FAULTS)
async def test_each_fault_alone_at_30_percent(log: EmbeddedLog, fault: str) -> None:
    sim = simulator()
    sim.set_fault_rate(fault, 0.3)
    reqs = [request(p, i, amount="1") for p in PARTIES for i in range(4)]
    assert_once_or_explained(await charge(log, sim, reqs), sim, reqs)


def assert_once_or_explained(proc: Processor, sim: Simulator, reqs: list[PaymentRequested]) -> None:
    """Every request ends final: confirmed with exactly one transfer, or failed with a reason and none."""
    by_command: dict[str, int] = {}
    for t in sim.transfers():
        by_command[t.command_id] = by_command.get(t.command_id, 0) + 1
    assert all(n == 1 for n in by_command.values()), by_command
    for r in reqs:
        state = proc.book.get(r.payment_id)
        assert state is not None and state.final
        assert (state.status == "confirmed") == (command_id(r.payment_id) in by_command)
        assert state.status == "confirmed" or state.last_error, state


async def test_an_expired_preapproval_is_a_final_failure_before_any_submission(log: EmbeddedLog) -> None:
    sim = simulator(preapproval=False)
    sim.add_preapproval(APP, expires_at=datetime.now(UTC) - timedelta(days=1))
    await charge(log, sim, [request(PARTIES[0], 0), request(PARTIES[1], 0)])
    assert sim.transfers() == [] and sim.requests["submit"] == 0
    failed = [x.event async for x in log.read() if isinstance(x.event, PaymentFailed)]
    assert len(failed) == 2
    assert all(f.final and f.code == "PREAPPROVAL_EXPIRED" and "billing setup" in f.message for f in failed)
    assert sim.requests["scan-preapproval"] <= 2  # not fetched again for every payment
