"""Lists longer than the node's limit (200 by default): the simulator's 413, and billing reading
everything anyway in bounded pages (issue #15, point 1; docs/canton-facts.md)."""

from __future__ import annotations

import argparse
import asyncio
from io import StringIO

from commands.cli.canton import run_balance
from commands.config import Settings
from commands.console import Console
from commands.context import Context
from pipeline.canton.amulet_reads import AmuletReads
from pipeline.canton.http import asgi_transport
from pipeline.canton.splice_types import AMULET
from pipeline.simulator.app import Simulator
from pipeline.simulator.model import Rejection
from tests.canton_fixtures import (  # noqa: F401 - the *_fixture names register fixtures
    ALICE,
    APP,
    LEDGER_URL,
    SCAN_URL,
    TOKEN,
    clock_fixture,
    new_sim,
    open_clients,
    payment,
    raw_post,
    sim_fixture,
)


def acs_request(party: str, offset: int) -> dict[str, object]:
    flt = {"identifierFilter": {"TemplateFilter": {"value": {"templateId": AMULET}}}}
    return {"activeAtOffset": offset, "eventFormat": {"filtersByParty": {party: {"cumulative": [flt]}}}}


def fund_many(sim: Simulator, party: str, count: int) -> None:
    for _ in range(count):
        sim.fund(party, 1)


# --- the simulator, as a node left at the default ------------------------------------------------


async def test_the_node_answers_413_above_200_elements_with_the_real_error(sim: Simulator) -> None:
    fund_many(sim, APP, 300)  # an app that received 300 payments holds 300 Amulets
    body = acs_request(APP, sim.ledger.offset)
    for params in ({"limit": 500}, {}):  # too big a limit, or none: no element at all
        answer = await raw_post(sim, "/v2/state/active-contracts", body, **params)
        assert answer.status_code == 413
        error = answer.json()
        assert error["code"] == "JSON_API_MAXIMUM_LIST_ELEMENTS_NUMBER_REACHED"
        assert error["cause"] == "The number of matching elements (201) is greater than the node limit (200)."
        assert error["errorCategory"] == 2 and error["definiteAnswer"] is False
        assert {"context", "correlationId", "traceId", "grpcCodeValue"} <= error.keys()
    page = await raw_post(sim, "/v2/state/active-contracts", body, limit=200)  # the node's own limit
    assert page.status_code == 200 and len(page.json()) == 200


async def test_the_list_limit_is_a_simulator_option(clock: object) -> None:
    sim = new_sim(clock, list_limit=3)  # type: ignore[arg-type]
    fund_many(sim, APP, 5)
    answer = await raw_post(sim, "/v2/state/active-contracts", acs_request(APP, sim.ledger.offset), limit=4)
    assert answer.status_code == 413 and "node limit (3)" in answer.json()["cause"]
    full = await raw_post(sim, "/v2/state/active-contracts", acs_request(APP, sim.ledger.offset), limit=3)
    assert full.status_code == 200 and len(full.json()) == 3


# --- billing against it --------------------------------------------------------------------------


async def test_an_app_with_300_amulets_reads_them_all_in_pages_of_200(sim: Simulator) -> None:
    fund_many(sim, APP, 300)
    async with open_clients(sim) as c:
        holdings = await c.ledger.amulets(APP)
    assert len(holdings) == 301 and sum(h.initial_amount for h in holdings) == 400
    assert len({h.contract_id for h in holdings}) == 301
    assert sim.requests["active-contracts"] == 2  # 200 + 101, no 413 on the way


def test_billing_balance_shows_every_amulet_of_the_app(sim: Simulator) -> None:
    fund_many(sim, APP, 300)
    settings = Settings.from_env(
        {"APP_PROVIDER_API_URL": LEDGER_URL, "SCAN_API_URL": SCAN_URL, "APP_PROVIDER_JWT": TOKEN, "PARTY_APP": APP},
        dotenv=None,
    )
    out = StringIO()
    ctx = Context(settings, Console(out=out, err=StringIO(), width=300), transport=asgi_transport(sim))
    assert run_balance(ctx, argparse.Namespace(party=None)) == 0
    assert "Total: 400.0000000000 CC in 301 amulet(s)" in out.getvalue()


async def test_100_senders_with_many_amulets_each_are_read_in_one_batch_of_pages(sim: Simulator) -> None:
    senders = [f"sender-{i}::1220" + "cd" * 32 for i in range(100)]
    for sender in senders:
        fund_many(sim, sender, 3)
    async with open_clients(sim) as c:
        reads = AmuletReads(c.ledger, max_batch=100, concurrency=1)
        offset = sim.ledger.offset
        found = await asyncio.gather(*(reads.amulets(s, at_offset=offset) for s in senders))
    assert [len(h) for h in found] == [3] * 100
    assert reads.requests == 1 and sim.requests["active-contracts"] == 2  # 300 Amulets: 200 + 100


async def test_a_node_set_below_200_shrinks_the_pages_instead_of_failing(clock: object) -> None:
    sim = new_sim(clock, list_limit=7)  # type: ignore[arg-type]
    fund_many(sim, APP, 20)
    async with open_clients(sim) as c:
        holdings = await c.ledger.amulets(APP)
        assert c.ledger.page_size == 7  # the limit the 413 named, kept for later reads
        assert c.sleeps == []  # the 413 was never sent again as it was
    assert len(holdings) == 21
    assert sim.requests["active-contracts"] == 1 + 4  # one 413, then 7 + 7 + 7 and an empty page


async def test_completions_beyond_the_limit_are_found_page_by_page(sim: Simulator) -> None:
    for i in range(250):  # rejected commands of Alice, each leaving a completion behind
        rejection = Rejection("DAML_FAILURE", "no", 9, sequenced=True)
        sim.ledger.reject(("ledger-api-user", frozenset({ALICE}), f"old-{i}"), None, rejection)
    async with open_clients(sim) as c:
        done = await c.ledger.submit_and_wait(await payment(c, ALICE, "1", "pay-last"))
        found = await c.ledger.find_completion(ALICE, "pay-last", begin_exclusive=0)
    assert found is not None and found.offset == done.completion_offset
    assert sim.requests["completions"] == 2  # 200 + the rest (and a checkpoint)
