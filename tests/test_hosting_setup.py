"""Issue #15 points 2, 8, 9 against the simulator in its real mode: hosting and user rights,
Splice's preapproval fee with renewal and expiry, and holdings counted at initialAmount."""

from __future__ import annotations

import argparse
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from commands.config import Settings
from commands.console import Console
from commands.context import Context
from commands.daemon.main import Daemon
from commands.errors import CommandError
from commands.services.canton_status import show_info
from commands.services.payments import pay_all, restart
from commands.services.preapproval_setup import setup_preapproval
from commands.services.runtime import canton_factory
from commands.services.simulated_network import DEMO_APP_PARTY, START_BALANCE
from pipeline.canton.adapter import CantonAdapter
from pipeline.canton.hosting import read_rights, standing
from pipeline.canton.http import asgi_transport
from pipeline.canton.port import Prepared, Rejected
from pipeline.canton.setup import preapproval_fee, terms_of
from pipeline.simulator.app import Simulator, seeded
from pipeline.simulator.clock import ManualClock
from tests.processes import ROOT

DATA = ROOT / "data"
YEAR = 525600  # minutes
DAY_US = 86_400_000_000


@dataclass
class Run:
    ctx: Context
    sim: Simulator
    out: io.StringIO
    err: io.StringIO

    def party(self, user: str) -> str:
        return next(u.party for u in self.ctx.catalogue.users if u.id == user)

    @asynccontextmanager
    async def canton(self) -> AsyncIterator[CantonAdapter]:
        async with canton_factory(self.ctx)() as canton:
            yield canton


def make_run(tmp_path: object, *, preapproval: bool = True) -> Run:
    env = {
        "BILLING_DATA_DIR": str(DATA),
        "APP_PROVIDER_API_URL": "http://sim",
        "SCAN_API_URL": "http://sim/api/scan",
        "APP_PROVIDER_JWT": "sim-token-hosting-123",
        "PARTY_APP": DEMO_APP_PARTY,
        "ROCKSDB_PATH": f"{tmp_path}/state",
        "LOG_LEVEL": "warn",
    }
    out, err = io.StringIO(), io.StringIO()
    first = Context(Settings.from_env(env, dotenv=None), Console(out=out, err=err, width=400))
    # What `billing simulator` builds (users 1000 CC, the app 500 CC, featured), on a clock that
    # stands still, so that the ledger's fee and billing's are computed at the same instant.
    users = {u.party: START_BALANCE for u in first.catalogue.users}
    sim = seeded(
        users.items(),
        DEMO_APP_PARTY,
        app_amount=Decimal(500),
        preapproval=preapproval,
        static_token=first.settings.app_provider_jwt,
        clock=ManualClock(),
    )
    ctx = Context(first.settings, first.console, sim.clock, transport=asgi_transport(sim))
    return Run(ctx, sim, out, err)


# --- point 2: hosting and rights ----------------------------------------------------------------


async def test_info_setup_start_and_payments_name_each_party_that_cannot_be_charged(tmp_path: object) -> None:
    run = make_run(tmp_path)
    bob, carol, alice = run.party("bob"), run.party("carol"), run.party("alice")
    run.sim.host_elsewhere(bob)  # on another participant: this one can neither submit nor see it
    run.sim.revoke_act_as(carol)  # hosted here, but the billing user lacks CanActAs
    async with run.canton() as canton:
        assert await show_info(run.ctx, canton) == 0
    info_err = run.err.getvalue()
    assert f"subscriber bob: {bob} is not hosted on this participant" in info_err
    assert f"subscriber carol: ledger user ledger-api-user may not act as {carol}: grant it CanActAs" in info_err
    assert "subscriber alice" not in info_err and "subscriber dave" not in info_err
    assert "cannot be charged" in run.out.getvalue()  # the table row of each party

    run.err.seek(0), run.err.truncate()
    assert await pay_all(run.ctx, dry_run=False) == 1
    failures = run.out.getvalue().split("Failures", 1)[1]
    assert "is not hosted on this participant" in failures and "grant it CanActAs" in failures
    assert "INSUFFICIENT" not in failures.upper() and "holds 0 CC" not in failures
    senders = {t.sender for t in run.sim.transfers()}
    assert alice in senders and not senders & {bob, carol}
    assert run.sim.requests["submit"] == len(run.sim.transfers())  # decided before submitting

    run.err.seek(0), run.err.truncate()
    daemon = Daemon(run.ctx, argparse.Namespace(once=True, dry_run=False, interval=None))
    assert await daemon.run() == 0
    lines = [line for line in run.err.getvalue().splitlines() if line.startswith("warning: subscriber")]
    assert len(lines) == 2 and {"bob", "carol"} == {line.split()[2].rstrip(":") for line in lines}


async def test_once_the_operator_grants_the_right_billing_restart_charges_the_subscriber(tmp_path: object) -> None:
    run = make_run(tmp_path)
    carol = run.party("carol")
    run.sim.revoke_act_as(carol)
    assert await pay_all(run.ctx, dry_run=False) == 1
    assert all(t.sender != carol for t in run.sim.transfers())
    run.sim.grant_act_as(carol)
    assert await restart(run.ctx, limit=10, dry_run=False, recover_missed=True, process_pending=True) == 0
    assert sum(t.sender == carol for t in run.sim.transfers()) == 2  # her two plans, charged once each


async def test_the_simulated_ledger_refuses_as_canton_does_and_billing_ends_the_payment(tmp_path: object) -> None:
    run = make_run(tmp_path)
    bob, carol, alice = run.party("bob"), run.party("carol"), run.party("alice")
    run.sim.host_elsewhere(bob)
    run.sim.revoke_act_as(carol)
    headers = {"authorization": f"Bearer {run.sim.static_token}"}
    async with httpx.AsyncClient(transport=asgi_transport(run.sim), base_url="http://sim", headers=headers) as http:

        def acs(party: str) -> dict[str, object]:
            return {"activeAtOffset": run.sim.ledger.offset, "eventFormat": {"filtersByParty": {party: {}}}}

        assert (await http.post("/v2/state/active-contracts", json=acs(bob))).json() == []  # hosted elsewhere
        denied = await http.post("/v2/state/active-contracts", json=acs(carol))
        assert denied.status_code == 403 and denied.json()["code"] == "PERMISSION_DENIED"
        assert denied.json()["errorCategory"] == 7 and "inquire about the request" in denied.json()["cause"]
        rights = (await http.get("/v2/users/ledger-api-user/rights")).json()["rights"]
        act_as = {r["kind"]["CanActAs"]["value"]["party"] for r in rights if "CanActAs" in r["kind"]}
        assert alice in act_as and bob in act_as and carol not in act_as
        parties = (await http.get(f"/v2/parties/{alice}", params={"parties": [bob]})).json()["partyDetails"]
        assert {p["party"]: p["isLocal"] for p in parties} == {alice: True, bob: False}
    async with run.canton() as canton:
        ready = await canton.prepare(alice, Decimal(1))
        assert isinstance(ready, Prepared)
        for sender, code, words in (
            (bob, "NO_SYNCHRONIZER_ON_WHICH_ALL_SUBMITTERS_CAN_SUBMIT", "not hosted"),
            (carol, "PERMISSION_DENIED", "grant it CanActAs"),
        ):
            # Past billing's own check (as if it had not run): the ledger's refusal is final too.
            answer = await canton.submit(
                ready,
                sender=sender,
                receiver=DEMO_APP_PARTY,
                amount=Decimal(1),
                description="x",
                command_id=f"pay-{code}",
                submission_id="s-1",
            )
            assert isinstance(answer, Rejected) and answer.kind == "final" and answer.code == code
            assert sender in answer.message and words in answer.message
    assert run.sim.transfers() == []


# --- point 8: the preapproval fee, renewal and expiry -------------------------------------------


async def test_setup_pays_splices_fee_and_a_short_preapproval_is_free(tmp_path: object) -> None:
    run = make_run(tmp_path, preapproval=False)
    async with run.canton() as canton:
        assert await setup_preapproval(run.ctx, canton, YEAR) == 0
    # (365 - 90) days x 0.00274 USD / 0.005 USD/CC, burnt from the app's 500 CC
    assert "fee at most 150.7 CC" in run.out.getvalue()
    assert run.sim.balance(DEMO_APP_PARTY) == Decimal("349.3")
    free = make_run(tmp_path, preapproval=False)
    async with free.canton() as canton:
        assert await setup_preapproval(free.ctx, canton, 90 * 1440) == 0
    assert "fee at most 0 CC" in free.out.getvalue()
    assert free.sim.balance(DEMO_APP_PARTY) == 500


async def test_setup_says_what_a_year_costs_when_the_app_holds_too_little(tmp_path: object) -> None:
    run = make_run(tmp_path, preapproval=False)
    run.sim.archive(run.sim.amulets(DEMO_APP_PARTY)[0].contract_id)
    run.sim.fund(DEMO_APP_PARTY, 100)  # what the original deployment guide said to fund
    async with run.canton() as canton:
        with pytest.raises(CommandError) as caught:
            await setup_preapproval(run.ctx, canton, YEAR)
    assert "holds 100" in str(caught.value) and "needs 150.7" in str(caught.value)
    assert "up to 129600 minutes cost no fee" in str(caught.value)
    assert run.sim.ledger.preapproval_of(DEMO_APP_PARTY) is None


async def test_an_expired_preapproval_in_scan_is_replaced_not_already_existing(tmp_path: object) -> None:
    run = make_run(tmp_path, preapproval=False)
    old = run.sim.add_preapproval(expires_at=run.sim.clock() - timedelta(hours=1))
    async with run.canton() as canton:
        assert await setup_preapproval(run.ctx, canton, YEAR) == 0
    assert "already exists" not in run.out.getvalue() and "expired" in run.err.getvalue()
    current = run.sim.ledger.preapproval_of(DEMO_APP_PARTY)
    assert current is not None and current.contract_id != old


async def test_a_preapproval_near_expiry_is_flagged_and_renewed_with_transferpreapproval_renew(
    tmp_path: object,
) -> None:
    run = make_run(tmp_path, preapproval=False)
    old = run.sim.add_preapproval(expires_at=run.sim.clock() + timedelta(days=10))
    start = Daemon(run.ctx, argparse.Namespace(once=True, dry_run=False, interval=None))
    assert await start.run() == 0 and "renew it with `billing setup --renew`" in run.err.getvalue()
    run.err.seek(0), run.err.truncate()
    async with run.canton() as canton:
        assert await setup_preapproval(run.ctx, canton, YEAR) == 0
        assert "already exists" in run.out.getvalue() and "renew it with `billing setup --renew`" in run.err.getvalue()
        before = run.sim.balance(DEMO_APP_PARTY)
        assert await setup_preapproval(run.ctx, canton, YEAR, renew=True) == 0
    assert await Daemon(run.ctx, argparse.Namespace(once=True, dry_run=False, interval=None)).run() == 0
    assert run.err.getvalue().count("renew it with `billing setup --renew`") == 1  # renewed: start is quiet
    renew = [tx for tx in run.sim.ledger.transactions if tx.root.choice == "TransferPreapproval_Renew"]
    assert len(renew) == 1 and renew[0].root.contract.contract_id == old
    current = run.sim.ledger.preapproval_of(DEMO_APP_PARTY)
    assert current is not None and current.contract_id != old
    # The extension is 355 days, 265 of them beyond the free 90: 265 x 0.00274 / 0.005 CC.
    assert renew[0].root.result["amuletPaid"] == "145.2200000000"
    assert before - run.sim.balance(DEMO_APP_PARTY) == Decimal("145.22")


# --- point 9: holdings at initialAmount ----------------------------------------------------------


async def test_an_old_amulet_pays_its_full_initial_amount(tmp_path: object) -> None:
    run = make_run(tmp_path)
    erin = run.party("erin")
    run.sim.archive(run.sim.amulets(erin)[0].contract_id)
    # 5000 rounds at Splice's 1 USD/year holding fee: more fees than the 10 CC it holds.
    run.sim.fund_old(erin, 10, rounds_ago=5000)
    async with run.canton() as canton:
        ready = await canton.prepare(erin, Decimal(10))
        assert isinstance(ready, Prepared), ready
        answer = await canton.submit(
            ready,
            sender=erin,
            receiver=DEMO_APP_PARTY,
            amount=Decimal(10),
            description="old amulet",
            command_id="pay-old",
            submission_id="s-1",
        )
    assert not isinstance(answer, Rejected), answer
    assert [t.amount for t in run.sim.transfers() if t.sender == erin] == [10]


# --- the pure decisions ----------------------------------------------------------------------------


def test_the_fee_terms_follow_the_config_schedule_in_force() -> None:
    later = {"transferPreapprovalFee": "0.01", "transferPreapprovalBaseDuration": {"microseconds": "0"}}
    rules = {
        "configSchedule": {
            "initialValue": {
                "transferPreapprovalFee": "0.00274",
                "transferPreapprovalBaseDuration": {"microseconds": str(90 * DAY_US)},
            },
            "futureValues": [{"_1": "2030-01-01T00:00:00Z", "_2": later}],
        }
    }
    before = terms_of(rules, datetime(2029, 12, 31, tzinfo=UTC))
    assert preapproval_fee(before, timedelta(days=365), Decimal("0.005")) == Decimal("150.7")
    after = terms_of(rules, datetime(2030, 1, 2, tzinfo=UTC))
    assert preapproval_fee(after, timedelta(days=10), Decimal("0.005")) == Decimal(20)
    # A network without the free base duration charges the whole lifetime: billing assumes so.
    assert preapproval_fee(terms_of({}, before_2030()), timedelta(days=1), Decimal("0.00274")) == 1


def before_2030() -> datetime:
    return datetime(2029, 1, 1, tzinfo=UTC)


def test_standing_names_the_fix() -> None:
    rights = read_rights(
        "billing",
        {
            "rights": [
                {"kind": {"CanActAs": {"value": {"party": "a::1"}}}},
                {"kind": {"ParticipantAdmin": {"value": {}}}},
            ]
        },
    )
    assert standing("a::1", rights, True).chargeable and standing("a::1", rights, None).chargeable
    assert "grant it CanActAs" in (standing("b::1", rights, True).reason or "")
    assert "not hosted" in (standing("a::1", rights, False).reason or "")
    anyone = read_rights("billing", {"rights": [{"kind": {"CanActAsAnyParty": {"value": {}}}}]})
    assert standing("b::1", anyone, None).chargeable
