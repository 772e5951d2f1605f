"""The simulator's ledger on its own terms: rounds on a clock, deduplication windows, disclosure rules."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from pipeline.canton.errors import CantonError, ErrorClass
from pipeline.simulator.clock import ManualClock
from pipeline.simulator.faults import Fault
from pipeline.simulator.model import open_rounds
from tests.canton_fixtures import (  # noqa: F401 - the *_fixture names register fixtures
    ALICE,
    APP,
    AUTH,
    BOB,
    Canton,
    canton_fixture,
    clock_fixture,
    new_sim,
    open_clients,
    payment,
    raw,
    sim_fixture,
)

# --- rounds -------------------------------------------------------------------------------------


def test_three_rounds_are_open_and_the_newest_opens_a_tick_later(clock: ManualClock) -> None:
    genesis, tick = clock(), timedelta(minutes=10)
    rounds = open_rounds(genesis, tick, genesis + 5 * tick + timedelta(minutes=3))
    assert [r.number for r in rounds] == [4, 5, 6]
    now = genesis + 5 * tick + timedelta(minutes=3)
    assert [r.opens_at <= now for r in rounds] == [True, True, False]
    assert all(r.target_closes_at == r.opens_at + 2 * tick for r in rounds)


async def test_rounds_move_with_the_clock(canton: Canton) -> None:
    first = set((await canton.scan.open_and_issuing_mining_rounds()).open_mining_rounds)
    canton.sim.advance(timedelta(minutes=10))
    second = set((await canton.scan.open_and_issuing_mining_rounds()).open_mining_rounds)
    assert len(first) == len(second) == 3 and len(first & second) == 2


async def test_a_round_that_has_not_opened_fails_the_daml_deadline_check(canton: Canton) -> None:
    command = await payment(canton, ALICE, "1", "pay-early")
    newest = max(canton.sim.ledger.rounds(), key=lambda r: r[0].number)[1].contract_id
    doc = msgspec.to_builtins(command)
    doc["commands"][0]["ExerciseCommand"]["choiceArgument"]["context"]["context"]["openMiningRound"] = newest
    for disclosed in doc["disclosedContracts"]:
        if disclosed["templateId"].endswith("OpenMiningRound"):
            disclosed["contractId"] = newest
            disclosed["createdEventBlob"] = canton.sim.ledger.contracts[newest].blob
    async with raw(canton.sim) as client:
        answer = await client.post("/v2/commands/submit-and-wait", json=doc, headers=AUTH)
    assert answer.status_code == 400 and "openRound.opensAt" in answer.json()["cause"]
    with pytest.raises(CantonError) as caught:
        await canton.ledger.submit_and_wait(msgspec.convert(doc, type(command)))
    assert caught.value.kind is ErrorClass.RETRYABLE and caught.value.stale_context


# --- deduplication ------------------------------------------------------------------------------


async def test_dedup_holds_within_the_sent_period_and_ends_after_it(canton: Canton) -> None:
    command = await payment(canton, ALICE, "1", "pay-w", dedup_seconds=60)
    await canton.ledger.submit_and_wait(command)
    canton.sim.advance(59)
    with pytest.raises(CantonError) as caught:
        await canton.ledger.submit_and_wait(command)
    assert caught.value.kind is ErrorClass.DUPLICATE
    canton.sim.advance(2)
    canton.context.invalidate()
    await canton.ledger.submit_and_wait(await payment(canton, ALICE, "1", "pay-w", dedup_seconds=60))
    assert [t.command_id for t in canton.sim.transfers()] == [
        "pay-w",
        "pay-w",
    ]  # why the period matters


async def test_the_change_id_includes_the_acting_parties(canton: Canton) -> None:
    await canton.ledger.submit_and_wait(await payment(canton, ALICE, "1", "same-id"))
    await canton.ledger.submit_and_wait(await payment(canton, BOB, "1", "same-id"))
    assert len(canton.sim.transfers()) == 2


async def test_a_rejected_command_can_be_submitted_again_with_the_same_id(canton: Canton) -> None:
    canton.sim.inject(Fault.INACTIVE_CONTRACTS)
    command = await payment(canton, ALICE, "1", "pay-again")
    with pytest.raises(CantonError):
        await canton.ledger.submit_and_wait(command)
    await canton.ledger.submit_and_wait(command)
    assert len(canton.sim.transfers()) == 1


# --- ledger model -------------------------------------------------------------------------------


async def test_a_transfer_consumes_inputs_and_creates_payment_and_change(canton: Canton) -> None:
    before = await canton.ledger.ledger_end()
    old = {h.contract_id for h in await canton.ledger.amulets(ALICE)}
    await canton.ledger.submit_and_wait(await payment(canton, ALICE, "70", "pay-m"))
    now = await canton.ledger.amulets(ALICE)
    assert not old & {h.contract_id for h in now} and [h.initial_amount for h in now] == [30]
    assert {h.contract_id for h in await canton.ledger.amulets(ALICE, at_offset=before)} == old  # history
    assert canton.sim.balances()[APP] == 170


async def test_contracts_the_sender_cannot_see_must_be_disclosed_with_their_blob(
    canton: Canton,
) -> None:
    doc = msgspec.to_builtins(await payment(canton, ALICE, "1", "pay-nd"))
    hidden = dict(doc, disclosedContracts=doc["disclosedContracts"][:1])
    bad_blob = dict(
        doc,
        disclosedContracts=[dict(d, createdEventBlob="AAAA") for d in doc["disclosedContracts"]],
    )
    async with raw(canton.sim) as client:
        missing = await client.post("/v2/commands/submit-and-wait", json=hidden, headers=AUTH)
        wrong = await client.post("/v2/commands/submit-and-wait", json=bad_blob, headers=AUTH)
    assert missing.status_code == 404 and missing.json()["code"] == "CONTRACT_NOT_FOUND"
    assert wrong.status_code == 400 and wrong.json()["code"] == "INVALID_ARGUMENT"
    assert canton.sim.transfers() == []


async def test_an_expired_preapproval_fails_the_send(clock: ManualClock) -> None:
    sim = new_sim(clock, preapproval=False)
    sim.add_preapproval(APP, expires_at=clock() + timedelta(minutes=30))
    async with open_clients(sim) as c:
        command = await payment(c, ALICE, "1", "pay-x")
        sim.advance(timedelta(minutes=31))
        with pytest.raises(CantonError) as caught:
            await c.ledger.submit_and_wait(command)
    assert "TransferPreapproval.expiresAt" in caught.value.cause and caught.value.stale_context


async def test_only_the_sender_can_authorise_a_send(canton: Canton) -> None:
    doc = msgspec.to_builtins(await payment(canton, ALICE, "1", "pay-auth"))
    async with raw(canton.sim) as client:
        answer = await client.post("/v2/commands/submit-and-wait", json=dict(doc, actAs=[BOB]), headers=AUTH)
    assert answer.status_code == 400 and answer.json()["code"] == "DAML_AUTHORIZATION_ERROR"
