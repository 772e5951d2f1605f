"""The party directory's hosting cache: one lookup serves many payments, and a payment whose
party is fresh costs no lookup and no walk over every party seen (a run of N payments stays
linear in N: `benchmarks/payall_bench.py` measures it)."""

from __future__ import annotations

from datetime import timedelta

from pipeline.canton.hosting import RECHECK_AFTER, PartyDirectory
from pipeline.simulator.app import Simulator
from pipeline.simulator.clock import ManualClock
from tests.canton_fixtures import ALICE, APP, BOB, clock_fixture, open_clients, sim_fixture  # noqa: F401


async def test_fresh_parties_cost_no_lookup_and_a_stale_one_refreshes_every_stale_party(
    sim: Simulator, clock: ManualClock
) -> None:
    async with open_clients(sim) as canton:
        directory = PartyDirectory(canton.ledger.http, user_id=None, clock=clock)
        assert await directory.hosted([ALICE, BOB]) == {ALICE: True, BOB: True}
        assert sim.requests["parties"] == 1  # both in one lookup

        for _ in range(50):
            assert await directory.hosted([ALICE]) == {ALICE: True}
        assert sim.requests["parties"] == 1  # fresh: answered from the cache

        clock.advance(RECHECK_AFTER + timedelta(seconds=1))
        assert await directory.hosted([APP]) == {APP: True}
        assert sim.requests["parties"] == 2  # APP is new: one lookup re-reads ALICE and BOB with it
        assert await directory.hosted([BOB]) == {BOB: True}
        assert sim.requests["parties"] == 2


async def test_a_fresh_party_is_answered_even_while_others_are_stale(sim: Simulator, clock: ManualClock) -> None:
    async with open_clients(sim) as canton:
        directory = PartyDirectory(canton.ledger.http, user_id=None, clock=clock)
        await directory.hosted([ALICE])
        clock.advance(RECHECK_AFTER / 2)
        await directory.hosted([BOB])
        clock.advance(RECHECK_AFTER / 2 + timedelta(seconds=1))  # ALICE is stale now, BOB is not
        assert sim.requests["parties"] == 2

        assert await directory.hosted([BOB]) == {BOB: True}
        assert sim.requests["parties"] == 2  # BOB's payment neither waits for nor pays for ALICE's refresh
        assert await directory.hosted([ALICE]) == {ALICE: True}
        assert sim.requests["parties"] == 3
