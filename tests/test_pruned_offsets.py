"""Reads before the participant's pruning offset: the simulator's real error, and billing never
retrying them forever (issue #15, point 6; docs/canton-facts.md)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from commands.errors import CommandError
from commands.services.ledger_guard import billing_completions, check_ledger_known
from pipeline.canton.errors import PRUNED, CantonError, ErrorClass
from pipeline.canton.splice_types import AMULET
from pipeline.processor.book import PaymentBook
from tests.canton_fixtures import (  # noqa: F401 - the *_fixture names register fixtures
    ALICE,
    BOB,
    Canton,
    canton_fixture,
    clock_fixture,
    open_clients,
    payment,
    raw_post,
    sim_fixture,
)


async def pay(c: Canton, sender: str, command_id: str) -> int:
    return (await c.ledger.submit_and_wait(await payment(c, sender, "1", command_id))).completion_offset


# --- the simulator, as a pruned node --------------------------------------------------------------


async def test_reads_before_the_pruning_offset_get_the_real_error(canton: Canton) -> None:
    sim, old = canton.sim, await pay(canton, ALICE, "pay-old")
    pruned = sim.prune()
    flt = {"cumulative": [{"identifierFilter": {"TemplateFilter": {"value": {"templateId": AMULET}}}}]}
    acs = await raw_post(
        sim, "/v2/state/active-contracts", {"activeAtOffset": old - 1, "eventFormat": {"filtersByParty": {ALICE: flt}}}
    )
    completions = await raw_post(sim, "/v2/commands/completions", {"parties": [ALICE], "beginExclusive": 0})
    for answer in (acs, completions):  # FAILED_PRECONDITION: HTTP 400, category 9, where history begins
        error = answer.json()
        assert answer.status_code == 400 and error["code"] == PRUNED and error["errorCategory"] == 9
        assert error["context"] == {"earliest_offset": str(pruned)} and error["grpcCodeValue"] == 9
    assert "precedes pruned offset" in acs.json()["cause"]
    assert "overlaps with pruned offset" in completions.json()["cause"]
    at_pruning = await raw_post(
        sim, "/v2/state/active-contracts", {"activeAtOffset": pruned, "eventFormat": {"filtersByParty": {ALICE: flt}}}
    )
    assert at_pruning.status_code == 200  # the pruning offset itself is still readable
    # a pruned update is simply gone: not found, as Canton's pointwise reader filters it out
    assert await canton.ledger.update_by_offset(old, party=ALICE) is None


# --- billing against it ----------------------------------------------------------------------------


async def test_holdings_asked_at_a_pruned_offset_are_read_at_the_ledger_end(canton: Canton) -> None:
    sim, old = canton.sim, await canton.ledger.ledger_end()
    await pay(canton, BOB, "pay-bob")  # history moves on, then the operator prunes it
    sim.prune()
    before = sim.requests["active-contracts"]
    holdings = await canton.ledger.amulets(ALICE, at_offset=old)
    assert sorted(h.initial_amount for h in holdings) == [40, 60]
    assert sim.requests["active-contracts"] - before == 2 and canton.sleeps == []  # a refusal, a read


async def test_completions_from_a_pruned_offset_fail_once_as_final(canton: Canton) -> None:
    await pay(canton, ALICE, "pay-a")
    pruned = canton.sim.prune()
    with pytest.raises(CantonError) as caught:
        await canton.ledger.find_completion(ALICE, "pay-a", begin_exclusive=0)
    assert caught.value.code == PRUNED and caught.value.kind is ErrorClass.FINAL
    assert caught.value.pruned_up_to == pruned
    assert canton.sim.requests["completions"] == 1 and canton.sleeps == []  # never sent again


async def test_the_ledger_guard_checks_what_pruning_left(
    canton: Canton, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    await pay(canton, ALICE, "pay-before-pruning")
    pruned = canton.sim.prune()
    await pay(canton, ALICE, "pay-0123456789abcdef0123456789abcdef")  # a billing charge after it
    with caplog.at_level(logging.WARNING, logger="commands.services.ledger_guard"):
        found = await billing_completions(canton.ledger, [ALICE], after=0)
    assert [c.command_id for c in found.completions] == ["pay-0123456789abcdef0123456789abcdef"]
    assert found.checked_to == found.end
    warned = [r for r in caplog.records if "pruned" in r.getMessage()]
    assert warned and warned[0].pruned_up_to == pruned  # type: ignore[attr-defined]
    with pytest.raises(CommandError, match="does not hold"):  # still refuses on what it can see
        await check_ledger_known(canton.ledger, PaymentBook(), [ALICE], tmp_path)


async def test_the_ledger_guard_refuses_when_its_bounded_read_stops_short(canton: Canton, tmp_path: Path) -> None:
    """Many commands that are not billing's, then a charge: a read cut short by its page bound
    must not pass for "the ledger shows nothing": it refuses and says how far it got."""
    for i in range(5):
        await pay(canton, ALICE, f"setup-{i}")
    await pay(canton, ALICE, "pay-0123456789abcdef0123456789abcdef")
    async with open_clients(canton.sim, page_size=2) as small:
        small.ledger.max_pages = 1
        scan = await billing_completions(small.ledger, [ALICE], after=0)
        assert (
            scan.checked_to < scan.end
            and scan.completions
            and not any(c.command_id.startswith("pay-") for c in scan.completions)
        )
        with pytest.raises(CommandError, match=f"reads only up to offset {scan.checked_to} of {scan.end}"):
            await check_ledger_known(small.ledger, PaymentBook(), [ALICE], tmp_path)
        small.ledger.max_pages = 10  # the whole ledger: the charge is found
        with pytest.raises(CommandError, match="the ledger shows 1 charge"):
            await check_ledger_known(small.ledger, PaymentBook(), [ALICE], tmp_path)
