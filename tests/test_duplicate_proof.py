"""DUPLICATE_COMMAND is "paid" only once the earlier transfer is proved to be this period's.

The ledger already holds our commandId (an earlier run, another state folder, an older
version's id): the processor confirms only when Scan shows that transfer from this sender to
this receiver, for this amount, with the description that names this period. Otherwise the
payment fails for good, saying the period is not paid, and nothing more moves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.canton.port import Accepted, Prepared
from pipeline.events import PaymentConfirmed, PaymentFailed, PaymentRequested, Period
from pipeline.ids import command_id, description, payment_id
from pipeline.log.embedded import EmbeddedLog
from pipeline.processor.retry import RetryPolicy
from pipeline.processor.runner import Processor
from pipeline.simulator.app import Simulator
from tests.canton_sim import APP, USERS, adapter, simulator

ALICE = next(iter(USERS))
START = datetime(2026, 12, 1, tzinfo=UTC)
END = START + timedelta(days=30)
FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, horizon=60)


def request(amount: str = "2") -> PaymentRequested:
    return PaymentRequested(
        payment_id=payment_id(APP, ALICE, "prover", START, END),
        at=datetime.now(UTC),
        party=ALICE,
        user_id="alice",
        plan="prover",
        period=Period(index=9, start=START, end=END),
        amount=Decimal(amount),
        receiver=APP,
        description=description("prover", "alice", START, END),
    )


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[EmbeddedLog]:
    opened = EmbeddedLog.open(tmp_path / "log", sync=False)
    yield opened
    await opened.close()


async def earlier_transfer(sim: Simulator, req: PaymentRequested, *, amount: str, text: str) -> None:
    """What another state folder (or an older version) already put on the ledger under req's commandId."""
    async with adapter(sim) as port:
        prepared = await port.prepare(ALICE, Decimal(amount))
        assert isinstance(prepared, Prepared)
        done = await port.submit(
            prepared,
            sender=ALICE,
            receiver=APP,
            amount=Decimal(amount),
            description=text,
            command_id=command_id(req.payment_id),
            submission_id="earlier-run",
        )
        assert isinstance(done, Accepted)


async def settle(log: EmbeddedLog, sim: Simulator, req: PaymentRequested) -> list[object]:
    await log.append(req)
    async with adapter(sim) as port:
        proc = Processor(log, port, clock=lambda: datetime.now(UTC), policy=FAST, verify_timeout=0.3)
        await asyncio.wait_for(proc.run({req.payment_id}), timeout=30)
    return [r.event async for r in log.read() if isinstance(r.event, PaymentConfirmed | PaymentFailed)]


async def test_the_same_period_charged_earlier_is_paid_without_a_second_transfer(log: EmbeddedLog) -> None:
    sim, req = simulator(), request()
    await earlier_transfer(sim, req, amount="2", text=req.description)
    (outcome,) = await settle(log, sim, req)
    assert isinstance(outcome, PaymentConfirmed) and outcome.verified_by == "scan"
    assert outcome.update_id == sim.transfers()[0].update_id
    assert len(sim.transfers()) == 1 and sim.balance(APP) == Decimal("102")


@pytest.mark.parametrize(
    ("amount", "text", "why"),
    [
        ("2", "prover subscription payment for alice (period 0)", "is described"),  # an older version's period 0
        ("1.5", None, "sends 1.5"),  # the same commandId at another price
    ],
)
async def test_another_transfer_under_our_command_id_is_never_taken_for_paid(
    log: EmbeddedLog, amount: str, text: str | None, why: str
) -> None:
    sim, req = simulator(), request()
    await earlier_transfer(sim, req, amount=amount, text=text or req.description)
    (outcome,) = await settle(log, sim, req)
    assert isinstance(outcome, PaymentFailed) and outcome.final and not outcome.retryable
    assert outcome.code == "DUPLICATE_NOT_THIS_PAYMENT"
    assert "this period is NOT paid" in outcome.message and why in outcome.message
    assert len(sim.transfers()) == 1  # nothing more moved
