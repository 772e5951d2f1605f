"""The Ledger API client and the pure request builders (input selection, send and setup commands)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import msgspec
import pytest

from pipeline.canton.amulet_reads import Holding
from pipeline.canton.scan_context import disclose
from pipeline.canton.setup import create_preapproval_commands
from pipeline.canton.transfers import InsufficientFunds, Selection, check_amount, select_inputs, send_commands
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

# --- reads and submissions against the simulator -----------------------------------------------


async def test_amulets_are_read_page_by_page(sim: Simulator) -> None:
    for amount in (1, 2, 3, 4):
        sim.fund(BOB, amount)
    async with open_clients(sim, page_size=2) as c:
        holdings = await c.ledger.amulets(BOB)
    assert sorted(h.initial_amount for h in holdings) == [1, 2, 3, 4, 40]
    assert sim.requests["active-contracts"] == 3  # 2 + 2 + 1


async def test_a_payment_moves_amulets_and_leaves_a_completion_and_an_update(
    canton: Canton,
) -> None:
    before = await canton.ledger.ledger_end()
    result = await canton.ledger.submit_and_wait(await payment(canton, ALICE, "70", "pay-a"))
    assert canton.sim.balance(ALICE) == 30 and canton.sim.balance(APP) == 170
    assert [(t.command_id, t.amount) for t in canton.sim.transfers()] == [("pay-a", Decimal(70))]
    completion = await canton.ledger.find_completion(ALICE, "pay-a", begin_exclusive=before)
    assert completion is not None and completion.accepted and completion.update_id == result.update_id
    assert completion.offset == result.completion_offset
    by_offset = await canton.ledger.update_by_offset(result.completion_offset, party=ALICE)
    by_id = await canton.ledger.update_by_id(result.update_id, party=ALICE, effects=True)
    assert by_offset is not None and by_offset.update_id == result.update_id
    assert by_id is not None and by_id.command_id == "pay-a"
    choices = [e.exercised_event.choice for e in by_id.events if e.exercised_event]
    assert choices[0] == "TransferPreapproval_Send"


async def test_lookups_of_unknown_things_are_none(canton: Canton) -> None:
    assert await canton.ledger.find_completion(ALICE, "never-sent", begin_exclusive=0) is None
    assert await canton.ledger.update_by_id("1220" + "0" * 64, party=ALICE) is None
    assert await canton.ledger.update_by_offset(1, party=ALICE) is None  # a seeding offset: no transaction


async def test_completions_are_paged_until_the_command_is_found(sim: Simulator) -> None:
    async with open_clients(sim, page_size=2) as c:
        for i in range(5):
            await c.ledger.submit_and_wait(await payment(c, ALICE, "1", f"pay-{i}"))
        found = await c.ledger.find_completion(ALICE, "pay-4", begin_exclusive=0)
    assert found is not None and found.command_id == "pay-4"
    assert sim.requests["completions"] >= 3


async def test_a_completion_is_only_searched_after_the_given_offset(canton: Canton) -> None:
    done = await canton.ledger.submit_and_wait(await payment(canton, ALICE, "1", "pay-early"))
    assert await canton.ledger.find_completion(ALICE, "pay-early", begin_exclusive=done.completion_offset) is None


# --- input selection ----------------------------------------------------------------------------


def holdings(*amounts: str, rate: str = "0", created: int = 10) -> list[Holding]:
    return [
        Holding(
            contract_id=f"a{i}",
            initial_amount=Decimal(a),
            created_round=created,
            rate_per_round=Decimal(rate),
        )
        for i, a in enumerate(amounts)
    ]


def test_inputs_are_the_largest_first_and_as_few_as_needed() -> None:
    chosen = select_inputs(holdings("5", "50", "20", "30"), Decimal("60"), max_inputs=10)
    assert chosen == Selection(inputs=("a1", "a3"), total=Decimal(80))


def test_an_exact_balance_is_enough_without_a_margin_and_short_with_one() -> None:
    assert isinstance(select_inputs(holdings("10"), Decimal(10), max_inputs=5), Selection)
    short = select_inputs(holdings("10"), Decimal(10), max_inputs=5, fee_margin=Decimal("0.01"))
    assert isinstance(short, InsufficientFunds) and short.required == Decimal("10.01")


def test_too_many_small_amulets_is_insufficient_because_fragmented() -> None:
    result = select_inputs(holdings(*["1"] * 10), Decimal(5), max_inputs=3)
    assert isinstance(result, InsufficientFunds) and result.fragmented
    assert (result.available, result.spendable) == (Decimal(10), Decimal(3))
    assert "3 largest amulets" in result.reason


def test_no_amulets_at_all() -> None:
    result = select_inputs([], Decimal(1), max_inputs=100)
    assert isinstance(result, InsufficientFunds) and not result.fragmented
    assert result.available == 0 and "holds 0 CC" in result.reason


def test_old_amulets_count_at_their_initial_amount() -> None:
    # Current Splice charges no holding fee on transfer: 10 CC created in round 10 at 0.1 CC/round
    # still pays 10 CC many rounds later (it used to be worth 10 - 0.1 x rounds, nothing by round 110).
    old = holdings("10", rate="0.1", created=10)
    assert select_inputs(old, Decimal(10), max_inputs=1) == Selection(inputs=("a0",), total=Decimal(10))
    assert isinstance(select_inputs(old, Decimal("10.01"), max_inputs=1), InsufficientFunds)


def test_equal_amulets_are_chosen_in_a_stable_order() -> None:
    first = select_inputs(holdings("5", "5", "5"), Decimal(6), max_inputs=3)
    assert isinstance(first, Selection) and first.inputs == ("a0", "a1")


# --- request builders ---------------------------------------------------------------------------


async def test_send_command_has_the_spec_shape(canton: Canton) -> None:
    command = await payment(canton, ALICE, "12.5", "pay-x", submission_id="u-1", dedup_seconds=3600)
    doc = msgspec.to_builtins(command)
    exercise = doc["commands"][0]["ExerciseCommand"]
    ctx = await canton.context.get()
    assert ctx.featured_app_right is not None  # the simulator's app holds a featured-app right
    assert exercise["templateId"] == "#splice-amulet:Splice.AmuletRules:TransferPreapproval"
    assert exercise["contractId"] == ctx.transfer_preapproval.contract_id
    arg = exercise["choiceArgument"]
    assert arg["amount"] == "12.5" and arg["sender"] == ALICE and arg["inputs"][0]["tag"] == "InputAmulet"
    assert arg["context"]["context"]["featuredAppRight"] == ctx.featured_app_right.contract_id
    assert arg["context"]["context"]["issuingMiningRounds"] == [] == arg["context"]["context"]["validatorRights"]
    assert doc["actAs"] == [ALICE] and doc["commandId"] == "pay-x" and doc["submissionId"] == "u-1"
    assert doc["deduplicationPeriod"] == {"DeduplicationDuration": {"value": {"seconds": 3600, "nanos": 0}}}
    assert doc["synchronizerId"] == canton.sim.ledger.synchronizer_id
    disclosed = {d["contractId"] for d in doc["disclosedContracts"]}
    assert disclosed == {
        ctx.amulet_rules.contract_id,
        ctx.open_round.contract.contract_id,
        ctx.transfer_preapproval.contract_id,
        ctx.featured_app_right.contract_id,
    }
    assert all(
        set(d) == {"templateId", "contractId", "createdEventBlob", "synchronizerId"} for d in doc["disclosedContracts"]
    )


async def test_without_a_featured_right_nothing_is_disclosed_for_it(clock: ManualClock) -> None:
    sim = new_sim(clock)
    right = sim.ledger.featured_right(APP)
    assert right is not None
    sim.archive(right.contract_id)
    async with open_clients(sim) as c:
        doc = msgspec.to_builtins(await payment(c, ALICE, "1", "pay-y"))
        assert doc["commands"][0]["ExerciseCommand"]["choiceArgument"]["context"]["context"]["featuredAppRight"] is None
        assert len(doc["disclosedContracts"]) == 3
        await c.ledger.submit_and_wait(await payment(c, ALICE, "1", "pay-y"))


@pytest.mark.parametrize("amount", ["0", "-1", "1.00000000001", "NaN"])
def test_amounts_must_be_positive_daml_decimals(amount: str) -> None:
    with pytest.raises(ValueError):
        check_amount(Decimal(amount))


async def test_send_needs_inputs_and_ids(canton: Canton) -> None:
    ctx = await canton.context.get()
    with pytest.raises(ValueError, match="input"):
        send_commands(
            ctx,
            sender=ALICE,
            amount=Decimal(1),
            inputs=[],
            description=None,
            command_id="c",
            submission_id="s",
            dedup_seconds=60,
        )
    with pytest.raises(ValueError, match="submissionId"):
        send_commands(
            ctx,
            sender=ALICE,
            amount=Decimal(1),
            inputs=["a"],
            description=None,
            command_id="c",
            submission_id="",
            dedup_seconds=60,
        )


async def test_setup_creates_the_preapproval_through_submit_and_wait(clock: ManualClock) -> None:
    sim = new_sim(clock, preapproval=False)
    sim.fund(APP, 100)  # a year costs (365 - 90) x 0.00274 USD / 0.005 USD/CC = 150.7 CC
    async with open_clients(sim) as c:
        dso = await c.scan.dso()
        rounds = await c.scan.open_and_issuing_mining_rounds()
        from pipeline.canton.scan_context import choose_round, open_round_contracts, read_rounds

        chosen = choose_round(read_rounds(open_round_contracts(rounds)), clock())
        assert chosen is not None and dso.amulet_rules.domain_id
        sync = dso.amulet_rules.domain_id
        inputs = [h.contract_id for h in await c.ledger.amulets(APP)]
        command = create_preapproval_commands(
            amulet_rules=disclose(dso.amulet_rules.contract, sync),
            open_round=disclose(chosen.contract, sync),
            party=APP,
            inputs=inputs,
            expires_at=clock() + timedelta(days=365),
            dso_party=dso.dso_party_id,
            command_id="setup-preapproval",
            submission_id="s-1",
            dedup_seconds=600,
        )
        doc = msgspec.to_builtins(command)
        arg = doc["commands"][0]["ExerciseCommand"]["choiceArgument"]
        assert (arg["receiver"], arg["provider"], arg["expectedDso"]) == (
            APP,
            APP,
            dso.dso_party_id,
        )
        assert doc["actAs"] == [APP] and len(doc["disclosedContracts"]) == 2
        assert arg["context"]["context"]["featuredAppRight"] is None
        await c.ledger.submit_and_wait(command)
        found = await c.scan.transfer_preapproval(APP)
    assert found is not None and found.contract.payload["provider"] == APP
    assert sim.balance(APP) == Decimal("49.3")  # 200 CC less Splice's preapproval fee, burnt


def test_setup_needs_an_aware_expiry() -> None:
    from pipeline.canton.types import DisclosedContract

    rules = DisclosedContract(created_event_blob="b", contract_id="r", template_id="t", synchronizer_id="s")
    with pytest.raises(ValueError, match="aware"):
        create_preapproval_commands(
            amulet_rules=rules,
            open_round=rules,
            party=APP,
            inputs=["a"],
            expires_at=datetime(2030, 1, 1),
            dso_party="DSO::1",
            command_id="c",
            submission_id="s",
            dedup_seconds=60,
        )
