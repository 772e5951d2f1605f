"""The Scan client, the choice of a mining round, and the cached payment context."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from pipeline.canton.errors import CantonError, ErrorClass
from pipeline.canton.scan_context import (
    ChosenRound,
    ScanContextCache,
    choose_round,
    context_expiry,
    preapproval_usable,
)
from pipeline.canton.scan_types import Contract
from pipeline.canton.verification import TransferSeen, find_transfer
from pipeline.simulator.app import Simulator
from pipeline.simulator.clock import ManualClock
from tests.canton_fixtures import (  # noqa: F401 - the *_fixture names register fixtures
    ALICE,
    APP,
    BOB,
    Canton,
    canton_fixture,
    clock_fixture,
    new_sim,
    open_clients,
    payment,
    sim_fixture,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def a_round(number: int, opens_at: datetime) -> ChosenRound:
    contract = Contract(
        template_id="p:Splice.Round:OpenMiningRound",
        contract_id=f"r{number}",
        payload={},
        created_event_blob="b",
        created_at="2026-01-01T00:00:00Z",
    )
    return ChosenRound(contract=contract, number=number, opens_at=opens_at, max_num_inputs=100)


# --- round choice (pure) ------------------------------------------------------------------------


def test_the_newest_round_that_opened_long_enough_ago_is_chosen() -> None:
    rounds = [
        a_round(7, T0 - timedelta(minutes=10)),
        a_round(8, T0 - timedelta(minutes=1)),
        a_round(9, T0 + timedelta(minutes=9)),
    ]
    assert (chosen := choose_round(rounds, T0)) is not None and chosen.number == 8
    assert (chosen := choose_round(list(reversed(rounds)), T0)) is not None and chosen.number == 8


def test_a_round_that_opened_within_the_margin_is_not_used_yet() -> None:
    rounds = [a_round(7, T0 - timedelta(minutes=10)), a_round(8, T0 - timedelta(seconds=2))]
    assert (chosen := choose_round(rounds, T0)) is not None and chosen.number == 7
    assert (chosen := choose_round(rounds, T0, margin=timedelta(0))) is not None and chosen.number == 8
    assert (chosen := choose_round(rounds, T0 + timedelta(seconds=3))) is not None and chosen.number == 8


def test_the_context_expires_with_scan_ttl_or_when_a_newer_round_becomes_usable() -> None:
    rounds = [a_round(7, T0 - timedelta(minutes=10)), a_round(8, T0 + timedelta(minutes=1))]
    assert context_expiry(T0, timedelta(minutes=5), rounds) == T0 + timedelta(minutes=1, seconds=5)
    assert context_expiry(T0, timedelta(seconds=30), rounds) == T0 + timedelta(seconds=30)
    assert context_expiry(T0, timedelta(0), []) == T0


def test_no_usable_round() -> None:
    assert choose_round([], T0) is None
    assert choose_round([a_round(9, T0 + timedelta(seconds=1))], T0) is None


# --- Scan calls ---------------------------------------------------------------------------------


async def test_scan_serves_the_dso_rounds_and_the_app_contracts(canton: Canton) -> None:
    dso = await canton.scan.dso()
    assert dso.dso_party_id == canton.sim.ledger.dso_party
    assert dso.amulet_rules.domain_id == canton.sim.ledger.synchronizer_id
    rounds = await canton.scan.open_and_issuing_mining_rounds()
    assert len(rounds.open_mining_rounds) == 3 and rounds.time_to_live_in_microseconds > 0
    right = await canton.scan.featured_app_right(APP)  # the party id holds "::", quoted in the path
    assert right is not None and right.payload["provider"] == APP
    assert await canton.scan.featured_app_right(ALICE) is None
    preapproval = await canton.scan.transfer_preapproval(APP)
    assert preapproval is not None and preapproval.contract.payload["receiver"] == APP
    assert await canton.scan.transfer_preapproval(ALICE) is None  # a 404 is "has none"


async def test_scan_shows_a_payment_as_a_send_with_its_amulets(canton: Canton) -> None:
    done = await canton.ledger.submit_and_wait(await payment(canton, ALICE, "65", "pay-s"))
    update = await canton.scan.update_by_id(done.update_id)
    assert update is not None and update.update_id == done.update_id
    [send] = update.exercises("TransferPreapproval_Send")
    assert send.choice_argument["sender"] == ALICE and send.choice_argument["amount"] == "65"
    owners = sorted(e.create_arguments["owner"] for e in update.created())
    assert owners == sorted([APP, ALICE])  # the payment and Alice's change
    assert await canton.scan.update_by_id("1220" + "f" * 64) is None


async def test_update_history_is_paged_by_migration_and_record_time(canton: Canton) -> None:
    for i in range(3):
        await canton.ledger.submit_and_wait(await payment(canton, ALICE, "1", f"pay-{i}"))
        canton.sim.advance(1)
    first = await canton.scan.updates(page_size=2)
    second = await canton.scan.updates(page_size=2, after=first.next_after)
    ids = [t.update_id for t in first.transactions + second.transactions]
    assert ids == [t.update_id for t in canton.sim.ledger.transactions] and len(ids) == 3
    assert not first.complete and second.complete


# --- the cached payment context -----------------------------------------------------------------


async def test_the_context_is_cached_for_scan_time_to_live(canton: Canton, clock: ManualClock) -> None:
    ctx = await canton.context.get()
    assert await canton.context.get() is ctx and canton.sim.requests["scan-dso"] == 1
    assert ctx.receiver == APP and ctx.preapproval_provider == APP
    assert ctx.synchronizer_id == canton.sim.ledger.synchronizer_id and ctx.dso_party == canton.sim.ledger.dso_party
    clock.set(ctx.valid_until - timedelta(microseconds=1))
    assert await canton.context.get() is ctx
    clock.set(ctx.valid_until)  # Scan's TTL: the round set changes now, round 101 opens
    fresh = await canton.context.get()
    assert fresh is not ctx and canton.sim.requests["scan-dso"] == 2
    # 101 opened too recently: keep 100, but only until 101 is past the margin.
    assert fresh.open_round.number == ctx.open_round.number
    assert fresh.valid_until == fresh.fetched_at + timedelta(seconds=5)
    clock.set(fresh.valid_until)
    newest = await canton.context.get()
    assert newest.open_round.number == ctx.open_round.number + 1
    canton.context.invalidate()
    await canton.context.get()
    assert canton.sim.requests["scan-dso"] == 4


async def test_the_featured_right_is_the_preapproval_providers(clock: ManualClock) -> None:
    sim = new_sim(clock, preapproval=False)
    sim.add_preapproval(APP, provider=BOB)
    sim.feature(BOB)
    async with open_clients(sim) as c:
        ctx = await c.context.get()
        assert ctx.preapproval_provider == BOB
        assert ctx.featured_app_right is not None and ctx.featured_app_right.payload["provider"] == BOB
        await c.ledger.submit_and_wait(await payment(c, ALICE, "3", "pay-bob-provider"))
    assert sim.balance(APP) == 103


async def test_no_featured_right_is_none(clock: ManualClock) -> None:
    sim = new_sim(clock, preapproval=False)
    sim.add_preapproval(APP, provider=ALICE)  # Alice is not featured
    async with open_clients(sim) as c:
        assert (await c.context.get()).featured_app_right is None


async def test_without_a_preapproval_the_context_fails_for_good(clock: ManualClock) -> None:
    async with open_clients(new_sim(clock, preapproval=False)) as c:
        with pytest.raises(CantonError) as caught:
            await c.context.get()
    assert caught.value.kind is ErrorClass.FINAL and caught.value.code == "NO_PREAPPROVAL"
    assert "billing setup" in str(caught.value)


async def test_without_a_usable_round_the_context_is_retryable(canton: Canton, clock: ManualClock) -> None:
    cache = ScanContextCache(canton.scan, receiver=APP, clock=clock, round_margin=timedelta(hours=1))
    with pytest.raises(CantonError) as caught:
        await cache.get()
    assert caught.value.kind is ErrorClass.RETRYABLE and caught.value.code == "NO_OPEN_ROUND"


async def test_an_expiring_preapproval_is_noticed(clock: ManualClock) -> None:
    sim = new_sim(clock, preapproval=False)
    sim.add_preapproval(APP, expires_at=clock() + timedelta(hours=1))
    async with open_clients(sim) as c:
        ctx = await c.context.get()
    assert preapproval_usable(ctx, clock())
    assert not preapproval_usable(ctx, clock() + timedelta(hours=1))


async def test_scan_is_read_with_retries(sim: Simulator) -> None:
    sim.inject("proxy_503", 2, on="scan-dso")
    async with open_clients(sim) as c:
        assert (await c.scan.dso()).dso_party_id == sim.ledger.dso_party
        assert c.sleeps == [0.2, 0.4]


async def test_a_payment_is_recognised_on_scan_and_a_mismatch_is_explained(canton: Canton) -> None:
    done = await canton.ledger.submit_and_wait(await payment(canton, ALICE, "12.5", "pay-v"))
    update = await canton.scan.update_by_id(done.update_id)
    assert update is not None
    seen = find_transfer(update, sender=ALICE, receiver=APP, amount=Decimal("12.5"))
    assert isinstance(seen, TransferSeen) and seen.round == canton.sim.ledger.current_round()
    assert seen.update_id == done.update_id
    assert "expected 13" in str(find_transfer(update, sender=ALICE, receiver=APP, amount=Decimal(13)))
    assert "no amulet" in str(find_transfer(update, sender=ALICE, receiver=BOB, amount=Decimal("12.5")))
