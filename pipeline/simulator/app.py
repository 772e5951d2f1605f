"""The simulator: assembles a `Node` (ledger, hosting, faults, tokens) and the routes serving it.

`Simulator` is itself an ASGI app (plug it into `httpx.ASGITransport`, or `serve.py` for
TCP). Its Python API is for tests and the demo: fund parties, feature apps, add a
preapproval, queue faults or set fault rates, move the clock, list the transfers and
balances the ledger really holds.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from pipeline.simulator import command_routes, idp_routes, ledger_routes, party_routes, scan_routes
from pipeline.simulator.amulet_config import TICK
from pipeline.simulator.clock import Clock, ManualClock, wall_clock
from pipeline.simulator.faults import Fault, FaultPlan
from pipeline.simulator.hosting import Hosting
from pipeline.simulator.ledger import SimLedger
from pipeline.simulator.model import Contract, Transaction
from pipeline.simulator.node import STATIC_USER, Node
from pipeline.simulator.refusals import DEFAULT_LIST_LIMIT

# Canton's command-service.max-commands-in-flight default (digital-asset/canton community/ledger/
# ledger-api-core/src/main/scala/com/digitalasset/canton/platform/config/CommandServiceConfig.scala);
# LocalNet sets 30 (hyperledger-labs/splice cluster/compose/localnet/conf/canton/app.conf).
DEFAULT_MAX_COMMANDS_IN_FLIGHT = 256
DEFAULT_CLIENT = ("billing", "billing-secret")


@dataclass(frozen=True)
class SimTransfer:
    """One `TransferPreapproval_Send` the ledger committed."""

    command_id: str
    sender: str
    receiver: str
    amount: Decimal
    update_id: str
    offset: int
    record_time: datetime


class Simulator(Node):
    """One simulated network: the app provider's participant and a Scan."""

    def __init__(
        self,
        *,
        app_party: str,
        clock: Clock | None = None,
        tick: timedelta = TICK,
        seed: int = 0,
        latency: float = 0.05,
        static_token: str | None = None,
        oauth_clients: Mapping[str, str] | None = None,
        token_lifetime: timedelta = timedelta(hours=1),
        max_num_inputs: int = 100,
        default_dedup: timedelta = timedelta(seconds=30),
        submit_latency: float = 0.0,
        max_commands_in_flight: int = DEFAULT_MAX_COMMANDS_IN_FLIGHT,
        list_limit: int = DEFAULT_LIST_LIMIT,
    ) -> None:
        if list_limit < 1:
            raise ValueError(f"the list limit must be at least 1, got {list_limit}")
        clock = clock or wall_clock
        super().__init__(
            app_party=app_party,
            clock=clock,
            ledger=SimLedger(
                app_party=app_party,
                clock=clock,
                tick=tick,
                max_num_inputs=max_num_inputs,
                default_dedup=default_dedup,
            ),
            hosting=Hosting(app_party, admins=[STATIC_USER]),
            faults=FaultPlan(seed, latency),
            static_token=static_token or "sim-" + secrets.token_hex(16),
            oauth_clients=dict(oauth_clients or dict([DEFAULT_CLIENT])),
            token_lifetime=token_lifetime,
            submit_latency=submit_latency,
            max_commands_in_flight=max_commands_in_flight,
            list_limit=list_limit,
        )
        self.app = Starlette(
            routes=[
                *idp_routes.routes(self),
                Mount("/api/scan", routes=scan_routes.routes(self)),
                *ledger_routes.routes(self),
                *command_routes.routes(self),
                *party_routes.routes(self),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    # --- state for tests and the demo ------------------------------------------------------------

    def fund(self, party: str, amount: Decimal | int | str) -> str:
        """Give ``party`` a new Amulet of ``amount``; returns its contract id."""
        self.hosting.see([party])
        return self.ledger.fund(party, Decimal(amount)).contract_id

    def fund_old(self, party: str, amount: Decimal | int | str, *, rounds_ago: int) -> str:
        """An Amulet created ``rounds_ago`` rounds ago: its holding fees exceed a fresh one's."""
        self.hosting.see([party])
        return self.ledger.fund(party, Decimal(amount), rounds_ago=rounds_ago).contract_id

    def feature(self, provider: str) -> str:
        """Make ``provider`` a featured app; returns the FeaturedAppRight's contract id."""
        self.hosting.see([provider])
        return self.ledger.feature(provider).contract_id

    def host_elsewhere(self, party: str) -> None:
        """``party`` lives on another participant: this one can neither submit for it nor see it."""
        self.hosting.see([party])
        self.hosting.elsewhere.add(party)

    def revoke_act_as(self, party: str, user: str | None = None) -> None:
        """Take CanActAs for ``party`` from ``user`` (default: every user this simulator knows)."""
        self.hosting.see([party])
        for who in [user] if user else [STATIC_USER, *self.oauth_clients]:
            self.hosting.revoked[who].add(party)

    def grant_act_as(self, party: str) -> None:
        """Give every user CanActAs for ``party`` back (what an operator does to fix a refusal)."""
        for revoked in self.hosting.revoked.values():
            revoked.discard(party)

    def add_preapproval(
        self,
        receiver: str | None = None,
        *,
        provider: str | None = None,
        expires_at: datetime | None = None,
    ) -> str:
        """Pre-seed a TransferPreapproval (default: the app's own, valid for a year)."""
        receiver = receiver or self.app_party
        self.hosting.see([receiver, provider or receiver])
        expires = expires_at or self.clock() + timedelta(days=365)
        return self.ledger.add_preapproval(receiver, provider or receiver, expires).contract_id

    def archive(self, contract_id: str) -> None:
        """Archive a contract out of band (a renewed preapproval, a spent amulet)."""
        self.ledger.offset += 1
        self.ledger.contracts[contract_id].archived_offset = self.ledger.offset

    def prune(self, up_to: int | None = None) -> int:
        """Prune the participant's history up to ``up_to`` (default: the ledger end), as an
        operator's `participant.pruning.prune` does; returns the pruning offset."""
        offset = self.ledger.offset if up_to is None else min(up_to, self.ledger.offset)
        self.pruned_up_to = max(self.pruned_up_to, offset)
        return self.pruned_up_to

    def transfers(self) -> list[SimTransfer]:
        """Every TransferPreapproval_Send on the ledger, oldest first: what an auditor counts."""
        return [_transfer(tx) for tx in self.ledger.transactions if tx.root.choice == "TransferPreapproval_Send"]

    def balance(self, party: str) -> Decimal:
        return self.ledger.balance(party)

    def balances(self) -> dict[str, Decimal]:
        return self.ledger.balances()

    def amulets(self, party: str) -> list[Contract]:
        return [c for c in self.ledger.active("Amulet") if c.payload["owner"] == party]

    # --- faults, clock, tokens ------------------------------------------------------------------

    def inject(
        self,
        fault: Fault | str,
        count: int = 1,
        *,
        on: str | None = None,
        delay: float | None = None,
    ) -> None:
        """Make the next ``count`` requests to ``on`` (default: the fault's endpoint) fail so."""
        self.faults.inject(fault, count, on=on, delay=delay)

    def set_fault_rate(self, fault: Fault | str, rate: float, *, on: str | None = None) -> None:
        """Fail this share of the requests to ``on`` (seeded, so runs repeat)."""
        self.faults.set_rate(fault, rate, on=on)

    def advance(self, delta: timedelta | float) -> datetime:
        """Move a `ManualClock` forward (rounds open and close, tokens and dedup windows expire)."""
        if not isinstance(self.clock, ManualClock):
            raise TypeError("advance() needs the simulator to run on a ManualClock")
        return self.clock.advance(delta)

    def revoke_tokens(self) -> None:
        """Forget every OAuth token issued so far (as if the IdP rotated its keys)."""
        self.tokens.clear()


def _transfer(tx: Transaction) -> SimTransfer:
    arg = tx.root.argument
    return SimTransfer(
        command_id=tx.command_id,
        sender=arg["sender"],
        receiver=tx.root.contract.payload["receiver"],
        amount=Decimal(str(arg["amount"])),
        update_id=tx.update_id,
        offset=tx.offset,
        record_time=tx.record_time,
    )


def seeded(
    holdings: Iterable[tuple[str, Decimal]],
    app_party: str,
    *,
    app_amount: Decimal = Decimal(100),
    featured: bool = True,
    preapproval: bool = False,
    **options: Any,
) -> Simulator:
    """A simulator whose parties hold one Amulet each (the app party too, to pay for setup).

    Args:
        holdings: (party, amount) pairs, e.g. the users of data/users.json.
        app_party: the app provider's party (PARTY_APP), receiver of payments.
        app_amount: the app party's own Amulet (0 for none; a year's preapproval fee is ~151 CC).
        featured: give the app a FeaturedAppRight.
        preapproval: pre-seed the app's TransferPreapproval (else `billing setup` makes it).
        options: passed to `Simulator` (clock, tick, seed, static_token, ...).
    """
    sim = Simulator(app_party=app_party, **options)
    for party, amount in holdings:
        if Decimal(amount) > 0:
            sim.fund(party, amount)
    if app_amount > 0:
        sim.fund(app_party, app_amount)
    if featured:
        sim.feature(app_party)
    if preapproval:
        sim.add_preapproval(app_party)
    return sim
