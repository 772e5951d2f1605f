"""`billing replay --from-ledger` records a charge only when the ledger proves whose period it paid."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from commands.catalogue import Catalogue, Plan, Subscription, User
from commands.services.ledger_rebuild import _recover
from pipeline.canton.transfers import Selection, select_inputs, send_commands
from pipeline.canton.types import Completion1
from pipeline.events import PaymentConfirmed, PaymentRequested
from pipeline.ids import command_id, description, payment_id
from pipeline.processor.book import PaymentBook
from tests.canton_fixtures import (  # noqa: F401 - the *_fixture names register fixtures
    ALICE,
    APP,
    Canton,
    canton_fixture,
    clock_fixture,
    sim_fixture,
)

PLAN = Plan(id="p", name="prover", price=Decimal(2), currency="CC", interval_sec="300")
CATALOGUE = Catalogue(
    users=(
        User(
            id="alice",
            party=ALICE,
            name="Alice",
            email="a@x",
            subscriptions=(Subscription(name="prover", expires_at=date(2031, 1, 1)),),
        ),
    ),
    plans=(PLAN,),
)
START = datetime(2026, 12, 4, 15, 5, tzinfo=UTC)
END = START + timedelta(seconds=300)


async def charge(c: Canton, command: str, text: str) -> Completion1:
    """A transfer of 2 CC from Alice to the app under ``command``, described ``text``."""
    ctx = await c.context.get()
    chosen = select_inputs(await c.ledger.amulets(ALICE), Decimal(2), max_inputs=ctx.open_round.max_num_inputs)
    assert isinstance(chosen, Selection)
    await c.ledger.submit_and_wait(
        send_commands(
            ctx,
            sender=ALICE,
            amount=Decimal(2),
            inputs=chosen.inputs,
            description=text,
            command_id=command,
            submission_id="s",
            dedup_seconds=600,
        )
    )
    found = await c.ledger.find_completion(ALICE, command, begin_exclusive=0)
    assert found is not None and found.accepted
    return found


async def test_a_proved_charge_is_recorded_with_its_period_and_ledger_amount(canton: Canton) -> None:
    pid = payment_id(APP, ALICE, "prover", START, END)
    completion = await charge(canton, command_id(pid), description("prover", "alice", START, END))
    found = await _recover(canton.scan, completion, CATALOGUE, PaymentBook(), app=APP, now=START)
    assert isinstance(found, tuple)
    requested, confirmed = found
    assert isinstance(requested, PaymentRequested) and isinstance(confirmed, PaymentConfirmed)
    assert requested.payment_id == confirmed.payment_id == pid and requested.reason == "recovery"
    assert (requested.period.start, requested.period.end) == (START, END)
    assert requested.period.index == int(START.timestamp()) // 300  # epoch-aligned, as billing computes it
    assert confirmed.update_id == completion.update_id and confirmed.amount == Decimal(2)


async def test_a_charge_that_proves_nothing_is_listed_not_recorded(canton: Canton) -> None:
    pid = payment_id(APP, ALICE, "prover", START, END)
    legacy = await charge(canton, command_id(pid), "prover subscription payment for alice (period 0)")
    why = await _recover(canton.scan, legacy, CATALOGUE, PaymentBook(), app=APP, now=START)
    assert isinstance(why, str) and "names no period" in why
    # A description naming another period than the command id's: not this payment.
    other = payment_id(APP, ALICE, "prover", END, END + timedelta(seconds=300))
    wrong = await charge(canton, command_id(other), description("prover", "alice", START, END))
    why = await _recover(canton.scan, wrong, CATALOGUE, PaymentBook(), app=APP, now=START)
    assert isinstance(why, str) and "do not give its command id" in why
