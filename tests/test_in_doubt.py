"""The in-doubt lookup (issue #15, point 4), against the simulator in its real mode.

An earlier rejected completion must not hide a later acceptance; past the deduplication
period nothing is submitted again unless a read to the ledger end proves it was not
accepted; a payment whose outcome the ledger cannot prove (pruned history) is parked as
IN_DOUBT, final, and `billing restart` does not ask it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from commands.services.payments import retry_requests
from pipeline.canton.adapter import CantonAdapter
from pipeline.canton.errors import CantonError
from pipeline.canton.port import Accepted, CompletionFound, Prepared, Unproved
from pipeline.events import PaymentConfirmed, PaymentFailed, PaymentRequested, PaymentSubmitted, Period
from pipeline.ids import command_id, payment_id
from pipeline.log.embedded import EmbeddedLog
from pipeline.processor.book import PaymentState
from pipeline.processor.decisions import beyond_dedup
from pipeline.processor.retry import RetryPolicy
from pipeline.processor.runner import Processor
from pipeline.simulator.app import Simulator
from pipeline.simulator.clock import ManualClock
from pipeline.simulator.faults import Fault
from tests.canton_fixtures import ALICE, APP, BOB, adapter_on, new_sim

DEDUP = 3600
POLICY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, horizon=10 * DEDUP)


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[EmbeddedLog]:
    opened = EmbeddedLog.open(tmp_path / "log", sync=False)
    yield opened
    await opened.close()


def request_at(clock: ManualClock) -> PaymentRequested:
    start = clock() - timedelta(days=1)
    return PaymentRequested(
        payment_id=payment_id(APP, ALICE, "prover", start, start + timedelta(days=1)),
        at=clock(),
        party=ALICE,
        user_id="alice",
        plan="prover",
        amount=Decimal(10),
        receiver=APP,
        period=Period(index=0, start=start, end=start + timedelta(days=1)),
        description="prover payment",
    )


async def attempt(port: CantonAdapter, req: PaymentRequested, n: int, *, spent: bool = False) -> int:
    """Submit attempt ``n`` of ``req`` as the processor would; returns the offset before it.
    ``spent``: Bob takes Alice's chosen inputs first, so the ledger rejects it after sequencing."""
    prepared = await port.prepare(ALICE, req.amount)
    assert isinstance(prepared, Prepared)
    if spent:
        await steal_inputs(port, prepared)
    result = await port.submit(
        prepared,
        sender=ALICE,
        receiver=APP,
        amount=req.amount,
        description=req.description,
        command_id=command_id(req.payment_id),
        submission_id=f"attempt-{n}",
    )
    assert isinstance(result, Accepted) != spent, result
    return prepared.ledger_offset


async def steal_inputs(port: CantonAdapter, prepared: Prepared) -> None:
    # The same inputs spent by another command of Alice's (as if another tool paid with them).
    other = await port.submit(
        prepared,
        sender=ALICE,
        receiver=APP,
        amount=Decimal(1),
        description="elsewhere",
        command_id="someone-else",
        submission_id="x",
    )
    assert isinstance(other, Accepted)


def submitted(req: PaymentRequested, clock: ManualClock, n: int, offset: int) -> PaymentSubmitted:
    return PaymentSubmitted(
        payment_id=req.payment_id,
        at=clock(),
        command_id=command_id(req.payment_id),
        submission_id=f"attempt-{n}",
        attempt=n,
        ledger_offset_before=offset,
    )


async def resume(log: EmbeddedLog, sim: Simulator, clock: ManualClock, req: PaymentRequested) -> Processor:
    """A processor started (after a crash, say) on what the log holds."""
    async with adapter_on(sim, clock, dedup_seconds=DEDUP) as port:
        proc = Processor(log, port, clock=clock, policy=POLICY, verify_timeout=0.5, dedup_seconds=DEDUP)
        await asyncio.wait_for(proc.run({req.payment_id}), timeout=20)
    return proc


def charges(sim: Simulator, req: PaymentRequested) -> int:
    return sum(t.command_id == command_id(req.payment_id) for t in sim.transfers())


# --- the client ----------------------------------------------------------------------------------


async def test_an_earlier_rejection_does_not_hide_a_later_acceptance() -> None:
    clock = ManualClock()
    sim = new_sim(clock)
    req = request_at(clock)
    async with adapter_on(sim, clock) as port:
        begin = await attempt(port, req, 1, spent=True)  # a rejected completion first
        await attempt(port, req, 2)
        found = await port.find_completion(party=ALICE, command_id=command_id(req.payment_id), begin_offset=begin)
        proof = await port.prove_outcome(party=ALICE, command_id=command_id(req.payment_id), begin_offset=begin)
    assert isinstance(found, CompletionFound) and found.accepted
    assert isinstance(proof, CompletionFound) and proof.update_id == found.update_id


async def test_a_read_to_the_ledger_end_proves_no_acceptance_or_says_it_cannot() -> None:
    clock = ManualClock()
    sim = new_sim(clock)
    req = request_at(clock)
    async with adapter_on(sim, clock) as port:
        begin = await attempt(port, req, 1, spent=True)
        for i in range(3):  # more of Alice's and Bob's transactions after it
            prepared = await port.prepare(BOB, Decimal(1))
            assert isinstance(prepared, Prepared)
            await port.submit(
                prepared,
                sender=BOB,
                receiver=APP,
                amount=Decimal(1),
                description="other",
                command_id=f"other-{i}",
                submission_id="s",
            )
        cid = command_id(req.payment_id)
        assert await port.prove_outcome(party=ALICE, command_id=cid, begin_offset=begin) is None
        sim.prune(sim.ledger.offset)
        assert await port.find_completion(party=ALICE, command_id=cid, begin_offset=begin) is None
        unproved = await port.prove_outcome(party=ALICE, command_id=cid, begin_offset=begin)
        with pytest.raises(CantonError) as caught:
            await port.ledger.find_transaction(ALICE, cid, begin_exclusive=begin, end_inclusive=sim.ledger.offset)
    assert isinstance(unproved, Unproved) and "pruned" in unproved.reason
    err = caught.value
    assert (err.code, err.status, err.context["earliest_offset"]) == (
        "PARTICIPANT_PRUNED_DATA_ACCESSED",
        400,
        str(sim.ledger.offset),
    )


# --- the processor ---------------------------------------------------------------------------------


async def after_crash(
    log: EmbeddedLog, attempts: list[bool], *, past_dedup: bool, pruned: bool = False, idle: bool = False
) -> tuple[Simulator, PaymentRequested, Processor]:
    """``attempts`` of one payment reach the ledger (True: accepted, False: rejected after
    sequencing) and are recorded, but their answers are lost (the process died); then the clock
    moves past the deduplication period or not, the participant is pruned or not, its
    completions lists are cut by their idle timeout or not, and a new processor resumes."""
    clock = ManualClock()
    sim = new_sim(clock)
    req = request_at(clock)
    records: list[PaymentRequested | PaymentSubmitted] = [req]
    async with adapter_on(sim, clock, dedup_seconds=DEDUP) as port:
        for n, accepted in enumerate(attempts, start=1):
            records.append(submitted(req, clock, n, await attempt(port, req, n, spent=not accepted)))
    await log.append_batch(records)
    if past_dedup:
        clock.advance(timedelta(seconds=2 * DEDUP))  # the ledger would not deduplicate a new submission
    if pruned:
        sim.prune(sim.ledger.offset)
    if idle:
        sim.inject("idle_timeout", count=100)  # every completions read answers []
    return sim, req, await resume(log, sim, clock, req)


async def test_past_the_dedup_period_an_acceptance_behind_a_rejection_is_confirmed(log: EmbeddedLog) -> None:
    sim, req, proc = await after_crash(log, [False, True], past_dedup=True)
    assert charges(sim, req) == 1
    assert (state := proc.book.get(req.payment_id)) is not None and state.status == "confirmed"


async def test_past_the_dedup_period_a_proved_rejection_is_submitted_again(log: EmbeddedLog) -> None:
    sim, req, proc = await after_crash(log, [False], past_dedup=True)
    assert charges(sim, req) == 1
    assert (state := proc.book.get(req.payment_id)) is not None and state.status == "confirmed"


async def test_an_outcome_the_pruned_ledger_cannot_prove_is_parked_in_doubt(log: EmbeddedLog) -> None:
    sim, req, proc = await after_crash(log, [True], past_dedup=True, pruned=True)
    assert charges(sim, req) == 1  # never charged a second time
    (failed,) = [r.event async for r in log.read() if isinstance(r.event, PaymentFailed)]
    assert (failed.code, failed.final, failed.retryable) == ("IN_DOUBT", True, False)
    assert command_id(req.payment_id) in failed.message and "NOT submitted again" in failed.message
    assert "\n" not in failed.message
    assert [r async for r in log.read() if isinstance(r.event, PaymentConfirmed)] == []
    assert retry_requests(proc.book, proc.clock()) == []  # `billing restart` leaves it alone


async def test_within_the_dedup_period_a_pruned_lookup_is_not_parked(log: EmbeddedLog) -> None:
    # The ledger still deduplicates: submitting again is safe, so nothing is parked.
    sim, req, proc = await after_crash(log, [False], past_dedup=False, pruned=True)
    assert charges(sim, req) == 1
    assert (state := proc.book.get(req.payment_id)) is not None and state.status == "confirmed"


async def test_an_empty_completions_answer_is_not_taken_for_not_committed(log: EmbeddedLog) -> None:
    sim, req, proc = await after_crash(log, [True], past_dedup=True, idle=True)
    assert ("completions", Fault.IDLE_TIMEOUT) in sim.faults.fired
    assert charges(sim, req) == 1  # found by the read to the ledger end, not submitted again
    assert (state := proc.book.get(req.payment_id)) is not None and state.status == "confirmed"


def test_the_dedup_period_ends_a_margin_early_and_an_unknown_start_counts_as_ended() -> None:
    clock = ManualClock()
    state = PaymentState(request=request_at(clock), first_submitted_at=clock())
    assert not beyond_dedup(state, clock() + timedelta(seconds=DEDUP - 301), DEDUP)
    assert beyond_dedup(state, clock() + timedelta(seconds=DEDUP - 300), DEDUP)  # 5 min margin
    assert beyond_dedup(msgspec.structs.replace(state, first_submitted_at=None), clock(), DEDUP)
