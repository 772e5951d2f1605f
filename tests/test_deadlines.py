"""Daml deadline checks as a real Splice node reports them (issue #15, point 3).

A round that has not opened yet fails `assertDeadlineExceeded` (DAML_FAILURE, error id
stdlib.daml.com/deadline-not-exceeded): refresh the Scan context and retry. An expired
preapproval fails `assertWithinDeadline` (.../deadline-exceeded): final PREAPPROVAL_EXPIRED,
but only after Scan was asked again (it may have been renewed meanwhile).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import msgspec
import pytest

from pipeline.canton.adapter import CantonAdapter
from pipeline.canton.errors import DEADLINE_EXCEEDED, DEADLINE_NOT_EXCEEDED, CantonError, ErrorClass
from pipeline.canton.port import Accepted, Prepared, Rejected
from pipeline.simulator.clock import ManualClock
from tests.canton_fixtures import (  # noqa: F401 - the *_fixture names register fixtures
    ALICE,
    APP,
    Canton,
    adapter_on,
    canton_fixture,
    clock_fixture,
    new_sim,
    payment,
    sim_fixture,
)


async def send(port: CantonAdapter, prepared: Prepared) -> Accepted | Rejected:
    return await port.submit(
        prepared,
        sender=ALICE,
        receiver=APP,
        amount=Decimal(1),
        description="deadline test",
        command_id="pay-deadline",
        submission_id="attempt-1",
    )


async def test_a_round_not_open_yet_is_daml_failure_deadline_not_exceeded(canton: Canton) -> None:
    command = await payment(canton, ALICE, "1", "pay-early")
    newest = max(canton.sim.ledger.rounds(), key=lambda r: r[0].number)[1]
    doc = msgspec.to_builtins(command)
    doc["commands"][0]["ExerciseCommand"]["choiceArgument"]["context"]["context"]["openMiningRound"] = (
        newest.contract_id
    )
    for disclosed in doc["disclosedContracts"]:
        if disclosed["templateId"].endswith("OpenMiningRound"):
            disclosed.update(contractId=newest.contract_id, createdEventBlob=newest.blob)
    with pytest.raises(CantonError) as caught:
        await canton.ledger.submit_and_wait(msgspec.convert(doc, type(command)))
    err = caught.value
    assert (err.status, err.code, err.category) == (400, "DAML_FAILURE", 9)
    assert err.error_id == DEADLINE_NOT_EXCEEDED and "openRound.opensAt" in err.cause
    assert "deadline" in err.context
    assert err.kind is ErrorClass.RETRYABLE and err.stale_context and not err.deadline_passed


async def test_an_expired_preapproval_is_final_after_scan_confirms_it(clock: ManualClock) -> None:
    sim = new_sim(clock, preapproval=False)
    sim.add_preapproval(APP, expires_at=clock() + timedelta(minutes=30))
    skew = [timedelta(minutes=-5)]  # our clock behind ledger time: prepare still trusts the preapproval
    async with adapter_on(sim, lambda: clock() + skew[0]) as port:
        sim.advance(timedelta(minutes=31))
        prepared = await port.prepare(ALICE, Decimal(1))
        assert isinstance(prepared, Prepared)
        skew[0] = timedelta(0)  # the re-check sees it with the ledger's eyes
        result = await send(port, prepared)
    assert isinstance(result, Rejected)
    assert (result.kind, result.code) == ("final", "PREAPPROVAL_EXPIRED") and "billing setup" in result.message
    assert sim.transfers() == []


async def test_a_preapproval_renewed_meanwhile_makes_the_deadline_retryable(clock: ManualClock) -> None:
    sim = new_sim(clock, preapproval=False)
    sim.add_preapproval(APP, expires_at=clock() + timedelta(minutes=30))
    async with adapter_on(sim, clock) as port:
        prepared = await port.prepare(ALICE, Decimal(1))  # context holds the soon-expired one
        assert isinstance(prepared, Prepared)
        sim.advance(timedelta(minutes=31))
        sim.add_preapproval(APP, expires_at=clock() + timedelta(days=90))  # renewed
        result = await send(port, prepared)
        assert isinstance(result, Rejected)
        assert (result.kind, result.error_id, result.stale_context) == ("retryable", DEADLINE_EXCEEDED, True)
        again = await port.prepare(ALICE, Decimal(1))  # the re-check already refreshed the context
        assert isinstance(again, Prepared)
        assert isinstance(await send(port, again), Accepted)
    assert [t.command_id for t in sim.transfers()] == ["pay-deadline"]
