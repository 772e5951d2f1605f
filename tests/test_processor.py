"""The processor against a scripted ledger: exactly one transfer per payment, whatever fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pipeline.canton.port import Accepted, Prepared, Rejected
from pipeline.events import PaymentConfirmed, PaymentFailed, PaymentRequested, PaymentSubmitted, Period
from pipeline.ids import command_id, payment_id
from pipeline.log.embedded import EmbeddedLog
from pipeline.processor.book import PaymentBook
from pipeline.processor.retry import RetryPolicy
from pipeline.processor.runner import Processor
from tests.fakes import FakeLedger

E = TypeVar("E")

APP = "app::1220aa"
FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, horizon=60)
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def request(user: str = "alice", index: int = 0, amount: str = "2") -> PaymentRequested:
    party = f"{user}::1220bb"
    start = T0 + timedelta(minutes=5 * index)
    return PaymentRequested(
        payment_id=payment_id(APP, party, "prover", start, start + timedelta(minutes=5)),
        at=datetime.now(UTC),
        party=party,
        user_id=user,
        plan="prover",
        period=Period(index=index, start=start, end=start + timedelta(minutes=5)),
        amount=Decimal(amount),
        receiver=APP,
        description="prover subscription payment",
    )


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[EmbeddedLog]:
    opened = EmbeddedLog.open(tmp_path / "log", sync=False)
    yield opened
    await opened.close()


def processor(log: EmbeddedLog, ledger: FakeLedger, **kw: object) -> Processor:
    return Processor(log, ledger, clock=lambda: datetime.now(UTC), policy=FAST, verify_timeout=0.2, **kw)  # type: ignore[arg-type]


async def run_until_settled(log: EmbeddedLog, ledger: FakeLedger, *requests: PaymentRequested) -> PaymentBook:
    await log.append_batch(list(requests))
    proc = processor(log, ledger)
    await asyncio.wait_for(proc.run({r.payment_id for r in requests}), timeout=10)
    return proc.book


async def events_of(log: EmbeddedLog, kind: type[E]) -> list[E]:
    return [r.event async for r in log.read() if isinstance(r.event, kind)]


async def test_each_request_becomes_one_verified_transfer(log: EmbeddedLog) -> None:
    ledger = FakeLedger()
    reqs = [request("alice"), request("bob"), request("carol", amount="0.3000000001")]
    book = await run_until_settled(log, ledger, *reqs)
    assert len(ledger.transfers) == 3
    for r in reqs:
        assert [t.amount for t in ledger.transfers_for(command_id(r.payment_id))] == [r.amount]
        assert (state := book.get(r.payment_id)) is not None and state.status == "confirmed"
    confirmed = await events_of(log, PaymentConfirmed)
    assert {c.verified_by for c in confirmed} == {"scan"}
    assert sorted(c.amount for c in confirmed) == sorted(r.amount for r in reqs)
    submitted = await events_of(log, PaymentSubmitted)
    assert [s.attempt for s in submitted] == [1, 1, 1]


async def test_duplicate_requests_for_one_period_charge_once(log: EmbeddedLog) -> None:
    ledger = FakeLedger()
    r = request()
    await run_until_settled(log, ledger, r, r, r)
    assert len(ledger.transfers) == 1
    assert len(await events_of(log, PaymentConfirmed)) == 1


@pytest.mark.parametrize("fault", ["commit_then_timeout", "timeout", "retryable", "stale"])
async def test_faults_end_in_exactly_one_transfer(log: EmbeddedLog, fault: str) -> None:
    ledger = FakeLedger()
    ledger.faults.extend([fault, fault])
    r = request()
    book = await run_until_settled(log, ledger, r)
    assert len(ledger.transfers_for(command_id(r.payment_id))) == 1
    assert (state := book.get(r.payment_id)) is not None and state.status == "confirmed"
    if fault == "stale":
        assert ledger.invalidations >= 1


async def test_in_doubt_is_reconciled_before_any_resubmission(log: EmbeddedLog) -> None:
    ledger = FakeLedger()
    ledger.faults.append("commit_then_timeout")
    r = request()
    await run_until_settled(log, ledger, r)
    assert ledger.calls.count("submit") == 1, ledger.calls
    assert "find_completion" in ledger.calls


async def test_final_rejection_is_recorded_with_reason_and_not_retried(log: EmbeddedLog) -> None:
    ledger = FakeLedger()
    ledger.faults.append("final")
    r = request()
    book = await run_until_settled(log, ledger, r)
    assert ledger.transfers == []
    assert ledger.calls.count("submit") == 1
    (failed,) = await events_of(log, PaymentFailed)
    assert failed.final and not failed.retryable and "expired" in failed.message
    assert (state := book.get(r.payment_id)) is not None and state.status == "failed"


async def test_insufficient_funds_fail_before_submission(log: EmbeddedLog) -> None:
    ledger = FakeLedger(balances={"alice::1220bb": Decimal("1")})
    await run_until_settled(log, ledger, request(amount="2"))
    assert "submit" not in ledger.calls
    (failed,) = await events_of(log, PaymentFailed)
    assert failed.code == "INSUFFICIENT_FUNDS" and failed.final


async def test_retries_stop_at_the_policy_limit(log: EmbeddedLog) -> None:
    ledger = FakeLedger()
    ledger.faults.extend(["retryable"] * 10)
    r = request()
    await run_until_settled(log, ledger, r)
    failures = await events_of(log, PaymentFailed)
    assert [f.final for f in failures] == [False, False, False, True]
    assert "gave up after 4 attempt(s)" in failures[-1].message
    assert all(f.next_attempt_at is not None for f in failures[:-1])
    assert ledger.transfers == []


async def test_rerequest_after_final_failure_retries_with_the_same_command(log: EmbeddedLog) -> None:
    ledger = FakeLedger()
    ledger.faults.append("final")
    r = request()
    await run_until_settled(log, ledger, r)
    book = await run_until_settled(log, ledger, r)
    assert (state := book.get(r.payment_id)) is not None and state.status == "confirmed"
    assert len(ledger.transfers_for(command_id(r.payment_id))) == 1


async def test_lagging_scan_delays_but_never_fails_a_confirmation(log: EmbeddedLog) -> None:
    ledger = FakeLedger()
    ledger.scan_lag = 2
    book = await run_until_settled(log, ledger, request())
    (confirmed,) = await events_of(log, PaymentConfirmed)
    assert confirmed.verified_by == "scan"
    ledger.scan_lag = 10_000  # Scan never catches up within the timeout
    book = await run_until_settled(log, ledger, request("bob"))
    assert {c.verified_by for c in await events_of(log, PaymentConfirmed)} == {"scan", "ledger"}
    assert all(s.status == "confirmed" for s in book.payments.values())
    states = [book.get(r.payment_id) for r in (request(), request("bob"))]
    assert all(s is not None and s.status == "confirmed" for s in states)


@pytest.mark.parametrize("crash_at", ["before_submit", "after_commit"])
async def test_crash_then_restart_never_charges_twice(tmp_path: Path, crash_at: str) -> None:
    ledger = FakeLedger()
    r = request()
    first = EmbeddedLog.open(tmp_path / "log", sync=False)
    await first.append(r)
    if crash_at == "before_submit":
        ledger.gate = asyncio.Event()  # submit() blocks: PaymentSubmitted is recorded, nothing sent
    else:
        ledger.faults.append("commit_then_hang")  # committed, the answer never arrives
    running = asyncio.create_task(processor(first, ledger).run())
    while not await events_of(first, PaymentSubmitted):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    running.cancel()  # the process dies here
    await asyncio.gather(running, return_exceptions=True)
    await first.close()
    ledger.gate = None

    second = EmbeddedLog.open(tmp_path / "log", sync=False)
    proc = processor(second, ledger)
    await asyncio.wait_for(proc.run({r.payment_id}), timeout=10)
    assert len(ledger.transfers_for(command_id(r.payment_id))) == 1
    assert (state := proc.book.get(r.payment_id)) is not None and state.status == "confirmed"
    await second.close()


async def test_one_payment_at_a_time_per_sender(log: EmbeddedLog) -> None:
    ledger = FakeLedger()
    in_flight: dict[str, int] = {}
    peak: dict[str, int] = {}
    original = ledger.submit

    async def watched(prepared: Prepared, **kw: Any) -> Accepted | Rejected:
        sender = kw["sender"]
        in_flight[sender] = in_flight.get(sender, 0) + 1
        peak[sender] = max(peak.get(sender, 0), in_flight[sender])
        await asyncio.sleep(0.01)
        try:
            return await original(prepared, **kw)
        finally:
            in_flight[sender] -= 1

    ledger.submit = watched  # type: ignore[method-assign]
    reqs = [request(u, i) for u in ("alice", "bob") for i in range(5)]
    await run_until_settled(log, ledger, *reqs)
    assert len(ledger.transfers) == 10
    assert peak == {"alice::1220bb": 1, "bob::1220bb": 1}
