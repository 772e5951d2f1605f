"""Backpressure (issue #15, point 5): the AIMD window, and pay-all against a participant
limited to a few commands in flight (the simulator in its real mode, only the limit lowered)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx

from pipeline.canton.http import asgi_transport
from pipeline.events import PaymentConfirmed, PaymentFailed, PaymentRequested, PaymentSubmitted, Period
from pipeline.ids import command_id, payment_id
from pipeline.log.embedded import EmbeddedLog
from pipeline.processor.retry import RetryPolicy
from pipeline.processor.runner import Processor
from pipeline.processor.submit_window import Aimd
from pipeline.simulator.app import DEFAULT_MAX_COMMANDS_IN_FLIGHT
from tests.canton_sim import APP, TOKEN, adapter, simulator

# --- the pure controller -------------------------------------------------------------------------


def test_slow_start_doubles_per_round_trip_until_the_first_backpressure() -> None:
    window = Aimd.starting(ceiling=100, start=4)
    for _ in range(4):  # one full window of acceptances
        window = window.accepted(limiting=True)
    assert window.size == 8
    window = window.backpressure(started_epoch=0)
    assert (window.size, window.slow_start, window.epoch) == (7, False, 1)  # 8 × 0.97


def test_after_slow_start_it_grows_by_one_per_full_window() -> None:
    window = Aimd(ceiling=100, limit=10.0, slow_start=False)
    for _ in range(10):
        window = window.accepted(limiting=True)
    assert window.size == 10 and 10.9 < window.limit < 11.0  # +1/limit each: one window's worth
    window = window.accepted(limiting=True)
    assert window.size == 11


def test_an_idle_window_does_not_grow() -> None:
    window = Aimd(ceiling=100, limit=10.0)
    assert window.accepted(limiting=False) == window


def test_one_overload_decreases_once_however_many_rejections_it_causes() -> None:
    window = Aimd(ceiling=100, limit=30.0, slow_start=False)
    once = window.backpressure(started_epoch=0)
    assert once.backpressure(started_epoch=0) == once  # started before the decrease: same overload
    assert once.backpressure(started_epoch=1).size == 28  # a new overload: 29.1 × 0.97


def test_the_window_stays_between_floor_and_ceiling() -> None:
    window = Aimd(ceiling=3, limit=3.0)
    assert window.accepted(limiting=True).size == 3
    low = Aimd(ceiling=3, limit=1.0)
    assert low.backpressure(started_epoch=0).size == 1


# --- the simulator's limit, as the participant's command service -----------------------------------


async def test_the_participant_refuses_submissions_beyond_its_in_flight_limit() -> None:
    sim = simulator()
    assert sim.max_commands_in_flight == DEFAULT_MAX_COMMANDS_IN_FLIGHT == 256
    sim.max_commands_in_flight, sim.submit_latency = 1, 0.2
    body = {"commands": [], "commandId": "c-1", "actAs": ["x"]}
    async with httpx.AsyncClient(transport=asgi_transport(sim), base_url="http://sim") as client:

        async def post(cid: str) -> httpx.Response:
            return await client.post(
                "/v2/commands/submit-and-wait",
                json=dict(body, commandId=cid),
                headers={"authorization": f"Bearer {TOKEN}"},
            )

        first = asyncio.create_task(post("c-1"))
        while sim.commands_in_flight == 0:
            await asyncio.sleep(0.01)
        refused = await post("c-2")
        await first
    assert refused.status_code == 409
    doc = refused.json()
    assert (doc["code"], doc["errorCategory"]) == ("PARTICIPANT_BACKPRESSURE", 2)
    assert doc["cause"] == "The participant is overloaded: Maximum number of in-flight requests reached"
    assert sim.commands_in_flight == 0


# --- the processor adapts to it ----------------------------------------------------------------------

PARTIES = [f"user{i}::1220" + f"{i:02x}" * 30 for i in range(40)]


def request(party: str) -> PaymentRequested:
    start = datetime(2026, 11, 24, tzinfo=UTC)
    return PaymentRequested(
        payment_id=payment_id(APP, party, "prover", start, start + timedelta(minutes=5)),
        at=datetime.now(UTC),
        party=party,
        user_id=party.split("::")[0],
        plan="prover",
        amount=Decimal(2),
        receiver=APP,
        description="prover payment",
        period=Period(index=0, start=start, end=start + timedelta(minutes=5)),
    )


async def test_backpressure_costs_no_attempt_and_every_payment_goes_through(tmp_path: Path) -> None:
    log = EmbeddedLog.open(tmp_path / "log", sync=False)
    sim = simulator({p: Decimal(100) for p in PARTIES})
    sim.max_commands_in_flight, sim.submit_latency = 4, 0.05
    reqs = [request(p) for p in PARTIES]
    await log.append_batch(reqs)
    policy = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.05, horizon=120)
    async with adapter(sim) as port:
        proc = Processor(log, port, clock=lambda: datetime.now(UTC), policy=policy, verify_timeout=0.5)
        await asyncio.wait_for(proc.run({r.payment_id for r in reqs}), timeout=60)
    events = [r.event async for r in log.read()]
    await log.close()
    assert sim.requests["submit"] > len(reqs)  # the participant did push back
    assert [e for e in events if isinstance(e, PaymentFailed)] == []
    assert {e.attempt for e in events if isinstance(e, PaymentSubmitted)} == {1}
    assert len([e for e in events if isinstance(e, PaymentConfirmed)]) == len(reqs)
    assert sorted(t.command_id for t in sim.transfers()) == sorted(command_id(r.payment_id) for r in reqs)
    window = proc.submit_window.controller  # narrowed towards the participant's 4 (from 8), not ours (256)
    assert window.size < 8 and not window.slow_start
